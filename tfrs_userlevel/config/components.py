"""The model's components and their options, read from the layers themselves.

A component section of a run configuration is `{name: ..., preset: ..., **options}`.
Its options are the constructor arguments of the named layer class: the schema
is built from the constructor's signature (names, type annotations, defaults),
so a layer's constructor and `get_config` stay the one owner of each option.
Arguments that the model fills in from the data (the embedding width, the
initial logit bias, the number of users...) are not options (`DERIVED`).

Validation runs the schema (types, unknown keys) and then the layer's own
constructor checks, before any data is read.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

import pydantic

from tfrs_userlevel.backbones import BACKBONES
from tfrs_userlevel.backend import keras
from tfrs_userlevel.baselines import BASELINES
from tfrs_userlevel.config.errors import ConfigError, dotted, from_validation_error, suggestion
from tfrs_userlevel.gprec.layer import GPRec
from tfrs_userlevel.gprec.presets import PRESETS as gprec_presets
from tfrs_userlevel.udg.gating import PRESETS as udg_presets
from tfrs_userlevel.udg.gating import UserDependentGating

# Constructor arguments that the ranking model sets from the data and the other sections.
DERIVED: dict[str, tuple[str, ...]] = {
    "backbone": ("output_bias", "cross", "add_losses"),
    "baseline": ("output_bias", "num_domains"),
    "gprec": ("embedding_dim", "output_bias", "add_losses"),
    "udg": ("num_users", "vocabulary_size"),
}
# The arguments given to a layer only to run its constructor's checks during validation.
_PROBE_VALUES = {"num_users": 2, "vocabulary_size": 4, "num_domains": 2, "embedding_dim": 4}

USER_LEVELS = {"gprec": GPRec, "udg": UserDependentGating}
PRESET_TABLES = {"gprec": gprec_presets, "udg": udg_presets}
USER_LEVEL_NAMES = ("none", "gprec", "udg", "gprec+udg")
DEFAULT_PRESET = "recommended"


def layer_class(factory: Callable) -> type:
    return factory.func if isinstance(factory, functools.partial) else factory


def _fixed(factory: Callable) -> set[str]:
    return set(factory.keywords) if isinstance(factory, functools.partial) else set()


def parameters(factory: Callable, kind: str) -> dict[str, tuple[Any, Any]]:
    """name -> (annotation, default) of the options of a layer factory.

    Walks the class and its bases up to `keras.layers.Layer` (subclasses pass
    the rest on through `**kwargs`); the most derived signature wins.
    """
    cls = layer_class(factory)
    skip = {"self", "kwargs", *DERIVED[kind], *_fixed(factory)}
    found: dict[str, tuple[Any, Any]] = {}
    chain = [k for k in cls.__mro__ if issubclass(k, keras.layers.Layer)
             and k is not keras.layers.Layer]
    for klass in reversed(chain):
        if "__init__" not in vars(klass):
            continue
        hints = typing.get_type_hints(klass.__init__)
        for parameter in inspect.signature(klass.__init__).parameters.values():
            if parameter.name in skip or parameter.kind in (parameter.VAR_KEYWORD,
                                                            parameter.VAR_POSITIONAL):
                continue
            default = (... if parameter.default is inspect.Parameter.empty
                       else parameter.default)
            found[parameter.name] = (hints.get(parameter.name, Any), default)
    return found


@functools.cache
def _schema(factory: Callable, kind: str, title: str) -> type[pydantic.BaseModel]:
    fields = {name: (annotation, default)
              for name, (annotation, default) in parameters(factory, kind).items()}
    return pydantic.create_model(
        f"{title}Options",
        __config__=pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=True),
        **fields)


def schema(kind: str, name: str) -> type[pydantic.BaseModel]:
    """The pydantic model of the options of component `name` of `kind`
    ("backbone", "baseline", "gprec" or "udg")."""
    return _schema(factories(kind)[name], kind, name.replace("+", "_"))


def factories(kind: str) -> Mapping[str, Callable]:
    return {"backbone": BACKBONES, "baseline": BASELINES,
            "gprec": {"gprec": GPRec}, "udg": {"udg": UserDependentGating}}[kind]


def presets(kind: str) -> tuple[str, ...]:
    """The preset names of a user-level kind (empty for backbones and baselines)."""
    return tuple(sorted(PRESET_TABLES.get(kind, {})))


def validate_component(kind: str, section: Mapping[str, Any], path: tuple[str, ...]
                       ) -> dict[str, Any]:
    """Checks one component section; returns {"name", ["preset"], **options} with the
    options as the schema read them (only the keys given).

    Raises:
      ConfigError: naming `path` and the valid choices.
    """
    section = dict(section)
    choices = sorted(factories(kind))
    name = section.pop("name", {"gprec": "gprec", "udg": "udg", "backbone": "mlp"}.get(kind))
    if name not in factories(kind):
        raise ConfigError(f"{dotted((*path, 'name'))}: {name!r} is not a {kind}"
                          f"{suggestion(str(name), choices)}; valid choices are {choices}")
    # A configuration's GPRec and UDG take the recommended form unless told otherwise.
    preset = section.pop("preset", DEFAULT_PRESET if presets(kind) else None)
    if preset is not None and preset not in presets(kind):
        raise ConfigError(f"{dotted((*path, 'preset'))}: unknown preset {preset!r}; valid "
                          f"presets are {list(presets(kind))}"
                          if presets(kind) else
                          f"{dotted((*path, 'preset'))}: {kind} {name!r} has no presets")
    model = schema(kind, name)
    try:
        options = model.model_validate(section).model_dump(exclude_unset=True)
    except pydantic.ValidationError as error:
        raise from_validation_error(error, path, model) from None
    # The layer's own checks (choices, ranges, combinations) on the options as given.
    probe = {k: v for k, v in _PROBE_VALUES.items() if k in _accepted(kind, name)}
    try:
        build(kind, name, preset, {**probe, **options})
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{dotted(path)}: {error}") from None
    return {"name": name, **({"preset": preset} if preset else {}), **options}


def _accepted(kind: str, name: str) -> set[str]:
    cls = layer_class(factories(kind)[name])
    accepted = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            accepted |= set(inspect.signature(klass.__init__).parameters)
    return accepted


def build(kind: str, name: str, preset: str | None, options: Mapping[str, Any]):
    """The layer of a component: its preset (if any) with `options` on top."""
    factory = factories(kind)[name]
    if preset is not None:
        return layer_class(factory).from_preset(preset, **options)
    return factory(**options)
