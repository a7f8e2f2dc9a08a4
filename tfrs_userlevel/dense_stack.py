"""`DenseStack`: an MLP whose weights can be held fixed for one pass.

GPRec's contrastive pass (eq. 10) runs the group head MLP_g again with its
weights held fixed, so that only the masks and group embeddings receive that
gradient. Keras `Dense` layers cannot do that per call, so this stack owns its
kernels and applies `tf.stop_gradient` to them when `frozen=True`.

The input may also be a list of parts read as their concatenation; a part that
is not a tensor but has `shape` and `matmul(kernel)` (GPRec's factored
representations, `tfrs_userlevel.gprec.factored`) meets its rows of the first
kernel through its own `matmul`, without being built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfrs_userlevel.backend import keras, tf


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class DenseStack(keras.layers.Layer):
    """Dense layers (activation + dropout after each) and an optional linear output.

    Args:
      hidden_units: Hidden widths, e.g. (64, 32, 16).
      output_units: Width of a final linear layer; None for none (the output
        is then the last hidden layer).
      activation: Hidden activation.
      dropout: Dropout after every hidden layer (training only).
      output_bias: Initial value of the output bias (e.g. logit(p̄)).

    Call:
      x: float32 [B, D], or a list of parts [B, D_k] (tensors or factored
        representations) read as their concatenation along the last axis.
      training: Dropout on/off.
      frozen: Apply the layers with `tf.stop_gradient` on every weight: the
        output still has gradients w.r.t. `x`, none w.r.t. the weights.

    Returns:
      float32 [B, output_units or hidden_units[-1]].
    """

    def __init__(self, hidden_units: Sequence[int] = (64, 32, 16), output_units: int | None = 1,
                 activation: str = "relu", dropout: float = 0.0, output_bias: float = 0.0,
                 **kwargs):
        super().__init__(**kwargs)
        if not hidden_units and output_units is None:
            raise ValueError("DenseStack: needs hidden_units or output_units")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"DenseStack: dropout must lie in [0, 1), got {dropout}")
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.output_units = None if output_units is None else int(output_units)
        self.activation = activation
        self.dropout = float(dropout)
        self.output_bias = float(output_bias)
        self._activation = keras.activations.get(activation)
        self._dropout = (keras.layers.Dropout(self.dropout)
                         if self.dropout and self.hidden_units else None)
        if self._dropout is not None:  # weightless; a head only serving calls is saved too
            self._dropout.built = True

    def build(self, input_shape):
        if _is_shape_list(input_shape):  # a list of parts: their total width
            fan_in = sum(int(tf.TensorShape(shape)[-1]) for shape in input_shape)
        else:
            fan_in = int(input_shape[-1])
        self._dense_params = []
        widths = self.hidden_units + ((self.output_units,) if self.output_units else ())
        for i, width in enumerate(widths):
            is_output = self.output_units is not None and i == len(widths) - 1
            kernel = self.add_weight(name=f"kernel_{i}", shape=(fan_in, width),
                                     initializer="glorot_uniform")
            bias = self.add_weight(
                name=f"bias_{i}", shape=(width,),
                initializer=keras.initializers.Constant(self.output_bias if is_output else 0.0))
            self._dense_params.append((kernel, bias))
            fan_in = width
        super().build(input_shape)

    def call(self, x, training: bool = False, frozen: bool = False) -> tf.Tensor:
        params = self._dense_params
        if frozen:
            params = [(tf.stop_gradient(k), tf.stop_gradient(b)) for k, b in params]
        if self.output_units is None:
            return self._hidden(x, params, training)
        kernel, bias = params[-1]
        return _matmul(self._hidden(x, params[:-1], training), kernel) + bias

    def affine_output(self, x, training: bool = False):
        """(z, W, b): the last hidden layer z [B, H] and the linear output layer, so that
        the output is z·W + b (needs `output_units` and at least one hidden layer)."""
        if self.output_units is None or not self.hidden_units:
            raise ValueError("DenseStack.affine_output needs hidden layers and an output layer")
        if not self.built:
            self._maybe_build(x)
        kernel, bias = self._dense_params[-1]
        return self._hidden(x, self._dense_params[:-1], training), kernel, bias

    def _hidden(self, x, params, training: bool):
        """The hidden layers (activation, then dropout) given as (kernel, bias) pairs."""
        for kernel, bias in params:
            x = self._activation(_matmul(x, kernel) + bias)
            if self._dropout is not None:
                x = self._dropout(x, training=training)
        return x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden_units": list(self.hidden_units),
                "output_units": self.output_units, "activation": self.activation,
                "dropout": self.dropout, "output_bias": self.output_bias}


def _is_shape_list(input_shape) -> bool:
    """True for a list of shapes (the input was a list of parts), False for one shape."""
    return (isinstance(input_shape, list | tuple) and len(input_shape) > 0
            and all(isinstance(shape, tf.TensorShape | list | tuple) for shape in input_shape))


def _matmul(x, kernel: tf.Tensor) -> tf.Tensor:
    """x·kernel for a tensor, or for a list of parts read as their concatenation."""
    return _matmul_parts(x, kernel) if isinstance(x, list | tuple) else tf.matmul(x, kernel)


def _matmul_parts(parts, kernel: tf.Tensor) -> tf.Tensor:
    """concat(parts)·kernel as Σ_k part_k·kernel_k, kernel_k the rows that read part k: no
    [B, Σ D_k] concatenation is built (on CPU that copy, and the slicing of its gradient,
    cost more than the extra matmuls); a factored part applies its own `matmul`."""
    total, start = None, 0
    for part in parts:
        rows = int(part.shape[-1])
        block = kernel[start:start + rows]
        term = part.matmul(block) if hasattr(part, "materialize") else tf.matmul(part, block)
        total = term if total is None else total + term
        start += rows
    if start != int(kernel.shape[0]):
        raise ValueError(f"DenseStack: the parts are {start} wide, the first layer reads "
                         f"{int(kernel.shape[0])}")
    return total
