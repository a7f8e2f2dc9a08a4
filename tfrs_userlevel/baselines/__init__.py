"""User-modeling baselines (the lower half of the GPRec paper's Table II).

Each is a complete prediction network with the backbone contract plus the
user context (see `baselines.base`): `--baseline NAME` builds it in place of
the backbone. `BASELINES` maps each name to its class; `get(name,
**options)` builds one and rejects options it does not have.

| name   | paper                                  | user modeling                          |
|--------|----------------------------------------|----------------------------------------|
| mmoe   | Ma et al., KDD 2018                    | one task (gate + tower) per division   |
| ple    | Tang et al., RecSys 2020               | task-specific and shared experts       |
| star   | Sheng et al., CIKM 2021                | star FCN, partitioned norm, auxiliary  |
| apg    | Yan et al., NeurIPS 2022               | per-user generated MLP weights         |
| pepnet | Chang et al., KDD 2023                 | embedding and layer gates (Gate NU)    |
| dgpm   | Ma et al., CIKM 2023                   | group memory -> group MLP parameters   |
"""

from __future__ import annotations

from tfrs_userlevel.backbones import constructor_options
from tfrs_userlevel.baselines.apg import AdaptiveDense, APGBaseline
from tfrs_userlevel.baselines.base import (
    DomainBaseline,
    UserModelingBackbone,
    domain_vocabulary,
    domain_weights,
)
from tfrs_userlevel.baselines.dgpm import DGPMBaseline, GroupMemory
from tfrs_userlevel.baselines.mmoe import MMoEBaseline, TaskTowers
from tfrs_userlevel.baselines.pepnet import GateNU, PEPNetBaseline
from tfrs_userlevel.baselines.ple import PLEBaseline
from tfrs_userlevel.baselines.star import PartitionedNormalization, STARBaseline, StarDense

BASELINES = {
    "mmoe": MMoEBaseline,
    "ple": PLEBaseline,
    "star": STARBaseline,
    "apg": APGBaseline,
    "pepnet": PEPNetBaseline,
    "dgpm": DGPMBaseline,
}


def options(name: str) -> list[str]:
    """The constructor options of baseline `name`."""
    return constructor_options(BASELINES[name], UserModelingBackbone.__mro__[1])


def get(name: str, **kwargs) -> UserModelingBackbone:
    """Builds the baseline registered as `name`."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; valid choices are {sorted(BASELINES)}")
    unknown = sorted(set(kwargs) - set(options(name)))
    if unknown:
        raise ValueError(f"baseline {name!r} has no option(s) {unknown}; its options are "
                         f"{options(name)}")
    return BASELINES[name](**kwargs)


__all__ = ["APGBaseline", "AdaptiveDense", "BASELINES", "DGPMBaseline", "DomainBaseline",
           "GateNU", "GroupMemory", "MMoEBaseline", "PEPNetBaseline", "PLEBaseline",
           "PartitionedNormalization", "STARBaseline", "StarDense", "TaskTowers",
           "UserModelingBackbone", "domain_vocabulary", "domain_weights", "get", "options"]
