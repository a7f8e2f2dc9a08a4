"""tfrs-userlevel: user-level modeling layers and TFRS ranking models for CTR.

Importing this package selects Keras 2 (`tf_keras`) for TensorFlow; see
`tfrs_userlevel.backend`.
"""

from tfrs_userlevel.backend import keras, tf  # noqa: F401, I001  (must come first)
from tfrs_userlevel import backbones, data, metrics
from tfrs_userlevel.embedding import FieldEmbedding
from tfrs_userlevel.features import FeatureLookup, FeatureSpec, FeatureSpecError, Field
from tfrs_userlevel.models import RankingModel

__version__ = "0.1.0"

__all__ = [
    "FeatureLookup", "FeatureSpec", "FeatureSpecError", "Field", "FieldEmbedding",
    "RankingModel", "backbones", "data", "metrics",
]
