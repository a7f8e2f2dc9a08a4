"""Shared fixtures: the real datasets under $TFRS_USERLEVEL_DATA (default ../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import tfrs_userlevel  # noqa: F401  (Keras 2 before TensorFlow is touched)
from tfrs_userlevel import datasets

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get(datasets.ENV_VAR) or REPO.parent / "shared" / "data").resolve()


def pytest_configure(config):
    # Absolute, so that tests which change the working directory still find the data.
    os.environ[datasets.ENV_VAR] = str(DATA_DIR)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "movielens-1m").is_dir():
        pytest.fail(f"the real datasets are expected under {DATA_DIR} (set {datasets.ENV_VAR})")
    return DATA_DIR


@pytest.fixture(scope="session")
def ml1m(data_dir):
    return datasets.load_splits("movielens_1m", "random", data_dir)


@pytest.fixture(scope="session")
def ml100k(data_dir):
    return datasets.load_splits("movielens_100k", "random", data_dir)
