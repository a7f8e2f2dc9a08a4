"""Backbones: E [B, F, d] -> {"hidden": h [B, H], "logit": [B, 1]} (see `base.Backbone`).

`BACKBONES` maps each `--backbone` name to a factory; `get(name,
**options)` builds one and rejects options the backbone does not have.
"""

from __future__ import annotations

import functools
import inspect

from tfrs_userlevel.backbones.base import Backbone
from tfrs_userlevel.backbones.dcn import CrossDeepBackbone, CrossNetwork, DCNBackbone
from tfrs_userlevel.backbones.dcnv2 import DCNv2Backbone, MatrixCrossNetwork
from tfrs_userlevel.backbones.deepfm import DeepFMBackbone
from tfrs_userlevel.backbones.destine import DESTINEBackbone, DisentangledSelfAttention
from tfrs_userlevel.backbones.dien import AUGRUCell, DIENBackbone
from tfrs_userlevel.backbones.din import DINBackbone, TargetAttention
from tfrs_userlevel.backbones.finalmlp import FeatureSelection, FinalMLPBackbone
from tfrs_userlevel.backbones.gdcn import GatedCrossNetwork, GDCNBackbone
from tfrs_userlevel.backbones.mlp import DeepNetwork, MLPBackbone
from tfrs_userlevel.backbones.pnn import PNNBackbone
from tfrs_userlevel.backbones.wide_deep import WideDeepBackbone

BACKBONES = {
    "mlp": MLPBackbone,
    "wd": WideDeepBackbone,
    "deepfm": DeepFMBackbone,
    "ipnn": functools.partial(PNNBackbone, product="inner"),
    "opnn": functools.partial(PNNBackbone, product="outer"),
    "dcn": DCNBackbone,
    "dcnv2": DCNv2Backbone,
    "gdcn": GDCNBackbone,
    "finalmlp": FinalMLPBackbone,
    "destine": DESTINEBackbone,
    "din": DINBackbone,
    "dien": DIENBackbone,
}


def constructor_options(cls, stop_at: type, skip=()) -> list[str]:
    """The constructor options of `cls` and its bases up to (not including) `stop_at`."""
    names = set()
    for klass in cls.__mro__:
        if klass is stop_at:
            break
        names |= {p for p in inspect.signature(klass.__init__).parameters
                  if p not in ("self", "kwargs", *skip)}
    return sorted(names)


def options(name: str) -> list[str]:
    """The constructor options of backbone `name`."""
    factory = BACKBONES[name]
    cls = factory.func if isinstance(factory, functools.partial) else factory
    fixed = set(factory.keywords) if isinstance(factory, functools.partial) else set()
    # Stop at keras.layers.Layer; "cross" is built by the subclass itself.
    names = constructor_options(cls, Backbone.__mro__[1], skip=("cross",))
    return sorted(set(names) - fixed)


def get(name: str, **kwargs) -> Backbone:
    """Builds the backbone registered as `name`."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid choices are {sorted(BACKBONES)}")
    unknown = sorted(set(kwargs) - set(options(name)) - {"name"})
    if unknown:
        raise ValueError(f"backbone {name!r} has no option(s) {unknown}; its options are "
                         f"{options(name)}")
    return BACKBONES[name](**kwargs)


__all__ = ["AUGRUCell", "BACKBONES", "Backbone", "DIENBackbone", "DINBackbone",
           "TargetAttention", "CrossDeepBackbone", "CrossNetwork",
           "DCNBackbone", "DCNv2Backbone", "DESTINEBackbone", "DeepFMBackbone", "DeepNetwork",
           "DisentangledSelfAttention", "FeatureSelection", "FinalMLPBackbone",
           "GDCNBackbone", "GatedCrossNetwork", "MLPBackbone", "MatrixCrossNetwork",
           "PNNBackbone", "WideDeepBackbone", "constructor_options", "get", "options"]
