import subprocess
import sys

import eqff


def test_version():
    out = subprocess.run(["eqff", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"eqff {eqff.__version__}"
    out = subprocess.run([sys.executable, "-m", "eqff", "--version"], capture_output=True, text=True, check=True)
    assert eqff.__version__ in out.stdout
