"""The TFDS builder shared by the MovieLens datasets.

A concrete builder names its raw files, its features and a `_read(path)` that
returns one pandas frame sorted by (user, item) with `random_split` and
`time_split` columns; this class locates the files (`sources.find_raw_dir`)
and yields the examples of each split. `_read` is also what
`datasets.load_splits` uses directly, so both paths give the same rows.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow_datasets as tfds

from tfrs_userlevel.datasets import behavior, sources, splits

CITATION = ("F. Maxwell Harper and Joseph A. Konstan. 2015. The MovieLens Datasets: "
            "History and Context. ACM TiiS 5, 4, Article 19.")


class MovieLensBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the MovieLens CTR builders; configs `random` and `time`."""

    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="random", description="random 80/10/10 split, seed 2024"),
        tfds.core.BuilderConfig(name="time", description="global 80/10/10 split by time"),
    ]
    DEFAULT_CONFIG_NAME = "random"
    URL: str = ""
    FOLDERS: tuple[str, ...] = ()
    FEATURES: dict[str, type] = {}
    ITEM: str = ""  # the item id field that click histories list
    HISTORY_LENGTH = 50  # clicks kept in the "history" feature (most recent)
    HOMEPAGE = "https://grouplens.org/datasets/movielens/"

    def __init__(self, *, raw_dir: str | os.PathLike | None = None, **kwargs):
        """`raw_dir`: the data root (`--data-dir`), else `$TFRS_USERLEVEL_DATA`."""
        self._raw_dir = raw_dir
        super().__init__(**kwargs)

    def _missing_files(self, path: Path) -> str | None:
        raise NotImplementedError

    def _read(self, path: Path) -> pd.DataFrame:
        raise NotImplementedError

    def locate(self, dl_manager: tfds.download.DownloadManager | None = None) -> Path:
        """The directory with the raw files (see `datasets.sources`)."""
        return sources.find_raw_dir(
            self.name, self.FOLDERS, self._missing_files, self._raw_dir,
            manual_dir=(lambda: dl_manager.manual_dir) if dl_manager else None,
            download=(lambda: dl_manager.download_and_extract(self.URL)) if dl_manager else None,
            instructions=self.MANUAL_DOWNLOAD_INSTRUCTIONS)

    def _info(self) -> tfds.core.DatasetInfo:
        features = {
            name: tfds.features.Text() if dtype is str else tfds.features.Scalar(np.int64)
            for name, dtype in self.FEATURES.items()
        }
        # The user's last clicks strictly before the row (datasets.behavior), oldest first.
        # Train on it with the `time` config only: under `random`, training rows' histories
        # hold the clicks of later validation/test rows.
        features["history"] = tfds.features.Tensor(shape=(None,), dtype=np.int64)
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.__doc__,
            features=tfds.features.FeaturesDict(features),
            homepage=self.HOMEPAGE,
            citation=CITATION,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        frame = self._read(self.locate(dl_manager))
        histories = behavior.frame_histories(frame, self.ITEM, self.HISTORY_LENGTH)
        frame = frame.assign(history=list(histories))
        column = f"{self.builder_config.name}_split"
        return {
            name: self._generate_examples(frame[frame[column] == name])
            for name in splits.SPLITS
        }

    def _generate_examples(self, frame: pd.DataFrame):
        columns = {name: frame[name].to_numpy() for name in self.FEATURES}
        histories = frame["history"].to_numpy()
        for i, key in enumerate(frame.index.to_numpy()):
            example = {name: values[i] for name, values in columns.items()}
            history = histories[i]
            example["history"] = history[history != behavior.PADDING]
            yield int(key), example
