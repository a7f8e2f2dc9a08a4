"""MkDocs hooks: the two generated pages, and a check of the API reference.

- `configuration.md` comes from the pydantic models of `tfrs_userlevel.config` (the
  `data` and `model` sections and their descriptions), the training flags' help of
  `tfrs-userlevel train` (the `train` section holds the same options), and the
  constructor signatures of every backbone, baseline, GPRec and UDG (the component
  options).
- `api.md` lists every module of the package for mkdocstrings to render.
- After the build, every public class, function and constant of the package must be
  in mkdocstrings' inventory, or the build fails.

Nothing in the generated pages is written by hand, so they cannot drift from the code.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import types
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _type(annotation) -> str:
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if annotation is type(None):
        return "null"
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in arguments)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type(a) for a in arguments)
    if origin is typing.Annotated:
        return _type(arguments[0])
    if origin in (list, tuple):
        inner = ", ".join(_type(a) for a in arguments if a is not Ellipsis)
        return f"list of {inner}" if inner else "list"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type):
        if hasattr(annotation, "model_fields"):
            return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
                "dict": "mapping", "list": "list", "tuple": "list"}.get(
                    annotation.__name__, annotation.__name__)
    return str(annotation).replace("typing.", "")


def _yaml(value) -> str:
    """A default as it is written in a configuration file."""
    return f"`{json.dumps(value)}`" if isinstance(value, (type(None), bool, int, float, str,
                                                            list, tuple, dict)) else f"`{value}`"


def _default(field) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        return _yaml(field.default_factory())
    return _yaml(field.default)


def _bounds(field) -> str:
    words = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤", "min_length": "length ≥",
             "max_length": "length ≤"}
    found = []
    for item in field.metadata:
        for key, word in words.items():
            value = getattr(item, key, None)
            if value is not None:
                found.append(f"{word} {value}")
    return "; ".join(found)


def _escape(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _section_table(model, descriptions=None) -> list[str]:
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        description = (descriptions or {}).get(name) or field.description or ""
        bounds = _bounds(field)
        if bounds:
            description = f"{description} ({bounds})" if description else bounds
        lines.append(f"| `{name}` | {_type(field.annotation)} | {_default(field)} | "
                     f"{_escape(description)} |")
    return lines


def _flag_help() -> dict[str, str]:
    """`train` key -> the help of its `tfrs-userlevel train` flag."""
    from tfrs_userlevel.cli.train_flags import build_parser

    helps = {}
    for action in build_parser()._actions:
        if action.help and action.help is not argparse.SUPPRESS:
            flag = max(action.option_strings, key=len) if action.option_strings else ""
            helps[action.dest] = f"{action.help} (flag `{flag}`)"
    return helps


def _components() -> list[str]:
    from tfrs_userlevel.config import components

    lines = []
    titles = {"backbone": ("Backbones", "model.backbone"),
              "baseline": ("User-modeling baselines", "model.baseline"),
              "gprec": ("GPRec", "model.user_level (name: gprec)"),
              "udg": ("UDG", "model.user_level (name: udg)")}
    for kind, (title, key) in titles.items():
        lines += [f"### {title}", "", f"Under `{key}`."]
        if components.presets(kind):
            presets = ", ".join(f"`{p}`" for p in components.presets(kind))
            lines.append(f" `preset` is one of {presets} (default "
                         f"`{components.DEFAULT_PRESET}`); options given beside it override "
                         "the preset's values.")
        lines.append("")
        for name, factory in sorted(components.factories(kind).items()):
            cls = components.layer_class(factory)
            path = f"{cls.__module__}.{cls.__qualname__}"
            lines += [f"#### `{name}`", "",
                      f"The layer `{path}`; each option is an argument of its constructor "
                      f"(see the [API reference](api.md#{path})).", "",
                      "| option | default |", "|---|---|"]
            for option, (_, default) in components.parameters(factory, kind).items():
                shown = "required" if default is ... else _yaml(default)
                lines.append(f"| `{option}` | {_escape(shown)} |")
            lines.append("")
    return lines


def configuration_reference() -> str:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    from tfrs_userlevel.config import run, sections

    lines = [
        "# Configuration reference",
        "",
        "A run configuration is one YAML (or JSON) file with three sections: `data`, "
        "`model` and `train`. `tfrs-userlevel train --config FILE` runs it, and "
        "`--set KEY=VALUE` overrides one key. Unknown keys are errors that name their path. "
        "This page is generated from the configuration schema when the documentation is "
        "built; see [Your own data](own-data.md) for a worked example.",
        "",
        "## `data`", "", *_section_table(sections.DataSection), "",
    ]
    for model in (sections.Label, sections.FieldEntry, sections.RatioSplit,
                  sections.ColumnSplit, sections.TimeSplit):
        doc = " ".join((model.__doc__ or "").split())
        lines += [f"### {model.__name__}", "", doc, "", *_section_table(model), ""]
    lines += ["## `model`", "", *_section_table(sections.ModelSection), "",
              "## `train`", "",
              "The training loop's options; each is also a flag of `tfrs-userlevel train`.", "",
              *_section_table(run.TrainSection, _flag_help()), "",
              "## Components", "",
              "The options of `model.backbone`, `model.baseline` and `model.user_level` are "
              "the constructor arguments of the named layer; arguments the model derives from "
              "the data (embedding width, number of users, initial bias) are not options.", "",
              *_components()]
    return "\n".join(lines) + "\n"


def public_modules() -> list[str]:
    """Every module of the package but `__main__`, in path order."""
    names = []
    for path in sorted((ROOT / "tfrs_userlevel").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__main__" or any(p.startswith("_") and p != "__init__" for p in parts):
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def api_reference() -> str:
    """One section per module, each rendered by mkdocstrings from the docstrings."""
    lines = ["# API reference", "",
             "Every module of the package, generated from its docstrings when the "
             "documentation is built. Shapes use B for the batch, F for fields, d for the "
             "embedding width.", ""]
    for module in public_modules():
        lines += [f"::: {module}", "    options:", "      heading_level: 2", ""]
    return "\n".join(lines)


def public_names() -> dict[str, list[str]]:
    """module -> the public classes, functions and constants it defines (read from the
    source, not imported)."""
    import ast

    found = {}
    for module in public_modules():
        parts = module.split(".")
        path = ROOT.joinpath(*parts).with_suffix(".py")
        if not path.exists():
            path = ROOT.joinpath(*parts, "__init__.py")
        names = []
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                names.append(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names += [t.id for t in targets if isinstance(t, ast.Name)]
        found[module] = [n for n in names if not n.startswith("_")]
    return found


def _inventory(site_dir: Path) -> set[str]:
    """The object names in mkdocstrings' `objects.inv` (Sphinx inventory, version 2)."""
    import zlib

    raw = (site_dir / "objects.inv").read_bytes()
    body = raw.split(b"\n", 4)[4]
    return {line.split(" ", 1)[0] for line in zlib.decompress(body).decode().splitlines()}


def on_files(files, config):
    from mkdocs.structure.files import File

    files.append(File.generated(config, "configuration.md", content=configuration_reference()))
    files.append(File.generated(config, "api.md", content=api_reference()))
    return files


def on_post_build(config):
    """Fails the build when a public name of the package is missing from the API reference."""
    from mkdocs.exceptions import PluginError

    documented = _inventory(Path(config["site_dir"]))
    missing = [f"{module}.{name}" for module, names in public_names().items()
               for name in names if f"{module}.{name}" not in documented]
    if missing:
        raise PluginError(f"public names missing from the API reference: {missing}")
