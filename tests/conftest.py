"""Shared fixtures. The real data sets live outside the repo: $MINIVAE_SHARED_DATA, else <repo>/../shared/data."""

import os
from pathlib import Path

import pytest

from minivae.data.idx import IDX_NAMES


def shared_data_dir():
    """$MINIVAE_SHARED_DATA if set, else the `shared/data` folder next to the repository."""
    env = os.environ.get("MINIVAE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data():
    return shared_data_dir()


@pytest.fixture(scope="session")
def mnist_dir(shared_data):
    """The directory with the four MNIST gz files; skips the test when they are absent."""
    directory = shared_data / "mnist"
    if not all((directory / f"{name}.gz").is_file() for name in IDX_NAMES):
        pytest.skip(f"MNIST not found at {directory}; set MINIVAE_SHARED_DATA")
    return directory


@pytest.fixture(scope="session")
def frey_path(shared_data):
    """Path of frey_rawface.mat; skips the test when it is absent."""
    path = shared_data / "frey" / "frey_rawface.mat"
    if not path.is_file():
        pytest.skip(f"Frey faces not found at {path}; set MINIVAE_SHARED_DATA")
    return path
