"""Backbone zoo: each block's math against a direct computation, and every backbone (with
and without GPRec) through the shared fit/save/reload check."""


import numpy as np
import pytest

from tests.helpers import check_model
from tfrs_userlevel import FeatureSpec, RankingModel, backbones, datasets, keras, tf
from tfrs_userlevel.gprec import GPRec


@pytest.fixture(scope="module")
def spec():
    return FeatureSpec.from_config(datasets.feature_spec("movielens_100k"))


# DIN and DIEN need click histories (the time split): tests/integration/test_udg.py fits them.
# GPRec reads a backbone only through h and its logit; the default run joins it to the
# backbones whose logit has terms outside head(h) (DeepFM's FM part, FinalMLP's bilinear
# fusion), a cross network (GDCN) and the MLP; `pytest -m slow` joins it to the rest.
GPREC_IN_DEFAULT_RUN = ("mlp", "deepfm", "finalmlp", "gdcn")


@pytest.mark.parametrize("name,user_level", [
    pytest.param(name, user_level,
                 marks=() if user_level == "none" or name in GPREC_IN_DEFAULT_RUN
                 else pytest.mark.slow)
    for name in sorted(n for n in backbones.BACKBONES if n not in ("din", "dien"))
    for user_level in ("none", "gprec")])
def test_every_backbone_fits_saves_and_reloads(ml100k, spec, tmp_path, name, user_level):
    train = ml100k["train"]
    keras.utils.set_random_seed(0)
    p = float(train["label"].mean())
    gprec = (GPRec(groups=6, reduce="sum", strategy="dp", classifier_units=(4,),
                   output_bias=float(np.log(p / (1 - p))))
             if user_level == "gprec" else None)
    model = RankingModel(spec, spec.build_vocabularies(train), backbone={"name": name},
                         positive_rate=p, user_level=gprec)
    check_model(model, ml100k, tmp_path)
    assert (model.first_order is not None) == ("first_order" in model.backbone.requires)


def test_learned_detached_ensemble_fits_saves_and_reloads(ml100k, spec, tmp_path):
    """The ensemble with learned weights and no gradient from the average into the
    backbone (the backbones table's setting) through the shared check: SavedModel too."""
    train = ml100k["train"]
    keras.utils.set_random_seed(0)
    p = float(train["label"].mean())
    gprec = GPRec(groups=6, reduce="sum", strategy="ensemble", ensemble_weights="learned",
                  ensemble_backbone_gradient=False, stop_embedding_gradient=True,
                  output_bias=float(np.log(p / (1 - p))))
    model = RankingModel(spec, spec.build_vocabularies(train), backbone={"name": "dcn"},
                         positive_rate=p, user_level=gprec)
    check_model(model, ml100k, tmp_path)
    mixing = model.user_level.combiner.mixing.numpy()
    assert np.any(mixing != 0)  # the weights trained


@pytest.mark.parametrize("strategy", ["input", "dp", "ensemble"])
def test_every_strategy_joins_a_backbone_with_its_own_logit_terms(ml100k, spec, strategy):
    """GPRec reads h and the backbone's full logit (head + FM / bilinear terms)."""
    train = ml100k["train"]
    keras.utils.set_random_seed(0)
    for name in ("deepfm", "finalmlp"):
        model = RankingModel(spec, spec.build_vocabularies(train), backbone={"name": name},
                             positive_rate=0.5,
                             user_level=GPRec(groups=4, reduce="sum", strategy=strategy))
        ids = model.lookup({k: tf.constant(v[:64]) for k, v in train.items()
                            if k in spec.names})
        labels = tf.constant(train["label"][:64].reshape(-1, 1), tf.float32)
        with tf.GradientTape() as tape:
            loss = model.compute_loss((ids, labels), training=True)
        grads = tape.gradient(loss, model.backbone.trainable_variables)
        assert np.isfinite(loss.numpy())
        # The backbone learns through the final prediction and its own head's loss.
        assert all(g is not None for g in grads), name
        inputs = model.embedding(ids)
        backbone = model.backbone(model.model_inputs(ids))
        if strategy == "ensemble":
            # Shifting the backbone's logit moves the ensemble's prediction.
            out = model.user_level({"user": tf.gather(inputs, model._user_positions, axis=1),
                                    "personal": tf.gather(inputs, model._personal_positions,
                                                          axis=1),
                                    "item": tf.gather(inputs, model._item_positions, axis=1),
                                    "hidden": backbone["hidden"],
                                    "logit": backbone["logit"] + 1.0})
            base = model.score(ids)["logit"]
            assert np.all(out["logit"].numpy() > base.numpy())
