"""One training run: config -> model -> fit with early stopping -> metrics.json.

`TrainConfig` is the validated experiment configuration (unknown keys are
errors); `run(config, splits, feature_spec, model_dir)` trains on in-memory
columns and writes, under `model_dir`:

* `metrics.json`: val/test AUC, LogLoss, RMSE, RIG of the best epoch, epochs,
  best_epoch, train_examples_per_second, and the resolved config;
* `checkpoint/`: the best weights (by validation AUC);
* `logs/`: TensorBoard events: every loss term, AUC and LogLoss (train and
  validation), the learning rate, for GPRec the group-mask histograms and
  the group-similarity image (`monitoring.UserLevelMonitor`), and the run as
  a session of the HParams dashboard (`hparams.write_session`);
* `config.json`: the config, written before training starts;
* `model.json`: the model's Keras config (vocabularies included), so that
  `load_trained(model_dir)` rebuilds it without the training data.

The test split is evaluated once, after training, with the best weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfrs_userlevel import data as data_lib
from tfrs_userlevel import hparams, streaming
from tfrs_userlevel.backbones import BACKBONES
from tfrs_userlevel.backbones import options as backbone_options
from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.baselines import BASELINES
from tfrs_userlevel.baselines import options as baseline_option_names
from tfrs_userlevel.config.errors import ConfigError
from tfrs_userlevel.distribute import STRATEGIES as DISTRIBUTE_STRATEGIES
from tfrs_userlevel.distribute import cluster_spec, is_chief, make_strategy
from tfrs_userlevel.features import FeatureSpec, field_rows, fused_vocabulary_size
from tfrs_userlevel.gprec import ABLATIONS, STRATEGIES, GPRec
from tfrs_userlevel.gprec.groups import REDUCTIONS
from tfrs_userlevel.gprec.layer import BASES, CONTRASTS
from tfrs_userlevel.gprec.strategies import ENSEMBLE_WEIGHTS
from tfrs_userlevel.metrics import METRIC_NAMES, evaluate_ids
from tfrs_userlevel.models import RankingModel
from tfrs_userlevel.monitoring import UserLevelMonitor
from tfrs_userlevel.resilience import (
    NonFiniteGuard,
    TrainingState,
    backed_up_epochs,
    create_random_generators,
)
from tfrs_userlevel.udg import UserDependentGating
from tfrs_userlevel.writer_lock import WriterLock

USER_LEVELS = ("none", "gprec", "udg", "gprec+udg")
# (feature spec, vocabularies, positive rate of the training rows) -> an unbuilt model.
ModelBuilder = Callable[[FeatureSpec, Mapping[str, list], float], RankingModel]
LR_SCHEDULES = ("constant", "step", "plateau")
SCHEDULE_MONITORS = ("auc", "backbone_auc")


@dataclasses.dataclass
class TrainConfig:
    """Every option of a training run, with its defaults."""

    dataset: str = "movielens_1m"
    split: str = "random"
    backbone: str = "mlp"
    # Backbone-specific constructor options, e.g. {"cross_layers": 4} (see backbones.options).
    backbone_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    user_level: str = "none"
    # A user-modeling baseline (MMoE, PLE, STAR, APG, PEPNet, DGPM) in place of the backbone.
    baseline: str | None = None
    baseline_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 4096
    learning_rate: float = 2e-3
    lr_schedule: str = "plateau"
    lr_step_epochs: int = 8
    lr_gamma: float = 0.8
    lr_plateau_factor: float = 0.1
    lr_plateau_patience: int = 1
    embedding_dim: int = 16
    embedding_l2: float = 3e-4
    hidden_units: tuple[int, ...] = (64, 32, 16)
    dropout: float = 0.2
    batch_norm: bool = False
    patience: int = 4
    # The validation metric that reduce-on-plateau and early stopping follow: "auc" (the
    # model's prediction) or "backbone_auc" (the backbone's own logit, with a user-level
    # layer). The best epoch is always chosen by the prediction's validation AUC. None:
    # "backbone_auc" for a GPRec ensemble that does not train its backbone (train.py's GPRec
    # default), "auc" otherwise.
    schedule_monitor: str | None = None
    seed: int = 2024
    max_steps: int | None = None
    steps_per_execution: int = 25
    eval_batch_size: int = 16384
    deterministic: bool = False  # TF's op determinism: the same seed gives the same metrics
    # tf.distribute strategy (tfrs_userlevel.distribute); the cluster comes from TF_CONFIG.
    distribute: str = "default"
    # Click histories (behavior field history_<item>, datasets.behavior): 0 = none.
    history_length: int = 0
    # UDG (--user-level udg or gprec+udg), docs/udg.md.
    udg_dim: int | None = None  # width of E^UDG; None: embedding_dim
    udg_units: tuple[int, ...] = (64, 32)  # hidden widths of each gating network
    gate_scale: float = 1.0  # gate = gate_scale · sigmoid(.)
    udg_l2: float = 0.0  # L2 on the UDG user table (like embedding_l2; 0 in the paper)
    udg_stop_item_gradient: bool = False  # gates do not train the shared item embeddings
    udg_layers: tuple[int, ...] | None = None  # MLP layers with a gate (None: all, the paper)
    meta: bool = False  # add the meta-embedding generator for unseen users
    meta_steps: int = 300  # Algorithm 1 steps after base training (with meta)
    # GPRec (--user-level gprec), docs/gprec.md.
    # The default strategy, with its defaults of ensemble_weights, ensemble_backbone_gradient,
    # gprec_dropout, prediction_units and schedule_monitor, is GPRec(MLP)'s best 5-seed
    # validation AUC (results/gprec/ml1m_gprec_tuning.md); classifier_shared, head_units and
    # individual_units are within that AUC's noise and make it cheaper
    # (results/speed/training_throughput*.json).
    strategy: str = "ensemble"
    groups: int = 60
    temperature: float = 0.5
    reduce: str = "sum"
    ablation: str | None = None
    group_weight: float = 1.0
    contrast_weight: float = 1e-3
    orthogonal_weight: float = 0.1
    backbone_weight: float = 1.0
    contrast: str = "paper"
    # The group classifier (eq. 2): one hidden MLP shared by all groups, each with its own
    # output (GroupClassifier shared_hidden), the default; False: the paper's
    # G per-group MLPs. classifier_units None: (16,) shared, (4,) per group.
    classifier_units: tuple[int, ...] | None = None
    classifier_shared: bool = True
    dp_rank: int = 16
    # Hidden widths of the group auxiliary head MLP_g (eq. 7-8; None: hidden_units, the
    # paper's reading) and of MLP_p (eq. 12; the paper's form: (64,)). One 16-unit layer
    # each ties the wider ones on 5-seed validation AUC and trains at 74 % of the MLP's
    # speed against 57 % (results/gprec/ml1m_gprec_lean.md).
    head_units: tuple[int, ...] | None = (16,)
    individual_units: tuple[int, ...] = (16,)
    # Dropout of GPRec's MLPs. None: the strategy's default, `dropout` for ensemble (its
    # heads overfit without it) and 0 for input and dp.
    gprec_dropout: float | None = None
    # GPRec strategy MLP; None: the strategy's default, () for input (a linear layer on
    # [h, r_g, r_p]) and ensemble (a linear MLP_p head on [r_p, e_i]), hidden_units for
    # dp. (The earliest recorded runs hold None and meant hidden_units for every strategy.)
    prediction_units: tuple[int, ...] | None = None
    residual: bool = False  # GPRec output added to the backbone's logit (not in the paper)
    stop_embedding_gradient: bool = True  # GPRec does not train the embeddings (ditto)
    # The strategy's base representation: the backbone's hidden state, or the flattened
    # embeddings (the paper's reading of an MLP backbone; GPRec layer `base`).
    gprec_base: str = "hidden"
    # Std of a normal initializer of the group tables (GPRec layer group_init_stddev; not in
    # the paper); None: Glorot uniform.
    group_init_stddev: float | None = None
    # False: the strategy reads r_g from the noise-free masks in training too (GPRec layer
    # noisy_prediction; not in the paper).
    noisy_prediction: bool = True
    # "learned": the ensemble strategy's average is weighted by trained softmax weights,
    # starting from the paper's plain average (GPRec layer ensemble_weights; not in the paper).
    # None: "learned" with the ensemble strategy, "equal" (the paper's) otherwise.
    ensemble_weights: str | None = None
    # False: the ensemble's average does not train the backbone, which learns from its own
    # BCE term alone (GPRec layer ensemble_backbone_gradient; not in the paper). None: False
    # with the ensemble strategy and backbone_weight > 0, True (the paper's) otherwise.
    ensemble_backbone_gradient: bool | None = None

    def __post_init__(self) -> None:
        self.hidden_units = tuple(int(u) for u in self.hidden_units)
        if self.classifier_units is None:
            self.classifier_units = (16,) if self.classifier_shared else (4,)
        self.classifier_units = tuple(int(u) for u in self.classifier_units)
        self.udg_units = tuple(int(u) for u in self.udg_units)
        if self.udg_layers is not None:
            self.udg_layers = tuple(sorted({int(i) for i in self.udg_layers}))
        self.head_units = tuple(int(u) for u in (
            self.hidden_units if self.head_units is None else self.head_units))
        self.individual_units = tuple(int(u) for u in self.individual_units)
        if self.prediction_units is None:
            self.prediction_units = self.hidden_units if self.strategy == "dp" else ()
        self.prediction_units = tuple(int(u) for u in self.prediction_units)
        self._resolve_strategy_defaults()
        checks = [
            (self.backbone in BACKBONES, f"backbone must be one of {sorted(BACKBONES)}"),
            (self.user_level in USER_LEVELS, f"user_level must be one of {list(USER_LEVELS)}"),
            (self.baseline is None or self.baseline in BASELINES,
             f"baseline must be one of {sorted(BASELINES)}"),
            (self.baseline is None or self.backbone == "mlp",
             "a baseline replaces the backbone (it is an MLP plus user modeling): leave "
             "backbone at mlp"),
            (self.baseline is None or self.user_level == "none",
             "a baseline is a complete user-modeling model: use it with user_level none"),
            (self.baseline is not None or not self.baseline_options,
             "baseline_options need a baseline"),
            (self.distribute in DISTRIBUTE_STRATEGIES,
             f"distribute must be one of {list(DISTRIBUTE_STRATEGIES)}"),
            (self.history_length >= 0, "history_length must be >= 0"),
            (self.history_length == 0 or self.split == "time",
             "click histories (history_length > 0) need split time: under a random split "
             "training rows' histories hold the clicks of later test rows"),
            (self.backbone not in ("din", "dien") or self.history_length > 0,
             f"backbone {self.backbone} reads the click history: set history_length > 0"),
            (self.meta_steps >= 0, "meta_steps must be >= 0"),
            ("udg" in self.user_level or (self.udg_dim is None and not self.meta
                                          and self.gate_scale == 1.0 and self.udg_l2 == 0.0
                                          and not self.udg_stop_item_gradient
                                          and self.udg_layers is None
                                          and self.udg_units == (64, 32)),
             "udg_dim, udg_units, udg_layers, gate_scale, udg_l2, udg_stop_item_gradient and "
             "meta need "
             "user_level udg or gprec+udg"),
            (self.udg_l2 >= 0, "udg_l2 must be >= 0"),
            (self.udg_layers is None or (len(self.udg_layers) >= 1
                                         and min(self.udg_layers) >= 0
                                         and max(self.udg_layers) <= len(self.hidden_units)
                                         - 1),
             f"udg_layers must name dense layers of the MLP by index, 0 to "
             f"{len(self.hidden_units) - 1} (hidden_units {list(self.hidden_units)})"),
            ("udg" not in self.user_level or self.baseline is None,
             "UDG gates a backbone's MLP, not a baseline"),
            (self.udg_dim is None or self.udg_dim >= 1, "udg_dim must be >= 1"),
            (self.gate_scale > 0, "gate_scale must be > 0"),
            (self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {list(LR_SCHEDULES)}"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.learning_rate > 0, "learning_rate must be > 0"),
            (self.embedding_dim >= 1, "embedding_dim must be >= 1"),
            (0.0 <= self.dropout < 1.0, "dropout must lie in [0, 1)"),
            (self.patience >= 1, "patience must be >= 1"),
            (self.schedule_monitor in SCHEDULE_MONITORS,
             f"schedule_monitor must be one of {list(SCHEDULE_MONITORS)}"),
            (self.schedule_monitor == "auc" or "gprec" in self.user_level,
             "schedule_monitor 'backbone_auc' needs user_level gprec or gprec+udg: without "
             "GPRec the backbone's logit is the prediction"),
            (self.max_steps is None or self.max_steps >= 1, "max_steps must be >= 1"),
            (self.steps_per_execution >= 1, "steps_per_execution must be >= 1"),
            (len(self.hidden_units) >= 1, "hidden_units must name at least one layer"),
            *[(all(u >= 1 for u in widths), f"every width of {name} must be >= 1")
              for name, widths in (("hidden_units", self.hidden_units),
                                   ("classifier_units", self.classifier_units),
                                   ("head_units", self.head_units),
                                   ("individual_units", self.individual_units),
                                   ("prediction_units", self.prediction_units),
                                   ("udg_units", self.udg_units))],
            (self.strategy in STRATEGIES, f"strategy must be one of {list(STRATEGIES)}"),
            (self.groups >= 1, "groups must be >= 1"),
            (self.temperature > 0, "temperature must be > 0"),
            (self.reduce in REDUCTIONS, f"reduce must be one of {list(REDUCTIONS)}"),
            (self.ablation is None or self.ablation in ABLATIONS,
             f"ablation must be one of {sorted(ABLATIONS)}"),
            (self.ablation is None or "gprec" in self.user_level,
             "ablation needs user_level gprec"),
            (min(self.group_weight, self.contrast_weight, self.orthogonal_weight,
                 self.backbone_weight) >= 0, "loss weights must be >= 0"),
            (self.contrast in CONTRASTS, f"contrast must be one of {list(CONTRASTS)}"),
            (self.gprec_base in BASES, f"gprec_base must be one of {list(BASES)}"),
            (self.ensemble_weights in ENSEMBLE_WEIGHTS,
             f"ensemble_weights must be one of {list(ENSEMBLE_WEIGHTS)}"),
            (self.ensemble_weights == "equal" or self.strategy == "ensemble",
             "ensemble_weights 'learned' needs strategy 'ensemble'"),
            (self.ensemble_backbone_gradient or self.strategy == "ensemble",
             "ensemble_backbone_gradient False needs strategy 'ensemble'"),
            (self.ensemble_backbone_gradient or self.backbone_weight > 0,
             "ensemble_backbone_gradient False needs backbone_weight > 0 (nothing else "
             "trains the backbone)"),
            (self.group_init_stddev is None or self.group_init_stddev > 0,
             "group_init_stddev must be > 0"),
            (not (self.residual and self.strategy == "ensemble"),
             "residual applies to the input and dp strategies, not ensemble"),
            ("gprec" in self.user_level or not self.residual, "residual needs user_level gprec"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"invalid config: {message}")
        self.backbone_options = dict(self.backbone_options)
        self.baseline_options = dict(self.baseline_options)
        _check_options("backbone", self.backbone, self.backbone_options,
                       backbone_options(self.backbone))
        if self.baseline is not None:
            _check_options("baseline", self.baseline, self.baseline_options,
                           baseline_option_names(self.baseline))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown}; valid options are {sorted(known)}")
        return cls(**values)

    def _resolve_strategy_defaults(self) -> None:
        """Fills the options left at None with their strategy's defaults (see the fields)."""
        ensemble = self.strategy == "ensemble"
        if self.ensemble_weights is None:
            self.ensemble_weights = "learned" if ensemble else "equal"
        if self.ensemble_backbone_gradient is None:
            # With backbone_weight 0 the average is all that trains the backbone.
            self.ensemble_backbone_gradient = not ensemble or self.backbone_weight == 0
        if self.gprec_dropout is None:
            self.gprec_dropout = self.dropout if ensemble else 0.0
        if self.schedule_monitor is None:
            detached = (ensemble and "gprec" in self.user_level
                        and not self.ensemble_backbone_gradient)
            self.schedule_monitor = "backbone_auc" if detached else "auc"

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["hidden_units"] = list(self.hidden_units)
        values["classifier_units"] = list(self.classifier_units)
        values["udg_units"] = list(self.udg_units)
        if self.udg_layers is not None:
            values["udg_layers"] = list(self.udg_layers)
        values["head_units"] = list(self.head_units)
        values["individual_units"] = list(self.individual_units)
        values["prediction_units"] = list(self.prediction_units)
        return values


# The TrainConfig fields of the training loop: the `train` section of a run configuration.
TRAIN_FIELDS = ("epochs", "batch_size", "learning_rate", "lr_schedule", "lr_step_epochs",
                "lr_gamma", "lr_plateau_factor", "lr_plateau_patience", "patience",
                "schedule_monitor", "seed", "max_steps", "steps_per_execution",
                "eval_batch_size", "deterministic", "distribute", "meta_steps")

# Backbone options that TrainConfig sets from its own fields (or the ranking model sets).
BACKBONE_SHARED_OPTIONS = ("hidden_units", "dropout", "batch_norm", "output_bias")

# TrainConfig fields left at None by default and resolved in __post_init__ from the fields
# of DERIVED_FROM (per strategy, per classifier_shared, from hidden_units and dropout).
DERIVED_FIELDS = ("classifier_units", "prediction_units", "ensemble_weights",
                  "ensemble_backbone_gradient", "gprec_dropout", "schedule_monitor")
DERIVED_FROM = ("strategy", "user_level", "hidden_units", "dropout", "backbone_weight",
                "classifier_shared")

# The TrainConfig fields that only matter with user_level "gprec".
GPREC_OPTIONS = ("strategy", "groups", "temperature", "reduce", "ablation", "group_weight",
                 "contrast_weight", "orthogonal_weight", "backbone_weight", "contrast",
                 "classifier_units", "classifier_shared", "dp_rank", "head_units",
                 "individual_units", "gprec_dropout",
                 "prediction_units", "residual", "stop_embedding_gradient", "gprec_base",
                 "group_init_stddev", "noisy_prediction", "ensemble_weights",
                 "ensemble_backbone_gradient")


def _check_options(kind: str, name: str, given: Mapping[str, Any], known) -> None:
    """Rejects `<kind>_options` that the backbone or baseline `name` does not have."""
    allowed = sorted(set(known) - set(BACKBONE_SHARED_OPTIONS) - {"num_domains"})
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ConfigError(
            f"invalid config: {kind} {name!r} has no option(s) {unknown} in {kind}_options; "
            f"valid: {allowed} (hidden_units, dropout and batch_norm have their own options)")


def write_json_atomic(path: Path, payload: Any) -> None:
    """Writes JSON to a temporary file in the same folder, flushed to disk, then renames
    it over `path`: a failed write (a full disk, say) leaves the previous file as it was
    and no temporary file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".tmp", delete=False)
    try:
        with handle:
            json.dump(payload, handle, indent=2, sort_keys=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def build_model(config: TrainConfig, feature_spec: FeatureSpec,
                vocabularies: Mapping[str, list], positive_rate: float) -> RankingModel:
    if config.baseline is not None:
        backbone = {"name": config.baseline, "hidden_units": config.hidden_units,
                    "dropout": config.dropout, "batch_norm": config.batch_norm,
                    **config.baseline_options}
    else:
        backbone = {"name": config.backbone, "hidden_units": config.hidden_units,
                    "dropout": config.dropout, "batch_norm": config.batch_norm,
                    **config.backbone_options}
    return RankingModel(feature_spec, vocabularies, backbone=backbone,
                        embedding_dim=config.embedding_dim, embedding_l2=config.embedding_l2,
                        positive_rate=positive_rate,
                        user_level=build_user_level(config, positive_rate),
                        gating=build_gating(config, feature_spec, vocabularies))


def gating_sizes(feature_spec: FeatureSpec, vocabularies: Mapping[str, list]
                 ) -> dict[str, int]:
    """The sizes a UDG layer takes from the data: its users (the first user_personal
    field's vocabulary or hash buckets) and the fused id space of the profile ids."""
    personal = [f for f in feature_spec.fields if f.role == "user_personal"]
    if not personal:
        raise ConfigError("invalid config: UDG needs a user_personal (user id) field")
    owner = feature_spec[personal[0].shared_vocabulary_with or personal[0].name]
    return {"num_users": field_rows(owner, vocabularies),
            "vocabulary_size": fused_vocabulary_size(feature_spec, vocabularies)}


def build_gating(config: TrainConfig, feature_spec: FeatureSpec,
                 vocabularies: Mapping[str, list]) -> UserDependentGating | None:
    """The UDG layer for user_level "udg" / "gprec+udg" (None otherwise)."""
    if "udg" not in config.user_level:
        return None
    return UserDependentGating(
        udg_dim=config.udg_dim or config.embedding_dim,
        hidden_units=config.udg_units, gate_scale=config.gate_scale, l2=config.udg_l2,
        stop_item_gradient=config.udg_stop_item_gradient, gated_layers=config.udg_layers,
        meta=config.meta, name="udg", **gating_sizes(feature_spec, vocabularies))


def build_user_level(config: TrainConfig, positive_rate: float) -> keras.layers.Layer | None:
    """The GPRec layer for user_level "gprec" / "gprec+udg" (None otherwise)."""
    if "gprec" not in config.user_level:
        return None
    options = {
        "groups": config.groups, "temperature": config.temperature, "reduce": config.reduce,
        "strategy": config.strategy, "embedding_dim": config.embedding_dim,
        "classifier_units": config.classifier_units,
        "classifier_shared": config.classifier_shared,
        "head_units": config.head_units,
        "individual_units": config.individual_units,
        "dropout": config.gprec_dropout,
        "group_weight": config.group_weight,
        "contrast_weight": config.contrast_weight,
        "orthogonal_weight": config.orthogonal_weight,
        "backbone_weight": config.backbone_weight, "contrast": config.contrast,
        "dp_rank": config.dp_rank, "prediction_units": config.prediction_units,
        "output_bias": float(np.log(positive_rate / (1.0 - positive_rate))),
        "residual": config.residual, "stop_embedding_gradient": config.stop_embedding_gradient,
        "base": config.gprec_base, "group_init_stddev": config.group_init_stddev,
        "noisy_prediction": config.noisy_prediction,
        "ensemble_weights": config.ensemble_weights,
        "ensemble_backbone_gradient": config.ensemble_backbone_gradient,
    }
    options.update(ABLATIONS.get(config.ablation, {}))
    return GPRec(name="gprec", **options)


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch's training phase (input included, evaluation excluded)."""

    def __init__(self, examples_per_epoch: int):
        super().__init__()
        self.examples_per_epoch = examples_per_epoch
        self.seconds: list[float] = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def _stop(self):
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None

    def on_test_begin(self, logs=None):
        self._stop()

    def on_epoch_end(self, epoch, logs=None):
        self._stop()

    def examples_per_second(self) -> float:
        """Median over epochs after the first (the first includes tracing)."""
        times = self.seconds[1:] or self.seconds
        return float(self.examples_per_epoch / np.median(times)) if times else float("nan")


class LearningRateLogger(keras.callbacks.Callback):
    """Logs the learning rate the epoch trained with as `learning_rate`, once.

    Keras's `ReduceLROnPlateau` and `LearningRateScheduler` add their own `lr`
    entry (the former read before it cuts the rate); it is dropped, so the
    progress bar, the history and TensorBoard show one learning rate.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._rate = float(keras.backend.get_value(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.pop("lr", None)
            logs["learning_rate"] = getattr(self, "_rate", float(
                keras.backend.get_value(self.model.optimizer.learning_rate)))


class BestWeights(keras.callbacks.Callback):
    """Saves the weights of the epoch with the best monitored value.

    Unlike `EarlyStopping(restore_best_weights=True)` this keeps the best
    weights on disk and `restore()` works also when training ran out of
    epochs without stopping early.
    """

    def __init__(self, path: Path, monitor: str = "val_auc"):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.best = -math.inf
        self.best_epoch: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise KeyError(
                f"BestWeights: {self.monitor!r} is not in the epoch logs {sorted(logs or {})}")
        if value > self.best:
            self.best, self.best_epoch = float(value), epoch + 1
            self._save()

    def _save(self) -> None:
        """Writes the weights under a temporary prefix, then renames the data shards and,
        last, the index: a reader of `path` sees the previous or the new checkpoint."""
        staging = self.path.with_name(self.path.name + ".tmp")
        try:
            self.model.save_weights(str(staging))
        except BaseException:  # a failed write (full disk): the previous best stays whole
            for partial in self.path.parent.glob(staging.name + ".*"):
                partial.unlink(missing_ok=True)
            raise
        shards = sorted(self.path.parent.glob(staging.name + ".data-*"))
        for shard in shards:
            target = shard.name.replace(staging.name, self.path.name, 1)
            os.replace(shard, self.path.parent / target)
        os.replace(self.path.parent / (staging.name + ".index"),
                   self.path.parent / (self.path.name + ".index"))

    def restore(self) -> None:
        if self.best_epoch is not None:
            self.model.load_weights(str(self.path)).expect_partial()


def versions() -> dict[str, str]:
    """The versions of this package and of the libraries a run's numbers depend on."""
    from importlib import metadata

    import tfrs_userlevel

    found = {"tfrs_userlevel": tfrs_userlevel.__version__}
    for package in ("tensorflow", "tf-keras", "tensorflow-recommenders"):
        try:
            found[package.replace("-", "_")] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package.replace("-", "_")] = "not installed"
    return found


def load_trained(model_dir: str | os.PathLike) -> RankingModel:
    """Rebuilds the model a `run` wrote to `model_dir`, with its best weights."""
    model_dir = Path(model_dir)
    for needed in ("model.json", "checkpoint/best.index"):
        if not (model_dir / needed).exists():
            raise FileNotFoundError(
                f"{model_dir / needed} is missing: {model_dir} does not hold a finished run "
                "of train.py (model.json and checkpoint/best are written by it)")
    model = keras.layers.deserialize(json.loads((model_dir / "model.json").read_text()))
    model(model.example_features())
    model.load_weights(str(model_dir / "checkpoint" / "best")).expect_partial()
    return model


def _evaluate(model: RankingModel, dataset: tf.data.Dataset,
              steps: int | None = None) -> dict[str, float]:
    logs = model.evaluate(dataset, steps=steps, verbose=0, return_dict=True)
    return {name: float(logs[name]) for name in METRIC_NAMES}


def _run_parameter_server(config: TrainConfig, splits, spec: FeatureSpec, model_dir: Path,
                          strategy, vocabularies, verbose, model_builder: ModelBuilder,
                          record: dict[str, Any]) -> dict[str, Any]:
    """`run` on the coordinator of a ParameterServerStrategy cluster (the same outputs).

    Variables live on the parameter servers, sharded by the strategy's partitioner (the
    embedding table in several shards). The lookups run here, once; each worker builds
    its own shuffled, repeated batches (`DatasetCreator`). Keras 2's `fit` runs no
    per-epoch validation under this strategy, so the epochs are fixed (no early
    stopping) and validation and test are scored here after training.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(model_dir / "config.json",
                      {"config": record, "feature_spec": spec.get_config()})
    keras.utils.set_random_seed(config.seed)
    train_columns = splits["train"]
    positive_rate = float(np.mean(train_columns["label"]))
    if vocabularies is None:
        vocabularies = spec.build_vocabularies(train_columns)
    with strategy.scope():
        model = model_builder(spec, vocabularies, positive_rate)
        model(model.example_features())
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                      steps_per_execution=config.steps_per_execution)
    write_json_atomic(model_dir / "model.json", keras.layers.serialize(model))
    ids = {name: data_lib.lookup_columns(model.lookup, columns)
           for name, columns in splits.items()}
    train_ids, train_labels = ids["train"], train_columns["label"]
    num_batches = -(-len(train_labels) // config.batch_size)
    steps_per_epoch = min(num_batches, config.max_steps or num_batches)
    epochs = (min(config.epochs, math.ceil(config.max_steps / steps_per_epoch))
              if config.max_steps else config.epochs)

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        return data_lib.training_dataset(train_ids, train_labels, config.batch_size,
                                         seed=config.seed + context.input_pipeline_id).repeat()

    timer = EpochTimer(steps_per_epoch * config.batch_size)
    history = model.fit(keras.utils.experimental.DatasetCreator(dataset_fn), epochs=epochs,
                        steps_per_epoch=steps_per_epoch, callbacks=[timer],
                        verbose=2 if verbose is None else verbose)
    (model_dir / "checkpoint").mkdir(exist_ok=True)
    model.save_weights(str(model_dir / "checkpoint" / "best"))
    table = model.embedding.table
    shards = {"embedding_table": [list(v.shape) for v in getattr(table, "variables", [table])]}
    metrics = {
        "val": evaluate_ids(model, ids["validation"], splits["validation"]["label"]),
        "test": evaluate_ids(model, ids["test"], splits["test"]["label"]),
        "epochs": len(history.history.get("loss", [])),
        "best_epoch": len(history.history.get("loss", [])),
        "train_examples_per_second": timer.examples_per_second(),
        "train_loss": [float(v) for v in history.history.get("loss", [])],
        "parameter_servers": {"count": len(cluster_spec()["cluster"]["ps"]),
                              "sharded_variables": shards},
        "versions": versions(),
        "config": record,
    }
    write_json_atomic(model_dir / "metrics.json", metrics)
    hparams.write_session(model_dir / "logs", record, metrics)
    return metrics


@contextlib.contextmanager
def _random_generators(enabled: bool):
    """Layers built in the block draw dropout and Gumbel noise from `tf.random.Generator`s
    (whose states `TrainingState` restores on resume) when `enabled`; otherwise Keras's
    default stateful ops."""
    experimental = keras.backend.experimental
    before = experimental.is_tf_random_generator_enabled()
    if enabled:
        experimental.enable_tf_random_generator()
    try:
        yield
    finally:
        if not before:
            experimental.disable_tf_random_generator()


def schedule_callbacks(config: TrainConfig) -> list:
    """The learning-rate schedule and early stopping of a run; both follow
    `val_<config.schedule_monitor>`."""
    monitor = f"val_{config.schedule_monitor}"
    callbacks = []
    if config.lr_schedule == "step":
        callbacks.append(keras.callbacks.LearningRateScheduler(
            lambda epoch: config.learning_rate
            * config.lr_gamma ** (epoch // config.lr_step_epochs)))
    if config.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode="max", factor=config.lr_plateau_factor,
            patience=config.lr_plateau_patience, min_delta=0.0, min_lr=1e-6))
    callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, mode="max",
                                                   patience=config.patience))
    return callbacks


def run(config: TrainConfig, splits: Mapping[str, Mapping[str, np.ndarray]],
        feature_spec: FeatureSpec | Sequence[Mapping[str, Any]], model_dir: str | os.PathLike,
        verbose: int | None = None, extra_callbacks: Sequence[keras.callbacks.Callback] = (),
        vocabularies: Mapping[str, list] | None = None,
        tfrecord_dir: str | os.PathLike | None = None,
        model_builder: ModelBuilder | None = None,
        record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Trains one model and writes its outputs under `model_dir`.

    Args:
      config: The run's options.
      splits: {"train"|"validation"|"test": {column: numpy [N]}} with a
        "label" column of 0/1.
      feature_spec: The model's fields.
      model_dir: Output folder (created).
      verbose: Keras verbosity; default: a progress bar on a terminal, one
        line per epoch otherwise.
      vocabularies: The vocabularies to use instead of those of the training
        split (e.g. with rows for users that only come later).
      tfrecord_dir: Stream train / validation / test from the TFRecord shards
        `tfrecord_dir` holds (`tfrs_userlevel.streaming.write_tfrecords`,
        prefixes "train", "validation", "test") instead of `splits` (which may
        then be None); the vocabularies come from the train manifest.
      model_builder: (feature spec, vocabularies, positive rate) -> the model;
        default: `build_model` from `config`'s own model options.
      record: The configuration written to config.json and metrics.json (a
        run configuration's resolved tree); default: `config.to_dict()`.

    Returns:
      The content of metrics.json.
    """
    spec = (feature_spec if isinstance(feature_spec, FeatureSpec)
            else FeatureSpec.from_config(feature_spec))
    strategy = make_strategy(config.distribute)
    if model_builder is None:
        model_builder = functools.partial(build_model, config)
    record = dict(config.to_dict() if record is None else record)
    if config.distribute == "parameter_server":
        with WriterLock(model_dir):
            return _run_parameter_server(config, splits, spec, Path(model_dir), strategy,
                                         vocabularies, verbose, model_builder, record)
    model_dir = Path(model_dir)
    if not is_chief(strategy):
        # Every worker of a multi-worker cluster saves (saving is collective), only the
        # chief into model_dir.
        model_dir = Path(tempfile.mkdtemp(prefix="worker_"))
    with WriterLock(model_dir):
        return _train(config, splits, spec, model_dir, strategy, verbose, extra_callbacks,
                      vocabularies, tfrecord_dir, model_builder, record)


def _train(config: TrainConfig, splits, spec: FeatureSpec, model_dir: Path, strategy,
           verbose, extra_callbacks, vocabularies, tfrecord_dir, model_builder: ModelBuilder,
           record: dict[str, Any]) -> dict[str, Any]:
    """`run` in `model_dir`, which this process holds the writer lock of."""
    backup_dir = model_dir / "backup"
    if backup_dir.exists() and (model_dir / "config.json").exists():
        previous = json.loads((model_dir / "config.json").read_text()).get("config")
        if previous != record:
            raise ConfigError(
                f"{model_dir} holds an interrupted run with another config; resume it with "
                f"the same options, or delete {backup_dir} (train.py --overwrite) to start over")
    write_json_atomic(model_dir / "config.json",
                      {"config": record, "feature_spec": spec.get_config()})
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()

    if tfrecord_dir is not None:
        manifest = streaming.read_manifest(tfrecord_dir, "train")
        positive_rate, train_rows = float(manifest["positive_rate"]), int(manifest["rows"])
        vocabularies = vocabularies or manifest["vocabularies"]
    else:
        train_columns = splits["train"]
        positive_rate, train_rows = float(np.mean(train_columns["label"])), len(
            train_columns["label"])
        if vocabularies is None:
            vocabularies = spec.build_vocabularies(train_columns)
    with strategy.scope(), _random_generators(config.deterministic):
        model = model_builder(spec, vocabularies, positive_rate)
        model(model.example_features())  # built before fit: BackupAndRestore restores into it
        create_random_generators(model)
    write_json_atomic(model_dir / "model.json", keras.layers.serialize(model))
    if tfrecord_dir is not None:
        # Streamed from the shards: the lookups run in the input pipeline.
        block = manifest["block_rows"]
        train = streaming.streaming_dataset(tfrecord_dir, model.lookup, config.batch_size,
                                            seed=config.seed)
        eval_batch = max(block, config.eval_batch_size // block * block)
        validation, test = (streaming.streaming_dataset(
            tfrecord_dir, model.lookup, eval_batch, prefix=prefix)
            for prefix in ("validation", "test"))
        eval_steps = {prefix: streaming.batches_per_pass(
            streaming.read_manifest(tfrecord_dir, prefix), eval_batch)
            for prefix in ("validation", "test")}
        sample = list(train.take(16))  # the monitor's fixed sample of training rows
        train_ids = {k: np.concatenate([b[0][k].numpy() for b in sample]) for k in sample[0][0]}
        train_labels = np.concatenate([b[1].numpy()[:, 0] for b in sample])
        train_order = np.arange(len(train_labels))
        num_batches = streaming.batches_per_pass(manifest, config.batch_size)
        train = train.repeat()  # fit counts the steps (steps_per_execution needs a count)
    else:
        ids = {name: data_lib.lookup_columns(model.lookup, columns)
               for name, columns in splits.items()}
        train_ids, train_labels = ids["train"], train_columns["label"]
        train_order = train_columns.get("timestamp", np.arange(len(train_labels)))
        train = data_lib.training_dataset(train_ids, train_labels, config.batch_size,
                                          seed=config.seed)
        validation = data_lib.evaluation_dataset(
            ids["validation"], splits["validation"]["label"], config.eval_batch_size)
        test = data_lib.evaluation_dataset(ids["test"], splits["test"]["label"],
                                           config.eval_batch_size)
        num_batches = int(train.cardinality())
        eval_steps = {"validation": None, "test": None}

    steps_per_epoch, epochs = num_batches, config.epochs
    if config.max_steps:
        steps_per_epoch = min(num_batches, config.max_steps)
        epochs = min(epochs, math.ceil(config.max_steps / steps_per_epoch))
    # A resumed run trains its remaining epochs on the batches the uninterrupted run
    # would have had: each epoch's order comes from the input's seed and the epoch's
    # number (a new iterator of the in-memory input draws the next epoch's order; the
    # streamed input is one pass after another).
    resumed = backed_up_epochs(backup_dir)
    if resumed and tfrecord_dir is not None:
        train = train.skip(resumed * steps_per_epoch)
    elif resumed:
        for _ in range(resumed):
            iter(train)
    examples_per_epoch = min(train_rows, steps_per_epoch * config.batch_size)

    if config.distribute != "default":
        # In-memory batches: shard by data (there are no files to shard by).
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
        train, validation, test = (d.with_options(options) for d in (train, validation, test))
    with strategy.scope():
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                      steps_per_execution=min(config.steps_per_execution, steps_per_epoch))
    timer = EpochTimer(examples_per_epoch)
    best = BestWeights(model_dir / "checkpoint" / "best")
    callbacks = [
        NonFiniteGuard(model_dir / "checkpoint"),
        timer,
        best,
        LearningRateLogger(),
        # Before TensorBoard: it adds train AUC/LogLoss to the logs TensorBoard writes.
        UserLevelMonitor(model_dir / "logs", train_ids, train_labels,
                         seed=config.seed),
        keras.callbacks.TensorBoard(log_dir=str(model_dir / "logs"), update_freq="epoch",
                                    write_graph=False, profile_batch=0),
        *extra_callbacks,
    ]
    callbacks[:0] = schedule_callbacks(config)
    # Resume after a kill: weights, optimizer and epoch from the last finished epoch, and
    # the callbacks' counters and random generators' states (TrainingState: after the
    # callbacks, so that it restores after their resets; before BackupAndRestore, so that
    # its entry for an epoch is on disk before the checkpoint of that epoch).
    state = TrainingState(backup_dir / "callbacks.json", callbacks, resumed)
    callbacks += [state, keras.callbacks.BackupAndRestore(str(backup_dir))]
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    history = model.fit(train, validation_data=validation, epochs=epochs,
                        steps_per_epoch=(steps_per_epoch if config.max_steps or tfrecord_dir
                                         else None),
                        validation_steps=eval_steps["validation"],
                        callbacks=callbacks, verbose=verbose)
    best.restore()
    meta = None
    if getattr(model, "gating", None) is not None and model.gating.generator is not None:
        # Algorithm 1 on the trained, frozen model; the generator joins the best weights.
        from tfrs_userlevel.udg.meta import MetaEmbeddingTrainer

        losses = MetaEmbeddingTrainer(model, seed=config.seed).fit(
            train_ids, train_labels, train_order, config.meta_steps)
        best._save()
        meta = {"steps": config.meta_steps,
                "meta_loss_first": losses[0]["meta_loss"] if losses else None,
                "meta_loss_last": losses[-1]["meta_loss"] if losses else None}
    shutil.rmtree(backup_dir, ignore_errors=True)  # finished: nothing left to resume

    metrics = {
        "val": _evaluate(model, validation, eval_steps["validation"]),
        "test": _evaluate(model, test, eval_steps["test"]),
        "epochs": (state.resumed_epoch or 0) + len(history.history.get("loss", [])),
        "resumed_after_epoch": state.resumed_epoch,
        "best_epoch": best.best_epoch,
        "train_examples_per_second": timer.examples_per_second(),
        "versions": versions(),
        "config": record,
    }
    if meta is not None:
        metrics["meta_generator"] = meta
    write_json_atomic(model_dir / "metrics.json", metrics)
    hparams.write_session(model_dir / "logs", record, metrics)
    return metrics
