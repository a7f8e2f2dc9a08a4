"""The options of a training run: `TrainConfig` and the names it groups its fields by.

`TrainConfig` is the validated configuration of one run (unknown keys are
errors); `config.run` builds one from a run configuration's tree, and
`tfrs-userlevel train` from its flags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tfrs_userlevel.backbones import BACKBONES
from tfrs_userlevel.backbones import options as backbone_options
from tfrs_userlevel.baselines import BASELINES
from tfrs_userlevel.baselines import options as baseline_option_names
from tfrs_userlevel.config.errors import ConfigError
from tfrs_userlevel.distribute import STRATEGIES as DISTRIBUTE_STRATEGIES
from tfrs_userlevel.gprec import ABLATIONS, STRATEGIES
from tfrs_userlevel.gprec.groups import REDUCTIONS
from tfrs_userlevel.gprec.layer import BASES, CONTRASTS
from tfrs_userlevel.gprec.strategies import ENSEMBLE_WEIGHTS
from tfrs_userlevel.udg.gating import GATE_ACTIVATIONS

USER_LEVELS = ("none", "gprec", "udg", "gprec+udg")
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
    gate_scale: float = 1.0  # gate = gate_scale · sigmoid(.) (or tanh(.))
    gate_activation: str = "sigmoid"  # "tanh": signed gates (not in the paper)
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
                                          and self.gate_activation == "sigmoid"
                                          and not self.udg_stop_item_gradient
                                          and self.udg_layers is None
                                          and self.udg_units == (64, 32)),
             "udg_dim, udg_units, udg_layers, gate_scale, gate_activation, udg_l2, "
             "udg_stop_item_gradient and "
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
            (self.gate_activation in GATE_ACTIVATIONS,
             f"gate_activation must be one of {list(GATE_ACTIVATIONS)}"),
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
