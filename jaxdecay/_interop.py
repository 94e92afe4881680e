"""Glue to configuration formats: YAML, optax's arguments, Hydra/OmegaConf schemas.

Optional libraries (PyYAML here) are imported inside the functions that need them, so
that `import jaxdecay` imports jax and numpy only.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from jaxdecay import _registry, _serialize, _yaml
from jaxdecay._config import Config
from jaxdecay._validation import check_keys, one_of, preview
from jaxdecay._yaml import load_yaml as load_yaml

# Hydra's `_target_` of each family: the public name that builds it.
_TARGETS = {f"jaxdecay.{name}": cls for name, cls in _registry.FAMILIES.items()}


def _schema(cls: type[Config]) -> type:
    """A Hydra / OmegaConf structured config (a typed schema) for a family.

    The family's class itself accepts NumPy scalars, which OmegaConf's type system
    cannot express; this schema has the same fields with plain types, plus Hydra's
    `_target_`, so that `hydra.utils.instantiate` builds the schedule.

    Examples:
      >>> from jaxdecay import ExponentialDecayConfig
      >>> ExponentialDecayConfig(0.1, decay_steps=1000, decay_rate=0.5)._target_
      'jaxdecay.ExponentialDecay'
    """
    spec = cls.spec
    fields = [
        (item.name, spec.plain_type(item.name), dataclasses.field(default=item.default))
        for item in spec.fields
    ]
    target = f"jaxdecay.{cls.__name__}"
    return dataclasses.make_dataclass(
        f"{cls.__name__}Config",
        [*fields, ("_target_", str, dataclasses.field(default=target))],
        namespace={"__module__": __name__, "__doc__": _schema.__doc__},
    )


SCHEMAS = {name: _schema(cls) for name, cls in _registry.FAMILIES.items()}
ExponentialDecayConfig = SCHEMAS["ExponentialDecay"]


def schedule_from_data(data: Any) -> Config:
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
        return _registry.deserialize(data)  # type: ignore[no-any-return]
    if "init_value" in data or "peak_value" in data:
        return from_optax_kwargs(data)
    cls = None
    if "_target_" in data:
        target = data["_target_"]
        if not isinstance(target, str) or target not in _TARGETS:
            raise ValueError(
                f"_target_ must be {one_of(_TARGETS)}, got {preview(target)}; "
                "targets named in data are never imported"
            )
        cls = _TARGETS[target]
        data = {key: value for key, value in data.items() if key != "_target_"}
    cls = cls or _serialize.bare_class(data, _registry.FAMILIES)
    return (cls or next(iter(_registry.FAMILIES.values()))).from_config(data)


def from_optax_kwargs(kwargs: Mapping[str, Any]) -> Config:
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
    # The family whose optax schedule (with a warmup, or without) takes these.
    cls = next(c for c in _registry.FAMILIES.values() if c.family.optax[warmup])
    plain, function = cls.family.optax[0], str(cls.family.optax[warmup])
    keys = dict(cls.spec.optax_arguments(function))
    plain_keys = dict(cls.spec.optax_arguments(str(plain)))
    # optax requires the fields without a default, and in the warmup schedule its
    # own arguments (warmup_steps, and init_value, the warmup's start): the ones
    # the schedule without a warmup lacks.
    required = {
        optax
        for optax, name in keys.items()
        if name in cls.spec.required_keys or name not in plain_keys.values()
    }
    check_keys(
        f"optax.{function}'s arguments",
        kwargs,
        known=list(keys),
        required=required,
        plural=True,
    )
    return cls(**{keys[key]: value for key, value in kwargs.items()})


# ---------------------------------------------------------------------------
# Formats.
# ---------------------------------------------------------------------------

FORMATS = ("jaxdecay", "keras", "tf2", "optax", "yaml")  # `convert --to`


def format_config(schedule: Config, to: str, *, indent: int | None = None) -> str:
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
            if key in schedule.spec.extension_keys
        }
        if extensions:
            *others, last = extensions
            names = f"{', '.join(others)} or {last}" if others else last
            settings = ", ".join(
                f"{key}={value!r}" for key, value in extensions.items()
            )
            raise ValueError(
                f"Keras' {type(schedule).__name__} has no {names}; this schedule sets "
                f"{settings} (use --to jaxdecay)"
            )
        data = _registry.serialize(schedule)
        if to == "tf2":
            data = {"class_name": data["class_name"], "config": data["config"]}
    elif to == "optax":
        warmup = bool(schedule._warmups().any())  # as to_optax() decides
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


def to_yaml(schedule: Config) -> str:
    """Returns `schedule.get_config()` as YAML: the block an experiment config holds.

    Floats are written as Python's shortest repr, so they read back bit for bit.
    """
    yaml = _yaml.pyyaml()
    return str(yaml.safe_dump(schedule.get_config(), sort_keys=False))
