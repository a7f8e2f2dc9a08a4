"""The prediction network of a ranking model: a backbone or a user-modeling baseline.

`build_network` turns options {"name": ..., **constructor options} into the
layer, filling in what comes from the data (the head's starting bias, a
domain baseline's number of domains); `domain_ids` says where a domain
baseline's field sits in the lookup's ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tfrs_userlevel import backbones as backbone_registry
from tfrs_userlevel import baselines as baseline_registry
from tfrs_userlevel.backend import keras
from tfrs_userlevel.features import FeatureSpec
from tfrs_userlevel.lookup import FeatureLookup


def build_network(network: keras.layers.Layer | Mapping[str, Any] | None, spec: FeatureSpec,
                  vocabularies: Mapping[str, list], positive_rate: float) -> keras.layers.Layer:
    """A layer is returned as it is; options (None: {"name": "mlp"}) build one, with the
    head's bias at logit(`positive_rate`) unless "output_bias" is given, and a domain
    baseline's `num_domains` from its field's vocabulary unless given."""
    if network is None:
        network = {"name": "mlp"}
    if not isinstance(network, Mapping):
        return network
    options = dict(network)
    options.setdefault("output_bias", float(np.log(positive_rate / (1.0 - positive_rate))))
    name = options.pop("name")
    if name not in baseline_registry.BASELINES:
        return backbone_registry.get(name, **options)
    if issubclass(baseline_registry.BASELINES[name], baseline_registry.DomainBaseline):
        field = options.get("domain_field", "gender")
        options.setdefault("num_domains", len(
            baseline_registry.domain_vocabulary(spec, vocabularies, field)))
    return baseline_registry.get(name, **options)


def domain_ids(network: keras.layers.Layer, spec: FeatureSpec,
               vocabularies: Mapping[str, list], lookup: FeatureLookup
               ) -> tuple[int | None, int | None]:
    """(column of the domain field in ids["ids"], fused id of its OOV row) for a network
    that divides users by a field, else (None, None); refuses a network whose number of
    domains is not the field's number of known values."""
    if "domain" not in network.requires:
        return None, None
    field = network.domain_field
    known = len(baseline_registry.domain_vocabulary(spec, vocabularies, field))
    if network.num_domains != known:
        raise ValueError(
            f"RankingModel: the backbone expects {network.num_domains} values of "
            f"domain field {field!r}, its vocabulary has {known}")
    return lookup.single_fields.index(field), lookup.oov_id(field)
