"""Interrupted training resumes, a non-finite loss stops training without losing the last
good weights, and --deterministic repeats a run exactly."""


import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tfrs_userlevel import datasets, keras, streaming
from tfrs_userlevel.training import ConfigError, TrainConfig, load_trained, run
from tfrs_userlevel.training.callbacks import NonFiniteLossError

REPO = Path(__file__).resolve().parents[2]


EPOCHS = 4


TRAIN = [sys.executable, str(REPO / "train.py"), "--dataset", "movielens_100k", "--epochs",
         str(EPOCHS), "--patience", "10", "--batch-size", "4096", "--seed", "7"]


def _train(model_dir, timeout=600):
    return subprocess.run(TRAIN + ["--model-dir", str(model_dir)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


@pytest.mark.usefixtures("data_dir")  # runs the command on the real data
def test_a_killed_run_resumes_and_ends_like_an_uninterrupted_one(tmp_path):
    reference = _train(tmp_path / "reference")
    assert reference.returncode == 0, reference.stderr[-2000:]
    expected = json.loads((tmp_path / "reference" / "metrics.json").read_text())

    model_dir = tmp_path / "interrupted"
    process = subprocess.Popen(TRAIN + ["--model-dir", str(model_dir)], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = model_dir / "backup" / "callbacks.json"
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            if state.exists() and max(map(int, json.loads(state.read_text())["epochs"])) >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run never finished two epochs")
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (model_dir / "metrics.json").exists()
    assert (model_dir / "checkpoint" / "best.index").exists()   # nothing written is lost

    resumed = _train(model_dir)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming the interrupted run" in resumed.stdout
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["epochs"] == expected["epochs"] == EPOCHS
    # The restart trained only the epochs after the backup's, from its weights: it printed
    # just those epochs, and its first one's loss is the reference's at that epoch, well
    # below the loss of a first epoch (a run that started over from fresh weights).
    after = metrics["resumed_after_epoch"]  # 1 or 2: the kill may precede epoch 2's backup
    assert after is not None and after >= 1
    assert _epochs_printed(resumed.stdout) == list(range(after + 1, EPOCHS + 1))
    losses, reference_losses = _losses(resumed.stdout), _losses(reference.stdout)
    assert len(losses) == EPOCHS - after and len(reference_losses) == EPOCHS
    gained = reference_losses[0] - reference_losses[after]
    assert gained > 0.005
    assert abs(losses[0] - reference_losses[after]) < gained / 2
    assert abs(metrics["test"]["auc"] - expected["test"]["auc"]) < 0.002
    assert not (model_dir / "backup").exists()   # removed once training completed


def _epochs_printed(stdout: str) -> list[int]:
    return [int(m) for m in re.findall(r"^Epoch (\d+)/\d+", stdout, re.MULTILINE)]


def _losses(stdout: str) -> list[float]:
    """The training loss Keras printed for each epoch (one line per epoch)."""
    return [float(m) for m in re.findall(r" - loss: ([0-9.]+)", stdout)]


class PoisonGroupHead(keras.callbacks.Callback):
    """Writes NaN into GPRec's group head at one step of the second epoch."""

    def on_train_batch_begin(self, batch, logs=None):
        if self.epoch == 1 and batch == 3:
            # The linear output layer's kernel (a NaN before a ReLU would come out as 0).
            kernel = [v for v in self.model.user_level.group_head.trainable_variables
                      if v.shape.rank == 2 and v.shape[-1] == 1][0]
            kernel.assign(np.full(kernel.shape, np.nan, np.float32))

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


def test_a_nan_loss_stops_training_naming_the_term_and_keeps_the_good_weights(ml100k,
                                                                              tmp_path):
    config = TrainConfig(dataset="movielens_100k", user_level="gprec", strategy="input",
                         groups=6, epochs=3, batch_size=4096, steps_per_execution=1)
    spec = datasets.feature_spec("movielens_100k")
    best = tmp_path / "checkpoint" / "best.data-00000-of-00001"
    digests = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            digests.append(hashlib.sha256(best.read_bytes()).hexdigest())

    with pytest.raises(NonFiniteLossError) as error:
        run(config, ml100k, spec, tmp_path, verbose=0,
            extra_callbacks=[PoisonGroupHead(), Record()])
    message = str(error.value)
    assert "gprec_group_loss" in message and "step 24" in message and "epoch 2, batch 4" in message
    assert str(tmp_path / "checkpoint") in message
    # The best weights on disk are the last good epoch's, untouched and finite.
    assert len(digests) == 1 and hashlib.sha256(best.read_bytes()).hexdigest() == digests[0]
    model = load_trained(tmp_path)
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert not (tmp_path / "metrics.json").exists()


def test_resuming_with_another_config_is_refused(ml100k, tmp_path):
    (tmp_path / "backup").mkdir()
    (tmp_path / "config.json").write_text(json.dumps({"config": TrainConfig(seed=1).to_dict()}))
    with pytest.raises(ConfigError, match="interrupted run with another config"):
        run(TrainConfig(dataset="movielens_100k", seed=2, max_steps=2), ml100k,
            datasets.feature_spec("movielens_100k"), tmp_path, verbose=0)


@pytest.mark.usefixtures("data_dir")  # runs the command on the real data
def test_a_deterministic_run_killed_at_three_points_ends_exactly_as_uninterrupted(tmp_path):
    """SIGKILL mid-epoch (epoch 1), during validation (epoch 2) and between writing and
    renaming the best weights (epoch 3) of one deterministic GPRec run; each restart
    resumes where the backup stands, and the run ends with the epochs, best epoch and
    metrics (to 1e-6) of a run never interrupted, in another process."""
    script = [sys.executable, str(REPO / "tests" / "kill_points.py")]

    def start(model_dir, point):
        return subprocess.run([*script, str(model_dir), point], cwd=REPO, text=True,
                              capture_output=True, timeout=600)

    reference = start(tmp_path / "reference", "none")
    assert reference.returncode == 0, reference.stderr[-2000:]
    expected = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    assert expected["config"]["deterministic"] and expected["resumed_after_epoch"] is None
    interrupted = tmp_path / "interrupted"
    for point, finished in (("mid_epoch", 0), ("validation", 1), ("best_weights", 2)):
        killed = start(interrupted, point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
        assert not (interrupted / "metrics.json").exists()
        if finished:  # the backup holds the epochs finished before the kill
            state = json.loads((interrupted / "backup" / "callbacks.json").read_text())
            assert str(finished) in state["epochs"], (point, sorted(state["epochs"]))
    resumed = start(interrupted, "none")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    found = json.loads((interrupted / "metrics.json").read_text())
    assert found["resumed_after_epoch"] == 2  # only the last epoch ran in this process
    assert (found["epochs"], found["best_epoch"]) == (expected["epochs"],
                                                      expected["best_epoch"]) == (3, 3)
    for split in ("val", "test"):
        for metric, value in expected[split].items():
            assert abs(found[split][metric] - value) <= 1e-6, (split, metric)


class Interrupt(Exception):
    pass


class StopMidEpoch(keras.callbacks.Callback):
    """Raises in the second epoch, after batch 7: the process stays, the run is cut."""

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 7:
            raise Interrupt


def test_a_streamed_deterministic_run_cut_mid_epoch_resumes_exactly(ml100k, tmp_path):
    """The streamed input (TFRecord shards) resumes at the batches the uninterrupted run
    had: the resumed run trains only the last epoch and ends with the same metrics."""
    spec = datasets.feature_spec("movielens_100k")
    shards = tmp_path / "shards"
    for prefix, split in (("train", "train"), ("validation", "validation"), ("test", "test")):
        streaming.write_tfrecords([ml100k[split]], spec, shards, prefix=prefix,
                                  block_rows=256)
    config = TrainConfig(dataset="movielens_100k", user_level="gprec", groups=4, epochs=2,
                         batch_size=4096, patience=10, seed=5, deterministic=True,
                         steps_per_execution=4)
    expected = run(config, None, spec, tmp_path / "reference", verbose=0,
                   tfrecord_dir=shards)
    with pytest.raises(Interrupt):
        run(config, None, spec, tmp_path / "cut", verbose=0, tfrecord_dir=shards,
            extra_callbacks=[StopMidEpoch()])
    assert (tmp_path / "cut" / "backup").is_dir()
    found = run(config, None, spec, tmp_path / "cut", verbose=0, tfrecord_dir=shards)
    assert found["resumed_after_epoch"] == 1
    assert (found["epochs"], found["best_epoch"]) == (expected["epochs"],
                                                      expected["best_epoch"])
    for split in ("val", "test"):
        for metric, value in expected[split].items():
            assert abs(found[split][metric] - value) <= 1e-6, (split, metric)


def test_best_weights_are_renamed_into_place(ml100k, tmp_path):
    """The checkpoint is written under a temporary prefix and renamed: none is left."""
    run(TrainConfig(dataset="movielens_100k", epochs=2, batch_size=4096), ml100k,
        datasets.feature_spec("movielens_100k"), tmp_path, verbose=0)
    files = sorted(p.name for p in (tmp_path / "checkpoint").iterdir())
    assert "best.index" in files and any(f.startswith("best.data-") for f in files)
    assert not [f for f in files if ".tmp" in f]
    model = load_trained(tmp_path)
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def test_a_failed_write_keeps_the_previous_files_and_the_run_resumes(ml100k, tmp_path,
                                                                    monkeypatch):
    """A full disk while the second best checkpoint is written: the run stops with the
    error, the first best weights, config.json and the resume state stay readable, no
    partial file is left, and the same run started again resumes and finishes."""
    import errno

    from tfrs_userlevel.training import artifacts

    config = TrainConfig(dataset="movielens_100k", epochs=3, batch_size=4096, patience=10)
    spec = datasets.feature_spec("movielens_100k")
    saved = []
    real_save = keras.Model.save_weights

    def disk_fills_up(model, path, *args, **kwargs):
        if saved:  # the second save: a partial file, then ENOSPC
            Path(path + ".index").write_bytes(b"\x00partial")
            raise OSError(errno.ENOSPC, "No space left on device", path)
        real_save(model, path, *args, **kwargs)
        saved.append([w.copy() for w in model.get_weights()])

    monkeypatch.setattr(keras.Model, "save_weights", disk_fills_up)
    with pytest.raises(OSError, match="No space left"):
        run(config, ml100k, spec, tmp_path, verbose=0)
    monkeypatch.setattr(keras.Model, "save_weights", real_save)
    assert len(saved) == 1
    checkpoint = sorted(p.name for p in (tmp_path / "checkpoint").iterdir())
    assert not [name for name in checkpoint if ".tmp" in name], checkpoint
    restored = load_trained(tmp_path).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(restored, saved[0], strict=True))
    assert json.loads((tmp_path / "config.json").read_text())["config"] == config.to_dict()
    assert (tmp_path / "backup").is_dir() and not (tmp_path / "metrics.json").exists()

    # The JSON writer: a failure mid-write leaves the old file and no temporary one.
    target = tmp_path / "config.json"
    before = target.read_text()
    monkeypatch.setattr(artifacts.json, "dump", lambda *a, **k: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(OSError, match="No space left"):
        artifacts.write_json_atomic(target, {"new": 1})
    monkeypatch.undo()
    assert target.read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    metrics = run(config, ml100k, spec, tmp_path, verbose=0)  # resumes after epoch 1
    assert metrics["epochs"] == 3 and (tmp_path / "metrics.json").exists()
