"""Integers as data, and the step as every schedule reads it.

JAX without x64 has no integer type for a hyperparameter such as `decay_steps`
beyond 2**31, so the configs carry their integers as two 32-bit words (`Words`),
exact on every path. A program reads the step through `position`: its whole part
in the unsigned step type, the fraction of a float step, and where it is in range.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdecay import _dw
from jaxdecay._validation import is_traced


class Words(NamedTuple):
    """A 64-bit signed integer as its high (int32) and low (uint32) words (the
    integer fields are in [0, 2**63 - 1], a sequence's may be negative).

    JAX without x64 has no integer type for `decay_steps` or `transition_begin`
    beyond 2**31; as two words they are data on every path, exactly.
    """

    hi: Any
    lo: Any


ONE = Words(np.int32(0), np.uint32(1))


def to_words(value: Any) -> Words:
    """`value` (an int, a tuple of ints, an integer array, or `Words`) as
    `Words`."""
    if isinstance(value, Words):
        return value
    if isinstance(value, (int, np.integer, np.ndarray, tuple)):
        # Arrays, never NumPy scalars: checkpointers (orbax) take arrays only.
        wide = np.asarray(value, np.int64)
        high, low = np.asarray(wide >> 32, np.int32), np.asarray(wide & 0xFFFFFFFF)
        return Words(high, low.astype(np.uint32))
    array = jnp.asarray(value)
    if array.dtype.itemsize <= 4:
        signed = jnp.issubdtype(array.dtype, jnp.signedinteger)
        signs = array.astype(jnp.int32) >> 31  # the high word of a negative one
        hi = signs if signed else jnp.zeros(array.shape)
        return Words(hi.astype(jnp.int32), array.astype(jnp.uint32))
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


def known_zero(value: Any) -> bool:
    """Whether an integer (an int, an array or `Words`) is known to be 0."""
    if isinstance(value, int):
        return value == 0
    if isinstance(value, Words) or is_traced(value):
        return False
    return bool(np.all(np.asarray(value) == 0))


def as_int(value: Any, dtype: np.dtype[Any]) -> jax.Array:
    """An integer array in `dtype`, exactly: bit-cast if of the same width."""
    array = jnp.asarray(value)
    if array.dtype.itemsize == dtype.itemsize:
        cast: jax.Array = lax.bitcast_convert_type(array, dtype)
        return cast
    return array.astype(dtype)


def unsigned(words: Words, dtype: np.dtype[Any]) -> tuple[jax.Array, jax.Array]:
    """`words` in the unsigned step type `dtype`, and whether the value fits it
    (without x64, a value of 2**32 or more is beyond every step)."""
    hi, lo = (jnp.asarray(word) for word in words)
    if dtype == np.uint32:
        return lo.astype(dtype), hi == 0
    wide = (hi.astype(dtype) << 32) | lo.astype(dtype)
    return wide, jnp.ones((), bool)


def as_float(words: Words, dtype: np.dtype[Any]) -> jax.Array:
    """`words` as a float of `dtype`, rounded."""
    hi, lo = (jnp.asarray(word).astype(dtype) for word in words)
    value: jax.Array = hi * dtype.type(2.0**32) + lo
    return value


class Position(NamedTuple):
    """A step as a schedule reads it.

    step: the step; a float step in its own type (float32 for a 16-bit step).
    whole: its whole part in the unsigned step type (0 where not `in_range`).
    fraction: for a float step, `step - whole` (0 where not `in_range`); None for
      an integer step.
    in_range: where `whole` is the step's whole part: 0 <= step < 2**32 (2**64
      under x64), and (inside a piece such as the warmup) the family's part.
    far: where a float step is beyond the integer range (infinity included), and
      the family's part: a family computes it in float arithmetic.
    clipped: `max(step, 0)` as a double word of the compute dtype, exactly.
    offset: the steps the pieces before the family take (None: none; a warmup's
      and a hold's add up), as a float, which the far branch subtracts; `whole`
      already counts from there.
    """

    step: jax.Array
    whole: jax.Array
    fraction: jax.Array | None
    in_range: jax.Array
    far: jax.Array
    clipped: tuple[jax.Array, jax.Array]
    offset: jax.Array | None = None


def as_step(step: Any) -> Any:
    """A step that is an array only on request (`__jax_array__`, as a Keras
    `Variable` such as an optimizer's `iterations`), as that array: JAX no longer
    converts such an argument of a jitted function. Any other step as it is (a
    tracer has the attribute too, as None unless its type converts)."""
    if hasattr(type(step), "__jax_array__") and not isinstance(step, jax.Array):
        return step.__jax_array__()
    return step


def position(step: jax.Array, compute: np.dtype[Any]) -> Position:
    """The step as the schedule reads it in the compute dtype."""
    unsigned_type = _dw.unsigned_dtype(compute)
    if jnp.issubdtype(step.dtype, jnp.integer):
        whole, in_range = _integer_steps(step, unsigned_type)
        whole = jnp.where(in_range, whole, unsigned_type.type(0))
        clipped = _dw.unsigned_double_word(whole, compute)
        return Position(step, whole, None, in_range, ~in_range, clipped)
    if not jnp.issubdtype(step.dtype, jnp.floating):
        raise TypeError(
            f"step must be an integer or float array, got dtype {step.dtype}"
        )
    # The float step's own type, or float32 for a 16-bit step.
    step = step if step.dtype == np.float64 else step.astype(np.float32)
    floor = jnp.floor(step)
    top = step.dtype.type(2.0 ** (8 * unsigned_type.itemsize))
    in_range = (floor >= 0) & (floor < top)
    # Whole steps take the integer path: a whole float step gives the integer
    # step's bits.
    whole = jnp.where(in_range, floor, 0).astype(unsigned_type)
    fraction = jnp.where(in_range, step - floor, 0)
    elapsed = jnp.where(step > 0, step, 0).astype(compute)  # exact
    clipped = (elapsed, jnp.zeros_like(elapsed))
    return Position(step, whole, fraction, in_range, ~in_range, clipped)


def _integer_steps(step: jax.Array, unsigned_type: np.dtype[Any]) -> tuple[Any, Any]:
    """An integer step in the unsigned step type, and where it is not negative."""
    if jnp.issubdtype(step.dtype, jnp.unsignedinteger):
        if step.dtype.itemsize > unsigned_type.itemsize:
            raise TypeError(
                f"step must fit {unsigned_type.name}, got dtype {step.dtype}"
            )
        return step.astype(unsigned_type), jnp.ones((), bool)
    return step.astype(unsigned_type), step >= 0


def evenly(count: int, limit: int) -> np.ndarray:
    """The numbers 1 to `count` (int64), or `limit` of them evenly spaced (the
    first and the last included) when there are more."""
    if count > limit:
        return np.unique(np.linspace(1, count, limit).round().astype(np.int64))
    return np.arange(1, count + 1, dtype=np.int64)


def multiples(step: int, last: int, limit: int) -> tuple[np.ndarray, int]:
    """The multiples `k * step` in [1, last] (at most `limit` of them, evenly
    chosen), and how many there are: the stairs or cycles a `View` marks."""
    count = max(last, 0) // step
    return evenly(count, limit) * step, count
