"""tfrs-userlevel: user-level modeling layers and TFRS ranking models for CTR.

Importing this package selects Keras 2 (`tf_keras`) for TensorFlow (see
`tfrs_userlevel.backend`); TensorFlow itself is imported on first use of an
attribute below, so `tfrs_userlevel.__version__` and the command line's
start-up (which silences TensorFlow's C++ logging first) stay cheap.
"""

import importlib
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before anything imports TensorFlow

__version__ = "0.1.0"

# name -> (module, attribute or None for the module itself)
_EXPORTS = {
    "keras": ("tfrs_userlevel.backend", "keras"),
    "tf": ("tfrs_userlevel.backend", "tf"),
    "backbones": ("tfrs_userlevel.backbones", None),
    "data": ("tfrs_userlevel.data", None),
    "metrics": ("tfrs_userlevel.metrics", None),
    "FieldEmbedding": ("tfrs_userlevel.embedding", "FieldEmbedding"),
    "FeatureLookup": ("tfrs_userlevel.lookup", "FeatureLookup"),
    "FeatureSpec": ("tfrs_userlevel.features", "FeatureSpec"),
    "FeatureSpecError": ("tfrs_userlevel.features", "FeatureSpecError"),
    "Field": ("tfrs_userlevel.features", "Field"),
    "RankingModel": ("tfrs_userlevel.models", "RankingModel"),
}

__all__ = [name for name in _EXPORTS if name not in ("keras", "tf")]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tfrs_userlevel' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    importlib.import_module("tfrs_userlevel.backend")  # Keras 2 checked before anything else
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_EXPORTS])
