"""SYNTHETIC click data with planted user groups and individual tastes (not real data).

For scale tests and for checking that GPRec finds groups that are really
there. Every user belongs to one of `groups` planted groups; a group has a
taste vector t_g, a user's taste is t_g plus individual noise, and items have
latent vectors. The click probability is σ(scale·<taste_u, v_i> + b_i). The
profile fields (age, gender, occupation) depend on the group, so they carry
some of the group signal, as real profiles do. Rows are generated in chunks
from a seed, so any number of rows streams without being held in memory.

Fields (FEATURE_SPEC): item_id, genre (item); user_id (personal); age,
gender, occupation (user_other); label.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

ITEM = "item_id"
FEATURE_SPEC = [
    {"name": "item_id", "dtype": "int64", "role": "item"},
    {"name": "genre", "dtype": "int64", "role": "item"},
    {"name": "user_id", "dtype": "int64", "role": "user_personal"},
    {"name": "age", "dtype": "int64", "role": "user_other"},
    {"name": "gender", "dtype": "string", "role": "user_other"},
    {"name": "occupation", "dtype": "int64", "role": "user_other"},
]


class SyntheticClicks:
    """A seeded synthetic world: users in planted groups, items, and click rows.

    Args:
      users, items, groups: Sizes of the world.
      dim: Taste dimension.
      individual: Std of a user's own taste around its group's.
      scale: Sharpness of the click probability.
      seed: Everything (world and rows) follows from it.
    """

    def __init__(self, users: int = 5000, items: int = 2000, groups: int = 8, dim: int = 8,
                 individual: float = 0.5, scale: float = 1.5, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.users, self.items, self.groups, self.seed = users, items, groups, seed
        self.group = rng.integers(0, groups, users)                       # planted groups
        group_taste = rng.normal(0.0, 1.0, (groups, dim))
        self.taste = group_taste[self.group] + rng.normal(0.0, individual, (users, dim))
        self.item_vectors = rng.normal(0.0, 1.0, (items, dim)) / np.sqrt(dim)
        self.item_bias = rng.normal(0.0, 0.5, items)
        self.genre = np.argmax(self.item_vectors[:, :4], axis=1) * 5 + rng.integers(0, 5, items)
        # Profiles drawn from per-group distributions: informative, not decisive.
        self.age = (rng.integers(0, 3, users) + self.group * 2) % 7
        self.gender = np.where((self.group % 2 == 0) ^ (rng.random(users) < 0.2), "F", "M")
        self.occupation = (self.group * 3 + rng.integers(0, 4, users)) % 21
        self.scale = scale

    def chunks(self, rows: int, chunk_rows: int = 1 << 18,
               part: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """`rows` click rows in chunks of `chunk_rows`; `part` selects an independent stream
        (e.g. 0 train, 1 validation, 2 test). The rows depend on (seed, part, chunk_rows)."""
        rng = np.random.default_rng([self.seed, part])
        for start in range(0, rows, chunk_rows):
            n = min(chunk_rows, rows - start)
            user = rng.integers(0, self.users, n)
            item = rng.integers(0, self.items, n)
            logit = (self.scale * np.einsum("nd,nd->n", self.taste[user], self.item_vectors[item])
                     * np.sqrt(self.item_vectors.shape[1]) + self.item_bias[item])
            label = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
            yield {"item_id": item + 1, "genre": self.genre[item], "user_id": user + 1,
                   "age": self.age[user], "gender": self.gender[user],
                   "occupation": self.occupation[user], "label": label}

    def columns(self, rows: int, part: int = 0) -> dict[str, np.ndarray]:
        """All `rows` rows of stream `part` in memory."""
        parts = list(self.chunks(rows, part=part))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def splits(self, rows: int) -> dict[str, dict[str, np.ndarray]]:
        """{"train", "validation", "test"}: 80/10/10 of `rows`, independent streams."""
        n_val = rows // 10
        return {"train": self.columns(rows - 2 * n_val, 0),
                "validation": self.columns(n_val, 1), "test": self.columns(n_val, 2)}
