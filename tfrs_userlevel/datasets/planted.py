"""SYNTHETIC planted worlds: generated clicks whose structure is known (not real data).

They check a user-level mechanism where its assumption holds by construction:
if it does not win there, the defect is in the mechanism or its code, not in
the data. Each world is declared here, with its logit, before any result is
read.

`AttributeWeightingWorld`, the UDG world. Every item has `attributes`
categorical fields (attr_0, ...), each of `values` values; value v of
attribute a carries a score s_a(v) ~ N(0, 1). Every user weighs the
attributes with weights w_u ∈ R^A, drawn around its segment's weights (the
segment is a profile field, so the profile says part of it). The click
probability is

    σ(scale · Σ_a w_{u,a} · s_a(attr_a(i)) / √A + b_i)

a multiplicative, user-specific weighting of what the item's fields say. UDG
computes per-user gates that rescale the hidden units of the MLP that reads
the item's fields, which can express such a weighting directly; an MLP over
the concatenated embeddings has to build each product w_{u,a}·s_a from sums
and ReLUs.

The `SyntheticClicks` world (`datasets.synthetic`) plants another structure,
a matrix factorisation: its logit ⟨taste_u, v_i⟩ pairs two latent vectors
that only the user and item ids carry (its genre is a coarse summary of v_i).
That is a user-specific weighting of latent item factors, not of item
attributes a model can read, so it tests GPRec's groups, not UDG's gates.

Fields (`FEATURE_SPEC`): item_id and attr_0 ... (item), user_id (personal),
segment (user_other), label. Rows are drawn user and item uniformly, from a
seed and a stream number, so every split is reproducible.
"""

from __future__ import annotations

import numpy as np

SEGMENT = "segment"


class AttributeWeightingWorld:
    """The UDG world (see the module docstring).

    Args:
      users, items: Sizes of the world.
      attributes: A, the item's categorical attribute fields.
      values: Values per attribute.
      segments: Profile segments; a user's weights are its segment's plus noise.
      individual: Std of a user's weights around its segment's.
      scale: Sharpness of the click probability.
      signed: Users' weights of either sign; False: their absolute values, so every
        user weighs every attribute's scores the same way round, in its own measure.
      seed: Everything (world and rows) follows from it.
    """

    def __init__(self, users: int = 2000, items: int = 1000, attributes: int = 4,
                 values: int = 8, segments: int = 4, individual: float = 0.7,
                 scale: float = 2.0, signed: bool = True, seed: int = 0):
        for name, value in (("users", users), ("items", items), ("attributes", attributes),
                            ("values", values), ("segments", segments)):
            if value < 1:
                raise ValueError(f"AttributeWeightingWorld: {name} must be >= 1, got {value}")
        rng = np.random.default_rng([seed, 7])
        self.users, self.items, self.attributes, self.seed = users, items, attributes, seed
        self.scale = float(scale)
        self.value_score = rng.normal(0.0, 1.0, (attributes, values))          # s_a(v)
        self.item_values = rng.integers(0, values, (items, attributes))        # attr_a(i)
        self.item_bias = rng.normal(0.0, 0.3, items)                           # b_i
        self.segment = rng.integers(0, segments, users)
        segment_weights = rng.normal(0.0, 1.0, (segments, attributes))
        self.weights = (segment_weights[self.segment]
                        + rng.normal(0.0, individual, (users, attributes)))    # w_u
        if not signed:
            self.weights = np.abs(self.weights)

    @property
    def feature_spec(self) -> list[dict]:
        """The fields of the rows, as a `FeatureSpec` config."""
        return ([{"name": "item_id", "dtype": "int64", "role": "item"}]
                + [{"name": f"attr_{a}", "dtype": "int64", "role": "item"}
                   for a in range(self.attributes)]
                + [{"name": "user_id", "dtype": "int64", "role": "user_personal"},
                   {"name": SEGMENT, "dtype": "int64", "role": "user_other"}])

    def logit(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        """The planted click logit of (user, item) index pairs: float [N]."""
        scores = self.value_score[np.arange(self.attributes), self.item_values[item]]
        weighted = np.einsum("na,na->n", self.weights[user], scores)
        return self.scale * weighted / np.sqrt(self.attributes) + self.item_bias[item]

    def columns(self, rows: int, part: int = 0, users: np.ndarray | None = None
                ) -> dict[str, np.ndarray]:
        """`rows` click rows of stream `part` (0 train, 1 validation, 2 test, ...), with
        the planted probability of each row under "planted_probability"; each row's
        user is drawn from `users` (0-based indices; default: every user)."""
        rng = np.random.default_rng([self.seed, 11, part])
        user = (rng.integers(0, self.users, rows) if users is None
                else np.asarray(users)[rng.integers(0, len(users), rows)])
        return self._rows(rng, user)

    def rows_for(self, user: np.ndarray, part: int) -> dict[str, np.ndarray]:
        """One click row of stream `part` per entry of `user` (0-based indices), in order."""
        return self._rows(np.random.default_rng([self.seed, 11, part]), np.asarray(user))

    def _rows(self, rng: np.random.Generator, user: np.ndarray) -> dict[str, np.ndarray]:
        item = rng.integers(0, self.items, len(user))
        probability = 1.0 / (1.0 + np.exp(-self.logit(user, item)))
        out = {"item_id": item + 1, "user_id": user + 1, SEGMENT: self.segment[user] + 1,
               "label": (rng.random(len(user)) < probability).astype(np.int64),
               "planted_probability": probability}
        for a in range(self.attributes):
            out[f"attr_{a}"] = self.item_values[item, a] + 1
        return out

    def splits(self, rows: int) -> dict[str, dict[str, np.ndarray]]:
        """{"train", "validation", "test"}: 80/10/10 of `rows`, independent streams."""
        n_val = rows // 10
        return {"train": self.columns(rows - 2 * n_val, 0),
                "validation": self.columns(n_val, 1), "test": self.columns(n_val, 2)}
