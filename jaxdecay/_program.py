"""The shared program: one `evaluate` per plan, for every config.

A family (and each piece around it, such as the warmup) supplies a `Kernel`: a
`prepare` that turns its numbers into the constants of its exact kernel, and an
`evaluate` that computes the learning rate from them. Everything else is written
here once:

- `pack` makes two arrays of a config's numbers (floats in the compute dtype, the
  integers' 32-bit words), so that a config is data to a program every config shares;
- known numbers are prepared on the host by NumPy, with the operations (and so the
  bits) of the prepare program, which prepares traced numbers: a new config
  compiles nothing, and a program that takes a config compiles `evaluate` alone;
- the programs are cached per `Plan` (the family, the pieces a config uses, its
  static fields), never per config;
- `Program` is the `step -> lr` callable: it keeps a config's numbers and
  constants on the device, so that a call is one dispatch;
- every path (eager, jit, a jit argument, vmap, optax) runs the same `evaluate` on
  the same data, so a config gives the same bits however it is called.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdecay import _steps
from jaxdecay._steps import Position, Words
from jaxdecay._validation import is_traced, preview

Schedule = Callable[[jax.typing.ArrayLike], jax.Array]
"""A `step -> learning rate` function; accepted wherever optax takes a schedule."""

Numbers = Mapping[str, Any]  # a part's numbers by field name (integers as Words)


@dataclasses.dataclass(frozen=True)
class Kernel:
    """The math of a family or of a piece, as two pure functions.

    prepare: for a family, `(numbers, **static) -> constants` (a NamedTuple of
      arrays), inside the program; the numbers are in the compute dtype (None as
      NaN), the integers as `Words`. For a piece, `(numbers, peak) -> constants`.
    evaluate: for a family, `(numbers, constants, position, **static) -> value` in
      the compute dtype; for a piece, `(inner, numbers, constants, position, peak)
      -> value`, where `inner(position)` is the schedule it wraps and `peak` the
      family's number the piece leads up to. A piece of a family that names a
      `start` (`Plan.ends`) takes that number too, as `start`.
    """

    prepare: Callable[..., Any]
    evaluate: Callable[..., jax.Array]


class Part(NamedTuple):
    """A kernel and the leaves it reads: float fields and integer fields."""

    kernel: Kernel
    floats: tuple[str, ...]
    integers: tuple[str, ...]


class Plan(NamedTuple):
    """What a program is compiled for: a family, the pieces a config uses (outermost
    first), its static fields, and the builder's name (for the repr)."""

    builder: str
    family: Part
    pieces: tuple[Part, ...]
    static: tuple[tuple[str, Any], ...]
    peak: str
    counts: tuple[tuple[str, int], ...] = ()  # the count of each sequence field
    start: str | None = None

    def ends(self, numbers: Numbers) -> dict[str, Any]:
        """The family's numbers a piece reads, from the family's: its `peak`, and
        its `start` where the family names one."""
        ends = {"peak": numbers[self.peak]}
        if self.start is not None:
            ends["start"] = numbers[self.start]
        return ends

    @property
    def parts(self) -> tuple[Part, ...]:
        return (self.family, *self.pieces)

    def width(self, name: str) -> int:
        """The numbers a field packs: its count for a sequence, else 1."""
        return dict(self.counts).get(name, 1)


# ---------------------------------------------------------------------------
# The numbers as data.
# ---------------------------------------------------------------------------


def pack(plan: Plan, numbers: Numbers) -> tuple[Any, Any]:
    """A validated config's numbers as the program's data: two arrays, the floats
    (None as NaN) in the compute dtype as it stands and the integers' words (high,
    low) as uint32, part after part, along the last axis (a batch of configs
    before it); a sequence field packs its count of numbers in their order.

    Known scalars are packed by NumPy (a program argument costs a transfer each),
    arrays and traced values by JAX; both round a float to the compute dtype once.
    """
    compute = compute_dtype()
    counts = dict(plan.counts)
    floats = [
        (name, np.nan if numbers[name] is None else numbers[name])
        for part in plan.parts
        for name in part.floats
    ]
    integers = [(name, numbers[name]) for part in plan.parts for name in part.integers]
    known_floats = [x for _, value in floats for x in _known(value, float)]
    known_integers = [x for _, value in integers for x in _known(value, int)]
    if None not in known_floats and None not in known_integers:
        mask = 0xFFFFFFFF  # a negative integer's words, as two's complement
        known = [w & mask for x in known_integers for w in (x >> 32, x)]
        return (
            np.array(known_floats, compute),
            np.array(known, np.uint64).astype(np.uint32),
        )
    # Columns along the last axis: a scalar's one number, a sequence's count, an
    # integer's words interleaved as NumPy's (high, low, high, low, ...).
    columns = [
        _column(jnp.asarray(value).astype(compute), name in counts)
        for name, value in floats
    ]
    for name, value in integers:
        hi, lo = jnp.broadcast_arrays(*_steps.to_words(value))
        pair = jnp.stack([hi.astype(jnp.uint32), lo.astype(jnp.uint32)], -1)
        columns.append(pair.reshape(*pair.shape[:-2], -1) if name in counts else pair)
    batch = jnp.broadcast_shapes(*(column.shape[:-1] for column in columns))
    columns = [jnp.broadcast_to(c, (*batch, c.shape[-1])) for c in columns]
    return (
        jnp.concatenate(columns[: len(floats)], -1),
        jnp.concatenate(columns[len(floats) :], -1),
    )


def _known(value: Any, kind: type) -> list[Any]:
    """A field's numbers when known Python (or NumPy) scalars, or a tuple of them;
    `[None]` otherwise (an array or a traced value, which JAX packs)."""
    scalars = (float, int, np.generic) if kind is float else (int,)
    values = value if isinstance(value, tuple) else (value,)
    if all(isinstance(x, scalars) for x in values):
        return list(values)
    return [None]


def _column(array: jax.Array, sequence: bool) -> jax.Array:
    return array if sequence else array[..., None]


def compute_dtype() -> np.dtype[Any]:
    """float32, or float64 under x64: the dtype of the numbers and of the result
    (under x64 steps are int64, which float32 arithmetic does not cover exactly)."""
    return _FLOAT64 if _x64() else _FLOAT32


def _x64() -> bool:
    return bool(jax.config.jax_enable_x64)  # type: ignore[attr-defined]


_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)


# ---------------------------------------------------------------------------
# The schedule: a config's numbers, and the shared programs that evaluate them.
# ---------------------------------------------------------------------------


class Program:
    """A config's schedule: its numbers, and the shared program that evaluates them.

    The constants of the config's kernels (its prepared numbers) are made once: on
    the host for known numbers (no program to compile), in the caller's program
    for traced ones, or handed in with the config's pytree leaves. A later call is
    one dispatch of `evaluate`.
    """

    __slots__ = ("__weakref__", "_arguments", "_evaluate", "_given", "_known", "_plan")

    def __init__(
        self,
        plan: Plan,
        arguments: dict[str, Any],
        prepared: tuple[Any, ...] | None = None,
    ):
        self._plan = plan
        self._arguments = arguments
        self._evaluate = _evaluate_program(plan)
        # Constants handed in with the pytree's leaves (None: none).
        self._given = prepared
        # For known numbers: (x64, floats, words, *constants), once made.
        self._known: tuple[Any, ...] | None = None

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        step = _steps.as_step(step)
        known = self._known
        x64 = jax.config.jax_enable_x64  # type: ignore[attr-defined]
        if known is not None and known[0] == x64:  # one dispatch, the common case
            if isinstance(known[1], np.ndarray):  # a second call: kept on the device
                with jax.ensure_compile_time_eval():  # not a constant of a trace
                    known = self._known = (x64, *jax.device_put(known[1:]))
            return self._evaluate(*known[1:], step)
        return self._evaluate(*self._data(), step)

    def prepared(self) -> tuple[Any, ...]:
        """The constants of the config's kernels, two arrays per part (the
        leaves that a config's pytree adds to its numbers)."""
        known, given = self._known, self._given
        if given is not None:  # as they came: arrays, or a pytree's placeholders
            return given
        if known is not None and known[0] == _x64():
            return known[3:]
        return self._data()[2:]

    def _data(self) -> tuple[Any, ...]:
        """The numbers (`pack`'s two arrays) and the constants, kept when known:
        as made (NumPy arrays from the host) after the first call, and on the
        device from the second, so that a later call transfers nothing."""
        floats, words = pack(self._plan, self._arguments)
        data = (floats, words, *self._constants(floats, words))
        if not any(is_traced(x) for x in data):
            self._known = (_x64(), *data)
        return data

    def _constants(self, floats: Any, words: Any) -> tuple[Any, ...]:
        given = self._given
        # As handed in, if made for this x64 mode (its float constants tell).
        if given is not None and _arrays(given) and given[0].dtype == compute_dtype():
            return given
        if isinstance(floats, np.ndarray) and floats.ndim == 1:
            return _prepare_host(self._plan, floats, words)
        if is_traced(floats) or is_traced(words):  # prepared in the caller's trace
            return _prepare_program(self._plan)(floats, words)
        # A batch of known numbers (arrays): prepared now, outside any trace.
        with jax.ensure_compile_time_eval():
            return _prepare_program(self._plan)(floats, words)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={preview(v)}" for k, v in self._arguments.items())
        return f"{self._plan.builder}({shown})"


def _arrays(values: tuple[Any, ...]) -> bool:
    """Whether pytree leaves are arrays (or tracers), not placeholders."""
    return all(hasattr(x, "dtype") and hasattr(x, "shape") for x in values)


# ---------------------------------------------------------------------------
# Preparing: each part's kernel turns its numbers into its constants, once per
# config. Known numbers are prepared on the host, by NumPy, with the operations
# (and so the bits) of the prepare program, which prepares traced numbers and
# batches. Either way the constants are two arrays per part: its float constants
# in the compute dtype, and its integer constants in the signed integer type of
# that width. Where each constant lies is read from its shape, once.
# ---------------------------------------------------------------------------


def _int_dtype(compute: Any) -> np.dtype[Any]:
    """The signed integer type of the compute dtype's width."""
    return np.dtype(f"int{8 * np.dtype(compute).itemsize}")


def _parts(
    plan: Plan, floats: Any, words: Any
) -> list[tuple[int, Part, dict[str, Any]]]:
    """Each part, with its numbers by name from its slices of the packed arrays."""
    parts = []
    start_float = start_word = 0
    counts = dict(plan.counts)
    for index, part in enumerate(plan.parts):
        numbers: dict[str, Any] = {}
        for name in part.floats:
            width = plan.width(name)
            block = floats[start_float : start_float + width]
            numbers[name] = block if name in counts else block[0]
            start_float += width
        for name in part.integers:
            width = 2 * plan.width(name)
            block = words[start_word : start_word + width]
            hi, lo = block[0::2], block[1::2]
            if name not in counts:
                hi, lo = hi[0], lo[0]
            numbers[name] = Words(hi.astype(np.int32), lo.astype(np.uint32))
            start_word += width
        parts.append((index, part, numbers))
    return parts


def _prepare_host(plan: Plan, floats: Any, words: Any) -> tuple[np.ndarray, ...]:
    """The constants of one config's known numbers (NumPy arrays from `pack`), on
    the host: the prepare program's operations, with NumPy."""
    prepared: list[np.ndarray] = []
    ends: dict[str, Any] = {}
    # NumPy warns where IEEE arithmetic gives inf or NaN and integers wrap; XLA
    # does neither, and the kernels rely on both.
    with np.errstate(all="ignore"):
        for index, part, numbers in _parts(plan, floats, words):
            if index == 0:
                constants = part.kernel.prepare(numbers, **dict(plan.static), host=True)
                ends = plan.ends(numbers)
            else:
                constants = part.kernel.prepare(numbers, **ends, host=True)
            layout = _record_layout(plan, index, floats.dtype, constants)
            prepared += layout.split(constants, floats.dtype, np)
    return tuple(prepared)


@functools.cache
def _prepare_program(plan: Plan) -> Callable[[Any, Any], tuple[jax.Array, ...]]:
    return jax.jit(functools.partial(_prepare, plan=plan))


def _prepare(floats: Any, words: Any, *, plan: Plan) -> tuple[jax.Array, ...]:
    """The constants from `pack`'s arrays (a batch of configs before the last
    axis), in a program."""
    floats, words = jnp.asarray(floats), jnp.asarray(words)
    batch = floats.shape[:-1]
    if batch:
        one = functools.partial(_prepare_one, plan=plan)
        rows = jax.vmap(one)(
            floats.reshape(-1, floats.shape[-1]), words.reshape(-1, words.shape[-1])
        )
        return tuple(x.reshape(*batch, x.shape[-1]) for x in rows)
    return _prepare_one(floats, words, plan=plan)


def _prepare_one(
    floats: jax.Array, words: jax.Array, *, plan: Plan
) -> tuple[jax.Array, ...]:
    prepared: list[jax.Array] = []
    ends: dict[str, Any] = {}
    for index, part, numbers in _parts(plan, floats, words):
        if index == 0:
            constants = part.kernel.prepare(numbers, **dict(plan.static))
            ends = plan.ends(numbers)
        else:
            constants = part.kernel.prepare(numbers, **ends)
        layout = _record_layout(plan, index, floats.dtype, constants)
        prepared += layout.split(constants, floats.dtype, jnp)
    return tuple(prepared)


class _Layout(NamedTuple):
    """Where a kernel's constants lie in a part's two arrays: the constants' tree,
    and each leaf's kind (float or not), shape and dtype. Scalars of a kind come
    first, stacked in one op; arrays follow, each flattened."""

    treedef: Any
    leaves: tuple[tuple[bool, tuple[int, ...], np.dtype[Any]], ...]

    def order(self, floating: bool) -> list[int]:
        kind = [i for i, leaf in enumerate(self.leaves) if leaf[0] == floating]
        return sorted(kind, key=lambda i: bool(self.leaves[i][1]))

    def split(self, constants: Any, compute: Any, xp: Any) -> list[Any]:
        """The constants as the part's two arrays (float, then integer), with
        `xp` (NumPy or `jax.numpy`)."""
        leaves = [xp.asarray(leaf) for leaf in jax.tree.leaves(constants)]
        int_dtype = _int_dtype(compute)
        arrays = []
        for floating in (True, False):
            cast = [
                leaves[i] if floating else _as_int(leaves[i], int_dtype, xp)
                for i in self.order(floating)
            ]
            scalars = [x for x in cast if x.ndim == 0]
            pieces = [xp.stack(scalars)] if scalars else []
            pieces += [x.reshape(-1) for x in cast if x.ndim]
            dtype = compute if floating else int_dtype
            # Never empty: checkpointers (orbax) refuse arrays of no elements.
            arrays.append(xp.concatenate(pieces) if pieces else xp.zeros((1,), dtype))
        return arrays

    def unpack(self, floats: jax.Array, ints: jax.Array) -> Any:
        """The constants from the part's two arrays."""
        leaves: list[Any] = [None] * len(self.leaves)
        for floating, array in ((True, floats), (False, ints)):
            offset = 0
            for i in self.order(floating):
                _, shape, dtype = self.leaves[i]
                size = int(np.prod(shape))
                value = array[offset] if not shape else array[offset : offset + size]
                offset += size
                if not floating and dtype != array.dtype:
                    value = _steps.as_int(value, dtype)
                leaves[i] = value.reshape(shape) if shape else value
        return jax.tree.unflatten(self.treedef, leaves)


def _as_int(value: Any, dtype: np.dtype[Any], xp: Any) -> Any:
    """An integer (or bool) array in `dtype`, exactly: bit-cast if of its width."""
    if xp is jnp:
        return _steps.as_int(value, dtype)
    array = np.asarray(value)
    if array.dtype.itemsize == dtype.itemsize:
        return array.view(dtype)
    return array.astype(dtype)


_LAYOUTS: dict[tuple[Plan, int, np.dtype[Any]], _Layout] = {}


def _record_layout(plan: Plan, index: int, compute: Any, constants: Any) -> _Layout:
    """The layout of a part's constants, as its `prepare` made them (the same for
    every config of the plan, on the host or in a program)."""
    key = (plan, index, np.dtype(compute))
    if key not in _LAYOUTS:
        leaves, treedef = jax.tree.flatten(constants)
        _LAYOUTS[key] = _Layout(
            treedef,
            tuple(
                (
                    bool(jnp.issubdtype(np.result_type(leaf), jnp.floating)),
                    tuple(np.shape(leaf)),
                    np.dtype(np.result_type(leaf)),
                )
                for leaf in leaves
            ),
        )
    return _LAYOUTS[key]


def _layout(plan: Plan, index: int, compute: Any) -> _Layout:
    """The layout of a part's constants: recorded when its `prepare` ran, or found
    by tracing it abstractly."""
    key = (plan, index, np.dtype(compute))
    if key not in _LAYOUTS:
        floats = sum(plan.width(n) for part in plan.parts for n in part.floats)
        words = sum(2 * plan.width(n) for part in plan.parts for n in part.integers)
        jax.eval_shape(
            functools.partial(_prepare_one, plan=plan),
            jax.ShapeDtypeStruct((floats,), compute),  # type: ignore[no-untyped-call]
            jax.ShapeDtypeStruct((words,), np.uint32),  # type: ignore[no-untyped-call]
        )
    return _LAYOUTS[key]


# ---------------------------------------------------------------------------
# Evaluating: one program per plan and result dtype (compiled per step shape and
# dtype), whatever the numbers, from the config's numbers and constants. Every
# path calls it, so every path gives the same bits.
# ---------------------------------------------------------------------------


@functools.cache
def _evaluate_program(plan: Plan) -> Callable[..., jax.Array]:
    return jax.jit(functools.partial(_evaluate, plan=plan))


def _evaluate(*arguments: Any, plan: Plan) -> jax.Array:
    """The learning rate at the step (the last argument), elementwise, from the
    numbers (`pack`'s two arrays) and the constants (two arrays per part): the one
    place it is computed.

    A batch of configs broadcasts against the step, as NumPy arrays do; each
    element is the schedule of its own config (`jax.vmap` over a stack of configs
    hands each config scalars, the scalar case).
    """
    # Known numbers, or a constant step, are compile-time constants inside a
    # caller's program: opaque, XLA evaluates the same operations as for values
    # passed in, and gives the same bits.
    opaque: tuple[jax.Array, ...] = lax.optimization_barrier(  # type: ignore[no-untyped-call]
        (*(jnp.asarray(x) for x in arguments[:-1]), jnp.asarray(arguments[-1]))
    )
    data, steps = opaque[:-1], opaque[-1]
    batch = data[0].shape[:-1]
    if batch:
        shape = jnp.broadcast_shapes(steps.shape, batch)
        rows = [
            jnp.broadcast_to(x, (*shape, x.shape[-1])).reshape(-1, x.shape[-1])
            for x in data
        ]
        steps = jnp.broadcast_to(steps, shape).reshape(-1)
        one = functools.partial(_value, plan=plan)
        value = jax.vmap(one)(tuple(rows), steps).reshape(shape)
    else:
        value = _value(data, steps, plan=plan)
    return value


def _value(data: tuple[jax.Array, ...], step: jax.Array, *, plan: Plan) -> jax.Array:
    """The schedule of one config in the compute dtype: the family, wrapped in the
    pieces the config uses (the first piece outermost: a warmup, then a hold)."""
    floats, words, *constants = data
    compute = floats.dtype
    parts = [
        (
            numbers,
            _layout(plan, index, compute).unpack(*constants[2 * index : 2 * index + 2]),
        )
        for index, _, numbers in _parts(plan, floats, words)
    ]
    (numbers, family_constants), static = parts[0], dict(plan.static)

    def inner(position: Position) -> jax.Array:
        return plan.family.kernel.evaluate(
            numbers, family_constants, position, **static
        )

    ends = plan.ends(numbers)
    # From the innermost (the last) out: the first piece sees the step first.
    for piece, (piece_numbers, piece_constants) in zip(
        reversed(plan.pieces), reversed(parts[1:]), strict=True
    ):
        inner = functools.partial(
            piece.kernel.evaluate, inner, piece_numbers, piece_constants, **ends
        )
    return inner(_steps.position(step, compute))
