"""Views of the field embeddings E [B, F, d] by role, cut from one split.

`FieldViews` gives E[:, positions] for several position lists (the item,
user and personal fields of `RankingModel`) from ONE `tf.split` of E.
"""

from __future__ import annotations

from collections.abc import Mapping

from tfrs_userlevel.backend import tf


def _runs(positions: list[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive positions, as [start, stop) pairs."""
    runs = []
    for p in positions:
        if runs and runs[-1][1] == p:
            runs[-1] = (runs[-1][0], p + 1)
        else:
            runs.append((p, p + 1))
    return runs


class FieldViews:
    """E[:, positions] for several position lists, from ONE split of E [B, F, d].

    Each list (item, user, personal fields) is a concatenation of blocks of one
    `tf.split`, in position order. Its gradient is one concat, where a gather
    per list costs a scatter over B·F rows each and a slice per list a
    zero-padded [B, F, d] tensor each (together the largest non-matmul cost of
    a GPRec training step on CPU).
    """

    def __init__(self, num_fields: int, groups: Mapping[str, list[int]]):
        cuts = {0, num_fields}
        for positions in groups.values():
            for start, stop in _runs(positions):
                cuts.update((start, stop))
        self.cuts = sorted(cuts)
        self.blocks = {name: self._blocks(positions) for name, positions in groups.items()}

    def _blocks(self, positions) -> list[int]:
        """Indices of the split's blocks that make up `positions`, in order."""
        blocks = []
        for start, stop in _runs(positions):
            i = self.cuts.index(start)
            while self.cuts[i] < stop:
                blocks.append(i)
                i += 1
        return blocks

    def __call__(self, embeddings: tf.Tensor) -> dict[str, tf.Tensor]:
        sizes = [b - a for a, b in zip(self.cuts[:-1], self.cuts[1:], strict=True)]
        blocks = tf.split(embeddings, sizes, axis=1) if len(sizes) > 1 else [embeddings]
        out = {}
        for name, indices in self.blocks.items():
            parts = [blocks[i] for i in indices]
            if not parts:
                out[name] = embeddings[:, :0]
            else:
                out[name] = parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)
        return out
