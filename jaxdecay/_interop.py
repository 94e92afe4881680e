"""Glue to configuration formats: YAML, optax's arguments, Hydra/OmegaConf schemas.

Optional libraries (PyYAML here) are imported inside the functions that need them, so
that `import jaxdecay` imports jax and numpy only.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxdecay import _config
from jaxdecay._validation import check_keys, preview

_TARGET = "jaxdecay.ExponentialDecay"
# optax's name -> the field's, for the arguments of `optax.exponential_decay` and
# of `optax.warmup_exponential_decay_schedule` (the one with `peak_value`).
_OPTAX_KEYS = dict(_config.OPTAX_ARGUMENTS)
_OPTAX_WARMUP_KEYS = dict(_config.OPTAX_WARMUP_ARGUMENTS)


def _schema() -> type:
    """A Hydra / OmegaConf structured config (a typed schema) for `ExponentialDecay`.

    `ExponentialDecay` itself accepts NumPy scalars, which OmegaConf's type system
    cannot express; this schema has the same fields with plain types, plus Hydra's
    `_target_`, so that `hydra.utils.instantiate` builds the schedule.

    Examples:
      >>> from jaxdecay import ExponentialDecayConfig
      >>> ExponentialDecayConfig(0.1, decay_steps=1000, decay_rate=0.5)._target_
      'jaxdecay.ExponentialDecay'
    """
    fields = [
        (item.name, _config.plain_type(item), dataclasses.field(default=item.default))
        for item in _config.FIELDS
    ]
    return dataclasses.make_dataclass(
        "ExponentialDecayConfig",
        [*fields, ("_target_", str, dataclasses.field(default=_TARGET))],
        namespace={"__module__": __name__, "__doc__": _schema.__doc__},
    )


ExponentialDecayConfig = _schema()


def schedule_from_data(data: Any) -> _config.ExponentialDecay:
    """Builds a schedule from parsed JSON or YAML in any of the shapes people write.

    The shapes: Keras 3's or TF 2's serialized form (with `class_name`), a bare
    `get_config()` dict (with a Hydra `_target_` of `jaxdecay.ExponentialDecay`
    allowed), or the keyword arguments of `optax.exponential_decay` (with
    `init_value`) or `optax.warmup_exponential_decay_schedule` (with `peak_value`).

    Raises:
      TypeError: `data` is not a mapping, or a value has the wrong type.
      ValueError: a key is missing or unknown, or a value is out of range.
    """
    if not isinstance(data, Mapping):
        raise TypeError(
            "a config must be a mapping (a JSON object), got "
            f"{preview(data)} of type {type(data).__name__}"
        )
    if "class_name" in data:
        return _config.deserialize(data)
    if "init_value" in data or "peak_value" in data:
        return from_optax_kwargs(data)
    if "_target_" in data:
        target = data["_target_"]
        if target != _TARGET:
            raise ValueError(
                f"_target_ must be {_TARGET!r}, got {preview(target)}; "
                "targets named in data are never imported"
            )
        data = {key: value for key, value in data.items() if key != "_target_"}
    return _config.ExponentialDecay.from_config(data)


def from_optax_kwargs(kwargs: Mapping[str, Any]) -> _config.ExponentialDecay:
    """Builds a schedule from the keyword arguments of an optax schedule.

    A mapping with `peak_value` holds those of `optax.warmup_exponential_decay_schedule`
    (its `init_value` is `warmup_init`), any other those of `optax.exponential_decay`:
    the inverse of `ExponentialDecay.optax_kwargs()`, with or without `warmup=True`.
    The keys optax requires are required, and unknown ones refused. Unlike optax,
    values that optax would accept silently (a zero `transition_steps`, say) are
    refused.

    Raises:
      TypeError: a value has the wrong type.
      ValueError: a key is missing or unknown, or a value is out of range.

    Examples:
      >>> from jaxdecay._interop import from_optax_kwargs
      >>> from_optax_kwargs({"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 100,
      ...     "transition_steps": 1000, "decay_rate": 0.5}).warmup_steps
      100
    """
    warmup = "peak_value" in kwargs
    keys = _OPTAX_WARMUP_KEYS if warmup else _OPTAX_KEYS
    # optax requires the fields without a default, and in the warmup schedule its
    # own arguments (warmup_steps, and init_value, the warmup's start): the ones
    # exponential_decay lacks.
    required = {
        optax
        for optax, name in keys.items()
        if name in _config.REQUIRED_KEYS or name not in _OPTAX_KEYS.values()
    }
    function = _config.WARMUP_EXPONENTIAL_DECAY if warmup else _config.EXPONENTIAL_DECAY
    check_keys(
        f"optax.{function}'s arguments",
        kwargs,
        known=list(keys),
        required=required,
        plural=True,
    )
    return _config.ExponentialDecay(
        **{keys[key]: value for key, value in kwargs.items()}
    )


# ---------------------------------------------------------------------------
# Formats.
# ---------------------------------------------------------------------------

FORMATS = ("jaxdecay", "keras", "tf2", "optax", "yaml")  # `convert --to`


def format_config(
    schedule: _config.ExponentialDecay, to: str, *, indent: int | None = None
) -> str:
    """Returns `schedule` in the format `to` (one of `convert --to`), with a newline.

    `optax` is the keyword arguments of `optax.exponential_decay`, or of
    `optax.warmup_exponential_decay_schedule` for a schedule with a warmup.

    Raises:
      ValueError: `to` is keras or tf2 and the schedule uses jaxdecay's extensions
        (a warmup among them), which Keras' `ExponentialDecay` refuses.
    """
    data: dict[str, Any]
    if to == "jaxdecay":
        return schedule.to_json(indent=indent) + "\n"
    if to == "yaml":
        return to_yaml(schedule)
    if to in ("keras", "tf2"):
        extensions = {
            key: value
            for key, value in schedule.get_config().items()
            if key in _config.EXTENSION_KEYS
        }
        if extensions:
            *others, last = extensions
            names = f"{', '.join(others)} or {last}" if others else last
            settings = ", ".join(
                f"{key}={value!r}" for key, value in extensions.items()
            )
            raise ValueError(
                f"Keras' ExponentialDecay has no {names}; this schedule sets "
                f"{settings} (use --to jaxdecay)"
            )
        data = _config.serialize(schedule)
        if to == "tf2":
            data = {"class_name": data["class_name"], "config": data["config"]}
    elif to == "optax":
        warmup = schedule.warmup_steps > 0
        data = {
            key: value.item() if isinstance(value, np.generic) else value
            for key, value in schedule.optax_kwargs(warmup=warmup).items()
        }
    else:
        raise ValueError(f"--to must be one of {', '.join(FORMATS)}, got {to!r}")
    return json.dumps(data, indent=indent, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------
# YAML.
# ---------------------------------------------------------------------------


def to_yaml(schedule: _config.ExponentialDecay) -> str:
    """Returns `schedule.get_config()` as YAML: the block an experiment config holds.

    Floats are written as Python's shortest repr, so they read back bit for bit.
    """
    yaml = _yaml()
    return str(yaml.safe_dump(schedule.get_config(), sort_keys=False))


def load_yaml(text: str) -> Any:
    """Parses YAML with PyYAML's safe loader, two YAML 1.1 traps removed.

    `1e-4` is read as a float (PyYAML reads it as the string '1e-4'), and a key
    written twice is refused instead of the last one silently winning. Aliases
    (`*name`) are refused: a config needs none, and nested ones expand exponentially.

    Raises:
      ValueError: the text is not valid YAML (one line, with the line and column).
    """
    yaml = _yaml()
    try:
        return yaml.load(text, Loader=_yaml_loader())  # a SafeLoader
    except RecursionError:
        raise ValueError("YAML text is nested too deeply") from None
    except yaml.YAMLError as error:
        raise ValueError(f"not valid YAML: {_yaml_message(error)}") from None


def _yaml_message(error: Any) -> str:
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        problem += f" at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(problem).split())


# YAML 1.2's floats: 1e-4, 1E5, .5, 1.0e-4 (YAML 1.1 needs a dot and a signed
# exponent), plus .inf and .nan, which the schedule then refuses with a clear message.
_YAML_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.VERBOSE,
)


@functools.cache
def _yaml_loader() -> Any:
    yaml = _yaml()

    class Loader(yaml.SafeLoader):  # type: ignore[name-defined,misc]
        def compose_node(self, parent: Any, index: Any) -> Any:
            # An alias shares a node; nested, a few lines expand into billions of
            # values when printed in an error message. A config has no use for them.
            if self.check_event(yaml.events.AliasEvent):
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    "aliases (*name) are refused in configs",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping",
                        node.start_mark,
                        f"the key {key!r} is written twice",
                        key_node.start_mark,
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    # Copy the resolvers before adding to them: they are class attributes shared
    # with yaml.SafeLoader, which other code in the process uses.
    Loader.yaml_implicit_resolvers = {
        first: list(resolvers)
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float", _YAML_FLOAT, list("-+0123456789.")
    )
    return Loader


def missing_extra(package: str, extra: str) -> ImportError:
    """The error for an optional library that is not installed: names the extra."""
    return ImportError(
        f"this needs {package}, which is not installed: pip install 'jaxdecay[{extra}]'"
    )


def _yaml() -> Any:
    try:
        import yaml
    except ImportError as error:
        raise missing_extra("PyYAML", "yaml") from error
    return yaml
