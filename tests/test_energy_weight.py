"""The default energy weight comes from the data: the tuned 1 for molecular sets, raised for
materials whose per-atom energies spread as much as their forces (eqff/train/statistics.py)."""
import pytest

from conftest import data_path
from eqff.data.frames import read_frames
from eqff.train.statistics import ENERGY_BALANCE, auto_energy_weight, e0s_least_squares, elements_of


def _weight(name):
    frames = read_frames(data_path(name))
    frames = [f for f in frames if not f.is_isolated_atom]
    return auto_energy_weight(frames, e0s_least_squares(frames, elements_of(frames)), 100.0)


def test_molecules_keep_the_tuned_weight():
    assert _weight("ethanol_20.xyz") == 1.0
    assert _weight("water_192_3.xyz") == 1.0


def test_materials_get_a_weight_from_their_spread():
    import numpy as np

    frames = read_frames(data_path("mlearn_mo_elastic.xyz"))
    e0s = e0s_least_squares(frames, elements_of(frames))
    residuals = np.array([(f.energy - sum(e0s[int(z)] for z in f.numbers)) / len(f) for f in frames])
    ratio = np.mean(np.concatenate([f.forces for f in frames]) ** 2) / residuals.var()
    assert auto_energy_weight(frames, e0s, 100.0) == pytest.approx(100.0 * ENERGY_BALANCE / ratio)
    assert auto_energy_weight(frames, e0s, 100.0) > 10.0
    assert auto_energy_weight(frames, e0s, 0.0) == 1.0  # energy-only training: nothing to balance


def test_stage_two_only_where_the_energies_are_starved():
    from eqff.train.statistics import AUTO_STAGE_TWO_AT, auto_stage_two_at

    def start(name):
        frames = [f for f in read_frames(data_path(name)) if not f.is_isolated_atom]
        return auto_stage_two_at(frames, e0s_least_squares(frames, elements_of(frames)), 100.0)

    assert start("ethanol_20.xyz") is None and start("water_192_3.xyz") is None
    assert start("mlearn_mo_elastic.xyz") == AUTO_STAGE_TWO_AT
