"""tf.distribute strategies for `train.py --distribute` (we do not write our own).

* `default`: no strategy (one device).
* `mirrored`: `MirroredStrategy` over this machine's devices.
* `multi_worker`: `MultiWorkerMirroredStrategy`; the cluster and this task's
  role come from the standard `TF_CONFIG` environment variable.
* `parameter_server`: `ParameterServerStrategy` driven from the coordinator
  (`TF_CONFIG` task type "chief"); the workers and parameter servers run
  `python -m tfrs_userlevel.distribute` (a `tf.distribute.Server`). Every
  variable, the embedding table included, is sharded across the parameter
  servers by a `MinSizePartitioner`.

`RankingModel.compute_loss` scales the main loss by the global batch and each
auxiliary term by the number of replicas, so the gradient all-reduce gives
the single-device gradient (tests/integration/test_distribute.py).
"""

from __future__ import annotations

import json
import os
import sys

from tfrs_userlevel.backend import tf

STRATEGIES = ("default", "mirrored", "multi_worker", "parameter_server")


def cluster_spec() -> dict:
    """The parsed `TF_CONFIG` ({} when unset), with a clear error when it is malformed."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return {}
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON: {error}") from error
    if not isinstance(config, dict) or "cluster" not in config or "task" not in config:
        raise ValueError('TF_CONFIG must look like {"cluster": {...}, "task": {"type": ..., '
                         f'"index": ...}}, got {raw[:200]!r}')
    return config


def make_strategy(name: str, min_shard_bytes: int = 64 << 10) -> tf.distribute.Strategy:
    """The strategy `name` (see the module docstring)."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown --distribute {name!r}; valid choices are {list(STRATEGIES)}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    config = cluster_spec()
    if not config:
        raise ValueError(f"--distribute {name} needs TF_CONFIG (the cluster and this task)")
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    cluster = config["cluster"]
    if not cluster.get("ps") or not cluster.get("worker"):
        raise ValueError("--distribute parameter_server needs 'ps' and 'worker' tasks in "
                         f"TF_CONFIG's cluster, got {sorted(cluster)}")
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    partitioner = tf.distribute.experimental.partitioners.MinSizePartitioner(
        min_shard_bytes=min_shard_bytes, max_shards=len(cluster["ps"]))
    return tf.distribute.experimental.ParameterServerStrategy(
        resolver, variable_partitioner=partitioner)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this task writes the outputs (the one chief of a multi-worker cluster)."""
    config = cluster_spec()
    if not config or isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy):
        return True
    task = config["task"]
    workers = config["cluster"]
    if "chief" in workers:
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0


def serve_forever() -> None:
    """Runs this `TF_CONFIG` task (a worker or a parameter server) until killed."""
    config = cluster_spec()
    if not config:
        raise SystemExit("python -m tfrs_userlevel.distribute needs TF_CONFIG")
    task = config["task"]
    if task["type"] not in ("worker", "ps"):
        raise SystemExit(f"this entry point runs workers and parameter servers, not "
                         f"{task['type']!r}; the coordinator runs train.py")
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    server = tf.distribute.Server(resolver.cluster_spec(), job_name=resolver.task_type,
                                  task_index=resolver.task_id, protocol="grpc", start=True)
    print(f"{task['type']} {task['index']} serving at {server.target}", flush=True)
    server.join()


if __name__ == "__main__":
    sys.exit(serve_forever())
