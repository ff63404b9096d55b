import os

import ase.io
import pytest
import torch

DATA = os.path.join(os.path.dirname(__file__), "data")
MODELS = ["schnet", "egnn", "segnn"]


def data_path(name: str) -> str:
    return os.path.join(DATA, name)


@pytest.fixture(scope="session")
def ethanol():
    return ase.io.read(data_path("ethanol_20.xyz"), 0)


@pytest.fixture(scope="session")
def water():
    return ase.io.read(data_path("water_192_3.xyz"), 0)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
