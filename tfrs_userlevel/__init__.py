"""tfrs-userlevel: user-level modeling layers and TFRS ranking models for CTR.

Importing this package selects Keras 2 (`tf_keras`) for TensorFlow; see
`tfrs_userlevel.backend`.
"""

from tfrs_userlevel.backend import keras, tf  # noqa: F401  (must come first)

from tfrs_userlevel import backbones, data, metrics  # noqa: E402
from tfrs_userlevel.embedding import FieldEmbedding  # noqa: E402
from tfrs_userlevel.features import Field, FeatureLookup, FeatureSpec, FeatureSpecError  # noqa: E402
from tfrs_userlevel.models import RankingModel  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "FeatureLookup", "FeatureSpec", "FeatureSpecError", "Field", "FieldEmbedding",
    "RankingModel", "backbones", "data", "metrics",
]
