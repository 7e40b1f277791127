"""One typed configuration system for every lipforge job.

A job owns a pydantic model (subclass of `Config`, unknown keys forbidden). `load_config`
reads a YAML file, applies `--set a.b=c` overrides (values parsed as YAML scalars), and
validates before any work starts. Errors name the file, the dotted key and, where the
field has a closed set of values, the allowed values.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from catalog.errors import UserError

C = TypeVar("C", bound="Config")


class Config(BaseModel):
    """Base class of every config section: strict keys, serialisable, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as plain JSON-able data (stored in manifests)."""
        return self.model_dump(mode="json")


class ConfigError(UserError, ValueError):
    """A config file or override is invalid; the message names file and key."""


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b=c` -> (['a', 'b'], parsed c). The value is parsed as YAML ('3' -> 3, 'x' -> 'x')."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set filter.lid_threshold=0.5")
    key, _, raw = text.partition("=")
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set {text!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Return a copy of `data` with each `a.b=c` override set (creating sections as needed)."""
    out = _deep_copy(data)
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {part!r} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return out


def validate(model: type[C], data: dict[str, Any], source: str = "<config>") -> C:
    """Validate `data` against `model`; raise ConfigError naming source, key and allowed values."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(model, err) for err in exc.errors()]
        raise ConfigError(f"{source}: invalid config\n" + "\n".join(f"  {line}" for line in lines)) from None


def load_config(model: type[C], path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> C:
    """Read YAML at `path` (or start empty when None), apply overrides, validate."""
    source = str(path) if path is not None else "<defaults>"
    data: Any = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{source}: config file not found")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: top level must be a mapping of keys, got {type(data).__name__}")
    data = apply_overrides(data, overrides)
    return validate(model, data, source)


def _describe(model: type[BaseModel], err: dict[str, Any]) -> str:
    loc = [str(p) for p in err.get("loc", ())]
    key = ".".join(loc) or "<top>"
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1])
        hint = f" (allowed keys: {', '.join(allowed)})" if allowed else ""
        return f"key {key!r}: unknown key{hint}"
    if kind == "missing":
        return f"key {key!r}: required key is missing"
    allowed_values = _literal_values(model, loc)
    got = err.get("input")
    msg = f"key {key!r}: {err.get('msg', 'invalid value')} (got {got!r})"
    if allowed_values:
        msg += f"; allowed values: {', '.join(map(str, allowed_values))}"
    return msg


def _field_annotation(model: type[BaseModel], loc: list[str]) -> Any:
    ann: Any = model
    for part in loc:
        ann = _unwrap_model(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            field = ann.model_fields.get(part)
            if field is None:
                return None
            ann = field.annotation
        elif typing.get_origin(ann) in (dict, list, tuple):
            args = typing.get_args(ann)
            ann = args[-1] if args else None
        else:
            return None
    return ann


def _unwrap_model(ann: Any) -> Any:
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(ann) if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
    return ann


def _fields_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    ann = _unwrap_model(_field_annotation(model, loc) if loc else model)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return list(ann.model_fields)
    return []


def _literal_values(model: type[BaseModel], loc: list[str]) -> list[Any]:
    ann = _field_annotation(model, loc)
    origin = typing.get_origin(ann)
    if origin is typing.Literal:
        return list(typing.get_args(ann))
    if origin in (typing.Union, types.UnionType):
        vals: list[Any] = []
        for a in typing.get_args(ann):
            if typing.get_origin(a) is typing.Literal:
                vals.extend(typing.get_args(a))
        return vals
    return []


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data
