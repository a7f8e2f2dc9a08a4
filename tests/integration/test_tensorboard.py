"""TensorBoard: a short GPRec + UDG run (ensemble strategy with learned weights, two seeds
through the command line) writes every loss term, AUC/LogLoss (train and validation), one
learning rate, the group-mask histograms, the similarity image, the ensemble's weights, the
UDG gate histograms and one HParams session per seed; a real TensorBoard server serves them."""


import json
import urllib.parse
import urllib.request

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import tfrs_userlevel.cli.train as train
from tests.helpers import TensorBoardServer
from tfrs_userlevel import datasets, tf
from tfrs_userlevel.training import TrainConfig, run

EPOCHS = 2


SEEDS = (1, 2)


@pytest.fixture(scope="module")
def seeds_run(ml100k, tmp_path_factory):
    """The run folder of `train --seeds 1 2` (one sub-folder per seed)."""
    model_dir = tmp_path_factory.mktemp("tensorboard")
    argv = ["--dataset", "movielens_100k", "--user-level", "gprec+udg", "--groups", "6",
            "--strategy", "ensemble", "--ensemble-weights", "learned",
            "--epochs", str(EPOCHS), "--batch-size", "8192", "--model-dir", str(model_dir),
            "--seeds", *map(str, SEEDS)]
    assert train.main(argv) == 0
    return model_dir


@pytest.fixture(scope="module")
def logs(seeds_run):
    out = {}
    for name in ("train", "validation", "user_level"):
        events = EventAccumulator(str(seeds_run / f"seed_{SEEDS[0]}" / "logs" / name),
                                  size_guidance={"tensors": 0})
        events.Reload()
        out[name] = {tag: [tf.make_ndarray(e.tensor_proto) for e in events.Tensors(tag)]
                     for tag in events.Tags()["tensors"]}
    return out


def _finite_per_epoch(values):
    assert len(values) == EPOCHS
    return all(np.all(np.isfinite(v)) for v in values)


@pytest.mark.parametrize("run_name", ["train", "validation"])
def test_every_loss_term_and_metric_per_epoch(logs, run_name):
    for term in ("loss", "main_loss", "gprec_backbone_loss", "gprec_group_loss",
                 "gprec_contrastive_loss", "gprec_orthogonal_loss", "auc", "logloss"):
        tag = f"epoch_{term}"
        assert tag in logs[run_name], (run_name, tag, sorted(logs[run_name]))
        assert _finite_per_epoch(logs[run_name][tag]), tag
    aucs = [float(v) for v in logs[run_name]["epoch_auc"]]
    assert all(0.5 < a < 1 for a in aucs)
    assert float(logs[run_name]["epoch_gprec_contrastive_loss"][0]) < 0  # −β·L_c (paper form)


def test_one_learning_rate_is_logged(logs):
    assert _finite_per_epoch(logs["train"]["epoch_learning_rate"])
    assert not [tag for tag in logs["train"] if tag.endswith("_lr")]
    assert float(logs["train"]["epoch_learning_rate"][0]) == pytest.approx(2e-3)


def test_group_mask_histograms_and_similarity_image(logs):
    user_level = logs["user_level"]
    for tag in ("gprec/mask_inside", "gprec/group_share", "gprec/groups_used",
                "gprec/group_similarity"):
        assert tag in user_level and len(user_level[tag]) == EPOCHS, tag
    # Histogram buckets: [k, 3] rows of (left, right, count); shares lie in [0, 1].
    share = user_level["gprec/group_share"][-1]
    assert share.shape[1] == 3 and share[:, 2].sum() == pytest.approx(6)
    assert share[:, 0].min() >= 0 and share[:, 1].max() <= 1
    assert 1 <= float(user_level["gprec/groups_used"][-1]) <= 6
    image = user_level["gprec/group_similarity"][-1]  # [width, height, png bytes]
    decoded = tf.image.decode_png(image[2]).numpy()
    assert decoded.shape == (12 * 4, 12 * 4, 3)  # [P+; P-] = 12 rows, 4 px per cell


def test_learned_ensemble_weights_per_epoch(logs):
    user_level = logs["user_level"]
    tags = [f"gprec/ensemble_weight_{h}" for h in ("backbone", "group", "individual")]
    for tag in tags:
        assert tag in user_level and len(user_level[tag]) == EPOCHS, tag
    for epoch in range(EPOCHS):
        weights = [float(user_level[tag][epoch]) for tag in tags]
        assert sum(weights) == pytest.approx(1.0, abs=1e-5)
        assert all(0 < w < 1 for w in weights)
    # Trained from the plain average: the weights have moved off 1/3.
    assert max(abs(float(user_level[t][-1]) - 1 / 3) for t in tags) > 1e-4


def test_udg_gate_histograms(logs):
    user_level = logs["user_level"]
    layers = [f"udg/gates_layer{i}" for i in range(3)]  # MLP 64-32-16: three gated inputs
    for tag in ("udg/gates", *layers):
        assert tag in user_level and len(user_level[tag]) == EPOCHS, tag
        buckets = user_level[tag][-1]
        assert buckets[:, 0].min() >= 0 and buckets[:, 1].max() <= 1, tag  # sigmoid gates
    total = user_level["udg/gates"][-1][:, 2].sum()
    assert total == pytest.approx(sum(user_level[t][-1][:, 2].sum() for t in layers))


def test_ungated_layers_have_no_gate_histogram(ml100k, tmp_path):
    config = TrainConfig(dataset="movielens_100k", user_level="udg", udg_layers=(1,),
                         epochs=1, batch_size=4096)
    run(config, ml100k, datasets.feature_spec("movielens_100k"), tmp_path, verbose=0)
    events = EventAccumulator(str(tmp_path / "logs" / "user_level"),
                              size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert "udg/gates_layer1" in tags
    assert not {"udg/gates_layer0", "udg/gates_layer2"} & tags
    count = {tag: tf.make_ndarray(events.Tensors(tag)[-1].tensor_proto)[:, 2].sum()
             for tag in ("udg/gates", "udg/gates_layer1")}
    assert count["udg/gates"] == pytest.approx(count["udg/gates_layer1"])  # no constant 1s


def _query(**fields):
    return urllib.parse.urlencode(fields)


SESSION_GROUPS = {"experimentName": "", "allowedStatuses": [
    "STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
    "colParams": [], "startIndex": 0, "sliceSize": 100}


def test_a_real_tensorboard_server_serves_the_run(seeds_run):
    runs = {seed: f"seed_{seed}/logs" for seed in SEEDS}
    metrics = {seed: json.loads((seeds_run / f"seed_{seed}" / "metrics.json").read_text())
               for seed in SEEDS}
    with TensorBoardServer(seeds_run) as server:
        groups = server.until(
            "/data/plugin/hparams/session_groups",
            lambda a: sum(len(g["sessions"]) for g in a.get("sessionGroups", [])) == 2,
            SESSION_GROUPS)
        # HParams: one session per seed, its configuration and final metrics.
        sessions = {s["name"]: (g["hparams"], s) for g in groups["sessionGroups"]
                    for s in g["sessions"]}
        assert set(sessions) == set(runs.values())
        for seed, run_name in runs.items():
            hparams, session = sessions[run_name]
            assert hparams["seed"] == seed and hparams["user_level"] == "gprec+udg"
            assert hparams["groups"] == 6
            values = {(m["name"].get("group", ""), m["name"]["tag"]): m["value"]
                      for m in session["metricValues"]}
            assert values[("", "final/test_auc")] == pytest.approx(
                metrics[seed]["test"]["auc"], rel=1e-6)
            assert values[("", "final/val_logloss")] == pytest.approx(
                metrics[seed]["val"]["logloss"], rel=1e-6)
        experiment = server.get("/data/plugin/hparams/experiment", {"experimentName": ""})
        names = {h["name"] for h in experiment["hparamInfos"]}
        assert {"seed", "groups", "strategy", "learning_rate"} <= names

        run = runs[SEEDS[0]]
        tags = server.until("/data/plugin/scalars/tags",
                            lambda a: f"{run}/validation" in a)
        for split in ("train", "validation"):
            assert {"epoch_gprec_group_loss", "epoch_auc", "epoch_loss"} <= set(
                tags[f"{run}/{split}"]), split
        assert "epoch_learning_rate" in tags[f"{run}/train"]
        auc = server.get("/data/plugin/scalars/scalars?"
                         + _query(run=f"{run}/validation", tag="epoch_auc"))
        assert [step for _, step, _ in auc] == list(range(EPOCHS))
        assert all(0.5 < value < 1 for _, _, value in auc)

        histograms = server.get("/data/plugin/histograms/tags")[f"{run}/user_level"]
        assert {"gprec/mask_inside", "gprec/group_share", "udg/gates"} <= set(histograms)
        masks = server.get("/data/plugin/histograms/histograms?"
                           + _query(run=f"{run}/user_level", tag="gprec/mask_inside"))
        assert len(masks) == EPOCHS

        images = server.get("/data/plugin/images/tags")[f"{run}/user_level"]
        assert "gprec/group_similarity" in images
        listed = server.get("/data/plugin/images/images?"
                            + _query(run=f"{run}/user_level", tag="gprec/group_similarity"))
        assert len(listed) == EPOCHS
        png = server.get(f"/data/plugin/images/individualImage?{listed[-1]['query']}",
                         raw=True)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert server.process.returncode is not None  # stopped
