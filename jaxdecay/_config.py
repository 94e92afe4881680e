"""`ExponentialDecay`: the schedule as a frozen dataclass, and its (de)serialization.

The loaders here read plain data only: a class name is looked up in this module's own
allow-list, and nothing named in the data is ever imported or evaluated.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
import os
import typing
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxdecay import _json, _schedule, _solve, _validation
from jaxdecay._validation import (
    check_keys,
    field_name,
    key_list,
    preview,
    rejects_optax_names,
)

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
# The format of a serialized config. Format 1 is Keras' format plus the extension
# keys `transition_begin` and `end_learning_rate`; format 2 adds `warmup_steps` and
# `warmup_init`. It is written, as a top-level key (which Keras ignores), only into
# configs that use the extension keys, and as the oldest format that has every key
# used: a config with Keras' keys only stays exactly what Keras writes, and one
# without a warmup stays readable by a jaxdecay that reads format 1. Absent, the
# config is Keras' or TF's (or jaxdecay 0.1's) and read as the newest format; a newer
# format is refused, never read without what it added.
_FORMAT_KEY = "jaxdecay_format"
_FORMAT = 2
_WRAPPER_KEYS = frozenset(
    {"module", "class_name", "config", "registered_name", _FORMAT_KEY}
)


# The optax schedules a config maps onto: `exponential_decay`, and for a config with
# a warmup `warmup_exponential_decay_schedule`.
EXPONENTIAL_DECAY = "exponential_decay"
WARMUP_EXPONENTIAL_DECAY = "warmup_exponential_decay_schedule"


class Optax(NamedTuple):
    """A field as an argument of an optax schedule: its name there, and its place
    in that schedule's signature (optax orders its arguments otherwise than Keras)."""

    name: str
    position: int
    schedule: str = EXPONENTIAL_DECAY


@dataclasses.dataclass(frozen=True)
class Role:
    """What a field of `ExponentialDecay` is, said once on the field (as flax's
    `struct.field(pytree_node=False)`). The pytree leaves, the config keys, optax's
    arguments and the OmegaConf schema are all read from the roles.

    A leaf is a number the schedule's program reads (an integer as two words), and
    static otherwise; a Keras key is always written by `get_config`, an extension
    only when it differs from its default, `optax` holds the field's argument in
    each optax schedule that has one, and `format` is the serialized format that
    introduced the key.
    """

    leaf: bool
    keras: bool
    optax: tuple[Optax, ...]
    format: int = 1


_ROLE = "jaxdecay"  # the key of a field's role in its dataclass metadata
_WARMUP = WARMUP_EXPONENTIAL_DECAY  # short, for the fields' declarations


def field(
    *,
    leaf: bool,
    keras: bool,
    optax: Optax | tuple[Optax, ...] | None,
    format: int = 1,
    default: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field of `ExponentialDecay` with its `Role`; `optax` is one
    argument, one per optax schedule, or None."""
    arguments = () if optax is None else (optax,) if isinstance(optax, Optax) else optax
    return dataclasses.field(
        default=default, metadata={_ROLE: Role(leaf, keras, tuple(arguments), format)}
    )


@dataclasses.dataclass(frozen=True, eq=False)
class ExponentialDecay:
    """Keras' `ExponentialDecay` schedule as a frozen, serializable dataclass.

    The instance is itself the schedule: call it with a step, or pass it to an optax
    optimizer as the learning rate. It computes exactly what `exponential_decay` with
    the same arguments computes. Use `dataclasses.replace` for variants.

    It is a JAX pytree: the numeric hyperparameters are its leaves, as the schedule's
    program takes them (floats in the compute dtype; `decay_steps`,
    `transition_begin` and `warmup_steps` as two integer words each, so that they
    are exact without x64), and `staircase` and `name` are static. Passed as an
    argument to a jitted function, new values never recompile, and `jax.vmap` over a
    stack of configs
    (`jax.tree.map(lambda *leaves: jnp.stack(leaves), *configs)`) runs many
    schedules in one program, each with the bits of its own single run.

    Attributes:
      initial_learning_rate: the learning rate at steps up to `transition_begin`.
      decay_steps: the number of steps over which the rate is multiplied by
        `decay_rate`; an integer in [1, 2**63 - 1].
      decay_rate: the factor per `decay_steps` steps; finite and > 0.
      staircase: decay in whole stairs of `decay_steps` steps.
      name: a label kept for Keras configs; it does not change the math.
      transition_begin: the steps the decay waits after the warmup (keyword-only).
      end_learning_rate: a bound the learning rate does not pass (keyword-only).
      warmup_steps: the length of the linear warmup before the decay; an integer
        >= 0, 0 for none (keyword-only).
      warmup_init: the learning rate at step 0, where the warmup starts; finite
        (keyword-only).

    Examples:
      >>> import jaxdecay
      >>> schedule = jaxdecay.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.5)
      >>> print(schedule(1000))
      0.05
      >>> schedule.get_config()
      {'initial_learning_rate': 0.1, 'decay_steps': 1000, 'decay_rate': 0.5, \
'staircase': False, 'name': 'ExponentialDecay'}
    """

    initial_learning_rate: float | np.generic = field(
        leaf=True,
        keras=True,
        optax=(Optax("init_value", 0), Optax("peak_value", 1, _WARMUP)),
    )
    decay_steps: int = field(
        leaf=True,
        keras=True,
        optax=(Optax("transition_steps", 1), Optax("transition_steps", 3, _WARMUP)),
    )
    decay_rate: float | np.generic = field(
        leaf=True,
        keras=True,
        optax=(Optax("decay_rate", 2), Optax("decay_rate", 4, _WARMUP)),
    )
    staircase: bool = field(
        leaf=False,
        keras=True,
        optax=(Optax("staircase", 4), Optax("staircase", 6, _WARMUP)),
        default=False,
    )
    name: str | None = field(leaf=False, keras=True, optax=None, default=_CLASS_NAME)
    _: dataclasses.KW_ONLY
    transition_begin: int = field(
        leaf=True,
        keras=False,
        optax=(Optax("transition_begin", 3), Optax("transition_begin", 5, _WARMUP)),
        default=0,
    )
    end_learning_rate: float | np.generic | None = field(
        leaf=True,
        keras=False,
        optax=(Optax("end_value", 5), Optax("end_value", 7, _WARMUP)),
        default=None,
    )
    warmup_steps: int = field(
        leaf=True,
        keras=False,
        optax=Optax("warmup_steps", 2, _WARMUP),
        format=2,
        default=0,
    )
    warmup_init: float | np.generic = field(
        leaf=True,
        keras=False,
        optax=Optax("init_value", 0, _WARMUP),
        format=2,
        default=0.0,
    )

    def __post_init__(self) -> None:
        # The same checks as the builder (traced values pass unchecked); the
        # normalized values are stored, so equal schedules compare and hash equal
        # however their numbers were given.
        arguments = _validation.check_arguments(**self._arguments())
        for field, value in arguments.items():
            object.__setattr__(self, field, value)
        object.__setattr__(self, "name", _validation.check_name(self.name))
        dtype = _schedule.result_dtype(self.initial_learning_rate)
        object.__setattr__(self, "_dtype", dtype)
        object.__setattr__(self, "_schedule", _schedule.schedule_for(arguments, dtype))

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        """Returns the learning rate at `step`, as `exponential_decay` does."""
        return self._schedule(step)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        # `_schedule` is built with the instance, or at the first call of one that
        # pytree unflattening made; it is kept out of the fields: not compared,
        # hashed or pickled.
        if name != "_schedule":
            raise AttributeError(name)
        schedule = _schedule.schedule_for(self._arguments(), self.__dict__["_dtype"])
        object.__setattr__(self, "_schedule", schedule)
        return schedule

    def _arguments(self) -> dict[str, Any]:
        """The fields the math needs (all but `name`), by the builder's names."""
        return {name: getattr(self, name) for name in _MATH_FIELDS}

    def _key(self) -> tuple[Any, ...]:
        """The fields as hashable values; arrays by dtype, shape and bytes."""
        key = []
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, (_schedule.Words, np.ndarray, jax.Array)):
                if _validation.is_traced(value) or isinstance(value, _schedule.Words):
                    raise TypeError(
                        f"a schedule with a traced {field.name} has no value to "
                        "compare or hash"
                    )
                array = np.asarray(value)
                value = ("array", array.dtype.str, array.shape, array.tobytes())
            key.append(value)
        return tuple(key)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, ExponentialDecay)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

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
        config: dict[str, Any] = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if role(item).leaf and value is not None:
                value = self._number(item.name, number_type(item))
            if role(item).keras or value != item.default:
                config[item.name] = value
        return config

    def _number(self, field: str, kind: type[int] | type[float]) -> Any:
        """A field as a Python number, exactly; a batch or a traced value is refused
        rather than written as an array's repr."""
        value = getattr(self, field)
        traced = _validation.is_traced(value) or isinstance(value, _schedule.Words)
        if traced or np.ndim(value) != 0:
            raise TypeError(
                f"cannot serialize {field}: it is {_describe_value(value)}, not a "
                "number; serialize each config of a batch on its own, outside jit"
            )
        return kind(value)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ExponentialDecay:
        """Builds a schedule from `get_config()` output, Keras' or this class's.

        Raises:
          TypeError: `config` is not a mapping, or a value has the wrong type.
          ValueError: a key is missing or unknown, or a value is out of range.
        """
        if not isinstance(config, Mapping) and callable(
            getattr(config, "to_dict", None)
        ):
            config = config.to_dict()  # ml_collections' ConfigDict is no Mapping
        if not isinstance(config, Mapping):
            raise TypeError(
                f"config must be a dict, got {preview(config)} of type "
                f"{type(config).__name__}"
            )
        keys = set(config)
        if not all(isinstance(key, str) for key in keys):
            raise TypeError(
                f"config keys must be strings, got {sorted(map(repr, keys))}"
            )
        check_keys("config", keys, known=KNOWN_KEYS, required=REQUIRED_KEYS)
        return cls(**config)

    @classmethod
    def from_endpoints(
        cls,
        initial_learning_rate: float | np.generic,
        final_learning_rate: float | np.generic,
        total_steps: int,
        decay_steps: int,
        staircase: bool = False,
        **kwargs: Any,
    ) -> ExponentialDecay:
        """Builds the schedule whose learning rate at `total_steps` is the final one.

        The decay starts at `start = warmup_steps + transition_begin`, and
        `total_steps` counts from step 0, the warmup included: `decay_rate = (final
        / initial) ** (decay_steps / (total_steps - start))`, or with
        `staircase=True` `** (1 / ((total_steps - start) // decay_steps))`, computed
        in 40-digit decimal and rounded once to float64 (see `jaxdecay solve` for
        how close the schedule then is to `final_learning_rate` at `total_steps`).

        Args:
          initial_learning_rate: the learning rate at the start of the decay (the
            peak, after a warmup).
          final_learning_rate: the learning rate wanted at `total_steps`.
          total_steps: the step at which the final learning rate is reached.
          decay_steps: as in the constructor.
          staircase: as in the constructor.
          **kwargs: `name`, `transition_begin`, `end_learning_rate`,
            `warmup_steps`, `warmup_init`.

        Raises:
          TypeError: an argument has the wrong type (the message names it).
          ValueError: no decay rate reaches the target (the message says why).

        Examples:
          >>> import jaxdecay
          >>> schedule = jaxdecay.ExponentialDecay.from_endpoints(
          ...     0.1, 1e-4, total_steps=100_000, decay_steps=1000)
          >>> schedule.decay_rate
          0.933254300796991
          >>> round(float(schedule(100_000)), 10)
          0.0001
          >>> jaxdecay.ExponentialDecay.from_endpoints(
          ...     0.1, 0.025, total_steps=2500, decay_steps=1000, warmup_steps=500
          ... ).decay_rate
          0.5
        """
        decay_rate = _solve.decay_rate_for(
            initial_learning_rate,
            final_learning_rate,
            total_steps,
            decay_steps,
            staircase,
            transition_begin=kwargs.get("transition_begin", 0),
            end_learning_rate=kwargs.get("end_learning_rate"),
            warmup_steps=kwargs.get("warmup_steps", 0),
        )
        return cls(initial_learning_rate, decay_steps, decay_rate, staircase, **kwargs)

    # -- JSON ----------------------------------------------------------------------

    def to_json(self, *, indent: int | None = None) -> str:
        """Returns `serialize(self)` as JSON text (Keras 3's shape).

        Floats are written so that they read back bit for bit.

        Raises:
          ValueError: the text would be longer than `from_json` reads (1 MiB; only
            a name of about a million characters makes it so).
        """
        text = json.dumps(serialize(self), indent=indent, allow_nan=False)
        if len(text) > _json.MAX_LENGTH:
            raise ValueError(
                f"the JSON text of this schedule is {len(text)} characters long, "
                f"longer than from_json reads ({_json.MAX_LENGTH}); shorten its name"
            )
        return text

    @classmethod
    def from_json(cls, text: str | bytes) -> ExponentialDecay:
        """Reads JSON text written by `to_json`, Keras 3 or TF 2 (see `deserialize`).

        It reads text, not files: `load` reads a file.
        """
        if isinstance(text, os.PathLike):
            raise TypeError(
                f"text must be str or bytes, got the path {preview(text)}; {_LOAD_HINT}"
            )
        if not isinstance(text, (str, bytes, bytearray)):
            raise TypeError(
                f"text must be str or bytes, got {preview(text)} of type "
                f"{type(text).__name__}"
            )
        return deserialize(text)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ExponentialDecay:
        """Reads a JSON file: what `to_json` writes, or any config `deserialize` reads.

        Raises:
          OSError: the file cannot be read.
          TypeError, ValueError: as `deserialize`, the message prefixed by the path.

        Examples:
          >>> import pathlib, tempfile
          >>> import jaxdecay
          >>> path = pathlib.Path(tempfile.mkdtemp()) / "lr.json"
          >>> _ = path.write_text(jaxdecay.ExponentialDecay(0.1, 1000, 0.5).to_json())
          >>> jaxdecay.ExponentialDecay.load(path).decay_rate
          0.5
        """
        with open(path, "rb") as file:
            text = file.read(_json.MAX_LENGTH + 1)
        where = os.fspath(path)
        if len(text) > _json.MAX_LENGTH:
            raise ValueError(
                f"{where}: the file is longer than {_json.MAX_LENGTH} bytes (1 MiB), "
                "the most a config may be"
            )
        try:
            return deserialize(text)
        except TypeError as error:
            raise TypeError(f"{where}: {error}") from None
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None

    # -- optax ---------------------------------------------------------------------

    def optax_kwargs(self, *, warmup: bool = False) -> dict[str, Any]:
        """Returns the keyword arguments of `optax.exponential_decay`, or with
        `warmup=True` of `optax.warmup_exponential_decay_schedule`, for this schedule.

        optax's `exponential_decay` has no warmup and its warmup schedule needs one,
        so a schedule fits one of the two: the one `to_optax()` builds. In the
        warmup's arguments `initial_learning_rate` is `peak_value` and `warmup_init`
        is `init_value`. Without a warmup `warmup_init` is unused, and not written.

        Raises:
          ValueError: `warmup` is False and the schedule has a warmup
            (`warmup_steps > 0`), or True and it has none.
          TypeError: `warmup_steps` is traced: which schedule fits needs its value.

        Examples:
          >>> import jaxdecay
          >>> jaxdecay.ExponentialDecay(0.1, 1000, 0.5).optax_kwargs()
          {'init_value': 0.1, 'transition_steps': 1000, 'decay_rate': 0.5, \
'transition_begin': 0, 'staircase': False, 'end_value': None}
          >>> jaxdecay.ExponentialDecay(0.1, 1000, 0.5, warmup_steps=100).optax_kwargs(
          ...     warmup=True)
          {'init_value': 0.0, 'peak_value': 0.1, 'warmup_steps': 100, \
'transition_steps': 1000, 'decay_rate': 0.5, 'transition_begin': 0, \
'staircase': False, 'end_value': None}
        """
        warmup = _validation.check_bool("warmup", warmup)
        warmups = self._warmups()
        if not warmup and warmups.any():
            raise ValueError(
                f"optax.exponential_decay has no warmup; this schedule sets "
                f"warmup_steps={preview(self.warmup_steps)}: use to_optax(), or "
                "optax_kwargs(warmup=True) for the arguments of "
                "optax.warmup_exponential_decay_schedule"
            )
        if warmup and not warmups.all():
            raise ValueError(
                "optax.warmup_exponential_decay_schedule needs warmup_steps > 0; "
                f"this schedule has warmup_steps={preview(self.warmup_steps)}: use "
                "to_optax(), or optax_kwargs() for the arguments of "
                "optax.exponential_decay"
            )
        arguments = OPTAX_WARMUP_ARGUMENTS if warmup else OPTAX_ARGUMENTS
        return {optax_name: getattr(self, name) for optax_name, name in arguments}

    def to_optax(self) -> _schedule.Schedule:
        """Returns the equivalent optax schedule, built by optax itself.

        It is `optax.exponential_decay(**self.optax_kwargs())`, or for a schedule
        with a warmup `optax.warmup_exponential_decay_schedule(**self.optax_kwargs(
        warmup=True))`. optax computes in the compute dtype with its own rounding:
        its values are within a few hundred float32 ulp of this schedule's (see
        docs/numerics.md). The schedule itself is an optax schedule too: this is for
        code that wants optax's.

        Raises:
          ImportError: optax is not installed.
          TypeError: `warmup_steps` is traced: which schedule fits needs its value.

        Examples:
          >>> import jaxdecay
          >>> schedule = jaxdecay.ExponentialDecay(0.1, 1000, 0.5, warmup_steps=100)
          >>> optax_schedule = schedule.to_optax()
          >>> print(optax_schedule(50), optax_schedule(1100))
          0.05 0.05
        """
        try:
            import optax
        except ImportError as error:
            # Here, not at the top: _interop builds on this module.
            from jaxdecay import _interop

            raise _interop.missing_extra("optax", "optax") from error
        if self._warmups().any():
            schedule = optax.warmup_exponential_decay_schedule
            return schedule(**self.optax_kwargs(warmup=True))  # type: ignore[no-any-return]
        return optax.exponential_decay(**self.optax_kwargs())  # type: ignore[no-any-return]

    def _warmups(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Whether the schedule (each of a batch) has a warmup: `warmup_steps > 0`."""
        value = self.warmup_steps
        if _validation.is_traced(value) or isinstance(value, _schedule.Words):
            raise TypeError(
                f"warmup_steps is {_describe_value(value)}: which optax schedule "
                "fits this one needs its value, outside jit"
            )
        return np.asarray(value) > 0


# optax's names (`transition_steps=`) get an error naming the field to use. The
# generated __init__ is wrapped, not replaced: the class stays a dataclass, and
# `inspect.signature(ExponentialDecay)` still shows the fields.
ExponentialDecay.__init__ = rejects_optax_names(  # type: ignore[method-assign]
    "ExponentialDecay"
)(ExponentialDecay.__init__)


def role(item: dataclasses.Field[Any]) -> Role:
    """The role declared on a field of `ExponentialDecay`."""
    declared: Role = item.metadata[_ROLE]
    return declared


def plain_type(item: dataclasses.Field[Any]) -> Any:
    """A field's type as plain Python types (NumPy scalars dropped), as OmegaConf and
    JSON know them: `float`, `float | None`, `int`, `bool`, `str | None`."""
    hint = typing.get_type_hints(ExponentialDecay)[item.name]
    kept = [t for t in typing.get_args(hint) or (hint,) if t is not np.generic]
    return functools.reduce(operator.or_, kept)


def number_type(item: dataclasses.Field[Any]) -> type[int] | type[float]:
    """`int` or `float`: the number a leaf field holds."""
    kind: type[int] | type[float] = next(
        t
        for t in typing.get_args(plain_type(item)) or (plain_type(item),)
        if t in (int, float)
    )
    return kind


FIELDS = dataclasses.fields(ExponentialDecay)
_MATH_FIELDS = tuple(item.name for item in FIELDS if item.name != "name")
LEAVES = tuple(item.name for item in FIELDS if role(item).leaf)
STATIC = tuple(item.name for item in FIELDS if not role(item).leaf)
_INTEGER_LEAVES = frozenset(
    item.name for item in FIELDS if role(item).leaf and number_type(item) is int
)
KERAS_KEYS = tuple(item.name for item in FIELDS if role(item).keras)
EXTENSION_KEYS = tuple(item.name for item in FIELDS if not role(item).keras)
KNOWN_KEYS = KERAS_KEYS + EXTENSION_KEYS
_FORMATS = {item.name: role(item).format for item in FIELDS}
REQUIRED_KEYS = frozenset(
    item.name
    for item in FIELDS
    if item.default is dataclasses.MISSING
    and item.default_factory is dataclasses.MISSING
)


def optax_arguments(schedule: str) -> tuple[tuple[str, str], ...]:
    """(optax's name, the field's name) of optax's `schedule`, in optax's order."""
    arguments = [
        (optax.position, optax.name, item.name)
        for item in FIELDS
        for optax in role(item).optax
        if optax.schedule == schedule
    ]
    return tuple((optax_name, name) for _, optax_name, name in sorted(arguments))


OPTAX_ARGUMENTS = optax_arguments(EXPONENTIAL_DECAY)
OPTAX_WARMUP_ARGUMENTS = optax_arguments(WARMUP_EXPONENTIAL_DECAY)


def serialize(schedule: ExponentialDecay) -> dict[str, Any]:
    """Returns `schedule` as a dict in Keras 3's serialized shape.

    `keras.optimizers.schedules.deserialize` loads the result as Keras' own
    `ExponentialDecay` when the config has only Keras' keys (that is, when
    `transition_begin`, `end_learning_rate`, `warmup_steps` and `warmup_init` are at
    their defaults). Otherwise the dict also has `"jaxdecay_format"`: the oldest
    format that reads those keys (1, or 2 for a warmup).

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
            f"{preview(schedule)} of type {type(schedule).__name__}"
        )
    config = schedule.get_config()
    data: dict[str, Any] = {
        "module": "keras.optimizers.schedules",
        "class_name": _CLASS_NAME,
        "config": config,
        "registered_name": None,
    }
    if not config.keys() <= set(KERAS_KEYS):
        # The oldest format that reads the config: a config with Keras' keys only
        # stays exactly what Keras writes, readable by every Keras, TF and jaxdecay.
        data[_FORMAT_KEY] = max(_FORMATS[key] for key in config)
    return data


def deserialize(data: Mapping[str, Any] | str | bytes) -> ExponentialDecay:
    """Reads a serialized schedule: a dict, or JSON text of one.

    Accepts Keras 3's shape (`module`, `class_name`, `config`, `registered_name`) and
    TF 2's (`class_name`, `config`; `"name": null` allowed). `class_name` must be
    `ExponentialDecay` and `module`, when given, one of the names Keras and jaxdecay
    write; they are compared as strings, never imported. A bare `get_config()` dict
    (no `class_name` or `config` key, some of the config's keys) is read as
    `ExponentialDecay.from_config` reads it.

    A `"jaxdecay_format"` newer than this version reads is refused, as are JSON text
    longer than 1 MiB (2**20 characters, or bytes) or nested deeper than 8 levels,
    integers of more than 100 digits, NaN and Infinity literals, and duplicate keys;
    all before anything is built.

    Raises:
      TypeError: the data or a value in it has the wrong type.
      ValueError: the text is not JSON or exceeds a limit, the format is newer, or
        a key or value is not allowed.

    Examples:
      >>> import jaxdecay
      >>> jaxdecay.deserialize('{"class_name": "ExponentialDecay", "config": '
      ...     '{"initial_learning_rate": 0.1, "decay_steps": 1000, "decay_rate": 0.5, '
      ...     '"staircase": false, "name": null}}')
      ExponentialDecay(initial_learning_rate=0.1, decay_steps=1000, decay_rate=0.5, \
staircase=False, name=None, transition_begin=0, end_learning_rate=None, \
warmup_steps=0, warmup_init=0.0)
    """
    if isinstance(data, (str, bytes, bytearray)):
        try:
            data = _json.parse_json(data)
        except ValueError as error:
            if isinstance(data, str) and _looks_like_path(data):
                raise ValueError(
                    f"{error}; {preview(data.strip())} looks like a file path: "
                    f"deserialize and from_json read JSON text, {_LOAD_HINT}"
                ) from None
            raise
    if not isinstance(data, Mapping):
        raise TypeError(
            "a serialized schedule must be a dict with 'class_name' and 'config', got "
            f"{preview(data)} of type {type(data).__name__}"
        )
    if not {"class_name", "config"} & data.keys() and not data.keys().isdisjoint(
        KNOWN_KEYS
    ):
        # A bare get_config() dict, which the command line reads too.
        _check_no_containers(data)
        return ExponentialDecay.from_config(data)
    # First: a newer format is refused as such, whatever else it holds.
    _check_format(data)
    check_keys(
        "serialized schedule",
        data.keys(),
        known=sorted(_WRAPPER_KEYS),
        required={"class_name", "config"},
        bounded=True,
    )
    class_name = data["class_name"]
    if not isinstance(class_name, str) or class_name != _CLASS_NAME:
        raise ValueError(
            f"class_name must be {_CLASS_NAME!r}, got {preview(class_name)}"
        )
    module = data.get("module")
    if module is not None and (
        not isinstance(module, str) or module not in _KNOWN_MODULES
    ):
        raise ValueError(
            f"module must be one of {sorted(_KNOWN_MODULES)} or absent, got "
            f"{preview(module)}; modules named in data are never imported"
        )
    registered_name = data.get("registered_name")
    if registered_name is not None and (
        not isinstance(registered_name, str) or registered_name != _CLASS_NAME
    ):
        raise ValueError(
            f"registered_name must be None or {_CLASS_NAME!r}, got "
            f"{preview(registered_name)}"
        )
    config = data["config"]
    if isinstance(config, Mapping):
        _check_no_containers(config)
    return ExponentialDecay.from_config(config)


def _check_no_containers(config: Mapping[Any, Any]) -> None:
    """Refuses a container as a config value: no field takes one, and refused here,
    a value of any size or depth never reaches a message that shows it whole."""
    for key, value in config.items():
        if isinstance(value, (Mapping, list, tuple, set, frozenset)):
            raise TypeError(
                f"{field_name(key)} must be a number, a bool, a string or null, got "
                f"{preview(value)} of type {type(value).__name__}"
            )


_LOAD_HINT = "ExponentialDecay.load(path) reads a file"
_PATH_SUFFIXES = (".json", ".yaml", ".yml")


def _looks_like_path(text: str) -> bool:
    """Whether text that is not JSON looks like a file name given by mistake: one
    short line, not JSON's opening, with a path separator or a config's suffix."""
    text = text.strip()
    return (
        0 < len(text) <= 4096
        and "\n" not in text
        and not text.startswith(("{", "[", '"'))
        and ("/" in text or "\\" in text or text.lower().endswith(_PATH_SUFFIXES))
    )


def _describe_value(value: Any) -> str:
    if isinstance(value, _schedule.Words):
        return "a traced integer"
    if _validation.is_traced(value):
        return f"a traced value of dtype {value.dtype} and shape {value.shape}"
    return f"an array of dtype {value.dtype} and shape {np.shape(value)}"


def _flatten_with_keys(
    schedule: ExponentialDecay,
) -> tuple[tuple[tuple[Any, Any], ...], tuple[Any, ...]]:
    # The integers as two words each, so that they are data without x64 too; the
    # floats as given: every path rounds them to the compute dtype alike. None (no
    # end_learning_rate) is no leaf.
    children = tuple(
        (
            jax.tree_util.GetAttrKey(name),
            _schedule.to_words(getattr(schedule, name))
            if name in _INTEGER_LEAVES
            else getattr(schedule, name),
        )
        for name in LEAVES
    )
    static = tuple(getattr(schedule, name) for name in STATIC)
    return children, (*static, schedule.__dict__["_dtype"])


def _unflatten(aux: tuple[Any, ...], children: Any) -> ExponentialDecay:
    # Not through __init__: JAX rebuilds pytrees with tracers, batches and
    # placeholders, which are not configs to validate. Known integer words become
    # the integers they stand for again. Field order, as the flattening's.
    schedule = object.__new__(ExponentialDecay)
    *static, dtype = aux
    for name, value in zip(LEAVES, children, strict=True):
        if isinstance(value, _schedule.Words):
            value = _schedule.from_words(value)
        object.__setattr__(schedule, name, value)
    for name, value in zip(STATIC, static, strict=True):
        object.__setattr__(schedule, name, value)
    object.__setattr__(schedule, "_dtype", dtype)
    return schedule


jax.tree_util.register_pytree_with_keys(
    ExponentialDecay,
    _flatten_with_keys,
    _unflatten,
    lambda schedule: (
        tuple(child for _, child in _flatten_with_keys(schedule)[0]),
        _flatten_with_keys(schedule)[1],
    ),
)


def _check_format(data: Mapping[Any, Any]) -> None:
    """Refuses a config whose `jaxdecay_format` this version cannot read."""
    if _FORMAT_KEY not in data:
        return  # Keras', TF's, or jaxdecay's before formats were numbered
    version = data[_FORMAT_KEY]
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(
            f"{_FORMAT_KEY} must be an integer, got {preview(version)} of type "
            f"{type(version).__name__}"
        )
    if version > _FORMAT:
        unknown = _unknown_fields(data)
        raise ValueError(
            f"{_FORMAT_KEY} is {preview(version)}, newer than {_FORMAT}, the newest "
            "format this jaxdecay reads: the config is refused rather than read "
            "without what the newer format added; upgrade jaxdecay to load it"
            + (f" (fields unknown here: {key_list(unknown)})" if unknown else "")
        )
    if version < 1:
        raise ValueError(
            f"{_FORMAT_KEY} must be a positive integer, got {preview(version)}"
        )


def _unknown_fields(data: Mapping[Any, Any]) -> list[Any]:
    """The keys of `data` and of its config that this version does not know."""
    unknown = [key for key in data if key not in _WRAPPER_KEYS]
    config = data.get("config")
    if isinstance(config, Mapping):
        known = set(KNOWN_KEYS)
        unknown += [
            f"config.{key}" if isinstance(key, str) else key
            for key in config
            if key not in known
        ]
    return unknown
