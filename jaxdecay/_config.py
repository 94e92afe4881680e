"""`ExponentialDecay`: the schedule as a frozen dataclass, and its (de)serialization.

The loaders here read plain data only: a class name is looked up in this module's own
allow-list, and nothing named in the data is ever imported or evaluated.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from jaxdecay import _schedule

_CLASS_NAME = "ExponentialDecay"
# Keras 3 writes "keras.optimizers.schedules" for its built-in schedules; the others
# are names the same class has been serialized under. They are compared as strings.
_KNOWN_MODULES = frozenset(
    {
        "keras.optimizers.schedules",
        "keras.src.optimizers.schedules.learning_rate_schedule",
        "jaxdecay",
    }
)
_KERAS_KEYS = (
    "initial_learning_rate",
    "decay_steps",
    "decay_rate",
    "staircase",
    "name",
)
_EXTENSION_KEYS = ("transition_begin", "end_learning_rate")
_REQUIRED_KEYS = frozenset({"initial_learning_rate", "decay_steps", "decay_rate"})
_WRAPPER_KEYS = frozenset({"module", "class_name", "config", "registered_name"})


@dataclasses.dataclass(frozen=True)
class ExponentialDecay:
    """Keras' `ExponentialDecay` schedule as a frozen, serializable dataclass.

    The instance is itself the schedule: call it with a step, or pass it to an optax
    optimizer as the learning rate. It computes exactly what `exponential_decay` with
    the same arguments computes. Use `dataclasses.replace` for variants.

    Attributes:
      initial_learning_rate: the learning rate at steps up to `transition_begin`.
      decay_steps: the number of steps over which the rate is multiplied by
        `decay_rate`; an integer in [1, 2**63 - 1].
      decay_rate: the factor per `decay_steps` steps; finite and > 0.
      staircase: decay in whole stairs of `decay_steps` steps.
      name: a label kept for Keras configs; it does not change the math.
      transition_begin: the step at which the decay starts (keyword-only).
      end_learning_rate: a bound the learning rate does not pass (keyword-only).

    Examples:
      >>> import jaxdecay
      >>> schedule = jaxdecay.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.5)
      >>> print(schedule(1000))
      0.05
      >>> schedule.get_config()
      {'initial_learning_rate': 0.1, 'decay_steps': 1000, 'decay_rate': 0.5, \
'staircase': False, 'name': 'ExponentialDecay'}
    """

    initial_learning_rate: float | np.generic
    decay_steps: int
    decay_rate: float | np.generic
    staircase: bool = False
    name: str | None = _CLASS_NAME
    _: dataclasses.KW_ONLY
    transition_begin: int = 0
    end_learning_rate: float | np.generic | None = None

    def __post_init__(self) -> None:
        # The same checks as the builder; the normalized values are stored, so equal
        # schedules compare and hash equal however their numbers were given.
        arguments = _schedule.check_arguments(
            self.initial_learning_rate,
            self.decay_steps,
            self.decay_rate,
            self.staircase,
            self.transition_begin,
            self.end_learning_rate,
        )
        for field, value in arguments.items():
            object.__setattr__(self, field, value)
        object.__setattr__(self, "name", _schedule.check_name(self.name))
        # Not a field: left out of equality, hashing and pickles (see __getstate__).
        object.__setattr__(self, "_schedule", _schedule.exponential_decay(**arguments))

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        """Returns the learning rate at `step`, as `exponential_decay` does."""
        schedule: _schedule.Schedule = self.__dict__["_schedule"]
        return schedule(step)

    def __getstate__(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Through __init__, so that a tampered pickle is validated like any input.
        self.__init__(**state)  # type: ignore[misc]

    # -- Keras' config format ------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """Returns the config in Keras' format: plain JSON-compatible values.

        The keys are Keras' own; `transition_begin` and `end_learning_rate` are added
        only when they differ from their defaults, so that a config Keras can load
        stays loadable by Keras.
        """
        config: dict[str, Any] = {
            "initial_learning_rate": float(self.initial_learning_rate),
            "decay_steps": self.decay_steps,
            "decay_rate": float(self.decay_rate),
            "staircase": self.staircase,
            "name": self.name,
        }
        if self.transition_begin != 0:
            config["transition_begin"] = self.transition_begin
        if self.end_learning_rate is not None:
            config["end_learning_rate"] = float(self.end_learning_rate)
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ExponentialDecay:
        """Builds a schedule from `get_config()` output, Keras' or this class's.

        Raises:
          TypeError: `config` is not a mapping, or a value has the wrong type.
          ValueError: a key is missing or unknown, or a value is out of range.
        """
        if not isinstance(config, Mapping):
            raise TypeError(
                f"config must be a dict, got {_preview(config)} of type "
                f"{type(config).__name__}"
            )
        keys = set(config)
        if not all(isinstance(key, str) for key in keys):
            raise TypeError(
                f"config keys must be strings, got {sorted(map(repr, keys))}"
            )
        unknown = keys - set(_KERAS_KEYS) - set(_EXTENSION_KEYS)
        if unknown:
            raise ValueError(
                f"config has unknown keys {sorted(unknown)}; "
                f"known keys are {list(_KERAS_KEYS + _EXTENSION_KEYS)}"
            )
        missing = _REQUIRED_KEYS - keys
        if missing:
            raise ValueError(f"config is missing the keys {sorted(missing)}")
        return cls(**config)

    # -- JSON ----------------------------------------------------------------------

    def to_json(self, *, indent: int | None = None) -> str:
        """Returns `serialize(self)` as JSON text (Keras 3's shape).

        Floats are written so that they read back bit for bit.
        """
        return json.dumps(serialize(self), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str | bytes) -> ExponentialDecay:
        """Reads JSON text written by `to_json`, Keras 3 or TF 2 (see `deserialize`)."""
        if not isinstance(text, (str, bytes, bytearray)):
            raise TypeError(
                f"text must be str or bytes, got {_preview(text)} of type "
                f"{type(text).__name__}"
            )
        return deserialize(text)

    # -- optax ---------------------------------------------------------------------

    def optax_kwargs(self) -> dict[str, Any]:
        """Returns the keyword arguments of `optax.exponential_decay` for this schedule.

        Examples:
          >>> import jaxdecay
          >>> jaxdecay.ExponentialDecay(0.1, 1000, 0.5).optax_kwargs()
          {'init_value': 0.1, 'transition_steps': 1000, 'decay_rate': 0.5, \
'transition_begin': 0, 'staircase': False, 'end_value': None}
        """
        return {
            "init_value": self.initial_learning_rate,
            "transition_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "transition_begin": self.transition_begin,
            "staircase": self.staircase,
            "end_value": self.end_learning_rate,
        }


def serialize(schedule: ExponentialDecay) -> dict[str, Any]:
    """Returns `schedule` as a dict in Keras 3's serialized shape.

    `keras.optimizers.schedules.deserialize` loads the result as Keras' own
    `ExponentialDecay` when the config has only Keras' keys (that is, when
    `transition_begin` and `end_learning_rate` are at their defaults).

    Raises:
      TypeError: `schedule` is not an `ExponentialDecay` (a function returned by
        `exponential_decay` holds no config to write).

    Examples:
      >>> import jaxdecay
      >>> jaxdecay.serialize(jaxdecay.ExponentialDecay(0.1, 1000, 0.5))["class_name"]
      'ExponentialDecay'
    """
    if not isinstance(schedule, ExponentialDecay):
        raise TypeError(
            "serialize takes a jaxdecay.ExponentialDecay, got "
            f"{_preview(schedule)} of type {type(schedule).__name__}"
        )
    return {
        "module": "keras.optimizers.schedules",
        "class_name": _CLASS_NAME,
        "config": schedule.get_config(),
        "registered_name": None,
    }


def deserialize(data: Mapping[str, Any] | str | bytes) -> ExponentialDecay:
    """Reads a serialized schedule: a dict, or JSON text of one.

    Accepts Keras 3's shape (`module`, `class_name`, `config`, `registered_name`) and
    TF 2's (`class_name`, `config`; `"name": null` allowed). `class_name` must be
    `ExponentialDecay` and `module`, when given, one of the names Keras and jaxdecay
    write; they are compared as strings, never imported.

    Raises:
      TypeError: the data or a value in it has the wrong type.
      ValueError: the text is not JSON, or a key or value is not allowed.

    Examples:
      >>> import jaxdecay
      >>> jaxdecay.deserialize('{"class_name": "ExponentialDecay", "config": '
      ...     '{"initial_learning_rate": 0.1, "decay_steps": 1000, "decay_rate": 0.5, '
      ...     '"staircase": false, "name": null}}')
      ExponentialDecay(initial_learning_rate=0.1, decay_steps=1000, decay_rate=0.5, \
staircase=False, name=None, transition_begin=0, end_learning_rate=None)
    """
    if isinstance(data, (str, bytes, bytearray)):
        data = _parse_json(data)
    if not isinstance(data, Mapping):
        raise TypeError(
            "a serialized schedule must be a dict with 'class_name' and 'config', got "
            f"{_preview(data)} of type {type(data).__name__}"
        )
    keys = set(data)
    unknown = keys - _WRAPPER_KEYS
    if unknown:
        raise ValueError(
            f"serialized schedule has unknown keys {sorted(map(str, unknown))}; "
            f"known keys are {sorted(_WRAPPER_KEYS)}"
        )
    missing = {"class_name", "config"} - keys
    if missing:
        raise ValueError(f"serialized schedule is missing the keys {sorted(missing)}")
    class_name = data["class_name"]
    if class_name != _CLASS_NAME:
        raise ValueError(
            f"class_name must be {_CLASS_NAME!r}, got {_preview(class_name)}"
        )
    module = data.get("module")
    if module is not None and (
        not isinstance(module, str) or module not in _KNOWN_MODULES
    ):
        raise ValueError(
            f"module must be one of {sorted(_KNOWN_MODULES)} or absent, got "
            f"{_preview(module)}; modules named in data are never imported"
        )
    registered_name = data.get("registered_name")
    if registered_name is not None and registered_name != _CLASS_NAME:
        raise ValueError(
            f"registered_name must be None or {_CLASS_NAME!r}, got "
            f"{_preview(registered_name)}"
        )
    return ExponentialDecay.from_config(data["config"])


def _parse_json(text: str | bytes | bytearray) -> Any:
    def refuse_constant(constant: str) -> None:
        raise ValueError(f"JSON text has the non-finite number {constant}")

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except RecursionError:
        raise ValueError("JSON text is nested too deeply") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"JSON text is not valid UTF-8: {error}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error}") from None


def _preview(value: Any) -> str:
    """A repr short enough for an error message, whatever the data holds."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
