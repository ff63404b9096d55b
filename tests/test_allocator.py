"""eqff/runtime/allocator.py: freed memory is kept, so a large tensor allocated again faults in no pages."""
import json
import os
import subprocess
import sys

import pytest
from conftest import data_path

from eqff.runtime.allocator import OPT_OUT

GLIBC_LINUX = sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION") is not None

# five energy+forces calls of SchNet on 512 waters (1,536 atoms, 80,000 edges); the page faults of
# each call (the first builds the working set; later calls should reuse it)
PROBE = """
import json, resource, sys
import ase.io, torch
torch.set_num_threads(1)
import eqff
from eqff.data.frames import Frame
from eqff.data.graph import frames_to_batch
from eqff.runtime.allocator import keep_freed_memory
kept = keep_freed_memory()
model = eqff.build_model("schnet", elements=[1, 8], cutoff=5.0, dtype="float32")
batch = frames_to_batch([Frame.from_atoms(ase.io.read(sys.argv[1], 0).repeat(2))], 5.0, dtype=torch.float32)
faults = []
for _ in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    model(batch)["forces"].sum().item()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"kept": kept, "faults": faults}))
"""


def _probe(opt_out: bool) -> dict:
    env = dict(os.environ)
    env.pop(OPT_OUT, None)
    if opt_out:
        # glibc as on a large system, where tensors above its largest mmap threshold (32 MiB) are
        # mapped afresh every call: a fixed threshold turns off its adaptation, which at this size
        # sometimes keeps the pages and sometimes not
        env[OPT_OUT] = "0"
        env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    result = subprocess.run([sys.executable, "-c", PROBE, data_path("water_192_3.xyz")], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC_LINUX, reason="glibc's malloc only")
def test_later_calls_reuse_the_pages_of_the_first():
    kept, default = _probe(opt_out=False), _probe(opt_out=True)
    assert kept["kept"] is True and default["kept"] is False
    # later calls: ~237,000 page faults each with fresh mappings; with freed memory kept,
    # 0-55,000 for the four together (measured)
    later_default, later_kept = sum(default["faults"][1:]), sum(kept["faults"][1:])
    assert later_default > 200_000, default
    assert later_kept < 0.25 * later_default, (kept, default)


def test_the_calculator_says_whether_freed_memory_is_kept(ethanol):
    import eqff

    calculator = eqff.EqffCalculator(eqff.build_model("schnet", elements=[1, 6, 8], cutoff=4.0), threads=1)
    assert calculator.keeps_freed_memory is GLIBC_LINUX or not GLIBC_LINUX and calculator.keeps_freed_memory is False


BOUNDED = """
import json, warnings
from eqff.runtime.allocator import keep_freed_memory
first = keep_freed_memory(bounded=True)      # memory-bounded (chunked) evaluation: malloc left alone
second = keep_freed_memory()                 # a calculator without chunks
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    third = keep_freed_memory(bounded=True)  # chunks again, now in a process that keeps memory
print(json.dumps({"answers": [first, second, third], "warned": [str(w.message) for w in caught]}))
"""


@pytest.mark.skipif(not GLIBC_LINUX, reason="glibc's malloc only")
def test_chunked_evaluation_leaves_malloc_alone_and_says_when_it_cannot():
    env = dict(os.environ)
    env.pop(OPT_OUT, None)
    result = subprocess.run([sys.executable, "-c", BOUNDED], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["answers"] == [False, True, True]
    assert len(out["warned"]) == 1 and f"{OPT_OUT}=0" in out["warned"][0]
