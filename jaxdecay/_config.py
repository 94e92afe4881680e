"""The base of every schedule dataclass, and what it derives from the fields.

A family declares a frozen dataclass whose fields carry their roles
(`_fields.field`), subclasses `Config` and is decorated with `schedule_class`.
From the fields alone it then has validation, the pytree (the numbers as leaves, the
static fields and the pieces in use as structure), equality, hashing, pickling,
`get_config`/`from_config`, JSON and files, optax's arguments, and its schedule,
which runs the shared programs of `_program` with the family's kernel.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, NamedTuple, TypeVar

import jax
import numpy as np

from jaxdecay import _keras, _program, _serialize, _steps, _validation
from jaxdecay._fields import Spec, role
from jaxdecay._program import Kernel, Part, Plan, Schedule
from jaxdecay._validation import check_keys, preview


class Piece(NamedTuple):
    """A piece any family can have, such as the warmup: its kernel, the `part` its
    fields declare, and whether a config's validated fields use it (a config that
    does not use a piece runs none of it).

    length: the steps the piece takes before the family's own (a config in).
    formula: (config, the rest's formula) -> the text with the piece said first.
    """

    name: str
    kernel: Kernel
    used: Callable[[Mapping[str, Any]], bool]
    length: Callable[[Any], int]
    formula: Callable[[Any, str], str]


class View(NamedTuple):
    """How a family's curve reads, for `jaxdecay show` and `jaxdecay plot`. Steps
    are counted from the start of the family's own steps, after its pieces.

    horizon: (config) -> the steps a default table or figure covers.
    bends: (config) -> the steps where the curve changes its formula.
    stepwise: (config) -> whether the curve is flat between jumps.
    edges: (config, last, limit) -> the steps in [1, last] where a stepwise
      curve jumps (at most `limit` of them, evenly chosen: `_steps.evenly`), and
      how many there are.
    formula: (config, the steps before the family's own) -> the curve as a
      Python expression of `step`.
    """

    horizon: Callable[[Any], int]
    bends: Callable[[Any], tuple[int, ...]]
    stepwise: Callable[[Any], bool]
    edges: Callable[[Any, int, int], tuple[np.ndarray, int]]
    formula: Callable[[Any, int], str]


class Family(NamedTuple):
    """A schedule family: its kernel and what the shared layers need to know.

    builder: the builder's name (`exponential_decay`).
    kernel: the family's `Kernel`.
    peak: the field that a piece such as the warmup leads up to.
    start: the family's field that a piece such as the warmup starts from, where
      the family has one (Keras' CosineDecay warms up from its initial rate);
      None: the piece's own (`warmup_init`).
    view: how the command line shows the family's curve.
    pieces: the pieces a config of the family may use, in the order they run
      (the first sees the step first: a warmup, then a hold).
    optax: optax's schedule without a warmup, and with one (None: none).
    rate: the field whose value 1 means no change (`decay_rate`), if any: a
      value other than 1 that the compute dtype rounds to 1 warns.
    check: (the validated fields by name) -> None, or raises: what no field's
      own check can see (the counts of two sequences that go together).
    optax_note: why optax has none of the family's schedules, said after
      `to_optax()`'s refusal.
    optax_refusal: (config) -> why optax has no schedule of this config of the
      family (a field that optax's schedule lacks), or None where it has one.
    """

    builder: str
    kernel: Kernel
    peak: str
    view: View
    pieces: tuple[Piece, ...] = ()
    optax: tuple[str | None, str | None] = (None, None)
    rate: str | None = None
    check: Callable[[Mapping[str, Any]], None] | None = None
    optax_note: str = ""
    optax_refusal: Callable[[Any], str | None] | None = None
    start: str | None = None


_C = TypeVar("_C", bound="Config")


class Config:
    """The base of a schedule dataclass: the instance is itself the schedule."""

    family: ClassVar[Family]
    spec: ClassVar[Spec]

    def __post_init__(self) -> None:
        # The same checks as the builder (traced values pass unchecked); the
        # normalized values are stored, so equal schedules compare and hash equal
        # however their numbers were given.
        values = self.spec.check({n: getattr(self, n) for n in self.spec.names})
        if self.family.check is not None:
            self.family.check(values)
        for name, value in values.items():
            object.__setattr__(self, name, value)
        counts = tuple(count(values[name]) for name in self.spec.sequences)
        object.__setattr__(self, "_counts", counts)
        _warn_if_rounded_away(self.spec, self.family, values)
        pieces = tuple(p.name for p in self.family.pieces if p.used(values))
        object.__setattr__(self, "_pieces", pieces)
        object.__setattr__(self, "_schedule", self._program())

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        """Returns the learning rate at `step`, as the builder's schedule does."""
        return self._schedule(step)  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> Any:
        # `_schedule` is built with the instance, or at the first call of one that
        # pytree unflattening made; it is kept out of the fields: not compared,
        # hashed or pickled.
        if name != "_schedule":
            raise AttributeError(name)
        schedule = self._program()
        object.__setattr__(self, "_schedule", schedule)
        return schedule

    def _program(self, prepared: tuple[Any, ...] | None = None) -> _program.Program:
        static = tuple((n, getattr(self, n)) for n in self.spec.structure)
        cls: Any = type(self)  # a class is hashable, whatever its instances
        counts = tuple(zip(self.spec.sequences, self.__dict__["_counts"], strict=True))
        plan = _plan(cls, static, self.__dict__["_pieces"], counts)
        arguments = {name: getattr(self, name) for name in self.spec.math}
        return _program.Program(plan, arguments, prepared)

    def _key(self) -> tuple[Any, ...]:
        """The fields as hashable values; arrays by dtype, shape and bytes."""
        return tuple(_hashable(n, getattr(self, n)) for n in self.spec.names)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Config)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.spec.names}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Through __init__, so that a tampered pickle is validated like any input.
        self.__init__(**state)  # type: ignore[misc]

    # -- Keras' config format, JSON and files ---------------------------------------

    def get_config(self) -> dict[str, Any]:
        """Returns the config in Keras' format: plain JSON-compatible values.

        The keys are Keras' own; jaxdecay's extension keys are added only when they
        differ from their defaults, so that a config Keras can load stays loadable
        by Keras.
        """
        config: dict[str, Any] = {}
        for item in self.spec.fields:
            value = getattr(self, item.name)
            kind = self.spec.number_type(item.name) if role(item).leaf else None
            if kind is not None and role(item).sequence:
                entries = _entries(item.name, value)
                value = [_number(item.name, x, kind) for x in entries]
            elif kind is not None and value is not None:
                value = _number(item.name, value, kind)
            if role(item).keras or not _same(value, item.default):
                config[item.name] = value
        return config

    @classmethod
    def from_config(cls: type[_C], config: Mapping[str, Any]) -> _C:
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
        spec = cls.spec
        for key in sorted(keys & spec.optax_names.keys()):
            raise ValueError(
                f"config has optax's key {key!r}; jaxdecay calls it "
                f"{spec.optax_names[key]!r} (Keras' name for optax's {key})"
            )
        check_keys("config", keys, known=spec.known_keys, required=spec.required_keys)
        return cls(**config)

    def to_json(self, *, indent: int | None = None) -> str:
        """Returns `jaxdecay.serialize(self)` as JSON text (Keras 3's shape).

        Floats are written so that they read back bit for bit.

        Raises:
          ValueError: the text would be longer than `from_json` reads (1 MiB; only
            a name of about a million characters makes it so).
        """
        return _serialize.to_json(self, indent)

    @classmethod
    def from_json(cls: type[_C], text: str | bytes) -> _C:
        """Reads JSON text written by `to_json`, Keras 3 or TF 2 (see
        `jaxdecay.deserialize`). It reads text, not files: `load` reads a file."""
        return _serialize.from_json(text, {cls.__name__: cls})  # type: ignore[no-any-return]

    @classmethod
    def load(cls: type[_C], path: str | os.PathLike[str]) -> _C:
        """Reads a config file: JSON (what `to_json` writes, or any config
        `from_json` reads), or YAML from a `.yaml` or `.yml` file (the `yaml` extra),
        read as the `jaxdecay` command reads it.

        Raises:
          OSError: the file cannot be read.
          TypeError, ValueError: as `from_json`, the message prefixed by the path.

        Examples:
          >>> import pathlib, tempfile
          >>> import jaxdecay
          >>> path = pathlib.Path(tempfile.mkdtemp()) / "lr.json"
          >>> _ = path.write_text(jaxdecay.ExponentialDecay(0.1, 1000, 0.5).to_json())
          >>> jaxdecay.ExponentialDecay.load(path).decay_rate
          0.5
        """
        return _serialize.load(path, {cls.__name__: cls})  # type: ignore[no-any-return]

    # -- optax -----------------------------------------------------------------------

    def optax_kwargs(self, *, warmup: bool = False) -> dict[str, Any]:
        """Returns the keyword arguments of optax's schedule for this one: without
        a warmup, or with `warmup=True` of optax's schedule with a warmup.

        optax's schedule without a warmup has none and its warmup schedule needs
        one, so a schedule fits one of the two: the one `to_optax()` builds.

        Raises:
          ValueError: `warmup` is False and the schedule has a warmup
            (`warmup_steps > 0`), or True and it has none; or optax has no
            schedule of this family.
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
        _check_optax_has_one(self)
        plain, warm = self.family.optax
        _check_optax_warmup(warmup, self._warmups(), self, plain, warm)
        arguments = self.spec.optax_arguments(str(warm if warmup else plain))
        return {optax_name: getattr(self, name) for optax_name, name in arguments}

    def to_optax(self) -> Schedule:
        """Returns the equivalent optax schedule, built by optax itself, from
        `optax_kwargs()` (with `warmup=True` for a schedule with a warmup).

        optax computes in the compute dtype with its own rounding: its values are
        within a few hundred float32 ulp of this schedule's (see docs/numerics.md).

        Raises:
          ImportError: optax is not installed.
          TypeError: `warmup_steps` is traced: which schedule fits needs its value.
          ValueError: optax has no schedule of this family.

        Examples:
          >>> import jaxdecay
          >>> schedule = jaxdecay.ExponentialDecay(0.1, 1000, 0.5, warmup_steps=100)
          >>> optax_schedule = schedule.to_optax()
          >>> print(optax_schedule(50), optax_schedule(1100))
          0.05 0.05
        """
        _check_optax_has_one(self)
        try:
            import optax
        except ImportError as error:
            raise _validation.missing_extra("optax", "optax") from error
        warmup = bool(self._warmups().any())
        make = getattr(optax, str(self.family.optax[warmup]))
        return make(**self.optax_kwargs(warmup=warmup))  # type: ignore[no-any-return]

    # -- Keras -----------------------------------------------------------------------

    def to_keras(self) -> Any:
        """Returns this schedule as a Keras `LearningRateSchedule`, for a Keras 3
        optimizer on the JAX backend (`keras.optimizers.SGD(learning_rate=...)`).

        At each step the optimizer reads this schedule's value, bit for bit; its
        config is `get_config()`. Keras saves it, in a model too, as the class of
        the same name in `jaxdecay.keras`, which must be imported before Keras
        loads it (see docs/keras.md).

        Raises:
          ImportError: Keras is not installed.
          RuntimeError: Keras runs on a backend other than JAX.
        """
        return _keras.keras_class(type(self)).of(self)

    def _warmups(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Whether the schedule (each of a batch) has a warmup: `warmup_steps > 0`."""
        value = getattr(self, "warmup_steps", 0)
        if _validation.is_traced(value) or isinstance(value, _steps.Words):
            raise TypeError(
                f"warmup_steps is {_describe_value(value)}: which optax schedule "
                "fits this one needs its value, outside jit"
            )
        return np.asarray(value) > 0


def _check_optax_has_one(config: Config) -> None:
    """Refuses a family that optax has no schedule of (`Family.optax` is None):
    the schedule itself is what optax takes as a learning rate."""
    if config.family.optax[0] is None:
        name = type(config).__name__
        note = f" ({config.family.optax_note})" if config.family.optax_note else ""
        raise ValueError(
            f"optax has no schedule like {name}{note}; pass the {name} itself "
            "to an optax optimizer as the learning rate"
        )
    refusal = config.family.optax_refusal
    reason = None if refusal is None else refusal(config)
    if reason is not None:
        raise ValueError(reason)


def _check_optax_warmup(
    warmup: bool, warmups: Any, schedule: Any, plain: Any, warm: Any
) -> None:
    """Refuses optax's schedule without a warmup for a schedule with one, and the
    reverse, naming the one that fits."""
    steps = preview(getattr(schedule, "warmup_steps", 0))
    if not warmup and warmups.any():
        raise ValueError(
            f"optax.{plain} has no warmup; this schedule sets "
            f"warmup_steps={steps}: use to_optax(), or optax_kwargs(warmup=True) "
            f"for the arguments of optax.{warm}"
        )
    if warmup and (warm is None or not warmups.all()):
        raise ValueError(
            f"optax.{warm} needs warmup_steps > 0; this schedule has "
            f"warmup_steps={steps}: use to_optax(), or optax_kwargs() for the "
            f"arguments of optax.{plain}"
        )


def pieces_in_use(config: Config) -> tuple[Piece, ...]:
    """The pieces that `config` uses, in their order."""
    used = config.__dict__["_pieces"]
    return tuple(piece for piece in config.family.pieces if piece.name in used)


def lead(config: Config) -> int:
    """The steps the pieces in use take before the family's own (a warmup's)."""
    return sum(piece.length(config) for piece in pieces_in_use(config))


def piece_ends(config: Config) -> tuple[int, ...]:
    """The step at which each piece in use ends, in order (a warmup's, then a
    hold's); the last is `lead(config)`, the family's step 0."""
    ends, total = [], 0
    for piece in pieces_in_use(config):
        total += piece.length(config)
        ends.append(total)
    return tuple(ends)


def formula(config: Config) -> str:
    """The schedule as a Python expression of `step`, for titles and legends; the
    pieces are said before it."""
    text = config.family.view.formula(config, lead(config))
    for piece in reversed(pieces_in_use(config)):
        text = piece.formula(config, text)
    return text


def _warn_if_rounded_away(
    spec: Spec, family: Family, values: Mapping[str, Any]
) -> None:
    """Warns of a known number that the compute dtype rounds to 0 or to inf, that
    is subnormal in it (taken as 0), or, for the family's rate, that it rounds to
    1 (no decay at all): every path computes with the rounded number, so the
    schedule is not the one the number describes."""
    compute = _program.compute_dtype()
    # The type's own name: `dtype.name` imports a NumPy module on first use, and
    # a loader imports nothing.
    compute_name = compute.type.__name__
    numbers = [
        (f"{name}[{i}]" if name in spec.sequences else name, value)
        for name in spec.leaves
        if name not in spec.integer_leaves
        for i, value in enumerate(
            values[name] if isinstance(values[name], tuple) else (values[name],)
        )
    ]
    for name, value in numbers:
        if not isinstance(value, (int, float, np.generic)):
            continue
        with np.errstate(over="ignore", under="ignore"):
            rounded = compute.type(value)
        exact = float(value)
        if (exact != 0 and rounded == 0) or (
            math.isfinite(exact) and np.isinf(rounded)
        ):
            _warn(
                f"{name}={value!r} is {float(rounded)} in {compute_name}, the "
                "dtype every path computes in; scale it into range, or enable x64 "
                "(JAX_ENABLE_X64=1) for float64"
            )
        elif rounded != 0 and abs(rounded) < np.finfo(compute).tiny:
            zero = math.copysign(0.0, exact)
            _warn(
                f"{name}={value!r} is subnormal in {compute_name}, the dtype every "
                f"path computes in, and counts as {zero} (as XLA flushes it on CPU); "
                "scale it into range, or enable x64 (JAX_ENABLE_X64=1) for float64"
            )
        elif name == family.rate and value != 1 and rounded == 1:
            _warn(
                f"{name}={value!r} is 1 in {compute_name}, the dtype every path "
                "computes in, so the schedule neither decays nor grows; give the "
                f"same decay over more steps ({name} ** k with decay_steps * k, "
                "further from 1), or enable x64 (JAX_ENABLE_X64=1) for float64"
            )


def _warn(message: str) -> None:
    """A UserWarning that points at the caller's line, outside the package."""
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_globals.get("__name__", "").startswith(
        "jaxdecay"
    ):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    warnings.warn(message, UserWarning, stacklevel=level)


def _same(value: Any, default: Any) -> bool:
    """Whether a field's value is its default, -0.0 told apart from 0.0 (it gives
    other bits)."""
    return bool(value == default) and math.copysign(1, _zero_sign(value)) == (
        math.copysign(1, _zero_sign(default))
    )


def _zero_sign(value: Any) -> float:
    """The sign of a number as a float (1.0 for what is not a real number)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return 1.0


def _hashable(name: str, value: Any) -> Any:
    """A field's value as a hashable one; arrays by dtype, shape and bytes, and
    -0.0 apart from 0.0; a NumPy array of no dimension as its scalar (a config
    rebuilt from its leaves holds such)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (_steps.Words, np.ndarray, jax.Array)):
        if _validation.is_traced(value) or isinstance(value, _steps.Words):
            raise TypeError(
                f"a schedule with a traced {name} has no value to compare or hash"
            )
        array = np.asarray(value)
        return ("array", array.dtype.str, array.shape, array.tobytes())
    if isinstance(value, (float, np.floating)) and value == 0:
        return (value, math.copysign(1, value))
    if isinstance(value, tuple):  # a sequence
        return tuple(_hashable(name, x) for x in value)
    return value


def count(value: Any) -> int:
    """The count of a sequence field's numbers: a tuple's length, or the last
    axis of an array, a traced value or `Words` (a batch of configs)."""
    if isinstance(value, tuple) and not isinstance(value, _steps.Words):
        return len(value)
    array = value.hi if isinstance(value, _steps.Words) else value
    return int(np.shape(array)[-1])


def _entries(field: str, value: Any) -> tuple[Any, ...]:
    """A sequence field's numbers; a batch or a traced value is refused."""
    if isinstance(value, tuple) and not isinstance(value, _steps.Words):
        return value
    known = not isinstance(value, _steps.Words) and not _validation.is_traced(value)
    if known and np.ndim(value) == 1:
        return tuple(np.asarray(value))
    raise TypeError(
        f"cannot serialize {field}: it is {_describe_value(value)}, not a list of "
        "numbers; serialize each config of a batch on its own, outside jit"
    )


def _number(field: str, value: Any, kind: type[int] | type[float]) -> Any:
    """A field as a Python number, exactly; a batch or a traced value is refused
    rather than written as an array's repr."""
    traced = _validation.is_traced(value) or isinstance(value, _steps.Words)
    if traced or np.ndim(value) != 0:
        raise TypeError(
            f"cannot serialize {field}: it is {_describe_value(value)}, not a "
            "number; serialize each config of a batch on its own, outside jit"
        )
    return kind(value)


def _describe_value(value: Any) -> str:
    """A traced or array value, described for a message."""
    if isinstance(value, _steps.Words):
        return "a traced integer"
    if _validation.is_traced(value):
        return f"a traced value of dtype {value.dtype} and shape {value.shape}"
    return f"an array of dtype {value.dtype} and shape {np.shape(value)}"


@functools.cache
def _plan(
    cls: Any,
    static: tuple[Any, ...],
    pieces: tuple[str, ...],
    counts: tuple[tuple[str, int], ...] = (),
) -> Plan:
    """The program plan of a class, its static fields, the pieces a config uses
    and the counts of its sequences: each part with the leaves its fields
    declare."""
    spec, family = cls.spec, cls.family

    def part(kernel: Kernel, name: str | None) -> Part:
        return Part(kernel, *spec.part_leaves(name))

    used = tuple(part(p.kernel, p.name) for p in family.pieces if p.name in pieces)
    family_part = part(family.kernel, None)
    return Plan(
        family.builder, family_part, used, static, family.peak, counts, family.start
    )


# ---------------------------------------------------------------------------
# The class decorator: the pytree, optax's names and the builder, from the fields.
# ---------------------------------------------------------------------------


def schedule_class(family: Family) -> Callable[[type[_C]], type[_C]]:
    """Makes a frozen dataclass subclassing `Config` a schedule of `family`: reads
    its fields' roles, registers it as a pytree, and gives its constructor the
    error that names the field for optax's names."""

    def decorate(cls: type[_C]) -> type[_C]:
        cls.family = family
        cls.spec = Spec.of(cls)
        # The generated __init__ is wrapped, not replaced: the class stays a
        # dataclass, and `inspect.signature(cls)` still shows the fields.
        cls.__init__ = _validation.rejects_optax_names(  # type: ignore[method-assign]
            cls.__name__, cls.spec.optax_names
        )(cls.__init__)
        jax.tree_util.register_pytree_with_keys(
            cls,
            _flatten_with_keys,
            functools.partial(_unflatten, cls),
            _flatten,
        )
        return cls

    return decorate


def builder(cls: type[Config], doc: str) -> Callable[..., Schedule]:
    """The builder of a schedule class: its constructor without the labels (the
    name), returning the pure `step -> lr` function that the instance calls."""
    name = cls.family.builder
    signature = inspect.signature(cls)
    labels = {n for n in cls.spec.names if role(cls.spec.field(n)).label}
    signature = signature.replace(
        parameters=[p for p in signature.parameters.values() if p.name not in labels],
        return_annotation="Schedule",
    )

    def build(*args: Any, **kwargs: Any) -> Schedule:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{name}() {error}") from None
        return cls(**bound.arguments)._schedule  # type: ignore[no-any-return]

    build.__name__ = build.__qualname__ = name
    build.__doc__ = doc
    build.__module__ = cls.__module__
    build.__signature__ = signature  # type: ignore[attr-defined]
    return _validation.rejects_optax_names(name, cls.spec.optax_names)(build)


class Labels:
    """The labels of a config (its name), carried in its pytree structure but not
    part of it: equal to any other labels, so that configs that differ only in
    name stack, and a jitted function taking them compiles once (inside it, a
    config has the labels of the one it was traced with)."""

    __slots__ = ("values",)

    def __init__(self, values: tuple[Any, ...]):
        self.values = values

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Labels)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"labels{self.values!r}"


def _flatten_with_keys(
    schedule: Config,
) -> tuple[tuple[tuple[Any, Any], ...], tuple[Any, ...]]:
    # The numbers, then the constants prepared from them (two arrays per part),
    # so that a program taking a config computes from prepared constants and
    # compiles no preparation. The floats in the compute dtype, whatever their
    # type; the integers as two words each, so that they are data without x64
    # too. None (no end_learning_rate) is no leaf. A sequence is one leaf, its
    # numbers along the last axis, and its count is structure. The pieces in
    # use are structure, as static fields are: a config without a warmup runs no
    # ramp on any path. The labels ride along without being structure.
    spec = schedule.spec
    children = [
        (
            jax.tree_util.GetAttrKey(name),
            _steps.to_words(getattr(schedule, name))
            if name in spec.integer_leaves
            else _float_leaf(getattr(schedule, name)),
        )
        for name in spec.leaves
    ]
    constants = schedule.__dict__.get("_constant_leaves")
    if constants is None:
        constants = _padded(schedule, schedule._schedule.prepared())
    children += [
        (jax.tree_util.GetAttrKey(f"_constants{i}"), x) for i, x in enumerate(constants)
    ]
    structure = tuple(getattr(schedule, name) for name in spec.structure)
    structure += schedule.__dict__["_counts"]
    labels = tuple(getattr(schedule, name) for name in spec.labels)
    return tuple(children), (*structure, schedule.__dict__["_pieces"], Labels(labels))


def _padded(schedule: Config, constants: tuple[Any, ...]) -> tuple[Any, ...]:
    """Two arrays for each part the family can have: those of the family and of
    the pieces in use, two of one zero for a piece not in use (checkpointers
    refuse empty arrays). So every config of a family has the same number of
    leaves, and configs with and without a piece fail to stack on their
    structure, with JAX's message saying so."""
    compute = _program.compute_dtype()
    empty = (np.zeros((1,), compute), np.zeros((1,), f"int{8 * compute.itemsize}"))
    padded, start = list(constants[:2]), 2
    for piece in schedule.family.pieces:
        if piece.name in schedule.__dict__["_pieces"]:
            padded += constants[start : start + 2]
            start += 2
        else:
            padded += empty
    return tuple(padded)


def _float_leaf(value: Any) -> Any:
    """A float field's value as a leaf: in the compute dtype, so that any Python
    or NumPy number gives the same leaf type (None stays None)."""
    compute = _program.compute_dtype()
    if isinstance(value, (int, float, np.generic, np.ndarray, tuple)):
        return np.asarray(value, compute)
    if isinstance(value, jax.Array) and jax.numpy.issubdtype(value.dtype, np.number):
        return value.astype(compute)
    return value  # None, or a pytree's placeholder


def _flatten(schedule: Config) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    children, aux = _flatten_with_keys(schedule)
    return tuple(child for _, child in children), aux


def _unflatten(cls: type[_C], aux: tuple[Any, ...], children: Any) -> _C:
    # Not through __init__: JAX rebuilds pytrees with tracers, batches and
    # placeholders, which are not configs to validate. Known integer words become
    # the integers they stand for again. Field order, as the flattening's; the
    # constants after the numbers (none from a program exported without them).
    schedule = object.__new__(cls)
    *structure, pieces, labels = aux
    spec = cls.spec
    counts = tuple(structure[len(spec.structure) :])
    structure = structure[: len(spec.structure)]
    children = tuple(children)
    count = len(spec.leaves)
    for name, value in zip(spec.leaves, children[:count], strict=True):
        if isinstance(value, _steps.Words):
            value = _steps.from_words(value)
            known = not isinstance(value, _steps.Words)
            if name in spec.sequences and known and np.ndim(value) == 1:
                value = tuple(int(x) for x in value)  # as validation makes it
        object.__setattr__(schedule, name, value)
    for name, value in zip(cls.spec.structure, structure, strict=True):
        object.__setattr__(schedule, name, value)
    for name, value in zip(cls.spec.labels, labels.values, strict=True):
        object.__setattr__(schedule, name, value)
    object.__setattr__(schedule, "_pieces", pieces)
    object.__setattr__(schedule, "_counts", counts)
    constants = children[count:]
    if constants:  # none from a program exported without them
        object.__setattr__(schedule, "_constant_leaves", constants)
        used = list(constants[:2])
        for index, piece in enumerate(cls.family.pieces):
            if piece.name in pieces:
                used += constants[2 + 2 * index : 4 + 2 * index]
        object.__setattr__(schedule, "_schedule", schedule._program(tuple(used)))
    return schedule
