"""Serving export: TF Serving layout, both signatures in a process with TensorFlow only,
warmup records, no training-only parts, and bad requests answered with finite values."""


import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tfrs_userlevel.cli.export as export_cli
from tests.helpers import not_built_warnings
from tfrs_userlevel import serving as export
from tfrs_userlevel import tf
from tfrs_userlevel.training import TrainConfig, load_trained, run

ROWS = 512


MODELS = {
    "mlp": {},
    "gprec_input": {"user_level": "gprec", "strategy": "input", "groups": 6},
    # train.py's default group classifier is shared; dp exports the paper's per-group one.
    "gprec_dp": {"user_level": "gprec", "strategy": "dp", "groups": 6,
                 "classifier_shared": False},
    "gprec_ensemble": {"user_level": "gprec", "strategy": "ensemble", "groups": 6},
    "star": {"baseline": "star"},
    "udg": {"backbone": "ipnn", "user_level": "udg", "meta": True, "meta_steps": 20},
    # Click histories need the time split; DIN and DIEN read them unpooled.
    "din_udg": {"backbone": "din", "user_level": "udg", "split": "time", "history_length": 5},
    "dien": {"backbone": "dien", "split": "time", "history_length": 5},
}


FRESH_PROCESS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tensorflow as tf
    version, columns_path, out_path = sys.argv[1:]
    loaded = tf.saved_model.load(version)
    columns = dict(np.load(columns_path))
    serve = loaded.signatures["serving_default"]
    features = {k: tf.constant(v) for k, v in columns.items()}
    direct = serve(**features)["probability"].numpy()
    examples = []
    for i in range(len(next(iter(columns.values())))):
        feature = {}
        for name, column in columns.items():
            value = column[i]
            if column.ndim == 2:  # a behavior list: its real values, any length
                feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(
                    value=[int(v) for v in value if v != -1]))
            elif column.dtype.kind in "US":
                feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(
                    value=[str(value).encode()]))
            else:
                feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(
                    value=[int(value)]))
        examples.append(tf.train.Example(features=tf.train.Features(feature=feature))
                        .SerializeToString())
    parsed = loaded.signatures["predict_examples"](examples=tf.constant(examples))
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("tfrs_userlevel", "tf_keras",
                                                                  "tensorflow_recommenders"))
    np.savez(out_path, direct=direct, examples=parsed["probability"].numpy())
    print(json.dumps({"leaked": leaked}))
""")


@pytest.fixture(scope="module")
def exported(ml100k, tmp_path_factory):
    """Each model trained for a few steps, exported once: name -> (run dir, version dir)."""
    root = tmp_path_factory.mktemp("export")
    from tfrs_userlevel import datasets
    out = {}
    for name, options in MODELS.items():
        config = TrainConfig(dataset="movielens_100k", epochs=1, max_steps=8,
                             batch_size=1024, **options)
        splits = ml100k if not config.history_length else datasets.load_splits(
            "movielens_100k", "time", history_length=config.history_length)
        spec = datasets.feature_spec("movielens_100k", history_length=config.history_length)
        run_dir = root / "runs" / name
        run(config, splits, spec, run_dir, verbose=0)
        with not_built_warnings() as warnings:
            version = export.export_run(run_dir, root / "serving" / name)
        out[name] = (run_dir, version, splits, warnings)
    return out


@pytest.mark.parametrize("name", sorted(MODELS))
def test_export_logs_no_layer_left_unbuilt(exported, name):
    assert exported[name][3] == []


def _test_columns(splits, model, path):
    columns = {}
    for name in model.feature_spec.names:
        column = splits["test"][name][:ROWS]
        columns[name] = column.astype(str) if column.dtype.kind in "OUS" else column
    np.savez(path, **columns)
    return columns


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_tensorflow_only_process_serves_what_keras_predicts(exported, ml100k, tmp_path,
                                                                name):
    run_dir, version, splits, _ = exported[name]
    assert version.name == "1" and (version / "saved_model.pb").exists()
    model = load_trained(run_dir)
    columns = _test_columns(splits, model, tmp_path / "columns.npz")
    expected = model({k: tf.constant(v) for k, v in columns.items()}, training=False).numpy()
    script = tmp_path / "serve.py"
    script.write_text(FRESH_PROCESS)
    # A serving process: nothing of this package, and not the Keras 2 switch it sets.
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    result = subprocess.run([sys.executable, str(script), str(version),
                             str(tmp_path / "columns.npz"), str(tmp_path / "out.npz")],
                            capture_output=True, text=True, timeout=300, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["leaked"] == []
    served = np.load(tmp_path / "out.npz")
    assert served["direct"].shape == (ROWS, 1)
    np.testing.assert_allclose(served["direct"], expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(served["examples"], expected, rtol=0, atol=1e-5)


def test_saved_model_cli_lists_both_signatures_with_every_feature(exported):
    _, version, _, _ = exported["gprec_dp"]
    cli = subprocess.run(["saved_model_cli", "show", "--dir", str(version), "--all"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr[-2000:]
    text = cli.stdout
    assert "signature_def['serving_default']" in text
    assert "signature_def['predict_examples']" in text
    for feature in ("user_id", "item_id", "gender", "genres", "zip", "age"):
        assert f"inputs['{feature}']" in text
    assert "outputs['probability']" in text and "shape: (-1, 1)" in text


def test_warmup_records_are_prediction_logs_that_match_the_signature(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    _, version, _, _ = exported["gprec_ensemble"]
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    records = list(tf.data.TFRecordDataset(
        str(version / "assets.extra" / "tf_serving_warmup_requests")).as_numpy_iterator())
    assert len(records) >= 2
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record)
        request = log.predict_log.request
        assert request.model_spec.signature_name == "serving_default"
        assert set(request.inputs) == set(inputs)
        features = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        for k, spec in inputs.items():
            assert features[k].dtype == spec.dtype, k
        probability = signature(**features)["probability"].numpy()
        assert np.all(np.isfinite(probability)) and probability.shape[1] == 1


def test_the_serving_graph_has_no_random_ops(exported):
    """No Gumbel noise and no dropout: nothing random anywhere in the serving functions."""
    for name in ("gprec_input", "gprec_dp", "gprec_ensemble", "udg", "din_udg", "dien"):
        _, version, _, _ = exported[name]
        loaded = tf.saved_model.load(str(version))
        for signature in ("serving_default", "predict_examples"):
            graph = loaded.signatures[signature].graph.as_graph_def()
            ops = {node.op for node in graph.node}
            for function in graph.library.function:
                ops |= {node.op for node in function.node_def}
            assert not {op for op in ops if "Random" in op}, (name, signature)
            outputs = loaded.signatures[signature].structured_outputs
            assert set(outputs) == {"probability"}


def test_unseen_users_are_served_with_the_meta_embedding(exported, ml100k):
    """UDG with the meta generator: a user id outside the vocabulary gets the generated UDG
    embedding, in the export exactly as in Keras, and it differs from the OOV row's."""
    run_dir, version, _, _ = exported["udg"]
    model = load_trained(run_dir)
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    raw = {k: tf.constant(v[:16]) for k, v in ml100k["test"].items()
           if k in model.feature_spec.names}
    raw["user_id"] = tf.constant(np.arange(16, dtype=np.int64) + 10**12)
    expected = model(raw).numpy()
    np.testing.assert_allclose(serve(**raw)["probability"].numpy(), expected, atol=1e-5)
    ids = model.lookup(raw)
    inputs = {"user_index": model.user_index(ids),
              "profile": tf.gather(ids["ids"], model.profile_columns, axis=1)}
    generated = model.gating.user_embedding(inputs).numpy()
    assert not np.allclose(generated, model.gating.user_table.embeddings.numpy()[0])


def test_bad_requests_get_finite_probabilities(exported):
    _, version, _, _ = exported["gprec_dp"]
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    inputs = serve.structured_input_signature[1]

    def batch(n, string, integer):
        return {k: tf.constant([string] * n if s.dtype == tf.string else [integer] * n,
                               dtype=s.dtype, shape=[n]) for k, s in inputs.items()}

    for request in (batch(3, "", 0), batch(3, "never-seen", 10**12), batch(2, "M", -5)):
        p = serve(**request)["probability"].numpy()
        assert p.shape == (len(next(iter(request.values()))), 1)
        assert np.all(np.isfinite(p)) and np.all((p > 0) & (p < 1))
    assert serve(**batch(0, "", 0))["probability"].shape == (0, 1)
    examples = tf.saved_model.load(str(version)).signatures["predict_examples"]
    empty = tf.train.Example().SerializeToString()   # every feature missing
    p = examples(examples=tf.constant([empty, empty]))["probability"].numpy()
    assert p.shape == (2, 1) and np.all(np.isfinite(p))


def test_versions_are_numbered_and_never_overwritten(exported, tmp_path, capsys):
    run_dir, _, _, _ = exported["mlp"]
    base = tmp_path / "base"
    assert export_cli.main(["--model-dir", str(run_dir), "--export-dir", str(base)]) == 0
    assert export_cli.main(["--model-dir", str(run_dir), "--export-dir", str(base)]) == 0
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]
    before = (base / "1" / "saved_model.pb").read_bytes()
    assert export_cli.main(["--model-dir", str(run_dir), "--export-dir", str(base),
                            "--version", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (base / "1" / "saved_model.pb").read_bytes() == before
    assert sorted(p.name for p in base.iterdir()) == ["1", "2"]   # no staging left behind
    assert export_cli.main(["--model-dir", str(tmp_path / "nothing"),
                            "--export-dir", str(base)]) == 2
    assert "does not hold a finished run" in capsys.readouterr().err


def test_random_requests_never_crash_or_give_nan(exported):
    """Property test: any strings, any int64s, any batch size -> finite probabilities."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    _, version, _, _ = exported["gprec_ensemble"]
    serve = tf.saved_model.load(str(version)).signatures["serving_default"]
    inputs = serve.structured_input_signature[1]
    text = st.text(max_size=40)
    integer = st.integers(min_value=-(2**63), max_value=2**63 - 1)

    @st.composite
    def requests(draw):
        n = draw(st.integers(min_value=0, max_value=9))
        return {k: draw(st.lists(text if s.dtype == tf.string else integer,
                                 min_size=n, max_size=n)) for k, s in inputs.items()}, n

    @settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(requests())
    def check(request):
        features, n = request
        tensors = {k: tf.constant(v, dtype=inputs[k].dtype, shape=[n])
                   for k, v in features.items()}
        p = serve(**tensors)["probability"].numpy()
        assert p.shape == (n, 1)
        assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))

    check()


def test_behavior_lists_of_any_length_keep_the_most_recent_values(ml100k, tmp_path):
    """A spec with a behavior field (a clicked-item history): the export takes lists of any
    length, padded with -1, in both signatures, and scores what the model keeps."""
    from tfrs_userlevel import FeatureSpec, RankingModel, data, datasets, keras

    fields = datasets.feature_spec("movielens_100k") + [
        {"name": "history", "dtype": "int64", "role": "behavior", "multivalued": True,
         "max_length": 4, "shared_vocabulary_with": "item_id"}]
    spec = FeatureSpec.from_config(fields)
    rng = np.random.default_rng(0)
    items = ml100k["train"]["item_id"]

    def with_history(columns, length=6):
        n = len(columns["label"])
        history = rng.choice(items, size=(n, length))
        history[rng.random((n, length)) < 0.3] = -1
        return {**columns, "history": history}

    train = with_history(ml100k["train"])
    model = RankingModel(spec, spec.build_vocabularies(train), positive_rate=0.55)
    model.compile(keras.optimizers.Adam(3e-3))
    ids = data.lookup_columns(model.lookup, train)
    model.fit(data.training_dataset(ids, train["label"], 1024, seed=0), epochs=1,
              steps_per_epoch=10, verbose=0)
    version = export.export_model(model, tmp_path / "serving")
    loaded = tf.saved_model.load(str(version))
    serve = loaded.signatures["serving_default"]
    assert serve.structured_input_signature[1]["history"].shape.as_list() == [None, None]

    raw = {k: tf.constant(v[:8]) for k, v in ml100k["test"].items() if k in spec.names}
    long_history = rng.choice(items, size=(8, 500))
    served = serve(**raw, history=tf.constant(long_history))["probability"].numpy()
    recent = model({**raw, "history": tf.constant(long_history[:, -4:])}).numpy()
    np.testing.assert_allclose(served, recent, atol=1e-5)
    assert np.all(np.isfinite(served))
    # Through tf.Example: a 500-long list, and a missing one (no history at all).
    examples = []
    for i in range(8):
        feature = {k: (tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[str(v.numpy()[i].decode() if v.dtype == tf.string else v.numpy()[i])
                   .encode()]))
            if v.dtype == tf.string else tf.train.Feature(
                int64_list=tf.train.Int64List(value=[int(v.numpy()[i])])))
            for k, v in raw.items()}
        if i < 4:
            feature["history"] = tf.train.Feature(
                int64_list=tf.train.Int64List(value=long_history[i].tolist()))
        examples.append(tf.train.Example(features=tf.train.Features(feature=feature))
                        .SerializeToString())
    parsed = loaded.signatures["predict_examples"](examples=tf.constant(examples))
    parsed = parsed["probability"].numpy()
    np.testing.assert_allclose(parsed[:4], recent[:4], atol=1e-5)
    empty = model({**raw, "history": tf.fill([8, 4], tf.constant(-1, tf.int64))}).numpy()
    np.testing.assert_allclose(parsed[4:], empty[4:], atol=1e-5)
