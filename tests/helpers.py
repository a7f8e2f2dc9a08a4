"""`check_model`: the one fit → save → reload → compare check every model goes through.

Like DeepCTR's `check_model`: train a few steps on real data, then the
predictions of the trained model must survive a `.keras` round trip and a
SavedModel round trip (loaded with `tf.saved_model.load`, i.e. the way a
serving process sees it), and the loss must have gone down.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from tfrs_userlevel import RankingModel, data, keras, tf


@contextlib.contextmanager
def not_built_warnings():
    """Collects the "... because it is not built" warnings Keras logs while saving a model
    with a layer it never built (yields the list, filled as they come)."""
    found = []

    class Collect(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            if "because it is not built" in message:
                found.append(message)

    handler = Collect()
    logger = logging.getLogger("tensorflow")
    logger.addHandler(handler)
    try:
        yield found
    finally:
        logger.removeHandler(handler)


def serving_signature(model: RankingModel):
    """A tf.function over one raw tensor per feature (batch first)."""
    specs = {name: tf.TensorSpec([None, *t.shape[1:]], t.dtype, name=name)
             for name, t in model.example_features().items()}

    @tf.function(input_signature=[specs])
    def serve(features):
        return {"probability": model(features, training=False)}

    return serve


def check_model(model: RankingModel, splits: dict, tmp_path: Path, steps: int = 30,
                batch_size: int = 512, atol: float = 1e-5) -> dict:
    """Fits `model` for 2 × `steps` steps, checks learning and both round trips.

    Returns the predictions on 256 test rows (float32 [256, 1]).
    """
    train, test = splits["train"], splits["test"]
    model.compile(keras.optimizers.Adam(3e-3), steps_per_execution=5)
    ids = data.lookup_columns(model.lookup, train)
    history = model.fit(data.training_dataset(ids, train["label"], batch_size, seed=0),
                        epochs=2, steps_per_epoch=steps, verbose=0)
    losses = history.history["main_loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses

    raw = {k: tf.constant(v[:256]) for k, v in test.items() if k in model.feature_spec.names}
    expected = model(raw).numpy()
    assert expected.shape == (256, 1)
    assert np.all((expected > 0) & (expected < 1))
    np.testing.assert_array_equal(model(raw).numpy(), expected)  # deterministic at inference

    keras_path = str(tmp_path / "model.keras")
    with not_built_warnings() as warnings:
        model.save(keras_path)
    assert warnings == []
    reloaded = keras.models.load_model(keras_path)
    np.testing.assert_allclose(reloaded(raw).numpy(), expected, rtol=0, atol=atol)
    assert reloaded.backbone.get_config() == model.backbone.get_config()

    saved_path = str(tmp_path / "saved_model")
    with not_built_warnings() as warnings:
        tf.saved_model.save(model, saved_path, signatures={"serving_default":
                                                           serving_signature(model)})
    assert warnings == []
    served = tf.saved_model.load(saved_path).signatures["serving_default"](**raw)
    np.testing.assert_allclose(served["probability"].numpy(), expected, rtol=0, atol=atol)
    return {"predictions": expected, "losses": losses}


def welch_p(candidate, reference):
    """One-sided Welch p-value from its formulas: t = (m₁ − m₂)/√(s₁²/n₁ + s₂²/n₂), the
    Welch–Satterthwaite degrees of freedom, and the upper tail of Student's t."""
    from scipy.stats import t as student

    a, b = np.asarray(candidate, float), np.asarray(reference, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return float(student.sf((a.mean() - b.mean()) / math.sqrt(va + vb), df))


def paired_p(candidate, reference):
    """One-sided paired p-value: t = mean(d)/(sd(d)/√n) with n − 1 degrees of freedom."""
    from scipy.stats import t as student

    d = np.asarray(candidate, float) - np.asarray(reference, float)
    return float(student.sf(d.mean() / (d.std(ddof=1) / math.sqrt(len(d))), len(d) - 1))


# -- numpy oracles (independent of the code under test) -------------------------------


def relu(x):
    return np.maximum(x, 0.0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_bce(labels, logits) -> float:
    """Mean binary cross-entropy on logits, in float64."""
    labels, logits = np.asarray(labels, np.float64), np.asarray(logits, np.float64)
    return float(np.mean(np.maximum(logits, 0) - logits * labels
                         + np.log1p(np.exp(-np.abs(logits)))))


def randomize_weights(layer, seed: int, scale: float = 1.0) -> None:
    """Every weight of `layer` (a layer or a model) drawn from N(0, scale²), biases
    included, so that no term of a hand computation is zero by construction."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=scale, size=w.shape).astype(np.float32)
                       for w in layer.get_weights()])


SERVER_SECONDS = 120  # the most the server may take to start and load the runs


class TensorBoardServer:
    """`tensorboard --logdir LOGDIR` on 127.0.0.1 at a port the server picks itself (0);
    stopped on exit."""

    def __init__(self, logdir):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir),
             "--host", "127.0.0.1", "--port", "0", "--load_fast", "false",
             "--reload_interval", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.url = None

    def __enter__(self):
        deadline = time.monotonic() + SERVER_SECONDS
        for line in self.process.stderr:  # it prints its address when it listens
            if " at http://127.0.0.1:" in line:
                self.url = line.split(" at ", 1)[1].split()[0].rstrip("/")
                break
            assert time.monotonic() < deadline, "TensorBoard did not start"
        assert self.url, "TensorBoard exited before listening"
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()

    def get(self, path, body=None, raw=False):
        """The JSON answer to GET `path` (POST with a JSON `body`); bytes with `raw`."""
        request = urllib.request.Request(
            self.url + path, data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"} if body is not None else {})
        with urllib.request.urlopen(request, timeout=30) as response:
            data = response.read()
        return data if raw else json.loads(data)

    def until(self, path, ready, body=None):
        """The answer to `path` once `ready(answer)` holds (the server loads in the
        background)."""
        deadline = time.monotonic() + SERVER_SECONDS
        while True:
            answer = self.get(path, body)
            if ready(answer):
                return answer
            assert time.monotonic() < deadline, (path, answer)
            time.sleep(0.5)
