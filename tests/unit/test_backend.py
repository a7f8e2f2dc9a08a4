"""Keras 2 selection and the error when Keras 3 got there first."""


import os
import subprocess
import sys

from tfrs_userlevel import keras, tf


def test_tf_keras_is_keras_2():
    assert tf.keras.layers.Dense is keras.layers.Dense
    assert keras.__version__.startswith("2.")
    assert os.environ["TF_USE_LEGACY_KERAS"] == "1"


def test_keras_3_already_resolved_raises_an_actionable_import_error():
    code = ("import tensorflow as tf; tf.keras.layers.Dense\n"
            "from tfrs_userlevel import RankingModel\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode != 0
    assert "ImportError: tf.keras resolved to Keras 3" in result.stderr
    assert "TF_USE_LEGACY_KERAS=1" in result.stderr
