"""Drawing eqff's PNGs leaves the caller's matplotlib alone (no backend switch at import or plot)."""
import os
import subprocess
import sys

SCRIPT = """
import matplotlib
import eqff, eqff.train.trainer, eqff.check.plots, eqff.demo
from eqff.train import plots
row = dict(epoch=1, train_loss=1.0, valid_loss=2.0, valid_energy_mae_meV_per_atom=3.0, valid_forces_mae_meV_per_A=4.0)
plots.learning_curves([row, dict(row, epoch=2)], {path!r})
print(matplotlib.get_backend())
"""


def test_plots_keep_the_callers_backend(tmp_path):
    path = str(tmp_path / "curves.png")
    env = dict(os.environ, MPLBACKEND="pdf")
    result = subprocess.run([sys.executable, "-c", SCRIPT.format(path=path)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "pdf"
    assert os.path.getsize(path) > 1000
