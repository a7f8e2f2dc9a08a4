"""A model from a `TrainConfig`: the backbone or baseline, GPRec and UDG layers.

A `ModelBuilder` is any (feature spec, vocabularies, positive rate of the
training rows) -> unbuilt `RankingModel`; `build_model` is the one made from
a configuration's own model options.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from tfrs_userlevel.backend import keras
from tfrs_userlevel.config.errors import ConfigError
from tfrs_userlevel.features import FeatureSpec, field_rows, fused_vocabulary_size
from tfrs_userlevel.gprec import ABLATIONS, GPRec
from tfrs_userlevel.models import RankingModel
from tfrs_userlevel.training.train_config import TrainConfig
from tfrs_userlevel.udg import UserDependentGating

ModelBuilder = Callable[[FeatureSpec, Mapping[str, list], float], RankingModel]


def build_model(config: TrainConfig, feature_spec: FeatureSpec,
                vocabularies: Mapping[str, list], positive_rate: float) -> RankingModel:
    """The unbuilt model `config` describes: its backbone (or baseline) with the shared
    MLP options, and its GPRec and UDG layers when `config.user_level` names them."""
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
        hidden_units=config.udg_units, gate_scale=config.gate_scale,
        gate_activation=config.gate_activation, l2=config.udg_l2,
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
