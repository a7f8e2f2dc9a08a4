"""The ranking model: it learns, it round-trips, and the auxiliary-loss hook works."""


import numpy as np
import pytest

from tfrs_userlevel import FeatureSpec, RankingModel, data, datasets, keras, tf


def _subset(columns, n, offset=0):
    return {k: v[offset:offset + n] for k, v in columns.items()}


def _model(spec, train, **kwargs):
    keras.utils.set_random_seed(0)
    return RankingModel(spec, spec.build_vocabularies(train),
                        positive_rate=float(train["label"].mean()), **kwargs)


@pytest.fixture(scope="module")
def spec():
    return FeatureSpec.from_config(datasets.feature_spec("movielens_1m"))


def test_model_learns_on_real_data(ml1m, spec):
    train, val = ml1m["train"], _subset(ml1m["validation"], 20_000)
    model = _model(spec, train)
    model.compile(keras.optimizers.Adam(2e-3), steps_per_execution=25)
    ids = data.lookup_columns(model.lookup, train)
    dataset = data.training_dataset(ids, train["label"], 2048, seed=0)
    model.fit(dataset, epochs=1, steps_per_epoch=300, verbose=0)
    val_ids = data.lookup_columns(model.lookup, val)
    logs = model.evaluate(data.evaluation_dataset(val_ids, val["label"], 8192),
                          return_dict=True, verbose=0)
    assert logs["auc"] > 0.77, logs
    assert logs["logloss"] < 0.57, logs


class ProbeUserLevel(keras.layers.Layer):
    """Test double of a user-level layer: shifts the logit, adds one named loss."""

    loss_names = ("probe_loss",)

    def build(self, input_shape):
        self.shift = self.add_weight(name="shift", shape=(), initializer="zeros")

    def call(self, inputs, training=False):
        assert inputs["user"].shape[1] == 5 and inputs["personal"].shape[1] == 1
        assert inputs["item"].shape[1] == 3
        logit = inputs["logit"] + self.shift
        return {"logit": logit, "losses": {"probe_loss": 0.5 * tf.reduce_mean(tf.square(logit))}}


def test_auxiliary_losses_are_added_and_logged_one_by_one(ml100k):
    spec = FeatureSpec.from_config(datasets.feature_spec("movielens_100k"))
    train = ml100k["train"]
    model = _model(spec, train, user_level=ProbeUserLevel())
    model.compile(keras.optimizers.Adam(1e-3))
    ids = data.lookup_columns(model.lookup, train)
    history = model.fit(data.training_dataset(ids, train["label"], 1000, seed=1),
                        epochs=1, steps_per_epoch=10, verbose=0)
    logs = {k: v[-1] for k, v in history.history.items()}
    assert {"loss", "main_loss", "probe_loss", "regularization_loss"} <= set(logs)
    assert logs["probe_loss"] > 0
    assert logs["loss"] == pytest.approx(logs["main_loss"] + logs["probe_loss"], rel=1e-5)
    # The probe's loss pulls the logit towards 0: its shift variable got a gradient.
    assert float(model.user_level.shift) != 0.0


def test_save_and_load_round_trip_gives_identical_predictions(ml100k, tmp_path):
    spec = FeatureSpec.from_config(datasets.feature_spec("movielens_100k"))
    train = ml100k["train"]
    model = _model(spec, train, embedding_l2=1e-6)
    model.compile(keras.optimizers.Adam(2e-3))
    ids = data.lookup_columns(model.lookup, train)
    model.fit(data.training_dataset(ids, train["label"], 1000, seed=1), epochs=1,
              steps_per_epoch=20, verbose=0)
    raw = {k: tf.constant(v[:512]) for k, v in ml100k["test"].items()
           if k in spec.names}
    expected = model(raw).numpy()
    assert expected.shape == (512, 1) and 0 < expected.min() and expected.max() < 1

    model.save_weights(str(tmp_path / "weights"))
    clone = RankingModel.from_config(model.get_config())
    clone(raw)
    clone.load_weights(str(tmp_path / "weights")).assert_existing_objects_matched()
    np.testing.assert_array_equal(clone(raw).numpy(), expected)

    model.save(str(tmp_path / "model.keras"))
    loaded = keras.models.load_model(str(tmp_path / "model.keras"))
    np.testing.assert_allclose(loaded(raw).numpy(), expected, rtol=0, atol=1e-7)


def test_unseen_ids_get_finite_predictions(ml100k):
    spec = FeatureSpec.from_config(datasets.feature_spec("movielens_100k"))
    model = _model(spec, ml100k["train"])
    raw = {k: tf.constant(v[:4]) for k, v in ml100k["test"].items() if k in spec.names}
    raw["user_id"] = tf.constant([10**9, -1, 0, 5], tf.int64)
    raw["zip"] = tf.constant(["", "?????", "00000", "x"])
    assert np.isfinite(model(raw).numpy()).all()
