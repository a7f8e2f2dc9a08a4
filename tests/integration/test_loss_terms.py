"""GPRec and UDG outside RankingModel: the TFRS basic-ranking model and functional models.

Each weighted GPRec term appears by name in `fit`'s history (training and
validation) and in TensorBoard, is summed into the loss once, and a tfrs.Model's
`regularization_loss` holds only its weight penalties. Functional models with GPRec
and with UDG (meta generator included) round-trip through `.keras` and SavedModel."""


import numpy as np
import pytest
import tensorflow_recommenders as tfrs
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers import not_built_warnings, np_bce
from tfrs_userlevel import keras, tf
from tfrs_userlevel.gprec import GPRec
from tfrs_userlevel.udg import UserDependentGating

TERMS = ("gprec_backbone_loss", "gprec_group_loss", "gprec_contrastive_loss",
         "gprec_orthogonal_loss")


BATCH = 1024


@pytest.fixture(scope="module")
def clicks(ml100k):
    """ML-100K click rows as the tutorial's string ids, and the id vocabularies."""
    def rows(split):
        columns = ml100k[split]
        return ({"user_id": columns["user_id"].astype(str),
                 "item_id": columns["item_id"].astype(str)},
                columns["label"].astype("float32")[:, None])

    train = rows("train")
    return {"train": train, "validation": rows("validation"),
            "users": np.unique(train[0]["user_id"]).tolist(),
            "items": np.unique(train[0]["item_id"]).tolist()}


def _dataset(rows, batches=None):
    dataset = tf.data.Dataset.from_tensor_slices(rows).batch(BATCH)
    return dataset.take(batches) if batches else dataset


class BasicRanker(tfrs.models.Model):
    """The TFRS basic-ranking tutorial's model (a StringLookup + Embedding per id, an MLP,
    `tfrs.tasks.Ranking`) on clicks, with GPRec's recommended form on top."""

    def __init__(self, users, items, l2: float = 0.0):
        super().__init__()
        regularizer = keras.regularizers.L2(l2) if l2 else None
        self.user_embedding = keras.Sequential([
            keras.layers.StringLookup(vocabulary=users),
            keras.layers.Embedding(len(users) + 1, 32, embeddings_regularizer=regularizer)])
        self.item_embedding = keras.Sequential([
            keras.layers.StringLookup(vocabulary=items),
            keras.layers.Embedding(len(items) + 1, 32)])
        self.ratings = keras.Sequential([keras.layers.Dense(64, activation="relu"),
                                         keras.layers.Dense(16, activation="relu")])
        self.head = keras.layers.Dense(1)
        self.gprec = GPRec.from_preset("recommended", groups=8)
        self.task = tfrs.tasks.Ranking(
            loss=keras.losses.BinaryCrossentropy(from_logits=True),
            metrics=[keras.metrics.AUC(from_logits=True, name="auc")])

    def call(self, features, labels=None, training=False):
        user = self.user_embedding(features["user_id"])[:, None, :]   # [B, 1, 32]
        item = self.item_embedding(features["item_id"])[:, None, :]   # [B, 1, 32]
        hidden = self.ratings(tf.concat([user[:, 0], item[:, 0]], axis=1))
        inputs = {"user": user, "personal": user, "item": item, "hidden": hidden,
                  "logit": self.head(hidden)}
        if labels is not None:
            inputs["labels"] = labels
        return self.gprec(inputs, training=training)

    def compute_loss(self, inputs, training=False):
        features, labels = inputs
        out = self(features, labels, training=training)
        return self.task(labels=labels, predictions=out["logit"]) + out["loss"]


@pytest.fixture(scope="module")
def basic_ranker(clicks, tmp_path_factory):
    logs = tmp_path_factory.mktemp("basic_ranker")
    keras.utils.set_random_seed(0)
    model = BasicRanker(clicks["users"], clicks["items"])
    model.compile(keras.optimizers.Adam(3e-3))
    model.fit(_dataset(clicks["train"], 2), epochs=1, verbose=0)
    start = [w.numpy().copy() for w in model.gprec.group_head.weights]
    history = model.fit(
        _dataset(clicks["train"], 25).shuffle(25, seed=0), epochs=2, verbose=0,
        validation_data=_dataset(clicks["validation"], 3),
        callbacks=[keras.callbacks.TensorBoard(str(logs), write_graph=False,
                                               profile_batch=0)])
    return model, history.history, start, logs


def test_basic_ranking_model_logs_each_gprec_term_by_name(basic_ranker):
    _, history, _, _ = basic_ranker
    for term in TERMS:
        for key in (term, f"val_{term}"):
            assert key in history and len(history[key]) == 2, (key, sorted(history))
            assert np.all(np.isfinite(history[key])), key
    for prefix in ("", "val_"):
        # The paper's contrastive term is −β·L_c; the others are positive.
        assert history[f"{prefix}gprec_contrastive_loss"][-1] < 0
        assert history[f"{prefix}gprec_group_loss"][-1] > 0.3
        assert history[f"{prefix}gprec_backbone_loss"][-1] > 0.3
        assert 0 < history[f"{prefix}gprec_orthogonal_loss"][-1] <= 0.1


def test_basic_ranking_model_regularization_loss_holds_no_gprec_term(basic_ranker):
    _, history, _, _ = basic_ranker
    # No weight penalty in this model: TFRS's regularization_loss is exactly 0.
    assert history["regularization_loss"] == [0.0, 0.0]
    assert history["val_regularization_loss"] == [0.0, 0.0]


def test_the_group_head_trains_through_the_returned_loss(basic_ranker):
    model, _, start, _ = basic_ranker
    # MLP_g only enters L_g (the recommended form's average does not train it... and the
    # contrastive pass reads it frozen): it moved, so "loss" reached the gradient.
    moved = [np.abs(w.numpy() - s).max() for w, s in
             zip(model.gprec.group_head.weights, start, strict=True)]
    assert max(moved) > 1e-3


def test_tensorboard_shows_each_term_on_training_and_validation(basic_ranker):
    _, history, _, logs = basic_ranker
    for run, prefix in (("train", ""), ("validation", "val_")):
        events = EventAccumulator(str(logs / run), size_guidance={"tensors": 0})
        events.Reload()
        tags = events.Tags()["tensors"]
        for term in TERMS:
            values = [float(tf.make_ndarray(e.tensor_proto))
                      for e in events.Tensors(f"epoch_{term}")]
            np.testing.assert_allclose(values, history[prefix + term], rtol=1e-6)
        assert "epoch_regularization_loss" in tags


def test_loss_is_the_task_plus_each_term_once_and_regularization_only_the_penalty(clicks):
    keras.utils.set_random_seed(1)
    l2 = 1e-3
    model = BasicRanker(clicks["users"], clicks["items"], l2=l2)
    model.compile(keras.optimizers.Adam(3e-3))
    model.fit(_dataset(clicks["train"], 5), epochs=1, verbose=0)
    features, labels = next(iter(_dataset(clicks["validation"], 1)))
    logs = model.evaluate(tf.data.Dataset.from_tensors((features, labels)),
                          return_dict=True, verbose=0)
    out = model(features, labels, training=False)
    terms = {name: float(value) for name, value in out["losses"].items()}
    assert set(terms) == set(TERMS)
    for name, value in terms.items():
        assert logs[name] == pytest.approx(value, rel=1e-5, abs=1e-7), name
    table = model.user_embedding.layers[1].embeddings.numpy().astype(np.float64)
    assert logs["regularization_loss"] == pytest.approx(l2 * np.sum(table ** 2), rel=1e-5)
    expected = np_bce(labels.numpy(), out["logit"].numpy()) + sum(terms.values())
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)
    assert logs["total_loss"] == pytest.approx(expected + logs["regularization_loss"],
                                               rel=1e-5)


def _id_inputs():
    return {"user_id": keras.Input((), dtype=tf.string, name="user_id"),
            "item_id": keras.Input((), dtype=tf.string, name="item_id")}


def _functional_gprec(users, items, strategy):
    """A functional model: ids and the label in, the click probability out; GPRec adds
    its terms with add_losses=True."""
    inputs = {**_id_inputs(), "label": keras.Input((1,), name="label")}
    user = keras.layers.Embedding(len(users) + 1, 16)(
        keras.layers.StringLookup(vocabulary=users)(inputs["user_id"]))
    item = keras.layers.Embedding(len(items) + 1, 16)(
        keras.layers.StringLookup(vocabulary=items)(inputs["item_id"]))
    hidden = keras.layers.Dense(16, activation="relu")(
        keras.layers.Concatenate()([user, item]))
    user, item = keras.layers.Reshape((1, 16))(user), keras.layers.Reshape((1, 16))(item)
    gprec = GPRec.from_preset("recommended", strategy=strategy, groups=6, add_losses=True,
                              name="gprec")
    out = gprec({"user": user, "personal": user, "item": item, "hidden": hidden,
                 "logit": keras.layers.Dense(1)(hidden), "labels": inputs["label"]})
    probability = keras.layers.Activation("sigmoid", name="probability")(out["logit"])
    return keras.Model(inputs, probability)


def _round_trips(model, batch, tmp_path):
    """The predictions of `model` on `batch` after a .keras and a SavedModel round trip."""
    expected = model(batch, training=False).numpy()
    with not_built_warnings() as warnings:
        model.save(tmp_path / "model.keras")
        reloaded = keras.models.load_model(tmp_path / "model.keras")
        np.testing.assert_allclose(reloaded(batch, training=False).numpy(), expected,
                                   atol=1e-6)
        tf.saved_model.save(model, str(tmp_path / "saved"))
    assert warnings == []
    restored = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(restored(batch, training=False).numpy(), expected, atol=1e-6)
    return expected


@pytest.mark.parametrize("strategy", ["ensemble", "input"])
def test_functional_model_with_gprec_adds_each_term_once_and_round_trips(
        clicks, strategy, tmp_path):
    keras.utils.set_random_seed(2)
    model = _functional_gprec(clicks["users"], clicks["items"], strategy)
    model.compile(keras.optimizers.Adam(3e-3), loss=keras.losses.BinaryCrossentropy())

    def with_label(features, labels):
        return {**features, "label": labels}, labels

    train = _dataset(clicks["train"], 10).map(with_label)
    validation = _dataset(clicks["validation"], 2).map(with_label)
    history = model.fit(train, validation_data=validation, epochs=1, verbose=0).history
    for term in TERMS:
        assert term in history and f"val_{term}" in history, sorted(history)
    assert "regularization_loss" not in history
    # Keras's loss = the compiled BCE + model.losses, where GPRec put the sum of its terms.
    batch, labels = next(iter(validation))
    logs = model.evaluate(tf.data.Dataset.from_tensors((batch, labels)), return_dict=True,
                          verbose=0)
    probability = model(batch, training=False).numpy().astype(np.float64)
    bce = float(np.mean(-labels.numpy() * np.log(probability)
                        - (1 - labels.numpy()) * np.log(1 - probability)))
    terms = sum(logs[t] for t in TERMS)
    assert logs["loss"] == pytest.approx(bce + terms, rel=1e-4)
    assert abs(terms) > 0.3
    _round_trips(model, batch, tmp_path)


def test_functional_model_with_udg_gates_and_meta_generator_round_trips(clicks, tmp_path):
    keras.utils.set_random_seed(3)
    users, items = clicks["users"], clicks["items"]
    inputs = _id_inputs()
    user_index = keras.layers.StringLookup(vocabulary=users)(inputs["user_id"])
    item_index = keras.layers.StringLookup(vocabulary=items)(inputs["item_id"])
    user = keras.layers.Embedding(len(users) + 1, 16)(user_index)
    item = keras.layers.Embedding(len(items) + 1, 16)(item_index)
    gating = UserDependentGating(num_users=len(users), meta=True,
                                 vocabulary_size=len(items) + 1, name="udg")
    # The profile the generator reads: here the item id stands in for a profile field.
    gates = gating({"item": keras.layers.Reshape((1, 16))(item), "user_index": user_index,
                    "profile": keras.layers.Reshape((1,))(item_index)}, widths=[32, 16])
    x = keras.layers.Concatenate()([user, item])
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Multiply()([x, gates[0]]))
    logit = keras.layers.Dense(1)(keras.layers.Multiply()([hidden, gates[1]]))
    model = keras.Model(inputs, keras.layers.Activation("sigmoid")(logit))
    model.compile(keras.optimizers.Adam(3e-3), loss=keras.losses.BinaryCrossentropy(),
                  metrics=[keras.metrics.AUC(name="auc")])
    history = model.fit(_dataset(clicks["train"], 10), epochs=2, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    # Unseen users take the generated embedding; the meta generator is part of the model.
    batch = {"user_id": tf.constant(["unseen"] * 4 + users[:4]),
             "item_id": tf.constant(items[:8])}
    assert len(gating.generator.weights) > 0
    expected = _round_trips(model, batch, tmp_path)
    assert expected.shape == (8, 1)
