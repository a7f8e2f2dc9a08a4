"""Loss scaling under tf.distribute: the replicas' losses and gradients add up to the
single-device ones, for the main loss and every auxiliary term."""


import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


# Runs in its own process: the 2 logical CPU devices must exist before TensorFlow starts.
MIRRORED = textwrap.dedent("""
    import json, sys
    import numpy as np
    import tfrs_userlevel
    from tfrs_userlevel import tf
    # Same weights and same reduction order in every run: the float32 gap between one
    # device and two replicas is then a fixed number, not a draw (it was 2e-6..2e-5).
    tf.config.experimental.enable_op_determinism()
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfrs_userlevel import datasets
    from tfrs_userlevel import data
    from tfrs_userlevel.features import FeatureSpec
    from tfrs_userlevel.training import TrainConfig, build_model

    options = json.loads(sys.argv[1])
    config = TrainConfig(dataset="movielens_100k", **options)
    splits = datasets.load_splits("movielens_100k", config.split,
                                  history_length=config.history_length)
    spec = FeatureSpec.from_config(datasets.feature_spec("movielens_100k",
                                                         config.history_length))
    train = splits["train"]
    vocabularies = spec.build_vocabularies(train)
    positive_rate = float(np.mean(train["label"]))

    def make():
        model = build_model(config, spec, vocabularies, positive_rate)
        model(model.example_features())
        return model

    tf.keras.utils.set_random_seed(0)
    single = make()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = make()
    model.set_weights(single.get_weights())
    rows = 512
    ids = data.lookup_columns(model.lookup, {k: v[:rows] for k, v in train.items()})
    labels = train["label"][:rows, None].astype(np.float32)
    batch = ({k: tf.constant(v) for k, v in ids.items()}, tf.constant(labels))

    def gradients_of(network):
        def loss_and_gradients(inputs):
            with tf.GradientTape() as tape:
                loss = network._total_loss(inputs, training=False)
            gradients = tape.gradient(loss, network.trainable_variables)
            return loss, [tf.convert_to_tensor(g) for g in gradients]
        return loss_and_gradients

    # One device, no strategy, the whole batch.
    single_loss, single_gradients = gradients_of(single)(batch)
    # Two replicas, half a batch each; sum over replicas = what the all-reduce applies.
    dataset = tf.data.Dataset.from_tensors(batch).unbatch().batch(rows)
    distributed = next(iter(strategy.experimental_distribute_dataset(dataset)))
    losses, gradients = strategy.run(gradients_of(model), args=(distributed,))
    total = strategy.reduce("SUM", losses, axis=None)
    summed = [strategy.reduce("SUM", g, axis=None) for g in gradients]
    local = strategy.experimental_local_results(losses)
    print(json.dumps({
        "single": float(single_loss), "mirrored": float(total),
        "replica_losses": [float(x) for x in local],
        "terms": list(model.loss_names),
        # Largest difference relative to that gradient's largest entry (float32 sums),
        # floored at 1e-2: some gradients are sums of cancelling per-example terms (the
        # ensemble's mixing weights start at the plain average, gradient entries ~6e-4),
        # and their rounding follows the terms, not the small sum. A replica-scaling error
        # is a gap of the gradient's own size, far above the 1e-5 asserted below.
        "gradient_gap": max(float(tf.reduce_max(tf.abs(a - b))
                                  / tf.maximum(tf.reduce_max(tf.abs(a)), 1e-2))
                            for a, b in zip(single_gradients, summed)),
    }))
""")


def _mirrored(options, tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, str(script), json.dumps(options)],
                            capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.usefixtures("data_dir")  # runs the command on the real data
def test_mirrored_loss_equals_single_device_loss_for_every_term(tmp_path):
    """GPRec+UDG (group, contrastive, orthogonal and backbone terms, embedding L2) and DIEN
    (its auxiliary loss) under MirroredStrategy on 2 logical CPUs: the summed replica losses
    and gradients equal the single-device ones on the same batch."""
    for options in ({"user_level": "gprec+udg", "groups": 6, "embedding_l2": 1e-3},
                    {"backbone": "dien", "split": "time", "history_length": 5}):
        out = _mirrored(options, tmp_path)
        assert len(out["terms"]) > 1, out           # auxiliary terms are in play
        assert abs(out["mirrored"] - out["single"]) < 1e-5, out
        assert out["gradient_gap"] < 1e-5, out
        # Each replica holds about half: the scaling is not a no-op.
        assert all(abs(x - out["single"] / 2) < 0.5 * out["single"]
                   for x in out["replica_losses"]), out


def _free_ports(n):
    """n ports that are free now, drawn below the kernel's ephemeral range.

    TensorFlow's servers bind the ports named in TF_CONFIG themselves, so a port must be
    released before a worker binds it. A port from port 0 (the ephemeral range) can be
    handed to any other socket the machine opens in that gap; a port below the range is
    only taken by a program that names it, so the gap is not a race with the OS.
    """
    import random
    import socket
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    population = range(20000, low) if low > 20400 else range(20000, 30000)
    candidates = random.Random(os.getpid()).sample(population, 200)
    ports = []
    for port in candidates:
        with socket.socket() as probe:
            try:
                probe.bind(("localhost", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == n:
            return ports
    raise RuntimeError(f"no {n} free ports below {low}")


def _start(command, tf_config, log):
    env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO,
                            start_new_session=True)


def _stop(processes):
    import signal
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    for process in processes:
        process.wait(timeout=30)


def _epoch_losses(text):
    import re
    return [float(m) for m in re.findall(r" - loss: ([0-9.]+) - main_loss", text)]


@pytest.mark.usefixtures("data_dir")  # runs the command on the real data
def test_two_workers_train_gprec_with_multi_worker_mirrored(tmp_path):
    """2 worker processes on loopback (MultiWorkerMirroredStrategy, TF_CONFIG) train
    GPRec(MLP) for 2 short epochs: both finish, agree, and the loss goes down; the chief
    writes the outputs."""
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    command = [sys.executable, "train.py", "--dataset", "movielens_100k", "--user-level",
               "gprec", "--groups", "6", "--distribute", "multi_worker", "--batch-size", "4096",
               "--max-steps", "30", "--steps-per-execution", "5", "--lr-schedule", "constant",
               "--model-dir", str(tmp_path / "run")]
    logs = [open(tmp_path / f"worker{i}.log", "w") for i in range(2)]
    workers = [_start(command, {"cluster": cluster, "task": {"type": "worker", "index": i}},
                      logs[i]) for i in range(2)]
    try:
        codes = [w.wait(timeout=420) for w in workers]
    finally:
        _stop(workers)
        for log in logs:
            log.close()
    texts = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], texts[0][-3000:] + texts[1][-3000:]
    losses = [_epoch_losses(t) for t in texts]
    assert len(losses[0]) == 2 and losses[0] == losses[1], losses  # one model, both workers
    assert losses[0][1] < losses[0][0], losses
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["config"]["distribute"] == "multi_worker"
    assert 0.5 < metrics["test"]["auc"] < 1


@pytest.mark.usefixtures("data_dir")  # runs the command on the real data
def test_parameter_servers_shard_the_embeddings_and_train(tmp_path):
    """1 coordinator, 2 workers and 2 parameter servers on loopback: the embedding table is
    sharded over both parameter servers, training runs through model.fit, the loss goes
    down, and the saved weights load into an ordinary (unsharded) model."""
    ports = _free_ports(5)
    cluster = {"worker": [f"localhost:{p}" for p in ports[:2]],
               "ps": [f"localhost:{p}" for p in ports[2:4]],
               "chief": [f"localhost:{ports[4]}"]}
    servers, logs = [], []
    try:
        for kind, index in (("worker", 0), ("worker", 1), ("ps", 0), ("ps", 1)):
            logs.append(open(tmp_path / f"{kind}{index}.log", "w"))
            servers.append(_start([sys.executable, "-m", "tfrs_userlevel.distribute"],
                                  {"cluster": cluster, "task": {"type": kind, "index": index}},
                                  logs[-1]))
        logs.append(open(tmp_path / "chief.log", "w"))
        chief = _start([sys.executable, "train.py", "--dataset", "movielens_100k",
                        "--distribute", "parameter_server", "--batch-size", "4096",
                        "--max-steps", "40", "--steps-per-execution", "5",
                        "--model-dir", str(tmp_path / "run")],
                       {"cluster": cluster, "task": {"type": "chief", "index": 0}}, logs[-1])
        code = chief.wait(timeout=420)
    finally:
        _stop(servers + [chief] if "chief" in locals() else servers)
        for log in logs:
            log.close()
    assert code == 0, (tmp_path / "chief.log").read_text()[-4000:]
    assert all(s.poll() is not None for s in servers)  # cleaned up
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    shards = metrics["parameter_servers"]["sharded_variables"]["embedding_table"]
    assert metrics["parameter_servers"]["count"] == 2 and len(shards) == 2, metrics
    assert metrics["train_loss"][-1] < metrics["train_loss"][0]
    assert 0.5 < metrics["test"]["auc"] < 1
    from tfrs_userlevel import data, datasets
    from tfrs_userlevel.metrics import evaluate_ids
    from tfrs_userlevel.training import load_trained
    model = load_trained(tmp_path / "run")
    assert model.embedding.table.shape[0] == sum(s[0] for s in shards)
    test = datasets.load_splits("movielens_100k")["test"]
    again = evaluate_ids(model, data.lookup_columns(model.lookup, test), test["label"])
    assert abs(again["auc"] - metrics["test"]["auc"]) < 1e-5  # the trained weights
