"""The suite's results as Markdown: one table per section, its rows as the JSON has them."""
from typing import Dict, List

COLUMNS = {
    "agreement": ["structure", "kind", "dtype", "check", "energy_rel", "forces_rel", "stress_rel", "threshold", "pass"],
    "timing": ["structure", "atoms", "edges", "kind", "max_edges_per_chunk", "ms", "first_call_ms", "us_per_atom",
               "peak_mib", "skipped"],
    "md": ["kind", "structure", "atoms", "implementation", "platform", "steps_per_s", "ns_per_day", "skipped", "error",
           "note"],
    "training": ["model", "structure", "batch_size", "train_frames", "dtype", "first_epoch_s", "epoch_s",
                 "structures_per_s", "skipped"],
    "cuequivariance": ["operation", "irreps", "rows", "cue_method", "cue_vs_e3nn_rel", "fused_vs_e3nn_rel", "e3nn_ms",
                       "eqff_fused_ms", "eqff_ms", "cue_ms", "skipped", "error"],
}
TITLES = {
    "agreement": "GPU against CPU (max |Δ| / max |CPU|; chunked against one piece)",
    "timing": "Energy + forces per call, float32 (median ms; peak tensor memory above the call's start)",
    "md": "OpenMM MD of water (0.5 fs, LangevinMiddle, model float32)",
    "training": "Training throughput, default model on aspirin",
    "cuequivariance": "cuequivariance against eqff's products (forward + backward, float32)",
}


def cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
            return f"{value:.1e}"
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value).replace("|", "/").replace("\n", " ")


def table(rows: List[Dict], columns: List[str]) -> str:
    if not rows:
        return "(nothing measured: see the notes)"
    used = [c for c in columns if any(c in row for row in rows)]
    lines = ["| " + " | ".join(used) + " |", "|" + "---|" * len(used)]
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(c)) for c in used) + " |")
    return "\n".join(lines)


def markdown(results: Dict) -> str:
    environment = results["environment"]
    lines = [f"# eqff GPU suite ({'quick, ' if results['quick'] else ''}{results['device']})", "",
             f"Command: `{results['command']}`  ", f"Date: {results['date']}; total {results['total_s']:.0f} s of a "
             f"{results['budget_s']:.0f} s budget.  ",
             "Machine: " + "; ".join(f"{k} {v}" for k, v in environment.items()), ""]
    failed = [s for s, r in results["sections"].items() if isinstance(r, dict) and "failed" in r]
    agreement = results["sections"].get("agreement")
    if isinstance(agreement, list):
        bad = [r for r in agreement if r.get("pass") is False]
        lines += [f"Agreement: {len(agreement) - len(bad)} of {len(agreement)} checks within their threshold"
                  + (f"; **over**: {', '.join(r['kind'] + '/' + r['structure'] + '/' + r['dtype'] for r in bad)}" if bad else "")
                  + ".", ""]
    if failed:
        lines += [f"**Sections that failed**: {', '.join(failed)} (their errors are below).", ""]
    for section, rows in results["sections"].items():
        lines += [f"## {TITLES.get(section, section)}", ""]
        if isinstance(rows, dict):  # the section failed
            lines += ["```", rows.get("failed", str(rows)), "```", ""]
            continue
        lines += [table(rows, COLUMNS.get(section, sorted({k for r in rows for k in r}))), ""]
    if results["notes"]:
        lines += ["## Notes", ""] + [f"- {note}" for note in results["notes"]] + [""]
    return "\n".join(lines)
