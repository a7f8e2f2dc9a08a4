"""User-modeling baselines: each block's math against a direct computation, the user and
domain context the ranking model passes, and every baseline through the shared
fit/save/reload check."""


import numpy as np
import pytest

from tests.helpers import check_model
from tfrs_userlevel import FeatureSpec, RankingModel, baselines, datasets, keras, tf
from tfrs_userlevel.training import ConfigError, TrainConfig


@pytest.fixture(scope="module")
def spec():
    return FeatureSpec.from_config(datasets.feature_spec("movielens_100k"))


def test_the_ranking_model_passes_the_domain_index_of_the_raw_value(ml100k, spec):
    train = ml100k["train"]
    vocabularies = spec.build_vocabularies(train)
    model = RankingModel(spec, vocabularies, backbone={"name": "mmoe"}, positive_rate=0.5)
    assert model.backbone.num_domains == len(vocabularies["gender"])
    raw = {k: tf.constant(v[:64]) for k, v in train.items() if k in spec.names}
    ids = model.lookup(raw)
    domain = (ids["ids"][:, model._domain_column] - model._domain_offset).numpy()
    expected = [vocabularies["gender"].index(g.decode() if isinstance(g, bytes) else g) + 1
                for g in train["gender"][:64]]
    np.testing.assert_array_equal(domain, expected)
    # An unseen gender is the OOV value 0, scored as the mean of the known towers.
    unseen = dict(raw, gender=tf.constant(["?"] * 64))
    p = model(unseen).numpy()
    assert np.all(np.isfinite(p))
    logits = []
    for value in vocabularies["gender"]:
        probs = model(dict(raw, gender=tf.constant([value] * 64))).numpy()
        logits.append(np.log(probs / (1 - probs)))
    np.testing.assert_allclose(np.log(p / (1 - p)), np.mean(logits, axis=0), atol=1e-4)


def test_bad_domain_field_and_options_are_refused(ml100k, spec):
    vocabularies = spec.build_vocabularies(ml100k["train"])
    with pytest.raises(ValueError, match="'item_id'.*user field"):
        RankingModel(spec, vocabularies, backbone={"name": "star", "domain_field": "item_id"})
    with pytest.raises(ValueError, match="'sex' is not a feature"):
        RankingModel(spec, vocabularies, backbone={"name": "ple", "domain_field": "sex"})
    with pytest.raises(ValueError, match="unknown baseline 'moe'"):
        baselines.get("moe")
    with pytest.raises(ValueError, match="no option.*'experts'.*num_experts"):
        baselines.get("mmoe", experts=3)
    with pytest.raises(ConfigError, match="complete user-modeling model"):
        TrainConfig(baseline="apg", user_level="gprec")
    with pytest.raises(ConfigError, match="replaces the backbone"):
        TrainConfig(baseline="apg", backbone="dcn")
    with pytest.raises(ConfigError, match="'apg' has no option.*valid: .*condition"):
        TrainConfig(baseline="apg", baseline_options={"num_experts": 2})
    with pytest.raises(ConfigError, match="need a baseline"):
        TrainConfig(baseline_options={"rank": 2})


@pytest.mark.parametrize("name, options", [(name, {}) for name in sorted(baselines.BASELINES)]
                         + [("dgpm", {"group_parameters": "kernel"})])
def test_every_baseline_fits_saves_and_reloads(ml100k, spec, tmp_path, name, options):
    train = ml100k["train"]
    keras.utils.set_random_seed(0)
    p = float(train["label"].mean())
    model = RankingModel(spec, spec.build_vocabularies(train),
                         backbone={"name": name, **options}, positive_rate=p)
    check_model(model, ml100k, tmp_path)
    config = model.backbone.get_config()
    assert type(model.backbone).from_config(config).get_config() == config


@pytest.mark.slow  # a short training through the command line
@pytest.mark.usefixtures("data_dir")  # runs the command on the real data
def test_a_baseline_and_its_options_from_the_command_line(tmp_path):
    import json

    import tfrs_userlevel.cli.train as train

    argv = ["--dataset", "movielens_100k", "--epochs", "1", "--max-steps", "10",
            "--batch-size", "1024", "--baseline", "pepnet", "--baseline-options",
            '{"epnet": false}', "--model-dir", str(tmp_path / "run")]
    assert train.main(argv) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["baseline"] == "pepnet"
    assert metrics["config"]["baseline_options"] == {"epnet": False}
