"""Loading a run configuration: the file, `--set` overrides, validation, and the
objects the training loop takes (`TrainConfig` and a model builder).

    config = load_run_config("run.yaml", overrides=["model.user_level.groups=40"])
    train_config = config.train_config()
    model = config.build_model(spec, vocabularies, positive_rate)
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydantic
import yaml

from tfrs_userlevel.config import components
from tfrs_userlevel.config.errors import ConfigError, dotted, from_validation_error, suggestion
from tfrs_userlevel.config.sections import DataSection, ModelSection, Section
from tfrs_userlevel.features import USER_ROLES, FeatureSpec
from tfrs_userlevel.gprec.presets import preset_options as gprec_preset_options
from tfrs_userlevel.models import RankingModel
from tfrs_userlevel.training import TRAIN_FIELDS, TrainConfig, gating_sizes


def _train_section() -> type[pydantic.BaseModel]:
    """The `train` section: the training-loop fields of `TrainConfig`, its defaults."""
    hints = typing.get_type_hints(TrainConfig)
    defaults = TrainConfig.__dataclass_fields__
    return pydantic.create_model(
        "TrainSection", __base__=Section,
        **{name: (hints[name], defaults[name].default) for name in TRAIN_FIELDS})


TrainSection = _train_section()


class RunConfig(Section):
    """A whole run: `data` (`sections.DataSection`), `model` (`sections.ModelSection`)
    and `train` (the training loop's options)."""

    data: DataSection
    model: ModelSection = pydantic.Field(default_factory=ModelSection)
    train: TrainSection = pydantic.Field(default_factory=TrainSection)
    # The folder that relative paths in `data.files` start from (the file's own folder).
    _base_dir: str | None = pydantic.PrivateAttr(None)

    @property
    def base_dir(self) -> str | None:
        return self._base_dir

    # The training loop -------------------------------------------------------------------
    def user_levels(self) -> tuple[str, ...]:
        """The user-level kinds of the model: () , ("gprec",), ("udg",) or both."""
        name = self.model.user_level.get("name", "none")
        return () if name == "none" else tuple(name.split("+"))

    def component(self, kind: str) -> dict[str, Any]:
        """The section of a user-level kind ("gprec" or "udg"): with both, its sub-section."""
        section = dict(self.model.user_level)
        if len(self.user_levels()) == 2:
            return dict(section.get(kind) or {}, name=kind)
        return section

    def train_config(self, seed: int | None = None) -> TrainConfig:
        """The training loop's options; the learning-rate schedule follows the backbone's
        own validation AUC when GPRec's ensemble does not train the backbone."""
        values = self.train.model_dump()
        if seed is not None:
            values["seed"] = seed
        if values["schedule_monitor"] is None:
            values["schedule_monitor"] = "backbone_auc" if self._detached_ensemble() else "auc"
        name = self.model.user_level.get("name", "none")
        # The model comes from `build_model`; of TrainConfig's own model fields only
        # user_level is read (by its schedule checks), the strategy ones stay neutral.
        return TrainConfig(**values, user_level=name, strategy="input")

    def _detached_ensemble(self) -> bool:
        if "gprec" not in self.user_levels():
            return False
        section = self.component("gprec")
        merged = gprec_preset_options(
            section.get("preset", components.DEFAULT_PRESET),
            **{k: v for k, v in section.items() if k not in ("name", "preset")})
        return (merged.get("strategy", "input") == "ensemble"
                and merged.get("ensemble_backbone_gradient", True) is False)

    # The model ---------------------------------------------------------------------------
    def build_model(self, spec: FeatureSpec, vocabularies: Mapping[str, list],
                    positive_rate: float) -> RankingModel:
        """The ranking model of the `model` section for these fields and vocabularies."""
        model = self.model
        output_bias = float(np.log(positive_rate / (1.0 - positive_rate)))
        backbone = dict(model.baseline if model.baseline is not None else model.backbone)
        user_level = gating = None
        if "gprec" in self.user_levels():
            section = self.component("gprec")
            options = {k: v for k, v in section.items() if k not in ("name", "preset")}
            user_level = components.build(
                "gprec", "gprec", section.get("preset"),
                {**options, "embedding_dim": model.embedding_dim, "output_bias": output_bias,
                 "name": "gprec"})
        if "udg" in self.user_levels():
            section = self.component("udg")
            options = {k: v for k, v in section.items() if k not in ("name", "preset")}
            options.setdefault("udg_dim", model.embedding_dim)
            gating = components.build(
                "udg", "udg", section.get("preset"),
                {**options, **gating_sizes(spec, vocabularies), "name": "udg"})
        return RankingModel(spec, vocabularies, backbone=backbone,
                            embedding_dim=model.embedding_dim, embedding_l2=model.embedding_l2,
                            positive_rate=positive_rate, user_level=user_level, gating=gating)

    def with_absolute_files(self) -> RunConfig:
        """A copy whose `data.files` globs start at the filesystem root, not at the
        configuration's folder: the copy written into a model directory reads the same
        files from wherever it is loaded (`tfrs-userlevel evaluate --split`)."""
        copy = self.model_copy(deep=True)
        copy._base_dir = self._base_dir

        def absolute(pattern: str) -> str:
            path = Path(os.path.expanduser(pattern))
            if path.is_absolute() or self._base_dir is None:
                return str(path)
            return str(Path(self._base_dir) / path)

        files = copy.data.files
        if isinstance(files, str):
            copy.data.files = absolute(files)
        elif isinstance(files, list):
            copy.data.files = [absolute(f) for f in files]
        elif isinstance(files, dict):
            copy.data.files = {split: absolute(f) if isinstance(f, str)
                               else [absolute(g) for g in f] for split, f in files.items()}
        return copy

    # Writing -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=False)

    def write_yaml(self, path: str | os.PathLike) -> None:
        """Writes the resolved configuration (to a temporary file, then renamed)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(path.name + ".tmp")
        staging.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        os.replace(staging, path)


def read_tree(path: str | os.PathLike) -> dict[str, Any]:
    """A configuration file (YAML, or JSON) as a plain tree."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file")
    text = path.read_text()
    try:
        tree = (json.loads(text) if path.suffix == ".json" else yaml.safe_load(text))
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}"
                          f": {error}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping with data, model and train; found "
                          f"{type(tree).__name__}")
    return tree


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    """Sets `a.b.c=VALUE` in `tree`; VALUE is read as YAML (40, 0.5, [64, 32], true)."""
    key, sep, text = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. "
                          "model.user_level.groups=40")
    parts = key.strip().split(".")
    node: Any = tree
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, parts[:depth + 1], key)
    if isinstance(node, list):
        node, last = node, _index(node, parts[-1], parts, key)
    else:
        last = parts[-1]
    try:
        node[last] = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"--set {key}: the value {text!r} is not valid YAML ({error})") from None


def _index(items: list, part: str, where: Sequence[str], key: str) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise ConfigError(f"--set {key}: {dotted(where[:-1])} is a list of {len(items)}; "
                          f"{part!r} is not an index of it")
    return int(part)


def _child(node: Any, part: str, where: Sequence[str], key: str) -> Any:
    """The section (or list) `part` of `node`, created when missing."""
    if isinstance(node, list):
        child = node[_index(node, part, where, key)]
    else:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
    if not isinstance(child, dict | list):
        raise ConfigError(f"--set {key}: {dotted(where)} is a value, not a section")
    return child


def load_run_config(source: str | os.PathLike | Mapping[str, Any],
                    overrides: Sequence[str] = ()) -> RunConfig:
    """Reads, overrides and validates a run configuration, before any data is read.

    Args:
      source: A YAML/JSON file, or the tree itself.
      overrides: `KEY=VALUE` assignments (`--set`), applied in order.

    Raises:
      ConfigError: naming the path of every bad key and the valid choices.
    """
    if isinstance(source, Mapping):
        tree, base_dir = json.loads(json.dumps(dict(source))), None
    else:
        tree, base_dir = read_tree(source), str(Path(source).resolve().parent)
    for assignment in overrides:
        apply_override(tree, assignment)
    try:
        config = RunConfig.model_validate(tree)
    except pydantic.ValidationError as error:
        raise from_validation_error(error, (), RunConfig) from None
    config._base_dir = base_dir
    _validate_model(config)
    return config


def _validate_model(config: RunConfig) -> None:
    """Each component against its layer, and the roles each module needs."""
    model = config.model
    if model.baseline is not None:
        if model.user_level.get("name", "none") != "none":
            raise ConfigError("model.baseline: a baseline is a complete user-modeling model; "
                              "use it with model.user_level.name none")
        model.baseline = components.validate_component("baseline", model.baseline,
                                                       ("model", "baseline"))
    else:
        model.backbone = components.validate_component("backbone", model.backbone,
                                                       ("model", "backbone"))
    name = model.user_level.get("name", "none")
    if name not in components.USER_LEVEL_NAMES:
        choices = list(components.USER_LEVEL_NAMES)
        raise ConfigError(f"model.user_level.name: {name!r} is not a user-level module"
                          f"{suggestion(str(name), choices)}; valid choices are {choices}")
    kinds = config.user_levels()
    if len(kinds) == 2:
        extra = sorted(set(model.user_level) - {"name", "gprec", "udg"})
        if extra:
            raise ConfigError(f"model.user_level.{extra[0]}: with gprec+udg, put each "
                              "module's options under model.user_level.gprec and "
                              "model.user_level.udg")
        for kind in kinds:
            model.user_level[kind] = {k: v for k, v in components.validate_component(
                kind, dict(model.user_level.get(kind) or {}, name=kind),
                ("model", "user_level", kind)).items() if k != "name"}
    elif kinds:
        model.user_level = components.validate_component(kinds[0], model.user_level,
                                                         ("model", "user_level"))
    _check_roles(config)
    try:
        config.train_config()
    except ConfigError as error:
        raise ConfigError(f"train: {str(error).removeprefix('invalid config: ')}") from None


def _check_roles(config: RunConfig) -> None:
    """Refuses a module that the declared fields cannot feed, naming the missing role."""
    fields = config.data.fields
    names = [f.name for f in fields]
    roles = {f.role for f in fields}
    if "item" not in roles:
        raise ConfigError("data.fields: no field has role item; the model needs at least one")
    listed = ", ".join(f"{f.name} ({f.role})" for f in fields)
    backbone = config.model.backbone.get("name")
    if config.model.baseline is None and backbone in ("din", "dien"):
        raise ConfigError(f"model.backbone.name: {backbone} attends over a click history "
                          "(a field with role behavior), which a run configuration does not "
                          "read; use train.py --dataset ... --history-length N, or another "
                          "backbone")
    kinds = config.user_levels()
    if "gprec" in kinds and not roles & set(USER_ROLES):
        raise ConfigError("model.user_level: GPRec assigns users to groups from their user "
                          "fields, and no field has role user_personal or user_other; fields: "
                          + listed)
    individual = config.component("gprec").get("individual", True) if "gprec" in kinds else 0
    if individual and "user_personal" not in roles:
        raise ConfigError("model.user_level: GPRec's individual preference r_p reads the "
                          "user_personal fields (a user id), and none is declared; add one or "
                          "set individual: false; fields: " + listed)
    if "udg" in kinds:
        if "user_personal" not in roles:
            raise ConfigError("model.user_level: UDG keeps an embedding per user and needs a "
                              "field with role user_personal (the user id); fields: " + listed)
        udg = config.component("udg")
        if udg.get("meta") and "user_other" not in roles:
            raise ConfigError("model.user_level: UDG's meta-embedding generator reads the "
                              "user's profile, and no field has role user_other; fields: "
                              + listed)
    baseline = config.model.baseline
    if baseline is not None:
        parameters = components.parameters(
            components.factories("baseline")[baseline["name"]], "baseline")
        if "domain_field" in parameters:
            field = baseline.get("domain_field", parameters["domain_field"][1])
            if field not in names:
                raise ConfigError(
                    f"model.baseline.domain_field: {baseline['name']} divides users by this "
                    f"field, and {field!r} is not one of the fields {names}")
