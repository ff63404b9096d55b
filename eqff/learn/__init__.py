"""Active learning (``eqff learn``): grow a training set where a committee of potentials is unsure.

Each round trains a committee on the current frames, runs Langevin MD with it, labels the
most uncertain frames with a reference method (DFT, or any ASE calculator) and adds them. The
loop is in ``loop.py``; its config in ``config.py``.
"""
from eqff.learn.config import LearnConfig, make_learn_config
from eqff.learn.loop import run_active_learning

__all__ = ["LearnConfig", "make_learn_config", "run_active_learning"]
