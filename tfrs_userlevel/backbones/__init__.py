"""Backbones: layers mapping field embeddings E [B, F, d] to a hidden state h [B, H]."""

from __future__ import annotations

from tfrs_userlevel.backbones.mlp import MLPBackbone

BACKBONES = {"mlp": MLPBackbone}


def get(name: str, **kwargs):
    """Builds the backbone registered as `name`."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid choices are {sorted(BACKBONES)}")
    return BACKBONES[name](**kwargs)


__all__ = ["BACKBONES", "MLPBackbone", "get"]
