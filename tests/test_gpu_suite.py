"""The GPU suite (benchmarks/gpu) runs end to end here, on the CPU with tiny models
(``--device cpu --quick``), so that it is known to work before a GPU machine runs it."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_suite_quick_on_cpu(tmp_path):
    environment = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([os.path.join(ROOT, "benchmarks", "gpu", "run.sh"), "--device", "cpu", "--quick"],
                          capture_output=True, text=True, env=environment, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / "gpu_suite.json").read_text())
    sections = results["sections"]
    assert set(sections) == {"agreement", "timing", "md", "training", "cuequivariance"}
    assert all(isinstance(rows, list) for rows in sections.values()), sections  # no section failed
    agreement = sections["agreement"]
    assert agreement and all(row["pass"] for row in agreement)
    assert any(row["check"].startswith("chunked") for row in agreement)
    assert all(row["ms"] > 0 and row["peak_mib"] > 0 for row in sections["timing"])
    assert {row["max_edges_per_chunk"] for row in sections["timing"]} == {0, 100}
    assert any(row.get("implementation") == "pythonforce" and row["steps_per_s"] > 0 for row in sections["md"])
    assert sections["training"][0]["structures_per_s"] > 0
    markdown = (tmp_path / "gpu_suite.md").read_text()
    assert "GPU against CPU" in markdown and "Training throughput" in markdown
