"""benchmarks/speed.py's tables: the linear-scaling ratios it reports (no timing measured here)."""
from conftest import benchmark_module


def _row(system, atoms, ms, chunked_ms=None):
    nan = float("nan")
    row = {"system": system, "atoms": atoms, "edges": 50 * atoms, "dtype": "float32", "model": "schnet",
           "params": 1, "ase_ms": ms, "bare_ms": ms, "torchforce_ms": nan, "pythonforce_ms": nan,
           "bare_beside_torchforce_ms": nan, "peak_mib": atoms / 10, "force_error": {}, "peers": {}}
    if chunked_ms is not None:  # rows written before the chunked engine existed have no such key
        row.update(ase_chunked_ms=chunked_ms, max_edges_per_chunk=16384)
    return row


def test_scaling_ratio_of_the_chunked_call_is_per_atom_time_at_12288_over_1536():
    speed = benchmark_module("speed")
    rows = [_row("water_1536", 1536, 100.0, chunked_ms=120.0), _row("water_12288", 12288, 1600.0, chunked_ms=1056.0)]
    text = speed.tables(rows, {"cpu": "x", "cores": 2, "load_average": [0.0], "eqff_train_processes": "0",
                               "date": "today"}, "cmd")
    # plain ASE: 1600/12288 over 100/1536 = 2.00; chunked: 1056/12288 over 120/1536 = 1.10
    assert "| schnet | float32 | 2.00 | 1.10 | 2.00 | – | 1.00 |" in text
    assert "max_edges_per_chunk 16384" in text
    assert "| time (ASE, vesin list, chunked) per atom at 12,288 / at 1,536 in 0.7–1.3 | 1 | 1 | 1.10 (schnet float32) |" in text
    assert "| time (ASE, vesin list) per atom at 12,288 / at 1,536 in 0.7–1.3 | 1 | 0 | 2.00 (schnet float32) |" in text


def test_rows_without_the_chunked_call_still_make_tables():
    speed = benchmark_module("speed")
    rows = [_row("water_1536", 1536, 100.0), _row("water_12288", 12288, 900.0)]
    text = speed.goals(rows)
    assert "chunked" not in text
    assert "| time (ASE, vesin list) per atom at 12,288 / at 1,536 in 0.7–1.3 | 1 | 1 | 1.12 (schnet float32) |" in text
