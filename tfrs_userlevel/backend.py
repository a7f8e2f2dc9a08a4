"""Selects Keras 2 (`tf_keras`) for TensorFlow before TensorFlow is imported.

TensorFlow Recommenders 0.7.x is written against Keras 2. TensorFlow >= 2.16
resolves `tf.keras` to Keras 3 unless `TF_USE_LEGACY_KERAS=1` is set before
`tf.keras` is first touched, so every module of this package imports
`tf` and `keras` from here and never from TensorFlow directly.
"""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

try:
    import tf_keras as keras  # noqa: E402
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(
        "tfrs_userlevel needs Keras 2 through the `tf-keras` package "
        "(TensorFlow Recommenders does not support Keras 3). Install it with "
        "`pip install 'tf-keras==2.21.*'`."
    ) from error


def _check_legacy_keras() -> None:
    """Raises ImportError when `tf.keras` already resolved to Keras 3."""
    resolved = tf.keras.layers.Dense
    if resolved is not keras.layers.Dense:
        raise ImportError(
            "tf.keras resolved to Keras 3 before tfrs_userlevel was imported "
            f"(tf.keras.layers.Dense is {resolved.__module__}). TensorFlow "
            "Recommenders needs Keras 2: set TF_USE_LEGACY_KERAS=1 in the "
            "environment before Python starts (`export TF_USE_LEGACY_KERAS=1`), "
            "or import tfrs_userlevel before anything touches tf.keras."
        )


_check_legacy_keras()

__all__ = ["keras", "tf"]

