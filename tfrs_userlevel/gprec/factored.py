"""GPRec's wide representations kept in factored form (exact algebra, less work).

r_g (eq. 6, "concat") is G·d wide (960 at the defaults) and r_p (eq. 12) has
the same width, yet every consumer reads them through a linear map (the first
layer of the group head, of MLP_pred, of the dp generator, of the individual
head) or through a cosine (eq. 13). Both are affine in something small:

* r_g = concat_g(P⁻_g + m_g·(P⁺_g − P⁻_g)) is affine in the B×G masks, so
  r_g·W = vec(P⁻)·W + m·A with A_g = (P⁺_g − P⁻_g)·W_g ∈ R^{G×K}, where W_g
  are the d rows of W that read group g. A is computed once per batch.
* r_p = z·W_o + b_o is affine in MLP_p's last hidden layer z ∈ R^{B×H}, so
  r_p·W = z·(W_o·W) + b_o·W.

So a [B, G·d]·[G·d, K] matmul becomes [B, G]·[G, K] (or [B, H]·[H, K]) plus
per-batch work. In exact arithmetic the values and gradients are those of the
built tensors; in float32 they agree to rounding (tests/unit/gprec/test_layers.py
compares both forms). One place differs in kind: the norms of eq. 13 come from
the expanded squares (‖a + m·b‖² = ‖a‖² + 2m⟨a, b⟩ + m²‖b‖²), whose float32
error is absolute, about 1e-7 of Σ_g(‖P⁻_g‖² + ‖P⁺_g‖²), not relative to
‖r_g‖². Where r_g is far smaller than its tables (P⁺_g ≈ −P⁻_g at m = ½) the
cosine loses relative precision, and the squared norm is clamped at 0 (its
gradient there is 0). A test bounds the error at the scales training produces
and in that cancelling case. `materialize()` builds the tensor where a consumer
needs it.
"""

from __future__ import annotations

from tfrs_userlevel.backend import tf


class MaskedGroups:
    """r_g = concat_g(P⁻_g + m_g·(P⁺_g − P⁻_g)), kept as (m, P⁻, P⁺).

    Args:
      inside: m_{g,1} [B, G] ("in g" masks; pass 1 − m for the contrast r̄_g).
      negative: P⁻ [G, d].
      positive: P⁺ [G, d].
    """

    def __init__(self, inside: tf.Tensor, negative: tf.Tensor, positive: tf.Tensor):
        self.inside = inside
        self.negative = negative
        self.step = positive - negative
        self.groups, self.dim = int(negative.shape[0]), int(negative.shape[1])
        self.shape = tf.TensorShape([None, self.groups * self.dim])

    def matmul(self, kernel: tf.Tensor) -> tf.Tensor:
        """r_g·W for W [G·d, K] -> [B, K]."""
        per_group = tf.reshape(kernel, [self.groups, self.dim, -1])
        constant = tf.matmul(tf.reshape(self.negative, [1, -1]), kernel)       # [1, K]
        slopes = tf.einsum("gd,gdk->gk", self.step, per_group)                # [G, K]
        return constant + tf.matmul(self.inside, slopes)

    def materialize(self) -> tf.Tensor:
        """r_g [B, G·d]."""
        groups = self.negative + self.inside[..., None] * self.step
        return tf.reshape(groups, [-1, self.groups * self.dim])

    def squared_norm(self) -> tf.Tensor:
        """‖r_g‖² [B] = Σ_g ‖P⁻_g‖² + 2·m_g·⟨P⁻_g, Δ_g⟩ + m_g²·‖Δ_g‖², Δ = P⁺ − P⁻."""
        base = tf.reduce_sum(tf.square(self.negative))
        cross = 2.0 * tf.reduce_sum(self.negative * self.step, axis=-1)        # [G]
        slope = tf.reduce_sum(tf.square(self.step), axis=-1)                   # [G]
        return base + tf.linalg.matvec(self.inside, cross) + tf.linalg.matvec(
            tf.square(self.inside), slope)


class AffineOutput:
    """r = z·W + b (a linear output layer), kept as (z, W, b).

    Args:
      hidden: z [B, H].
      kernel: W [H, D].
      bias: b [D].
    """

    def __init__(self, hidden: tf.Tensor, kernel: tf.Tensor, bias: tf.Tensor):
        self.hidden, self.kernel, self.bias = hidden, kernel, bias
        self.shape = tf.TensorShape([None, int(kernel.shape[1])])

    def matmul(self, kernel: tf.Tensor) -> tf.Tensor:
        """r·V for V [D, K] -> [B, K]."""
        return (tf.matmul(self.hidden, tf.matmul(self.kernel, kernel))
                + tf.matmul(self.bias[None, :], kernel))

    def materialize(self) -> tf.Tensor:
        """r [B, D]."""
        return tf.matmul(self.hidden, self.kernel) + self.bias

    def squared_norm(self) -> tf.Tensor:
        """‖r‖² [B] = z·(W·Wᵀ)·zᵀ + 2·z·(W·b) + ‖b‖²."""
        gram = tf.matmul(self.kernel, self.kernel, transpose_b=True)            # [H, H]
        quadratic = tf.reduce_sum(tf.matmul(self.hidden, gram) * self.hidden, axis=-1)
        return (quadratic + 2.0 * tf.linalg.matvec(self.hidden, tf.linalg.matvec(
            self.kernel, self.bias)) + tf.reduce_sum(tf.square(self.bias)))


def group_dot_affine(groups: MaskedGroups, individual: AffineOutput) -> tf.Tensor:
    """⟨r_g, r_p⟩ [B] without building either: with r_p,g = z·W_g + b_g (W_g the d
    columns of W for group g), ⟨r_g, r_p⟩ = z·(W·vec(P⁻)) + ⟨vec(P⁻), b⟩
    + Σ_g m_g·(z·(W_g·Δ_g) + ⟨Δ_g, b_g⟩)."""
    width = groups.groups * groups.dim
    base = tf.reshape(groups.negative, [width])
    kernel = tf.reshape(individual.kernel, [-1, groups.groups, groups.dim])     # [H, G, d]
    bias = tf.reshape(individual.bias, [groups.groups, groups.dim])
    slopes = tf.einsum("hgd,gd->hg", kernel, groups.step)                      # [H, G]
    offsets = tf.reduce_sum(groups.step * bias, axis=-1)                       # [G]
    per_group = tf.matmul(individual.hidden, slopes) + offsets                 # [B, G]
    constant = (tf.linalg.matvec(individual.hidden, tf.linalg.matvec(individual.kernel, base))
                + tf.reduce_sum(base * individual.bias))
    return constant + tf.reduce_sum(groups.inside * per_group, axis=-1)


def materialize(part):
    """The tensor of a factored representation (a tensor or None is returned as is)."""
    if isinstance(part, MaskedGroups | AffineOutput):
        return part.materialize()
    return part
