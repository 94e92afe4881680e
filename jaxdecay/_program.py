"""The shared programs: one `prepare` and one `evaluate` per plan, for every config.

A family (and each piece around it, such as the warmup) supplies a `Kernel`: a
`prepare` that turns its numbers into the constants of its exact kernel, and an
`evaluate` that computes the learning rate from them. Everything else is written
here once:

- `pack` makes two arrays of a config's numbers (floats in the compute dtype, the
  integers' 32-bit words), so that a config is data to programs every config shares;
- the programs are cached per `Plan` (the family, the pieces a config uses, its
  static fields) and result dtype, never per config: a new config compiles nothing;
- `Schedule` is the `step -> lr` callable: at its first call it prepares the
  numbers (in one dispatch with the first evaluation), then keeps them;
- every path (eager, jit, a jit argument, vmap, optax) runs the same two programs on
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
      family's number the piece leads up to.
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
    last), its static fields, and the builder's name (for the repr)."""

    builder: str
    family: Part
    pieces: tuple[Part, ...]
    static: tuple[tuple[str, Any], ...]
    peak: str

    @property
    def parts(self) -> tuple[Part, ...]:
        return (self.family, *self.pieces)


# ---------------------------------------------------------------------------
# The numbers as data.
# ---------------------------------------------------------------------------


def pack(plan: Plan, numbers: Numbers) -> tuple[Any, Any]:
    """A validated config's numbers as the program's data: two arrays, the floats
    (None as NaN) in the compute dtype as it stands and the integers' words as
    uint32, part after part, along the last axis (a batch of configs before it).

    Known scalars are packed by NumPy (a program argument costs a transfer each),
    arrays and traced values by JAX; both round a float to the compute dtype once.
    """
    compute = compute_dtype()
    floats = [
        np.nan if numbers[name] is None else numbers[name]
        for part in plan.parts
        for name in part.floats
    ]
    integers = [numbers[name] for part in plan.parts for name in part.integers]
    if all(isinstance(x, (float, int, np.generic)) for x in floats) and all(
        isinstance(x, int) for x in integers
    ):
        known = [word for x in integers for word in (x >> 32, x)]
        return np.array(floats, compute), np.array(known, np.uint64).astype(np.uint32)
    words = [word for x in integers for word in _steps.to_words(x)]
    columns = jnp.broadcast_arrays(
        *(jnp.asarray(x).astype(compute) for x in floats),
        *(jnp.asarray(x).astype(jnp.uint32) for x in words),
    )
    return (
        jnp.stack(columns[: len(floats)], -1),
        jnp.stack(columns[len(floats) :], -1),
    )


def result_dtype(initial_learning_rate: Any) -> np.dtype[Any] | None:
    """The dtype of the learning rate: that of a NumPy or JAX float given as the
    initial learning rate, or None for JAX's default float as it stands when the
    schedule is called (float32, or float64 under x64)."""
    dtype = getattr(initial_learning_rate, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
        return np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    return None


def compute_dtype() -> np.dtype[Any]:
    """float32, or float64 under x64; every result dtype is rounded once from it.

    Under x64 steps are int64, which float32 arithmetic does not cover exactly, so a
    float32 (or 16-bit) learning rate is computed in float64 and rounded once.
    """
    return _FLOAT64 if _x64() else _FLOAT32


def _x64() -> bool:
    return bool(jax.config.jax_enable_x64)  # type: ignore[attr-defined]


_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)


# ---------------------------------------------------------------------------
# The schedule: a config's numbers, and the shared programs that evaluate them.
# ---------------------------------------------------------------------------


class Program:
    """A config's schedule: its numbers, and the shared programs that evaluate them.

    The prepared numbers are kept after the first call (per x64 mode), so that a
    later call is one dispatch of `evaluate`.
    """

    __slots__ = ("__weakref__", "_arguments", "_dtype", "_evaluate", "_known", "_plan")

    def __init__(
        self, plan: Plan, arguments: dict[str, Any], dtype: np.dtype[Any] | None
    ):
        self._plan = plan
        self._arguments = arguments
        self._dtype = dtype
        self._evaluate = _evaluate_program(plan, dtype)
        # For known numbers: (x64, *prepared), made at the first call per x64 mode.
        self._known: tuple[Any, ...] | None = None

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        known = self._known
        x64 = jax.config.jax_enable_x64  # type: ignore[attr-defined]
        if known is not None and known[0] == x64:  # one dispatch, the common case
            return self._evaluate(*known[1:], step)
        return self._first_call(step)

    def _first_call(self, step: jax.typing.ArrayLike) -> jax.Array:
        plan = self._plan
        floats, ints = pack(plan, self._arguments)
        if is_traced(floats) or is_traced(ints):  # prepared in the caller's trace
            return self._evaluate(*_prepare_program(plan)(floats, ints), step)
        if not is_traced(step) and np.ndim(step) == 0:
            # Both programs in one dispatch, for the step types a training loop or a
            # logger passes; the prepared numbers are kept. (An array of steps
            # compiles `evaluate` alone for its shape, not `prepare` again.)
            value, prepared = _first_program(plan, self._dtype)(floats, ints, step)
            if not is_traced(value):
                self._known = (_x64(), *prepared)
                return value
        # An array of steps, or known numbers in a caller's trace: prepared now,
        # outside any trace (a caller's program gets them as constants, and
        # compiles only `evaluate`).
        with jax.ensure_compile_time_eval():
            prepared = _prepare_program(plan)(floats, ints)
        self._known = (_x64(), *prepared)
        return self._evaluate(*prepared, step)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={preview(v)}" for k, v in self._arguments.items())
        return f"{self._plan.builder}({shown})"


# ---------------------------------------------------------------------------
# The programs: `prepare` turns a config's numbers into the constants of each
# part's kernel, `evaluate` computes the learning rate from them. One of each per
# plan and result dtype (compiled per step shape and dtype), whatever the numbers;
# every path calls both, so every path gives the same bits.
#
# The prepared data is two arrays per part (each argument costs a dispatch): its
# floats (its numbers, then its constants) in the compute dtype, and its integers
# (the words of its numbers, then its integer constants) in the signed integer
# type of that width. Where each constant lies is read from its shape, once.
# ---------------------------------------------------------------------------


@functools.cache
def _prepare_program(plan: Plan) -> Callable[[Any, Any], tuple[jax.Array, ...]]:
    return jax.jit(functools.partial(_prepare, plan=plan))


@functools.cache
def _evaluate_program(
    plan: Plan, dtype: np.dtype[Any] | None
) -> Callable[..., jax.Array]:
    return jax.jit(functools.partial(_evaluate, plan=plan, dtype=dtype))


@functools.cache
def _first_program(
    plan: Plan, dtype: np.dtype[Any] | None
) -> Callable[..., tuple[jax.Array, tuple[jax.Array, ...]]]:
    """`prepare` then `evaluate`, as a jit argument's path runs them, for the first
    eager call of a config: one dispatch instead of two."""

    def first(floats: Any, ints: Any, step: Any) -> Any:
        prepared = _prepare(floats, ints, plan=plan)
        return _evaluate(*prepared, step, plan=plan, dtype=dtype), prepared

    return jax.jit(first)


def _int_dtype(compute: Any) -> np.dtype[Any]:
    """The signed integer type of the compute dtype's width."""
    return np.dtype(f"int{8 * np.dtype(compute).itemsize}")


def _prepare(floats: Any, ints: Any, *, plan: Plan) -> tuple[jax.Array, ...]:
    """The prepared arrays from `pack`'s (a batch of configs before the last axis)."""
    floats, ints = jnp.asarray(floats), jnp.asarray(ints)
    batch = floats.shape[:-1]
    if batch:
        one = functools.partial(_prepare_one, plan=plan)
        rows = jax.vmap(one)(
            floats.reshape(-1, floats.shape[-1]), ints.reshape(-1, ints.shape[-1])
        )
        return tuple(x.reshape(*batch, x.shape[-1]) for x in rows)
    return _prepare_one(floats, ints, plan=plan)


def _prepare_one(
    floats: jax.Array, ints: jax.Array, *, plan: Plan
) -> tuple[jax.Array, ...]:
    int_dtype = _int_dtype(floats.dtype)
    prepared: list[jax.Array] = []
    start_float = start_word = 0
    peak = None
    for index, part in enumerate(plan.parts):
        part_floats = floats[start_float : start_float + len(part.floats)]
        part_words = ints[start_word : start_word + 2 * len(part.integers)]
        start_float += len(part.floats)
        start_word += 2 * len(part.integers)
        numbers = _numbers(part, part_floats, part_words)
        if index == 0:
            constants = part.kernel.prepare(numbers, **dict(plan.static))
            peak = numbers[plan.peak]
        else:
            constants = part.kernel.prepare(numbers, peak=peak)
        layout = _record_layout(plan, index, floats.dtype, constants)
        float_leaves, int_leaves = layout.split(constants, int_dtype)
        # The words as one array op: one op per word made XLA split the stack.
        prepared += [
            jnp.concatenate([part_floats, *float_leaves]),
            jnp.concatenate([_steps.as_int(part_words, int_dtype), *int_leaves]),
        ]
    return tuple(prepared)


def _numbers(part: Part, floats: jax.Array, words: jax.Array) -> dict[str, Any]:
    """A part's numbers by name from its slices of the arrays: the integers as
    `Words` (the high word signed, the low word unsigned)."""
    numbers: dict[str, Any] = {name: floats[k] for k, name in enumerate(part.floats)}
    for k, name in enumerate(part.integers):
        hi, lo = words[2 * k], words[2 * k + 1]
        numbers[name] = Words(
            hi.astype(jnp.int32), _steps.as_int(lo, np.dtype(np.uint32))
        )
    return numbers


class _Layout(NamedTuple):
    """Where a kernel's constants lie in a part's two arrays: the constants' tree,
    and each leaf's kind (float or not), shape and dtype. Scalars of a kind come
    first, stacked in one op; arrays follow, each flattened."""

    treedef: Any
    leaves: tuple[tuple[bool, tuple[int, ...], np.dtype[Any]], ...]

    def order(self, floating: bool) -> list[int]:
        kind = [i for i, leaf in enumerate(self.leaves) if leaf[0] == floating]
        return sorted(kind, key=lambda i: bool(self.leaves[i][1]))

    def split(
        self, constants: Any, int_dtype: np.dtype[Any]
    ) -> tuple[list[jax.Array], list[jax.Array]]:
        """The constants as the pieces of the float and the integer array."""
        leaves = [jnp.asarray(leaf) for leaf in jax.tree.leaves(constants)]
        kinds = []
        for floating in (True, False):
            order = self.order(floating)
            cast = [
                leaves[i] if floating else _steps.as_int(leaves[i], int_dtype)
                for i in order
            ]
            scalars = [x for x in cast if x.ndim == 0]
            pieces = [jnp.stack(scalars)] if scalars else []
            kinds.append(pieces + [x.reshape(-1) for x in cast if x.ndim])
        return kinds[0], kinds[1]

    def unpack(self, floats: jax.Array, ints: jax.Array, offsets: list[int]) -> Any:
        """The constants from the part's arrays, after `offsets` (floats, ints)."""
        leaves: list[Any] = [None] * len(self.leaves)
        for floating, array, offset in (
            (True, floats, offsets[0]),
            (False, ints, offsets[1]),
        ):
            for i in self.order(floating):
                _, shape, dtype = self.leaves[i]
                size = int(np.prod(shape))
                value = array[offset] if not shape else array[offset : offset + size]
                offset += size
                if not floating and dtype != array.dtype:
                    value = _steps.as_int(value, dtype)
                leaves[i] = value.reshape(shape) if shape else value
        return jax.tree.unflatten(self.treedef, leaves)


_LAYOUTS: dict[tuple[Plan, int, np.dtype[Any]], _Layout] = {}


def _record_layout(plan: Plan, index: int, compute: Any, constants: Any) -> _Layout:
    """The layout of a part's constants, as its `prepare` made them (the same for
    every config of the plan)."""
    key = (plan, index, np.dtype(compute))
    if key not in _LAYOUTS:
        leaves, treedef = jax.tree.flatten(constants)
        _LAYOUTS[key] = _Layout(
            treedef,
            tuple(
                (
                    bool(jnp.issubdtype(leaf.dtype, jnp.floating)),
                    tuple(leaf.shape),
                    np.dtype(leaf.dtype),
                )
                for leaf in leaves
            ),
        )
    return _LAYOUTS[key]


def _layout(plan: Plan, index: int, compute: Any) -> _Layout:
    """The layout of a part's constants: recorded when its `prepare` was traced,
    or found by tracing it abstractly."""
    key = (plan, index, np.dtype(compute))
    if key not in _LAYOUTS:
        floats = sum(len(part.floats) for part in plan.parts)
        words = sum(2 * len(part.integers) for part in plan.parts)
        jax.eval_shape(
            functools.partial(_prepare_one, plan=plan),
            jax.ShapeDtypeStruct((floats,), compute),  # type: ignore[no-untyped-call]
            jax.ShapeDtypeStruct((words,), np.uint32),  # type: ignore[no-untyped-call]
        )
    return _LAYOUTS[key]


def _evaluate(*arguments: Any, plan: Plan, dtype: Any) -> jax.Array:
    """The learning rate at the step (the last argument), elementwise, from the
    prepared arrays: the one place it is computed.

    A batch of configs broadcasts against the step, as NumPy arrays do; each
    element is the schedule of its own config (`jax.vmap` over a stack of configs
    hands each config scalars, the scalar case).
    """
    # Known numbers, or a constant step, are compile-time constants inside a
    # caller's program: opaque, XLA evaluates the same operations as for values
    # passed in, and gives the same bits.
    opaque: tuple[jax.Array, ...] = lax.optimization_barrier(  # type: ignore[no-untyped-call]
        (*arguments[:-1], jnp.asarray(arguments[-1]))
    )
    prepared, steps = opaque[:-1], opaque[-1]
    batch = prepared[0].shape[:-1]
    if batch:
        shape = jnp.broadcast_shapes(steps.shape, batch)
        rows = [
            jnp.broadcast_to(x, (*shape, x.shape[-1])).reshape(-1, x.shape[-1])
            for x in prepared
        ]
        steps = jnp.broadcast_to(steps, shape).reshape(-1)
        one = functools.partial(_value, plan=plan)
        value = jax.vmap(one)(tuple(rows), steps).reshape(shape)
    else:
        value = _value(prepared, steps, plan=plan)
    return value.astype(dtype or compute_dtype())


def _value(
    prepared: tuple[jax.Array, ...], step: jax.Array, *, plan: Plan
) -> jax.Array:
    """The schedule of one config in the compute dtype: the family, wrapped in the
    pieces the config uses (the first piece innermost)."""
    compute = prepared[0].dtype
    parts = []
    for index, part in enumerate(plan.parts):
        floats, ints = prepared[2 * index], prepared[2 * index + 1]
        numbers = _numbers(part, floats, ints)
        offsets = [len(part.floats), 2 * len(part.integers)]
        constants = _layout(plan, index, compute).unpack(floats, ints, offsets)
        parts.append((numbers, constants))
    (numbers, constants), static = parts[0], dict(plan.static)

    def inner(position: Position) -> jax.Array:
        return plan.family.kernel.evaluate(numbers, constants, position, **static)

    peak = numbers[plan.peak]
    for piece, (piece_numbers, piece_constants) in zip(
        plan.pieces, parts[1:], strict=True
    ):
        inner = functools.partial(
            piece.kernel.evaluate, inner, piece_numbers, piece_constants, peak=peak
        )
    return inner(_steps.position(step, compute))
