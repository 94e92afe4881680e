"""The exponential decay schedule: the pure `step -> lr` math.

Every entry point (the `exponential_decay` builder, `ExponentialDecay.__call__`, the
command line) goes through `_Schedule`, so the math lives here only. A config's
numbers are data: `pack` makes two arrays of them, the shared `prepare` program turns
them into the exact kernel's constants and the shared `evaluate` program computes the
learning rate. Every path (eager, jit, a jit argument, vmap, optax) runs those two
programs on the same data, so a config gives the same bits however it is called, and
a new config compiles nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdecay import _exact
from jaxdecay._validation import (
    check_arguments,
    is_traced,
    preview,
    rejects_optax_names,
)

Schedule = Callable[[jax.typing.ArrayLike], jax.Array]
"""A `step -> learning rate` function; accepted wherever optax takes a schedule."""


# ---------------------------------------------------------------------------
# The numbers as data. Every path (an eager call, a jitted schedule, the config as
# a jit argument, a vmapped stack of configs, optax) hands the same arrays to the
# same program, so a config gives the same bits however it is called.
# ---------------------------------------------------------------------------


class Words(NamedTuple):
    """An integer in [0, 2**63 - 1] as its high (int32) and low (uint32) words.

    JAX without x64 has no integer type for `decay_steps` or `transition_begin`
    beyond 2**31; as two words they are data on every path, exactly.
    """

    hi: Any
    lo: Any


def to_words(value: Any) -> Words:
    """`value` (an int, an integer array, or `Words`) as `Words`."""
    if isinstance(value, Words):
        return value
    if isinstance(value, (int, np.integer, np.ndarray)):
        # Arrays, never NumPy scalars: checkpointers (orbax) take arrays only.
        wide = np.asarray(value, np.int64)
        high, low = np.asarray(wide >> 32, np.int32), np.asarray(wide & 0xFFFFFFFF)
        return Words(high, low.astype(np.uint32))
    array = jnp.asarray(value)
    if array.dtype.itemsize <= 4:
        return Words(jnp.zeros(array.shape, jnp.int32), array.astype(jnp.uint32))
    hi = (array >> 32).astype(jnp.int32)
    return Words(hi, (array & 0xFFFFFFFF).astype(jnp.uint32))


def from_words(words: Words) -> Any:
    """The integer of `Words` whose words are known (an int, or an int64 NumPy
    array); `words` itself when they are traced or not integers."""
    hi, lo = words
    known = all(
        isinstance(word, (np.ndarray, np.generic, jax.Array))
        and not is_traced(word)
        and jnp.issubdtype(word.dtype, jnp.integer)
        for word in words
    )
    if not known:
        return words
    value = (np.asarray(hi, np.int64) << 32) | np.asarray(lo, np.int64)
    return int(value) if value.ndim == 0 else value


class Data(NamedTuple):
    """The numeric hyperparameters by name, integers as `Words`: the pytree's
    children (floats as given) and, unpacked in the program, the numbers it reads
    (floats in the compute dtype, `end_learning_rate` NaN when unset)."""

    initial_learning_rate: Any
    decay_steps: Words
    decay_rate: Any
    transition_begin: Words
    end_learning_rate: Any
    warmup_steps: Words
    warmup_init: Any


NUMBERS = Data._fields  # the numeric hyperparameters, in the order of the fields


def pack(
    initial_learning_rate: Any,
    decay_steps: Any,
    decay_rate: Any,
    transition_begin: Any,
    end_learning_rate: Any,
    warmup_steps: Any,
    warmup_init: Any,
) -> tuple[Any, Any]:
    """A validated config's numbers as the program's data: two arrays, the floats
    (initial, rate, end, warmup init; NaN for no end) in the compute dtype as it
    stands and the integers' words as uint32 (decay steps, transition begin,
    warmup steps), along the last axis (a batch of configs before it).

    Known scalars are packed by NumPy (a program argument costs a transfer each),
    arrays and traced values by JAX; both round a float to the compute dtype once.
    """
    compute = _compute_dtype()
    end = np.nan if end_learning_rate is None else end_learning_rate
    floats = (initial_learning_rate, decay_rate, end, warmup_init)
    integers = (decay_steps, transition_begin, warmup_steps)
    if all(isinstance(x, (float, int, np.generic)) for x in floats) and all(
        isinstance(x, int) for x in integers
    ):
        known = [word for x in integers for word in (x >> 32, x)]
        return np.array(floats, compute), np.array(known, np.uint64).astype(np.uint32)
    words = tuple(word for x in integers for word in to_words(x))
    columns = jnp.broadcast_arrays(
        *(jnp.asarray(x).astype(compute) for x in floats),
        *(jnp.asarray(x).astype(jnp.uint32) for x in words),
    )
    return jnp.stack(columns[:_SCALARS], -1), jnp.stack(columns[_SCALARS:], -1)


def result_dtype(initial_learning_rate: Any) -> np.dtype[Any] | None:
    """The dtype of the learning rate: that of a NumPy or JAX float given as the
    initial learning rate, or None for JAX's default float as it stands when the
    schedule is called (float32, or float64 under x64)."""
    dtype = getattr(initial_learning_rate, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
        return np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    return None


def _compute_dtype() -> np.dtype[Any]:
    """float32, or float64 under x64; every result dtype is rounded once from it.

    Under x64 steps are int64, which float32 arithmetic does not cover exactly, so a
    float32 (or 16-bit) learning rate is computed in float64 and rounded once.
    """
    return _FLOAT64 if _x64() else _FLOAT32


def _x64() -> bool:
    return bool(jax.config.jax_enable_x64)  # type: ignore[attr-defined]


_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)


# ---------------------------------------------------------------------------
# The builder.
# ---------------------------------------------------------------------------


@rejects_optax_names("exponential_decay")
def exponential_decay(
    initial_learning_rate: jax.typing.ArrayLike,
    decay_steps: int,
    decay_rate: jax.typing.ArrayLike,
    staircase: bool = False,
    *,
    transition_begin: int = 0,
    end_learning_rate: jax.typing.ArrayLike | None = None,
    warmup_steps: int = 0,
    warmup_init: jax.typing.ArrayLike = 0.0,
) -> Schedule:
    """Builds Keras' `ExponentialDecay` as a pure, jit-able `step -> lr` function.

    For a step `t = step - transition_begin > 0` the learning rate is::

        initial_learning_rate * decay_rate ** (t / decay_steps)

    With `staircase=True` the exponent is the integer division `t // decay_steps`,
    in integer arithmetic. Steps at or before `transition_begin` (negative steps
    included) hold `initial_learning_rate`, as optax does; Keras instead
    extrapolates the curve to negative steps. `end_learning_rate` bounds the result
    as optax's `end_value` does: a floor when `decay_rate < 1`, a ceiling above 1.

    With `warmup_steps > 0` the schedule is optax's
    `warmup_exponential_decay_schedule`: the learning rate rises linearly from
    `warmup_init` at step 0 (and before) to `initial_learning_rate` at
    `warmup_steps`, and the decay above is counted from there: the stairs start
    at `warmup_steps`, and `transition_begin` holds the peak for that many more
    steps. The warmup is within 1 ulp of the exact line unless `warmup_init` and
    `initial_learning_rate` have opposite signs (see docs/numerics.md).

    The float hyperparameters are taken in the compute dtype (float32, or float64
    under x64), as the schedule's program receives them on every path; the result
    is within 1 ulp of the exact schedule of those values. It has the dtype of
    `initial_learning_rate` when that is a NumPy or JAX float (float16 and bfloat16
    are computed in float32 and rounded once), and JAX's default float otherwise.

    Args:
      initial_learning_rate: the learning rate at steps up to `transition_begin`.
      decay_steps: the number of steps over which the rate is multiplied by
        `decay_rate`; an integer in [1, 2**63 - 1].
      decay_rate: the factor per `decay_steps` steps; finite and > 0.
      staircase: decay in whole stairs of `decay_steps` steps.
      transition_begin: the steps the decay waits after the warmup; an integer >= 0.
      end_learning_rate: a bound the learning rate does not pass, or None.
      warmup_steps: the length of the linear warmup; an integer >= 0 (0: none).
      warmup_init: the learning rate at step 0, where the warmup starts; finite.

    Returns:
      A function from a step (a Python, NumPy or JAX integer or float, scalar or
      array) to the learning rate, elementwise. It is pure JAX: it works under
      `jax.jit` and `jax.vmap`, and `jax.grad` gives the analytic derivative with
      respect to a float step and the float hyperparameters.

    Raises:
      TypeError: an argument has the wrong type (the message names it).
      ValueError: an argument is out of range (the message names it).

    Examples:
      >>> import jaxdecay
      >>> schedule = jaxdecay.exponential_decay(0.1, decay_steps=1000, decay_rate=0.5)
      >>> print(schedule(2000))
      0.025
      >>> stairs = jaxdecay.exponential_decay(0.1, 1000, 0.5, staircase=True)
      >>> print(stairs(1999))
      0.05
      >>> warm = jaxdecay.exponential_decay(0.1, 1000, 0.5, warmup_steps=100)
      >>> print(warm(50), warm(100), warm(1100))
      0.05 0.1 0.05
    """
    arguments = check_arguments(
        initial_learning_rate,
        decay_steps,
        decay_rate,
        staircase,
        transition_begin,
        end_learning_rate,
        warmup_steps,
        warmup_init,
    )
    return schedule_for(arguments, result_dtype(arguments["initial_learning_rate"]))


class _Schedule:
    """A config's numbers, and the shared programs that evaluate them."""

    __slots__ = (
        "__weakref__",
        "_arguments",
        "_dtype",
        "_evaluate",
        "_known",
        "_warmup",
    )

    def __init__(self, arguments: dict[str, Any], dtype: np.dtype[Any] | None):
        self._arguments = arguments
        self._dtype = dtype
        # A schedule whose warmup_steps are known to be 0 runs the program without
        # the ramp, which costs about what the decay does; both give the same bits.
        self._warmup = not _known_zero(arguments["warmup_steps"])
        self._evaluate = _evaluate_program(arguments["staircase"], dtype, self._warmup)
        # For known numbers: (x64, *prepared), made at the first call per x64 mode.
        self._known: tuple[bool, jax.Array, jax.Array, jax.Array] | None = None

    def __call__(self, step: jax.typing.ArrayLike) -> jax.Array:
        known = self._known
        x64 = jax.config.jax_enable_x64  # type: ignore[attr-defined]
        if known is not None and known[0] == x64:  # one dispatch, the common case
            return self._evaluate(known[1], known[2], known[3], step)
        return self._first_call(step)

    def _first_call(self, step: jax.typing.ArrayLike) -> jax.Array:
        staircase = self._arguments["staircase"]
        floats, ints = pack(**{k: self._arguments[k] for k in NUMBERS})
        if is_traced(floats) or is_traced(ints):  # prepared in the caller's trace
            prepare = _prepare_program(staircase, self._warmup)
            return self._evaluate(*prepare(floats, ints), step)
        if not is_traced(step) and np.ndim(step) == 0:
            # Both programs in one dispatch, for the step types a training loop or a
            # logger passes; the prepared numbers are kept. (An array of steps
            # compiles `evaluate` alone for its shape, not `prepare` again.)
            first = _first_program(staircase, self._dtype, self._warmup)
            value, prepared = first(floats, ints, step)
            if not is_traced(value):
                self._known = (_x64(), *prepared)
                return value
        # An array of steps, or known numbers in a caller's trace: prepared now,
        # outside any trace (a caller's program gets them as constants, and
        # compiles only `evaluate`).
        with jax.ensure_compile_time_eval():
            prepared = _prepare_program(staircase, self._warmup)(floats, ints)
        self._known = (_x64(), *prepared)
        return self._evaluate(*prepared, step)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={preview(v)}" for k, v in self._arguments.items())
        return f"exponential_decay({shown})"


def _known_zero(value: Any) -> bool:
    """Whether an integer argument (an int, an array or `Words`) is known to be 0."""
    if isinstance(value, int):
        return value == 0
    if isinstance(value, Words) or is_traced(value):
        return False
    return bool(np.all(np.asarray(value) == 0))


def schedule_for(arguments: dict[str, Any], dtype: np.dtype[Any] | None) -> Schedule:
    """The schedule of arguments that `check_arguments` has validated (integers may
    also be `Words`), with the result dtype (None: JAX's default float)."""
    return _Schedule(arguments, dtype)


# ---------------------------------------------------------------------------
# The programs: `prepare` turns a config's numbers into the constants of the
# exact kernel, `evaluate` computes the learning rate from them. One of each per
# staircase and result dtype (compiled per step shape and dtype), whatever the
# numbers; every path calls both, so every path gives the same bits.
# ---------------------------------------------------------------------------


class Prepared(NamedTuple):
    """What the evaluation takes: packed in three arrays (each argument costs a
    dispatch), the floats in the compute dtype and the integers in the signed
    integer type of its width.

    floats: `initial_learning_rate`, `decay_rate`, `end_learning_rate` (NaN: none),
      `warmup_init`, then the kernel's pieces, tail, table_hi and table_lo.
    ints: the words of `decay_steps`, `transition_begin` and `warmup_steps`, then
      the kernel's scale_exponent, sign and n_limit (bit-cast where unsigned).
    ramp: the warmup's `_exact.Ramp` (zeros where no program reads it). An array
      of its own: joined to the floats, the concatenation had too many operands
      for XLA's CPU backend to fuse (an unfused concatenation of nine integers
      had cost about 90 us a call).
    """

    floats: jax.Array
    ints: jax.Array
    ramp: jax.Array


_SCALARS = 4  # initial, rate, end, warmup init: the first floats
_WORDS = 6  # the words of decay_steps, transition_begin and warmup_steps
_RAMP = len(_exact.Ramp._fields)


@functools.cache
def _prepare_program(staircase: bool, warmup: bool) -> Callable[[Any, Any], Prepared]:
    return jax.jit(functools.partial(_prepare, staircase=staircase, warmup=warmup))


@functools.cache
def _evaluate_program(
    staircase: bool, dtype: np.dtype[Any] | None, warmup: bool
) -> Callable[..., jax.Array]:
    return jax.jit(
        functools.partial(_evaluate, staircase=staircase, dtype=dtype, warmup=warmup)
    )


@functools.cache
def _first_program(
    staircase: bool, dtype: np.dtype[Any] | None, warmup: bool
) -> Callable[..., tuple[jax.Array, Prepared]]:
    """`prepare` then `evaluate`, as a jit argument's path runs them, for the first
    eager call of a config: one dispatch instead of two."""

    def first(floats: Any, ints: Any, step: Any) -> tuple[jax.Array, Prepared]:
        prepared = _prepare(floats, ints, staircase=staircase, warmup=warmup)
        value = _evaluate(
            *prepared, step, staircase=staircase, dtype=dtype, warmup=warmup
        )
        return value, prepared

    return jax.jit(first)


def _as_int(value: Any, dtype: np.dtype[Any]) -> jax.Array:
    """An integer array in `dtype`, exactly: bit-cast if of the same width."""
    array = jnp.asarray(value)
    if array.dtype.itemsize == dtype.itemsize:
        cast: jax.Array = lax.bitcast_convert_type(array, dtype)
        return cast
    return array.astype(dtype)


def _prepare(floats: Any, ints: Any, *, staircase: bool, warmup: bool) -> Prepared:
    """`Prepared` from `pack`'s arrays (a batch of configs before the last axis)."""
    floats, ints = jnp.asarray(floats), jnp.asarray(ints)
    batch = floats.shape[:-1]
    if batch:
        one = functools.partial(_prepare_one, staircase=staircase, warmup=warmup)
        rows = jax.vmap(one)(floats.reshape(-1, _SCALARS), ints.reshape(-1, _WORDS))
        return Prepared(*(x.reshape(*batch, x.shape[-1]) for x in rows))
    return _prepare_one(floats, ints, staircase=staircase, warmup=warmup)


def _prepare_one(
    floats: jax.Array, ints: jax.Array, *, staircase: bool, warmup: bool
) -> Prepared:
    compute = floats.dtype
    initial, rate, warmup_init = floats[0], floats[1], floats[3]
    decay_steps = Words(ints[0].astype(jnp.int32), ints[1])
    warmup_steps = Words(ints[4].astype(jnp.int32), ints[5])
    steps = _ONE if staircase else decay_steps
    # The kernels work on bits: the derivatives come from `_exact.power` and
    # `_exact.linear`.
    constants = lax.stop_gradient(_exact.prepare(initial, rate, steps, compute))
    if warmup:
        ramp = lax.stop_gradient(
            _exact.prepare_ramp(warmup_init, initial, warmup_steps, compute)
        )
    else:  # the program without the ramp reads none of its constants
        ramp = _exact.Ramp(*(jnp.zeros((), compute) for _ in range(_RAMP)))
    int_dtype = constants.scale_exponent.dtype
    kernel_floats = (constants.pieces, constants.tail[None], constants.table_hi)
    kernel_ints = (
        constants.scale_exponent,
        constants.sign,
        _as_int(constants.n_limit, int_dtype),
    )
    return Prepared(
        jnp.concatenate([floats, *kernel_floats, constants.table_lo]),
        # The words as one array op: one op per word made XLA split the stack.
        jnp.concatenate([_as_int(ints, int_dtype), jnp.stack(kernel_ints)]),
        jnp.stack(ramp),
    )


def _unpack(prepared: Prepared) -> tuple[Data, _exact.Constants, _exact.Ramp]:
    floats, ints, ramp_constants = prepared
    unsigned = _exact.unsigned_dtype(floats.dtype)
    words = [
        Words(ints[i].astype(jnp.int32), _as_int(ints[i + 1], np.dtype(np.uint32)))
        for i in range(0, _WORDS, 2)
    ]
    data = Data(
        initial_learning_rate=floats[0],
        decay_steps=words[0],
        decay_rate=floats[1],
        transition_begin=words[1],
        end_learning_rate=floats[2],
        warmup_steps=words[2],
        warmup_init=floats[3],
    )
    tables = _SCALARS + 4
    constants = _exact.Constants(
        pieces=floats[_SCALARS : _SCALARS + 3],
        tail=floats[_SCALARS + 3],
        table_hi=floats[tables : tables + 64],
        table_lo=floats[tables + 64 : tables + 128],
        scale_exponent=ints[_WORDS],
        sign=ints[_WORDS + 1],
        n_limit=_as_int(ints[_WORDS + 2], unsigned),
    )
    ramp = _exact.Ramp(*(ramp_constants[i] for i in range(_RAMP)))
    return data, constants, ramp


def _evaluate(
    floats: jax.Array,
    ints: jax.Array,
    ramp: jax.Array,
    step: jax.typing.ArrayLike,
    *,
    staircase: bool,
    dtype: Any,
    warmup: bool,
) -> jax.Array:
    """The learning rate at `step`, elementwise: the one place it is computed.

    A batch of configs broadcasts against the step, as NumPy arrays do; each
    element is the schedule of its own config (`jax.vmap` over a stack of configs
    hands each config scalars, the scalar case).
    """
    # Known numbers, or a constant step, are compile-time constants inside a
    # caller's program: opaque, XLA evaluates the same operations as for values
    # passed in, and gives the same bits.
    opaque: tuple[jax.Array, ...] = lax.optimization_barrier(  # type: ignore[no-untyped-call]
        (floats, ints, ramp, jnp.asarray(step))
    )
    prepared, steps = Prepared(*opaque[:3]), opaque[3]
    batch = prepared.floats.shape[:-1]
    if batch:
        shape = jnp.broadcast_shapes(steps.shape, batch)
        rows = [
            jnp.broadcast_to(x, (*shape, x.shape[-1])).reshape(-1, x.shape[-1])
            for x in prepared
        ]
        steps = jnp.broadcast_to(steps, shape).reshape(-1)
        one = functools.partial(_value, staircase=staircase, warmup=warmup)
        value = jax.vmap(lambda row, s: one(Prepared(*row), s))(tuple(rows), steps)
        value = value.reshape(shape)
    else:
        value = _value(prepared, steps, staircase=staircase, warmup=warmup)
    return value.astype(dtype or _compute_dtype())


_ONE = Words(np.int32(0), np.uint32(1))


def _unsigned(words: Words, unsigned: np.dtype[Any]) -> tuple[jax.Array, jax.Array]:
    """`words` in the unsigned step type, and whether the value fits it (without
    x64, a value of 2**32 or more is beyond every step)."""
    hi, lo = (jnp.asarray(word) for word in words)
    if unsigned == np.uint32:
        return lo.astype(unsigned), hi == 0
    wide = (hi.astype(unsigned) << 32) | lo.astype(unsigned)
    return wide, jnp.ones((), bool)


def _as_float(words: Words, dtype: np.dtype[Any]) -> jax.Array:
    hi, lo = (jnp.asarray(word).astype(dtype) for word in words)
    value: jax.Array = hi * dtype.type(2.0**32) + lo
    return value


class _Position(NamedTuple):
    """A step as the schedule reads it.

    step: the step; a float step in its own type (float32 for a 16-bit step).
    whole: its whole part in the unsigned step type (0 where not `in_range`).
    fraction: for a float step, `step - whole` (0 where not `in_range`); None for
      an integer step.
    in_range: where `whole` is the step's whole part: 0 <= step < 2**32 (2**64
      under x64).
    clipped: `max(step, 0)` as a double word of the compute dtype, exactly.
    """

    step: jax.Array
    whole: jax.Array
    fraction: jax.Array | None
    in_range: jax.Array
    clipped: tuple[jax.Array, jax.Array]


def _position(step: jax.Array, compute: np.dtype[Any]) -> _Position:
    unsigned = _exact.unsigned_dtype(compute)
    if jnp.issubdtype(step.dtype, jnp.integer):
        whole, in_range = _integer_steps(step, unsigned)
        whole = jnp.where(in_range, whole, unsigned.type(0))
        clipped = _exact.unsigned_double_word(whole, compute)
        return _Position(step, whole, None, in_range, clipped)
    if not jnp.issubdtype(step.dtype, jnp.floating):
        raise TypeError(
            f"step must be an integer or float array, got dtype {step.dtype}"
        )
    # The float step's own type, or float32 for a 16-bit step.
    step = step if step.dtype == np.float64 else step.astype(np.float32)
    floor = jnp.floor(step)
    top = step.dtype.type(2.0 ** (8 * unsigned.itemsize))
    in_range = (floor >= 0) & (floor < top)
    # Whole steps take the integer path: a whole float step gives the integer
    # step's bits.
    whole = jnp.where(in_range, floor, 0).astype(unsigned)
    fraction = jnp.where(in_range, step - floor, 0)
    elapsed = jnp.where(step > 0, step, 0).astype(compute)  # exact
    clipped = (elapsed, jnp.zeros_like(elapsed))
    return _Position(step, whole, fraction, in_range, clipped)


def _value(
    prepared: Prepared, step: jax.Array, *, staircase: bool, warmup: bool
) -> jax.Array:
    """The schedule of one config in the compute dtype: the warmup's ramp before
    `warmup_steps`, the decay from there on (`warmup=False`: known to have no
    warmup)."""
    data, constants, ramp = _unpack(prepared)
    initial = data.initial_learning_rate
    position = _position(step, initial.dtype)
    # Before the end of the warmup, negative steps included (as optax's linear
    # schedule holds its start there); without one, never.
    if not warmup:  # known to have none: the same bits, without the ramp's cost
        return _decay(data, constants, position, None, staircase)
    warm = (ramp.total_hi > 0) & _exact.ramp_reaches(ramp, position.clipped)
    decay = _decay(data, constants, position, warm, staircase)
    # Past the warmup the line is computed but not used: at step 0 there, so that
    # an infinite step does not make its derivatives NaN (0 * NaN is NaN).
    t = tuple(jnp.where(warm, word, 0) for word in position.clipped)
    line = _exact.linear(ramp, data.warmup_init, initial, t)
    return jnp.where(warm, line, decay)


def _decay(
    data: Data,
    constants: _exact.Constants,
    position: _Position,
    warm: jax.Array | None,
    staircase: bool,
) -> jax.Array:
    """The decay, counted from `warmup_steps`, where the step is not `warm` (None:
    known to have no warmup, and nothing to count it from)."""
    initial, rate, end = (
        data.initial_learning_rate,
        data.decay_rate,
        data.end_learning_rate,
    )
    compute = initial.dtype
    unsigned = _exact.unsigned_dtype(compute)
    begin, reachable = _unsigned(data.transition_begin, unsigned)
    fraction, in_range, whole = position.fraction, position.in_range, position.whole
    far = ~in_range
    if warm is not None:
        # Past the warmup (a warmup beyond every step leaves nothing to decay).
        warmup_steps, fits = _unsigned(data.warmup_steps, unsigned)
        in_range, far = in_range & ~warm, far & ~warm
        whole = jnp.where(in_range & fits, whole - warmup_steps, 0)
    after = whole > begin
    if fraction is not None:
        after = after | ((whole == begin) & (fraction > 0))
    started = in_range & reachable & after
    elapsed = jnp.where(started, whole - begin, unsigned.type(0))
    if staircase:
        decay_steps, fits = _unsigned(data.decay_steps, unsigned)
        divisor = jnp.maximum(decay_steps, unsigned.type(1))
        # The exact integer quotient: never a float division.
        stairs = jnp.where(fits, elapsed // divisor, unsigned.type(0))
        value = _exact.power(constants, initial, rate, _ONE, stairs)
    else:
        value = _exact.power(constants, initial, rate, data.decay_steps, elapsed)
        if fraction is not None:
            value = value * _fraction_factor(data, fraction, compute)
    if fraction is not None:
        far_started, far_value = _far(
            position.step, far, data, staircase, warm is not None
        )
        started = jnp.where(far, far_started, started)
        value = jnp.where(far, far_value, value)
    value = jnp.where(started, value, initial)
    # A floor for decay, a ceiling for growth (as optax's end_value); NaN: none.
    bounded = jnp.where(rate < 1, jnp.maximum(value, end), jnp.minimum(value, end))
    return jnp.where(jnp.isnan(end), value, bounded)


def _fraction_factor(data: Data, fraction: jax.Array, compute: Any) -> jax.Array:
    """`rate ** (fraction / decay_steps)` for the fraction of a float step."""
    rate = data.decay_rate
    per_step = jnp.log(rate) / _as_float(data.decay_steps, compute)
    part = fraction.astype(compute)
    # A whole step multiplies by exactly 1, also when the rate is 0 or inf (whose
    # exponent is then -inf or inf for any fraction).
    infinite = jnp.isinf(per_step)
    exponent = part * jnp.where(infinite, 0, per_step)
    exponent = jnp.where(infinite & (part > 0), per_step, exponent)
    return jnp.exp(exponent)


def _integer_steps(step: jax.Array, unsigned: np.dtype[Any]) -> tuple[jax.Array, Any]:
    """An integer step in the unsigned step type, and where it is not negative."""
    if jnp.issubdtype(step.dtype, jnp.unsignedinteger):
        if step.dtype.itemsize > unsigned.itemsize:
            raise TypeError(f"step must fit {unsigned.name}, got dtype {step.dtype}")
        return step.astype(unsigned), jnp.ones((), bool)
    return step.astype(unsigned), step >= 0


def _far(
    step: jax.Array, far: jax.Array, data: Data, staircase: bool, warmup: bool
) -> tuple[jax.Array, jax.Array]:
    """The decay in float arithmetic, where `far`: for float steps beyond the
    integer range (infinity included) and past the warmup (if any). 0 or inf where
    the exact value is, never NaN."""
    initial, rate = data.initial_learning_rate, data.decay_rate
    compute = initial.dtype
    begin = _as_float(data.transition_begin, compute)
    if warmup:
        begin = begin + _as_float(data.warmup_steps, compute)
    # Zero where not far or before the start, so that neither this branch nor its
    # gradient is infinite where it is not used; at most the largest float, so
    # that an infinite step gives 0 or inf with finite derivatives (not 0 * inf).
    largest = np.finfo(compute).max
    elapsed = jnp.maximum(step.astype(compute) - begin, 0)
    elapsed = jnp.where(far, jnp.minimum(elapsed, largest), 0)
    units = elapsed / _as_float(data.decay_steps, compute)
    if staircase:
        units = jnp.floor(units)
    log_rate = jnp.log(rate)
    # No decay at all must not make inf * 0 a NaN.
    exponent = jnp.where(log_rate == 0, 0, units * log_rate)
    factor = jnp.exp(exponent)
    # Where the factor alone underflows or overflows, the product may not.
    magnitude = jnp.where(initial == 0, 1, jnp.abs(initial))
    extreme = jnp.sign(initial) * jnp.exp(jnp.log(magnitude) + exponent)
    product = jnp.where(jnp.isfinite(factor) & (factor != 0), initial * factor, extreme)
    # 0 and inf stay what they are, whatever the rate.
    keep = (initial == 0) | jnp.isinf(initial)
    return elapsed > 0, jnp.where(keep, initial, product)
