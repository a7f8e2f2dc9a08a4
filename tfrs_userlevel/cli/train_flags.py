"""The flags of `tfrs-userlevel train`, and the `TrainConfig` they make.

`build_parser` owns every flag and its help (the configuration reference is
generated from it); with `--config`, `SHORTHANDS` and `MODULE_FLAGS` say
which key of the run configuration a flag overrides.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from tfrs_userlevel import datasets
from tfrs_userlevel.backbones import BACKBONES
from tfrs_userlevel.baselines import BASELINES
from tfrs_userlevel.cli.terminal import ArgumentParser
from tfrs_userlevel.config.errors import ConfigError
from tfrs_userlevel.distribute import STRATEGIES as DISTRIBUTE_STRATEGIES
from tfrs_userlevel.gprec import ABLATIONS, STRATEGIES
from tfrs_userlevel.gprec.groups import REDUCTIONS
from tfrs_userlevel.gprec.layer import BASES, CONTRASTS
from tfrs_userlevel.gprec.strategies import ENSEMBLE_WEIGHTS
from tfrs_userlevel.training import (
    LR_SCHEDULES,
    SCHEDULE_MONITORS,
    USER_LEVELS,
    TrainConfig,
)
from tfrs_userlevel.udg.gating import GATE_ACTIVATIONS

DESCRIPTION = "train a CTR ranking model and report its validation and test metrics."

DEFAULTS = TrainConfig()


def json_object(text: str) -> dict:
    """argparse type: a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object {{...}}, got {text!r}")
    return value


# With --config, these flags stand for keys of the run configuration.
SHORTHANDS = {
    "epochs": "train.epochs", "batch_size": "train.batch_size",
    "learning_rate": "train.learning_rate", "seed": "train.seed", "max_steps": "train.max_steps",
    "deterministic": "train.deterministic", "patience": "train.patience",
    "lr_schedule": "train.lr_schedule", "steps_per_execution": "train.steps_per_execution",
    "eval_batch_size": "train.eval_batch_size",
    "schedule_monitor": "train.schedule_monitor", "embedding_dim": "model.embedding_dim",
    "embedding_l2": "model.embedding_l2", "backbone": "model.backbone.name",
    "hidden_units": "model.backbone.hidden_units", "dropout": "model.backbone.dropout",
    "user_level": "model.user_level.name", "batch_norm": "model.backbone.batch_norm",
    "meta_steps": "train.meta_steps",
}
# GPRec's and UDG's flags name their layer's constructor options, some with a prefix;
# with --config they set model.user_level.<option> (model.user_level.<kind>.<option> with
# gprec+udg). Flags without a layer option (--ablation, say) have no key.
MODULE_FLAGS = {
    "gprec": {"gprec_dropout": "dropout", "gprec_base": "base"},
    "udg": {"udg_units": "hidden_units", "udg_l2": "l2",
            "udg_stop_item_gradient": "stop_item_gradient", "udg_layers": "gated_layers",
            "udg_dim": "udg_dim", "gate_scale": "gate_scale",
            "gate_activation": "gate_activation", "meta": "meta"},
}
# Flags that mean the same with and without --config.
RUN_FLAGS = ("config", "set", "model_dir", "overwrite", "seeds")


def parse_args(argv=None, prog: str = "tfrs-userlevel train") -> argparse.Namespace:
    return build_parser(prog).parse_args(argv)


def explicit_options(argv) -> dict:
    """The options given on the command line (not left at their defaults)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    return vars(parser.parse_args(argv))


def flag_overrides(argv) -> dict:
    """The `TrainConfig` fields that flags of `tfrs-userlevel train` set explicitly, e.g.
    ["--user-level", "gprec", "--groups", "40"] -> {"user_level": "gprec", "groups": 40}.
    Flags that are not configuration options (--model-dir, --data-dir, ...) are refused."""
    given = explicit_options(argv)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    other = sorted(f"--{name.replace('_', '-')}" for name in given if name not in fields)
    if other:
        raise ConfigError(f"{' '.join(argv)}: {', '.join(other)} set no training option")
    return given


def build_parser(prog: str = "tfrs-userlevel train") -> argparse.ArgumentParser:
    p = ArgumentParser(prog=prog, description=DESCRIPTION,
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", default=None,
                   help="a run configuration (YAML or JSON: data, model, train) for your own "
                        "click logs, or the name of a built-in one (movielens_1m, "
                        "movielens_100k, synthetic: datasets/configs/); the training, model, "
                        "GPRec and UDG flags given with it override their keys "
                        "(tfrs_userlevel.cli.train_flags: SHORTHANDS, MODULE_FLAGS)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="with --config: override one key, e.g. model.user_level.groups=40 "
                        "(repeatable; the value is read as YAML)")
    p.add_argument("--dataset", default=DEFAULTS.dataset,
                   choices=sorted(datasets.DATASETS) + ["synthetic"],
                   help="synthetic: generated clicks with planted user groups "
                        "(datasets/synthetic.py; --synthetic-rows)")
    p.add_argument("--synthetic-rows", type=int, default=1_000_000,
                   help="rows of --dataset synthetic (80/10/10 train/validation/test)")
    p.add_argument("--tfrecord-dir", default=None,
                   help="train from sharded TFRecords in this folder, streamed (memory does "
                        "not grow with the rows); written there first from --dataset when "
                        "the folder holds none")
    p.add_argument("--split", default=DEFAULTS.split, choices=datasets.SPLIT_SCHEMES)
    p.add_argument("--data-dir", default=None,
                   help=f"root of the raw files; default ${datasets.ENV_VAR}, then TFDS's "
                        "manual/download directories")
    p.add_argument("--data-source", default="raw", choices=datasets.SOURCES,
                   help="read the raw files directly, or through the TFDS builder's cache")
    p.add_argument("--tfds-dir", default=None, help="TFDS data dir for --data-source tfds")
    p.add_argument("--backbone", default=DEFAULTS.backbone, choices=sorted(BACKBONES))
    p.add_argument("--backbone-options", type=json_object, default={},
                   help='backbone-specific options as JSON, e.g. \'{"cross_layers": 4}\' '
                        "(tfrs_userlevel.backbones.options(NAME) lists them)")
    p.add_argument("--user-level", default=DEFAULTS.user_level, choices=USER_LEVELS)
    p.add_argument("--baseline", default=None, choices=sorted(BASELINES),
                   help="a user-modeling baseline in place of the backbone (an MLP with "
                        "--hidden-units plus user modeling): mmoe, ple, star (users divided by "
                        "gender unless domain_field says otherwise), apg, pepnet, dgpm")
    p.add_argument("--baseline-options", type=json_object, default={},
                   help='baseline-specific options as JSON, e.g. \'{"num_experts": 8}\' '
                        "(tfrs_userlevel.baselines.options(NAME) lists them)")
    p.add_argument("--distribute", default=DEFAULTS.distribute, choices=DISTRIBUTE_STRATEGIES,
                   help="tf.distribute strategy; multi_worker and parameter_server read the "
                        "cluster from TF_CONFIG (workers and parameter servers of a "
                        "parameter_server run start with python -m tfrs_userlevel.distribute)")
    p.add_argument("--history-length", type=int, default=DEFAULTS.history_length,
                   help="add the click history (last N clicks before each rating, with their "
                        "genres) as a behavior field; needs --split time; din and dien need it")
    u = p.add_argument_group("UDG (--user-level udg or gprec+udg)")
    u.add_argument("--udg-dim", type=int, default=None,
                   help="width of the UDG user embedding (default: --embedding-dim)")
    u.add_argument("--udg-units", type=int, nargs="+", default=list(DEFAULTS.udg_units),
                   help="hidden widths of each gating network (the output layer is added)")
    u.add_argument("--gate-scale", type=float, default=DEFAULTS.gate_scale,
                   help="gate = scale * sigmoid(.) (1 in the paper)")
    u.add_argument("--gate-activation", choices=GATE_ACTIVATIONS, default=DEFAULTS.gate_activation,
                   help="the gates' activation: sigmoid (the paper) or tanh (signed gates, "
                        "which can flip a hidden unit's sign)")
    u.add_argument("--udg-l2", type=float, default=DEFAULTS.udg_l2,
                   help="L2 penalty on the UDG user table, as --embedding-l2 on the main "
                        "table (0, none, in the paper)")
    u.add_argument("--udg-stop-item-gradient", action="store_true",
                   help="the gating networks read the item (and history) embeddings without "
                        "training them (not in the paper)")
    u.add_argument("--udg-layers", type=int, nargs="+", default=None,
                   help="gate only these dense layers of the MLP, by index (0 = the layer "
                        "reading the embeddings; not in the paper, which gates all)")
    u.add_argument("--meta", action="store_true",
                   help="add the meta-embedding generator for users outside the vocabulary; "
                        "it is trained after the base model (Algorithm 1, base frozen) and "
                        "saved with the best weights")
    u.add_argument("--meta-steps", type=int, default=DEFAULTS.meta_steps,
                   help="generator updates after base training (with --meta)")
    g = p.add_argument_group("GPRec (--user-level gprec)")
    g.add_argument("--strategy", default=DEFAULTS.strategy, choices=STRATEGIES,
                   help="how r_g and r_p join the backbone: input (eq. 14), dp = dynamic "
                        "parameters (eq. 15-16), ensemble (eq. 17-18)")
    g.add_argument("--groups", type=int, default=DEFAULTS.groups, help="number of groups G")
    g.add_argument("--temperature", type=float, default=DEFAULTS.temperature,
                   help="Gumbel-softmax temperature tau")
    g.add_argument("--reduce", default=DEFAULTS.reduce, choices=REDUCTIONS,
                   help="concatenate the G group vectors (G*d), sum them (d), or average "
                        "them (d; not in the paper)")
    g.add_argument("--ablation", default=None, choices=sorted(ABLATIONS),
                   help="paper variants: gprec-1 single embeddings + softmax, gprec-2 no r_p, "
                        "gprec-3 no L_g, gprec-4 no L_c, gprec-5 no L_o")
    g.add_argument("--group-weight", type=float, default=DEFAULTS.group_weight,
                   help="alpha, weight of the group auxiliary loss L_g")
    g.add_argument("--contrast-weight", type=float, default=DEFAULTS.contrast_weight,
                   help="beta, weight of the (maximised) contrastive loss L_c")
    g.add_argument("--orthogonal-weight", type=float, default=DEFAULTS.orthogonal_weight,
                   help="gamma, weight of the orthogonal loss L_o")
    g.add_argument("--backbone-weight", type=float, default=DEFAULTS.backbone_weight,
                   help="weight of the backbone head's own BCE")
    g.add_argument("--contrast", default=DEFAULTS.contrast, choices=CONTRASTS,
                   help="paper: -beta*BCE(y_bar, y); flipped: +beta*BCE(y_bar, 1-y) (bounded)")
    g.add_argument("--classifier-units", type=int, nargs="+", default=None,
                   help="hidden widths of the group classifier's MLP (default: 16 shared, "
                        "4 per group)")
    g.add_argument("--classifier-shared", action=argparse.BooleanOptionalAction,
                   default=DEFAULTS.classifier_shared,
                   help="not in the paper, the default: one hidden MLP shared by all groups, "
                        "each with its own output (much cheaper than G small MLPs); "
                        "--no-classifier-shared is the paper's per-group MLPs")
    g.add_argument("--head-units", type=int, nargs="*", default=list(DEFAULTS.head_units),
                   help="hidden widths of the group auxiliary head MLP_g (eq. 7); the paper's "
                        "reading is --hidden-units (64 32 16); the flag alone: a linear head")
    g.add_argument("--individual-units", type=int, nargs="*",
                   default=list(DEFAULTS.individual_units),
                   help="hidden widths of the individual-preference MLP_p (eq. 12; the "
                        "paper's form: 64)")
    g.add_argument("--dp-rank", type=int, default=DEFAULTS.dp_rank,
                   help="rank of the dynamic-parameter layers")
    g.add_argument("--prediction-units", type=int, nargs="*", default=None,
                   help="hidden widths of the strategy's MLP: MLP_pred of input, the "
                        "generated layers of dp, the MLP_p head of ensemble (default: a "
                        "linear layer for input and ensemble, --hidden-units for dp; the "
                        "flag alone: a linear layer)")
    g.add_argument("--residual", action="store_true",
                   help="not in the paper: final logit = backbone logit + a learned scale "
                        "(starting at 0) x the strategy's output (input and dp strategies)")
    g.add_argument("--stop-embedding-gradient", action=argparse.BooleanOptionalAction,
                   default=DEFAULTS.stop_embedding_gradient,
                   help="not in the paper: GPRec reads the embeddings without training them "
                        "(default: on; --no-stop-embedding-gradient lets GPRec's losses "
                        "train them, as in the paper)")
    g.add_argument("--gprec-base", default=DEFAULTS.gprec_base, choices=BASES,
                   help="the strategy's base representation h: the backbone's hidden state, "
                        "or the flattened embeddings (with the input strategy and "
                        "--prediction-units as --hidden-units, MLP_pred([E, r_g, r_p]) takes "
                        "the place of the MLP backbone's MLP, the paper's reading)")
    g.add_argument("--group-init-stddev", type=float, default=DEFAULTS.group_init_stddev,
                   help="not in the paper: std of a normal initializer of the group tables "
                        "P+ and P- (default: Glorot uniform)")
    g.add_argument("--noisy-prediction", action=argparse.BooleanOptionalAction,
                   default=DEFAULTS.noisy_prediction,
                   help="the strategy reads r_g from the Gumbel-sampled masks in training "
                        "(the paper; default); --no-noisy-prediction: from the noise-free "
                        "masks that inference uses (the group head and the contrastive and "
                        "orthogonal losses keep the sampled ones)")
    g.add_argument("--ensemble-weights", default=None, choices=ENSEMBLE_WEIGHTS,
                   help="equal: the ensemble strategy averages its predictions (the paper); "
                        "learned: softmax weights over them, trained from the plain average "
                        "(not in the paper; the default with the ensemble strategy)")
    g.add_argument("--ensemble-backbone-gradient", action=argparse.BooleanOptionalAction,
                   default=None,
                   help="the ensemble strategy's average trains the backbone (the paper); "
                        "--no-ensemble-backbone-gradient (the default with the ensemble "
                        "strategy): the backbone learns from its own BCE term alone, as it "
                        "would without GPRec")
    g.add_argument("--gprec-dropout", type=float, default=None,
                   help="dropout of GPRec's MLPs (default: --dropout with the ensemble "
                        "strategy, 0 with input and dp)")
    p.add_argument("--epochs", type=int, default=DEFAULTS.epochs,
                   help="most passes over the training split (early stopping may end sooner)")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                   help="training examples per step")
    p.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate,
                   help="Adam's initial learning rate")
    p.add_argument("--lr-schedule", default=DEFAULTS.lr_schedule, choices=LR_SCHEDULES,
                   help="step: multiply by --lr-gamma every --lr-step-epochs epochs; plateau: "
                        "multiply by --lr-plateau-factor after --lr-plateau-patience epochs "
                        "without a better validation AUC")
    p.add_argument("--lr-step-epochs", type=int, default=DEFAULTS.lr_step_epochs,
                   help="epochs between two cuts of the step schedule")
    p.add_argument("--lr-gamma", type=float, default=DEFAULTS.lr_gamma,
                   help="factor of each cut of the step schedule")
    p.add_argument("--lr-plateau-factor", type=float, default=DEFAULTS.lr_plateau_factor,
                   help="factor of each cut of the plateau schedule")
    p.add_argument("--lr-plateau-patience", type=int, default=DEFAULTS.lr_plateau_patience,
                   help="epochs without a better validation AUC before a plateau cut")
    p.add_argument("--embedding-dim", type=int, default=DEFAULTS.embedding_dim,
                   help="width d of every field embedding")
    p.add_argument("--embedding-l2", type=float, default=DEFAULTS.embedding_l2,
                   help="L2 penalty on the embedding table")
    p.add_argument("--hidden-units", type=int, nargs="+", default=list(DEFAULTS.hidden_units),
                   help="widths of the backbone's dense layers")
    p.add_argument("--dropout", type=float, default=DEFAULTS.dropout,
                   help="dropout rate after each dense layer")
    p.add_argument("--batch-norm", action="store_true",
                   help="batch normalisation in the dense layers")
    p.add_argument("--patience", type=int, default=DEFAULTS.patience,
                   help="early stopping patience on validation AUC")
    p.add_argument("--schedule-monitor", default=None, choices=SCHEDULE_MONITORS,
                   help="the validation AUC that reduce-on-plateau and early stopping follow: "
                        "the prediction's (auc) or, with GPRec, the backbone's own logit's "
                        "(backbone_auc), so that GPRec's heads do not move the backbone's "
                        "learning-rate cuts; the best epoch is always the prediction's "
                        "(default: backbone_auc for a GPRec ensemble that does not train "
                        "its backbone, auc otherwise)")
    p.add_argument("--steps-per-execution", type=int, default=DEFAULTS.steps_per_execution,
                   help="training steps per call into the compiled graph")
    p.add_argument("--eval-batch-size", type=int, default=DEFAULTS.eval_batch_size,
                   help="examples per evaluation step")
    p.add_argument("--seed", type=int, default=DEFAULTS.seed,
                   help="seed of the weights, the shuffling and the noise")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="run every seed and report mean ± std")
    p.add_argument("--max-steps", type=int, default=None, help="cap on training steps (smoke runs)")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--overwrite", action="store_true",
                   help="allow writing into a --model-dir that already holds results (and "
                        "start an interrupted run over instead of resuming it)")
    p.add_argument("--deterministic", action="store_true",
                   help="enable TensorFlow's op determinism: the same seed gives the same "
                        "metrics on the same machine")
    return p


def config_from_args(args: argparse.Namespace, seed: int) -> TrainConfig:
    return TrainConfig(
        dataset=args.dataset, split=args.split, backbone=args.backbone,
        backbone_options=args.backbone_options,
        user_level=args.user_level, baseline=args.baseline,
        baseline_options=args.baseline_options, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, lr_schedule=args.lr_schedule,
        lr_step_epochs=args.lr_step_epochs, lr_gamma=args.lr_gamma,
        lr_plateau_factor=args.lr_plateau_factor, lr_plateau_patience=args.lr_plateau_patience,
        embedding_dim=args.embedding_dim, embedding_l2=args.embedding_l2,
        hidden_units=tuple(args.hidden_units), dropout=args.dropout, batch_norm=args.batch_norm,
        patience=args.patience, schedule_monitor=args.schedule_monitor, seed=seed,
        max_steps=args.max_steps, eval_batch_size=args.eval_batch_size,
        steps_per_execution=args.steps_per_execution, deterministic=args.deterministic,
        distribute=args.distribute,
        history_length=args.history_length, udg_dim=args.udg_dim,
        udg_units=tuple(args.udg_units), gate_scale=args.gate_scale,
        gate_activation=args.gate_activation, udg_l2=args.udg_l2,
        udg_stop_item_gradient=args.udg_stop_item_gradient,
        udg_layers=None if args.udg_layers is None else tuple(args.udg_layers), meta=args.meta,
        meta_steps=args.meta_steps,
        strategy=args.strategy,
        groups=args.groups, temperature=args.temperature, reduce=args.reduce,
        ablation=args.ablation, group_weight=args.group_weight,
        contrast_weight=args.contrast_weight, orthogonal_weight=args.orthogonal_weight,
        backbone_weight=args.backbone_weight, contrast=args.contrast,
        classifier_units=None if args.classifier_units is None else tuple(
            args.classifier_units),
        classifier_shared=args.classifier_shared, dp_rank=args.dp_rank,
        head_units=tuple(args.head_units),
        individual_units=tuple(args.individual_units),
        gprec_dropout=args.gprec_dropout, residual=args.residual,
        stop_embedding_gradient=args.stop_embedding_gradient, gprec_base=args.gprec_base,
        group_init_stddev=args.group_init_stddev, noisy_prediction=args.noisy_prediction,
        ensemble_weights=args.ensemble_weights,
        ensemble_backbone_gradient=args.ensemble_backbone_gradient,
        prediction_units=None if args.prediction_units is None else tuple(args.prediction_units))
