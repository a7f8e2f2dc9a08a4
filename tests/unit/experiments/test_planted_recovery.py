"""The recovery of planted user weights (`experiments.planted_recovery`): exact on the
planted logit, split into segment and individual parts, and read from a trained model's
own logits. SYNTHETIC planted worlds."""

import json

import numpy as np
import pytest

from tfrs_userlevel.backend import tf
from tfrs_userlevel.datasets.planted import AttributeWeightingWorld
from tfrs_userlevel.experiments import planted_recovery as pr
from tfrs_userlevel.training import TrainConfig, load_trained, run


@pytest.fixture(scope="module")
def world():
    return AttributeWeightingWorld(users=60, items=50, segments=3, seed=4)


def _recovery(world, logits):
    return pr.recovery(pr.implied_weights(logits, pr.attribute_scores(world)), world.weights,
                       world.segment)


def test_the_planted_logit_implies_each_users_own_weights(world):
    implied = pr.implied_weights(pr.planted_logits(world), pr.attribute_scores(world))
    np.testing.assert_allclose(implied, world.weights - world.weights.mean(0), atol=1e-9)
    assert _recovery(world, pr.planted_logits(world)) == pytest.approx(
        {"all": 1.0, "segment": 1.0, "individual": 1.0})


def test_segment_weights_alone_tell_the_segment_part_and_nothing_individual(world):
    segment_weights = pr._segment_means(world.weights, world.segment)
    logits = segment_weights @ pr.attribute_scores(world).T + world.item_bias
    found = _recovery(world, logits)
    assert found["segment"] == pytest.approx(1.0)
    assert found["individual"] == pytest.approx(0.0, abs=1e-9)
    assert 0.0 < found["all"] < 1.0


def test_weights_given_to_the_wrong_users_of_a_segment_score_below_zero(world):
    rng = np.random.default_rng(0)
    shuffled = world.weights.copy()
    for s in np.unique(world.segment):
        members = np.flatnonzero(world.segment == s)
        shuffled[members] = world.weights[rng.permutation(members)]
    found = _recovery(world, shuffled @ pr.attribute_scores(world).T)
    assert found["segment"] == pytest.approx(1.0)
    assert found["individual"] < 0.0


def test_a_logit_that_ignores_the_user_recovers_nothing(world):
    logits = np.repeat(world.item_bias[None, :], world.users, axis=0)
    found = _recovery(world, logits)
    assert found == pytest.approx({"all": 0.0, "segment": 0.0, "individual": 0.0}, abs=1e-9)


def test_the_planted_form_has_no_off_form_share_and_user_item_noise_has_some(world):
    planted = pr.planted_logits(world)
    assert pr.measures(planted, world) == pytest.approx(
        {"all": 1.0, "segment": 1.0, "individual": 1.0, "items": 1.0, "off_form": 0.0},
        abs=1e-9)
    other_weights = np.random.default_rng(2).normal(size=world.weights.shape)
    other_form = pr.measures(other_weights @ pr.attribute_scores(world).T + world.item_bias,
                             world)
    assert other_form["off_form"] == pytest.approx(0.0, abs=1e-9)
    assert other_form["items"] < 1.0                # w̄·x(i) differs from the planted one
    noisy = pr.measures(planted + np.random.default_rng(3).normal(size=planted.shape), world)
    assert 0.1 < noisy["off_form"] < 1.0
    assert noisy["items"] > 0.9                     # noise averages out over 60 users


def test_taking_the_off_form_part_out_restores_the_planted_logits_test_auc(world):
    planted = pr.planted_logits(world)
    test = world.columns(4000, 2)
    noisy = planted + np.random.default_rng(4).normal(0.0, 2.0, planted.shape)

    def auc(logits):
        return pr.exact_auc_logloss(test["label"],
                                    logits[test["user_id"] - 1, test["item_id"] - 1])[0]

    found = pr.measures(noisy, world, test)
    assert found["form_auc"] > auc(noisy) + 0.02
    assert pr.measures(planted, world, test)["form_auc"] == pytest.approx(auc(planted))


def test_noisier_weights_recover_less(world):
    rng = np.random.default_rng(1)
    noise = rng.normal(0.0, 1.0, world.weights.shape)
    found = [_recovery(world, (world.weights + s * noise) @ pr.attribute_scores(world).T)
             ["individual"] for s in (0.1, 0.5, 1.0)]
    assert found[0] > found[1] > found[2]


def test_model_logits_are_the_models_own_predictions_for_every_user_and_item(tmp_path):
    world = AttributeWeightingWorld(users=30, items=20, segments=2, seed=6)
    splits = world.splits(3000)
    run(TrainConfig(dataset="planted_udg", user_level="udg", embedding_dim=4,
                    hidden_units=(8,), udg_units=(4,), epochs=1, batch_size=256, seed=1),
        splits, world.feature_spec, tmp_path, verbose=0)
    model = load_trained(tmp_path)
    logits = pr.model_logits(model, world)
    assert logits.shape == (world.users, world.items)
    user, item = np.array([0, 7, 29, 12]), np.array([19, 0, 5, 12])
    features = {"item_id": item + 1, "user_id": user + 1, "segment": world.segment[user] + 1,
                **{f"attr_{a}": world.item_values[item, a] + 1 for a in range(4)}}
    probability = model({k: tf.constant(v, tf.int64) for k, v in features.items()}).numpy()
    np.testing.assert_allclose(logits[user, item], np.log(probability / (1 - probability))[:, 0],
                               atol=1e-4)


def test_the_table_tests_udgs_individual_recovery_against_each_mlp_of_its_world():
    def row(model, individual, seeds=(1, 2, 3)):
        measured = [{p: v for p in pr.PARTS} for v in individual]
        return pr._row("planted_udg", model, measured, seeds if len(individual) > 1 else [],
                       [0.84] * len(individual), [0.48] * len(individual), 100, "", "cmd")

    rows = [row("planted logit", [1.0]), row("MLP, dropout 0", [0.50, 0.52, 0.51]),
            row("MLP + UDG, dropout 0", [0.60, 0.62, 0.61])]
    lines = pr.recovery_table(rows).splitlines()
    planted, mlp, udg = (next(line for line in lines if f"| {name} |" in line)
                         for name in ("planted logit", "MLP, dropout 0", "MLP + UDG, dropout 0"))
    assert planted.endswith("| 1.000 | 1.000 | 1.000 | 1.000 | 1.000 | 1.0000 |  |")
    assert float(mlp.rsplit("|", 2)[1]) < 0.01          # UDG's 0.61 above the MLP's 0.51
    assert udg.endswith("|  |")


def test_pulling_users_to_their_segment_recovers_more_from_few_rows(monkeypatch):
    from tfrs_userlevel.experiments import planted_worlds

    monkeypatch.setitem(planted_worlds.UDG_WORLDS, "few_rows_each",
                        {"users": 200, "items": 40, "segments": 3, "individual": 0.5})
    world, _ = planted_worlds.udg_world("few_rows_each", 10000)   # about 40 rows per user
    found = {}
    for by_segment in (False, True):
        weights, item_bias, auc, _ = planted_worlds.structure_known_fit(
            "few_rows_each", 10000, by_segment)
        assert weights.shape == (200, 4) and item_bias.shape == (40,) and 0.5 < auc < 1
        found[by_segment] = pr.recovery(weights - weights.mean(0), world.weights,
                                        world.segment)
    assert found[True]["all"] > found[False]["all"] + 0.1
    assert found[True]["segment"] > 0.9


def test_the_protocol_measures_trained_runs_and_rewrites_from_them(tmp_path, monkeypatch):
    """A small world end to end: references and models measured, finished runs reused
    without training, a missing run named."""
    from tfrs_userlevel.experiments import planted_worlds
    from tfrs_userlevel.experiments.runner import MissingRunError

    monkeypatch.setitem(planted_worlds.UDG_WORLDS, "small", {"users": 40, "items": 30})
    small_world = planted_worlds.udg_world
    monkeypatch.setattr(planted_worlds, "udg_world",
                        lambda name, rows=None: small_world(name, 4000))
    monkeypatch.setattr(pr, "WORLDS", ("small",))
    monkeypatch.setattr(pr, "MODELS", {"small": ("MLP", "MLP + UDG")})
    base = {"epochs": 1, "embedding_dim": 4, "hidden_units": (8,)}
    rows = list(pr.planted_udg_recovery(tmp_path, [1, 2], "cmd", base=base))
    assert [r["model"] for r in rows] == [
        "planted logit", "structure-known fit", "structure-known fit, users pulled to their "
        "segment", "MLP", "MLP + UDG"]
    assert rows[0]["recovery_individual_mean"] == pytest.approx(1.0)
    json.dumps(rows)                                  # the table's JSON file takes them
    for r in rows[3:]:
        assert len(r["recovery_individual"]) == 2 and r["seeds"] == [1, 2]
        assert r["recovery_all_mean"] <= 1.0 and 0.0 < r["recovery_form_auc_mean"] < 1.0
    monkeypatch.setattr("tfrs_userlevel.training.run", None)
    again = list(pr.planted_udg_recovery(tmp_path, [1, 2], "cmd", train=False, base=base))
    assert [r["recovery_individual"] for r in again] == [r["recovery_individual"] for r in rows]
    with pytest.raises(MissingRunError, match=r"seed 3"):
        list(pr.planted_udg_recovery(tmp_path, [3], "cmd", train=False, base=base))
