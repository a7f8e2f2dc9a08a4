"""What a run leaves in its model directory, and how it is written and read back.

Layout of `model_dir`:

* `config.json`: the run's configuration and feature spec, written before
  training starts;
* `model.json`: the model's Keras config (vocabularies included), so that
  `load_trained(model_dir)` rebuilds it without the training data;
* `checkpoint/best.*`: the best weights (by validation AUC);
* `logs/`: TensorBoard events and the run's HParams session;
* `backup/`: the state of an unfinished run (removed when it finishes);
* `metrics.json`: val/test metrics of the best epoch, epochs, best_epoch,
  train_examples_per_second, the parameter counts (`tfrs_userlevel.parameter_counts`),
  versions and the configuration.

Every JSON file is written atomically (`write_json_atomic`).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from tfrs_userlevel.backend import keras
from tfrs_userlevel.models import RankingModel

CONFIG_FILE = "config.json"
MODEL_FILE = "model.json"
METRICS_FILE = "metrics.json"
BEST_WEIGHTS = Path("checkpoint") / "best"
LOGS = "logs"
BACKUP = "backup"


def write_json_atomic(path: Path, payload: Any) -> None:
    """Writes JSON to a temporary file in the same folder, flushed to disk, then renames
    it over `path`: a failed write (a full disk, say) leaves the previous file as it was
    and no temporary file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False)
    try:
        with handle:
            json.dump(payload, handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def versions() -> dict[str, str]:
    """The versions of this package and of the libraries a run's numbers depend on."""
    from importlib import metadata

    import tfrs_userlevel

    found = {"tfrs_userlevel": tfrs_userlevel.__version__}
    for package in ("tensorflow", "tf-keras", "tensorflow-recommenders"):
        try:
            found[package.replace("-", "_")] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package.replace("-", "_")] = "not installed"
    return found


def load_trained(model_dir: str | os.PathLike) -> RankingModel:
    """Rebuilds the model a run wrote to `model_dir`, with its best weights."""
    model_dir = Path(model_dir)
    for needed in (MODEL_FILE, f"{BEST_WEIGHTS}.index"):
        if not (model_dir / needed).exists():
            raise FileNotFoundError(
                f"{model_dir / needed} is missing: {model_dir} does not hold a finished run "
                "of train.py (model.json and checkpoint/best are written by it)")
    model = keras.layers.deserialize(json.loads((model_dir / MODEL_FILE).read_text()))
    model(model.example_features())
    model.load_weights(str(model_dir / BEST_WEIGHTS)).expect_partial()
    return model
