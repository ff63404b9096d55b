"""``eqff check``: validate a potential and write a Markdown report with plots."""
from eqff.check.report import CheckReport, run_check

__all__ = ["CheckReport", "run_check"]
