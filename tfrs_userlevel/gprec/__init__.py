"""GPRec: bi-level (group + individual) user modeling (docs/gprec.md)."""

from tfrs_userlevel.gprec.groups import (
    DualGroupEmbedding,
    GroupClassifier,
    GumbelMask,
    SingleGroupEmbedding,
)
from tfrs_userlevel.gprec.individual import IndividualPreference, OrthogonalLoss
from tfrs_userlevel.gprec.layer import GPRec
from tfrs_userlevel.gprec.presets import ABLATIONS, PRESETS
from tfrs_userlevel.gprec.strategies import (
    STRATEGIES,
    DynamicParameterStrategy,
    EnsembleStrategy,
    InputStrategy,
)

__all__ = [
    "ABLATIONS", "PRESETS", "STRATEGIES", "DualGroupEmbedding", "DynamicParameterStrategy",
    "EnsembleStrategy", "GPRec", "GroupClassifier", "GumbelMask", "IndividualPreference",
    "InputStrategy", "OrthogonalLoss", "SingleGroupEmbedding",
]
