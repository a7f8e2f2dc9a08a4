"""Shared fixtures: the real datasets under $TFRS_USERLEVEL_DATA (default ../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tfrs_userlevel  # noqa: F401  (Keras 2 before TensorFlow is touched)
from tfrs_userlevel import datasets

REPO = Path(__file__).resolve().parents[1]
# A folder named in the environment must hold the data (a wrong one fails the tests that
# read it); without one, those tests are skipped when the default place is empty, and the
# tests that need no data still run.
DATA_NAMED = bool(os.environ.get(datasets.ENV_VAR))
DATA_DIR = Path(os.environ.get(datasets.ENV_VAR) or REPO.parent / "shared" / "data").resolve()


def pytest_configure(config):
    # Absolute, so that tests which change the working directory still find the data.
    os.environ[datasets.ENV_VAR] = str(DATA_DIR)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "movielens-1m").is_dir():
        message = (f"the real datasets (movielens-1m/, movielens-100k/) are not under "
                   f"{DATA_DIR}; set {datasets.ENV_VAR} to the folder that holds them")
        if DATA_NAMED:
            pytest.fail(message)
        pytest.skip(message)
    return DATA_DIR


@pytest.fixture(scope="session")
def ml1m(data_dir):
    return datasets.load_splits("movielens_1m", "random", data_dir)


@pytest.fixture(scope="session")
def ml100k(data_dir):
    return datasets.load_splits("movielens_100k", "random", data_dir)
