"""The error of a run configuration, and how a validation failure becomes one."""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Sequence


class ConfigError(ValueError):
    """An unknown key or an invalid value in a run configuration.

    The message names the path of each bad key (`model.user_level.groups`),
    what was expected and what was found.
    """


def dotted(path: Iterable[object]) -> str:
    """("model", "user_level", "groups") -> "model.user_level.groups"."""
    return ".".join(str(part) for part in path)


def suggestion(key: str, valid: Sequence[str]) -> str:
    """" (did you mean groups?)" for a near miss of a valid key, else ""."""
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def from_validation_error(error, prefix: Sequence[str], model) -> ConfigError:
    """One ConfigError with a line per problem of a pydantic `ValidationError`.

    Unknown keys say which keys the section has and the nearest one.
    """
    lines = []
    for problem in error.errors():
        location = [*prefix, *_walk(model, problem["loc"])[0]]
        if problem["type"] == "extra_forbidden":
            section = list(getattr(_walk(model, problem["loc"][:-1])[1], "model_fields", {}))
            key = str(problem["loc"][-1])
            lines.append(f"{dotted(location)}: unknown key{suggestion(key, section)}; valid keys "
                         f"are {sorted(section)}")
        else:
            found = problem.get("input")
            message = problem["msg"].removeprefix("Value error, ")
            shown = "" if isinstance(found, dict | list) else f" (found {found!r})"
            lines.append(f"{dotted(location)}: {message}{shown}")
    return ConfigError("\n".join(lines))


def _walk(model, location: Sequence[object]) -> tuple[list[object], type | None]:
    """(the parts of `location` that are keys of the file, the model it ends in).

    pydantic puts the chosen member of a tagged union (the `by` of a split, say)
    into an error's location; such parts are not keys of the file.
    """
    keys: list[object] = []
    current, candidates = model, []
    for part in location:
        chosen = [m for m in candidates if _tag(m) == part]
        candidates = []
        if chosen:
            current = chosen[0]
            continue
        keys.append(part)
        fields = getattr(current, "model_fields", None)
        if isinstance(part, int) or fields is None:
            continue
        field = fields.get(part)
        models = _models_in(field.annotation) if field is not None else []
        current = models[0] if len(models) == 1 else None
        candidates = models if len(models) > 1 else []
    return keys, current


def _tag(model) -> object:
    field = getattr(model, "model_fields", {}).get("by")
    args = typing.get_args(field.annotation) if field is not None else ()
    return args[0] if args else None


def _models_in(annotation) -> list:
    """The pydantic models inside an annotation such as `list[Model]` or `A | B`."""
    if hasattr(annotation, "model_fields"):
        return [annotation]
    found = []
    for argument in typing.get_args(annotation):
        found += _models_in(argument)
    return found
