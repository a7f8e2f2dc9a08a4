"""GPRec inside RankingModel, end to end (a user's own models: test_loss_terms.py)."""


import numpy as np
import pytest

from tfrs_userlevel import FeatureSpec, RankingModel, data, datasets, keras, tf
from tfrs_userlevel.gprec import GPRec
from tfrs_userlevel.monitoring import exact_auc_logloss


@pytest.fixture(scope="module")
def spec():
    return FeatureSpec.from_config(datasets.feature_spec("movielens_100k"))


def _gprec_model(spec, train, **gprec):
    keras.utils.set_random_seed(0)
    p = float(train["label"].mean())
    return RankingModel(spec, spec.build_vocabularies(train), positive_rate=p,
                        user_level=GPRec(groups=8, output_bias=float(np.log(p / (1 - p))),
                                         **gprec))


@pytest.mark.parametrize("strategy,options", [
    ("input", {}), ("dp", {}), ("ensemble", {}), ("ensemble", {"ensemble_weights": "learned"}),
    ("input", {"base": "embeddings", "prediction_units": (32, 16)})])
def test_ranking_model_with_gprec_learns_logs_every_term_and_round_trips(
        ml100k, spec, strategy, options, tmp_path):
    train, test = ml100k["train"], ml100k["test"]
    model = _gprec_model(spec, train, strategy=strategy, reduce="sum", **options)
    model.compile(keras.optimizers.Adam(3e-3), steps_per_execution=10)
    ids = data.lookup_columns(model.lookup, train)
    history = model.fit(data.training_dataset(ids, train["label"], 1024, seed=0), epochs=2,
                        steps_per_epoch=40, verbose=0)
    logs = {k: v[-1] for k, v in history.history.items()}
    terms = ("main_loss", "gprec_backbone_loss", "gprec_group_loss", "gprec_contrastive_loss",
             "gprec_orthogonal_loss")
    assert set(terms) <= set(logs)
    assert logs["gprec_contrastive_loss"] < 0 < logs["gprec_group_loss"]
    assert logs["loss"] == pytest.approx(
        sum(logs[t] for t in terms) + logs["regularization_loss"], rel=1e-4)
    test_ids = data.lookup_columns(model.lookup, test)
    metrics = model.evaluate(data.evaluation_dataset(test_ids, test["label"], 4096),
                             return_dict=True, verbose=0)
    assert metrics["auc"] > 0.70, metrics
    assert "val_gprec_group_loss" not in metrics and "gprec_group_loss" in metrics
    # backbone_auc scores the backbone's own logit, not the prediction.
    scored = model.score({k: tf.constant(v) for k, v in test_ids.items()})
    backbone = exact_auc_logloss(test["label"], scored["backbone_logit"].numpy())[0]
    assert metrics["backbone_auc"] == pytest.approx(backbone, abs=1e-3)
    if strategy == "ensemble":
        final = exact_auc_logloss(test["label"], scored["logit"].numpy())[0]
        assert abs(final - backbone) > 1e-3 and metrics["auc"] == pytest.approx(final, abs=1e-3)

    raw = {k: tf.constant(v[:256]) for k, v in test.items() if k in spec.names}
    expected = model(raw).numpy()
    np.testing.assert_array_equal(model(raw).numpy(), expected)  # no Gumbel noise at inference
    model.save(str(tmp_path / "model.keras"))
    loaded = keras.models.load_model(str(tmp_path / "model.keras"))
    np.testing.assert_allclose(loaded(raw).numpy(), expected, rtol=0, atol=1e-6)
    assert loaded.user_level.get_config() == model.user_level.get_config()


def test_training_moves_the_group_masks_away_from_one_half(ml100k, spec):
    train = ml100k["train"]
    model = _gprec_model(spec, train, temperature=0.2)
    model.compile(keras.optimizers.Adam(3e-3), steps_per_execution=10)
    ids = data.lookup_columns(model.lookup, train)
    sample = {k: v[:2000] for k, v in ids.items()}

    def masks():
        user = tf.gather(model.embedding(sample), spec.positions("user_personal", "user_other"),
                         axis=1)
        return model.user_level.mask(model.user_level.classifier(user)).numpy()[..., 0]

    model.fit(data.training_dataset(ids, train["label"], 1024, seed=0), epochs=1,
              steps_per_epoch=1, verbose=0)
    start = masks()
    # Embeddings start near 0 (stddev 1e-4), so every user starts undecided.
    assert start.shape == (2000, 8) and np.abs(start - 0.5).max() < 0.05
    model.fit(data.training_dataset(ids, train["label"], 1024, seed=0), epochs=1,
              steps_per_epoch=60, verbose=0)
    end = masks()
    # Training divides the users: the masks leave 1/2, and differ from user to user.
    assert np.mean(np.abs(end - 0.5)) > 0.08
    assert end.std(axis=0).max() > 0.05


def test_refuses_a_layer_that_would_count_its_losses_twice(ml100k, spec):
    train = ml100k["train"]
    with pytest.raises(ValueError, match="twice"):
        RankingModel(spec, spec.build_vocabularies(train), user_level=GPRec(add_losses=True))
