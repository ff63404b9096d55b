"""The line protocol between benchmarks/speed.py and its worker processes (stdlib only, so the
MACE and NequIP workers import it inside their own virtual environments).

A worker is started as ``python WORKER.py '<json setup>'``, builds its model and structure,
then answers one JSON command per stdin line with one stdout line ``@@RESULT <json>`` (other
output, e.g. library warnings, is ignored by the reader):

    {"cmd": "time", "kind": "ase"|"bare"|"torchforce", "n": 3}  -> {"seconds": [...]}
    {"cmd": "memory"}                                            -> {"rss_before_mib", "maxrss_mib"}
    {"cmd": "quit"}

Peak memory of a call = ``ru_maxrss`` (the process's peak resident set, Linux: KiB) after the
calls minus the resident set measured just before the first call (model, structure and
libraries loaded): one fresh process per configuration, so nothing else raises the peak.
"""
import json
import resource
import sys
import time

PREFIX = "@@RESULT "


def rss_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reply(payload) -> None:
    sys.stdout.write(PREFIX + json.dumps(payload) + "\n")
    sys.stdout.flush()


def serve(calls, extra=None) -> None:
    """``calls``: kind -> function doing one energy+forces evaluation; ``extra``: cmd -> function."""
    extra = extra or {}
    rss_before = None
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request["cmd"]
        try:
            if cmd == "quit":
                reply({"ok": True})
                return
            if cmd == "time":
                if rss_before is None:
                    rss_before = rss_mib()
                call = calls[request["kind"]]
                seconds = []
                for _ in range(int(request.get("n", 1))):
                    start = time.perf_counter()
                    call()
                    seconds.append(time.perf_counter() - start)
                reply({"seconds": seconds})
            elif cmd == "memory":
                reply({"rss_before_mib": rss_before if rss_before is not None else rss_mib(),
                       "maxrss_mib": maxrss_mib()})
            elif cmd in extra:
                reply(extra[cmd](request))
            else:
                reply({"error": f"unknown command {cmd!r}"})
        except Exception as error:  # report, keep serving
            reply({"error": f"{type(error).__name__}: {error}"})


def load_structure(setup):
    """The benchmark structure: frame ``index`` of ``path``, repeated ``repeat`` times."""
    import ase.io

    atoms = ase.io.read(setup["path"], setup.get("index", 0))
    atoms.calc = None
    repeat = setup.get("repeat")
    if repeat:
        atoms = atoms.repeat(tuple(repeat))
    return atoms


def jiggle(atoms):
    """A function that moves the atoms by ±1e-3 Å in turn (each call is a new configuration,
    small enough that a neighbour-list skin is not exceeded, like consecutive MD steps)."""
    import numpy as np

    base = atoms.positions.copy()
    delta = np.random.default_rng(0).uniform(-1e-3, 1e-3, base.shape)
    state = {"sign": 1.0}

    def move():
        state["sign"] = -state["sign"]
        atoms.positions = base + state["sign"] * delta

    return move
