"""The one input structure of a ranking model's prediction network.

`RankingModel` looks its ids up once and builds a mapping of named tensors;
every backbone and user-modeling baseline takes that mapping, and says in its
`requires` set which entries beyond "embeddings" it reads, so the model
builds only those:

* "embeddings": float32 [B, F, d], every field's embedding (always there);
* "first_order": float32 [B, F, 1], one weight per id (wide / FM parts);
* "item", "user", "personal": float32 [B, F_role, d], the embeddings of the
  item fields, of every user field, and of the ID-like user fields;
* "behavior": {"sequence": float32 [B, L, D_b] the click history, "mask":
  bool [B, L], "query": float32 [B, D_b] the target item in the history's
  layout}, plus "negatives" float32 [B, L, D_b] when "negatives" is required
  (items drawn as negatives by DIEN's `NegativeItemSampler`);
* "domain": int32 [B], the value index of the network's `domain_field`
  (0 = an unknown value).

"gates" in `requires` says that the network's MLP takes UDG's per-layer
gates; they come as the call's `gates` argument (a function of the layer
widths), never in the mapping.

A network called on its own may be given E [B, F, d] alone: it stands for
{"embeddings": E}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tfrs_userlevel.backend import tf

INPUTS = ("first_order", "item", "user", "personal", "behavior", "negatives", "domain",
          "gates")


def as_inputs(inputs: tf.Tensor | Mapping[str, Any]) -> Mapping[str, Any]:
    """A network's call input as the mapping: E [B, F, d] alone is {"embeddings": E}."""
    if isinstance(inputs, Mapping):
        if "embeddings" not in inputs:
            raise ValueError(f"the inputs of a network need 'embeddings' [B, F, d]; got the "
                             f"keys {sorted(inputs)}")
        return inputs
    return {"embeddings": inputs}


def embeddings_shape(input_shape):
    """The shape of E [B, F, d] among a network's input shapes (what `build` receives)."""
    return input_shape["embeddings"] if isinstance(input_shape, Mapping) else input_shape


def check_inputs(network, inputs: Mapping[str, Any], gates) -> None:
    """Refuses inputs without an entry `network.requires` lists, and gates for a network
    whose MLP takes none."""
    name = type(network).__name__
    missing = sorted(r for r in network.requires if r not in ("gates", "negatives")
                     and r not in inputs)
    if "negatives" in network.requires and "negatives" not in inputs.get("behavior", {}):
        missing.append("behavior['negatives']")
    if missing:
        hint = (" (a behavior field in the feature spec, e.g. train.py --history-length 20)"
                if "behavior" in missing else "")
        raise ValueError(f"{name}: its inputs lack {missing}, which it requires{hint}; "
                         "RankingModel builds every entry a network's `requires` lists")
    if gates is not None and "gates" not in network.requires:
        raise ValueError(f"{name}: its prediction network is not a plain MLP, so it takes no "
                         "UDG gates")
