"""benchmarks/al_report.py: the round-by-round table of an eqff learn run, from its files."""
import json

import torch

from conftest import benchmark_module


def _round(run, k, train_cpu_s, pairs, lost):
    member = run / f"round_00{k}" / "model_0"
    member.mkdir(parents=True)
    torch.save({"trainer": {"elapsed_s": train_cpu_s + 5.0, "cpu_s": train_cpu_s}}, member / "last.pt")
    record = {"round": k, "training_frames": 100 + 10 * k, "members": [{"checkpoint": str(member / "best.pt")}],
              "times": {"explore": {"cpu_s": 60.0}, "label": {"cpu_s": 120.0}},
              "explore": {"trajectories": [{"stop_reason": "completed"}, {"stop_reason": "lost"}],
                          "trajectories_lost": lost},
              "label": {"errors_vs_sigma": [{"sigma": s, "force_error_max": e} for s, e in pairs]}}
    (run / f"round_00{k}" / "round.json").write_text(json.dumps(record))


def test_table_sums_rounds_and_ranks_sigma_against_error(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    _round(run, 0, 600.0, [(0.1, 1.0), (0.2, 2.0), (0.3, 3.0)], lost=1)   # σ ranks the errors right
    _round(run, 1, 300.0, [(0.1, 3.0), (0.2, 2.0), (0.3, 1.0)], lost=0)   # and backwards
    checks = tmp_path / "checks"
    checks.mkdir()
    (checks / "round0_600K.log").write_text("UNSTABLE: 5.160 of 10.0 ps, largest bond deviation 0.9 Å\n")
    (checks / "round1_600K_100ps.log").write_text("STABLE: 100.000 of 100.0 ps, largest bond deviation 0.2 Å\n")
    (checks / "seeds.tsv").write_text("1\t1\tUNSTABLE: 28.760 of 100.0 ps, x\n")
    report = benchmark_module("al_report")
    monkeypatch.setattr("sys.argv", ["al_report.py", str(run), "--checks", str(checks)])
    report.main()
    lines = capsys.readouterr().out.splitlines()
    row0 = [c.strip() for c in lines[2].split("|")]
    row1 = [c.strip() for c in lines[3].split("|")]
    total = [c.strip() for c in lines[4].split("|")]
    assert row0[1:9] == ["0", "100", "10.0", "1.0", "1 of 2", "3", "2.0", "+1.00"]
    assert row0[10] == "5.2 (of 10)"
    assert row1[8] == "-1.00" and row1[10] == "100.0+, 28.8"
    assert total[1] == "all" and total[3] == "15.0" and total[6] == "6"
