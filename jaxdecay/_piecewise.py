"""`PiecewiseConstantDecay`: Keras' piecewise constant schedule, as a family on the
shared layers.

``values[i]`` for ``boundaries[i - 1] < step <= boundaries[i]``: ``values[0]`` up to
the first boundary and ``values[-1]`` after the last. Both fields are sequences,
one leaf each, whose count is structure. The kernel compares the step with each
boundary exactly, as 64-bit integers in two 32-bit words (`_step_words`), whatever
the step's type, and selects a value: the value is the number itself, in the
compute dtype, never a product or a sum.
"""

from __future__ import annotations

import dataclasses
import math
import numbers as _numbers
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdecay import _config, _steps, _validation
from jaxdecay._fields import field
from jaxdecay._program import Kernel
from jaxdecay._steps import Position, Words

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class _Constants(NamedTuple):
    """The boundaries as a 32-bit integer step compares with them: each clipped
    to int32 (`signed`) and to uint32 (`unsigned`), and how many are below either
    range (every such step is past them: `signed_first`, `unsigned_first`)."""

    signed: Any
    signed_first: Any
    unsigned: Any
    unsigned_first: Any


def _prepare(numbers: Mapping[str, Any], *, host: bool = False) -> _Constants:
    xp: Any = np if host else jnp
    boundaries: Words = numbers["boundaries"]
    hi, lo = xp.asarray(boundaries.hi), xp.asarray(boundaries.lo)
    top = xp.asarray(2**31, np.uint32)
    # In int32: a high word of 0 with the low word's top bit clear, or of -1
    # with it set; beyond, the nearest end of int32.
    fits = ((hi == 0) & (lo < top)) | ((hi == -1) & (lo >= top))
    low = lo.view(np.int32) if host else lax.bitcast_convert_type(lo, jnp.int32)
    ends = xp.where(hi < 0, np.int32(-(2**31)), np.int32(2**31 - 1))
    signed = xp.where(fits, low, ends).astype(np.int32)
    below_signed = (hi < -1) | ((hi == -1) & (lo < top))
    largest = np.uint32(2**32 - 1)
    unsigned = xp.where(hi == 0, lo, xp.where(hi < 0, np.uint32(0), largest))
    constants = _Constants(
        signed,
        below_signed.astype(np.int32).sum().astype(np.int32),
        unsigned.astype(np.uint32),
        (hi < 0).astype(np.int32).sum().astype(np.int32),
    )
    return constants if host else lax.stop_gradient(constants)


def _step_words(step: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """A step as the 64-bit integer it is past: the high (int32) and low (uint32)
    words of its floor, and for a float step whether it has a fraction (it is past
    its floor). A step beyond int64 is past every boundary (the largest words and
    a fraction) or none (the smallest words)."""
    dtype = step.dtype
    if jnp.issubdtype(dtype, jnp.integer):
        if dtype.itemsize <= 4:
            signed = jnp.issubdtype(dtype, jnp.signedinteger)
            wide = step.astype(jnp.int32)
            hi = (wide >> 31) if signed else jnp.zeros(step.shape, jnp.int32)
            return hi, step.astype(jnp.uint32), None
        hi = (step >> 32).astype(jnp.int32)
        lo = (step & 0xFFFFFFFF).astype(jnp.uint32)
        if jnp.issubdtype(dtype, jnp.unsignedinteger):  # past 2**63 - 1: past all
            beyond = step > INT64_MAX
            hi = jnp.where(beyond, np.int32(2**31 - 1), hi)
            lo = jnp.where(beyond, np.uint32(2**32 - 1), lo)
            return hi, lo, beyond
        return hi, lo, None
    floor = jnp.floor(step)
    fraction = step > floor
    # Within int32 the floor converts exactly; beyond it, a float32 floor is a
    # multiple of 2**8 and its words, `floor / 2**32` floored and the rest, are
    # exact (a float64 floor's are exact at any size).
    small = jnp.abs(floor) < 2.0**31
    whole = jnp.where(small, floor, 0).astype(jnp.int32)
    high = jnp.floor(jnp.where(small, 0, floor) * dtype.type(2.0**-32))
    rest = jnp.where(small, 0, floor) - high * dtype.type(2.0**32)
    above = floor >= dtype.type(2.0**63)
    below = floor < dtype.type(-(2.0**63))
    high = jnp.clip(high, -(2.0**31), 2.0**31 - 1)
    hi = jnp.where(small, whole >> 31, high.astype(jnp.int32))
    lo = jnp.where(small, whole.astype(jnp.uint32), rest.astype(jnp.uint32))
    hi = jnp.where(above, np.int32(2**31 - 1), jnp.where(below, np.int32(-(2**31)), hi))
    lo = jnp.where(above, np.uint32(2**32 - 1), jnp.where(below, np.uint32(0), lo))
    return hi, lo, (fraction | above) & ~below


def _evaluate(
    numbers: Mapping[str, Any], constants: _Constants, position: Position
) -> jax.Array:
    """`values[k]`, `k` the number of boundaries the step is past."""
    boundaries: Words = numbers["boundaries"]
    values = numbers["values"]
    step = position.step
    count = values.shape[-1] - 1
    if jnp.issubdtype(step.dtype, jnp.integer) and step.dtype.itemsize <= 4:
        # One comparison per boundary, with the boundaries clipped to the
        # step's range, from the first value no step of that type is before.
        signed = jnp.issubdtype(step.dtype, jnp.signedinteger)
        if signed:
            steps, thresholds = step.astype(jnp.int32), constants.signed
            first = constants.signed_first
        else:
            steps, thresholds = step.astype(jnp.uint32), constants.unsigned
            first = constants.unsigned_first
        value = jnp.broadcast_to(values[first], step.shape)
        for index in range(count):
            past = steps > thresholds[index]
            value = jnp.where(past, values[index + 1], value)
        return value
    hi, lo, fraction = _step_words(step)
    value = jnp.broadcast_to(values[0], step.shape)
    for index in range(count):
        b_hi, b_lo = boundaries.hi[index], boundaries.lo[index]
        low_past = lo > b_lo
        if fraction is not None:
            low_past = low_past | ((lo == b_lo) & fraction)
        past = (hi > b_hi) | ((hi == b_hi) & low_past)
        value = jnp.where(past, values[index + 1], value)
    if jnp.issubdtype(step.dtype, jnp.floating):
        value = jnp.where(jnp.isnan(step), np.nan, value)
    return value


def _boundary(name: str, value: Any) -> Any:
    """An integer in int64 (negative ones too, as Keras takes them); a float that
    is an integer is that integer. A batch of configs is an integer array."""
    if isinstance(value, (float, np.floating)) and not isinstance(value, bool):
        if not math.isfinite(value) or value != math.floor(value):
            raise ValueError(
                f"{name} must be an integer (a step count), got {value!r}: Keras "
                "casts a boundary to the step's type, so a fractional one means "
                "different boundaries for integer and float steps"
            )
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(
                f"{name} must be an integer in [{INT64_MIN}, {INT64_MAX}], "
                f"got {value!r}"
            )
        value = int(value)
    elif isinstance(value, _numbers.Integral) and not isinstance(value, bool):
        value = int(value)
    return _validation.check_integer(name, value, minimum=INT64_MIN, maximum=INT64_MAX)


def _check(values: Mapping[str, Any]) -> None:
    """One more value than boundaries, and boundaries strictly increasing."""
    boundaries, piece_values = values["boundaries"], values["values"]
    count = _config.count(boundaries)
    if _config.count(piece_values) != count + 1:
        raise ValueError(
            f"values must have one more entry than boundaries: boundaries has "
            f"{count}, values has {_config.count(piece_values)}"
        )
    if isinstance(boundaries, tuple):
        for index in range(1, count):
            if boundaries[index] <= boundaries[index - 1]:
                raise ValueError(
                    "boundaries must be strictly increasing, got "
                    f"boundaries[{index - 1}]={boundaries[index - 1]} and "
                    f"boundaries[{index}]={boundaries[index]}"
                )
    elif not _validation.is_traced(boundaries):
        array = np.asarray(boundaries)
        if (np.diff(array, axis=-1) <= 0).any():
            raise ValueError(
                f"boundaries must be strictly increasing, got {array.tolist()!r}"
            )


def _edges(
    config: PiecewiseConstantDecay, last: int, limit: int
) -> tuple[np.ndarray, int]:
    """The first step past each boundary, in [1, last]."""
    firsts = [b + 1 for b in config.boundaries if 1 <= b + 1 <= last]
    chosen = _steps.evenly(len(firsts), limit) - 1
    return np.asarray(firsts, np.int64)[chosen], len(firsts)


def _horizon(config: PiecewiseConstantDecay) -> int:
    """Past the last boundary: twice it, at least 10 steps."""
    return max(10, min(2 * config.boundaries[-1], INT64_MAX))


def _formula(config: PiecewiseConstantDecay, lead: int) -> str:
    del lead  # no piece comes before the family's steps
    shown = [f"{float(v):.6g}" for v in config.values]
    if len(config.boundaries) > 4:
        return (
            f"{len(shown)} constant pieces: {shown[0]} to step "
            f"{config.boundaries[0]}, ..., {shown[-1]} after step "
            f"{config.boundaries[-1]}"
        )
    text = shown[-1]
    for value, boundary in zip(
        reversed(shown[:-1]), reversed(config.boundaries), strict=True
    ):
        text = f"{value} if step <= {boundary} else {text}"
    return text


_VIEW = _config.View(
    horizon=_horizon,
    bends=lambda config: (),
    stepwise=lambda config: True,
    edges=_edges,
    formula=_formula,
)

_OPTAX_NOTE = (
    "optax.piecewise_constant_schedule multiplies scales, which give these values "
    "bit for bit only where each ratio is exact, and jumps at step >= b + 1 for a "
    "boundary b, where a float step between b and b + 1 is already past b"
)


@_config.schedule_class(
    _config.Family(
        builder="piecewise_constant_decay",
        kernel=Kernel(_prepare, _evaluate),
        peak="values",
        view=_VIEW,
        check=_check,
        optax_note=_OPTAX_NOTE,
    )
)
@dataclasses.dataclass(frozen=True, eq=False)
class PiecewiseConstantDecay(_config.Config):
    """Keras' `PiecewiseConstantDecay` schedule as a frozen, serializable dataclass.

    The instance is itself the schedule: call it with a step, or pass it to an
    optax optimizer as the learning rate. It is a JAX pytree whose numbers are
    data (`values`, and `boundaries` as two integer words each) and whose count
    is structure: configs with the same number of boundaries stack for
    `jax.vmap`, and a new one compiles nothing.

    Attributes:
      boundaries: the steps where the value changes, strictly increasing
        integers in int64 (1 to 10,000 of them): `values[i]` holds up to
        `boundaries[i]` included.
      values: the learning rates, one more than the boundaries; finite.
      name: a label kept for Keras configs; it does not change the math.

    Examples:
      >>> import jaxdecay
      >>> schedule = jaxdecay.PiecewiseConstantDecay([1000, 2000], [0.1, 0.05, 0.01])
      >>> print(schedule(1000), schedule(1001), schedule(5000))
      0.1 0.05 0.01
      >>> schedule.get_config()
      {'boundaries': [1000, 2000], 'values': [0.1, 0.05, 0.01], \
'name': 'PiecewiseConstant'}
    """

    boundaries: tuple[int, ...] = field(
        check=_validation.sequence(_boundary), leaf=True, keras=True, sequence=True
    )
    values: tuple[float | np.generic, ...] = field(
        check=_validation.sequence(_validation.real()),
        leaf=True,
        keras=True,
        sequence=True,
    )
    name: str | None = field(
        check=_validation.label,
        leaf=False,
        keras=True,
        label=True,
        default="PiecewiseConstant",
    )


piecewise_constant_decay = _config.builder(
    PiecewiseConstantDecay,
    doc="""Builds Keras' `PiecewiseConstantDecay` as a pure, jit-able `step -> lr`
    function.

    The learning rate is `values[0]` for `step <= boundaries[0]`, `values[i]` for
    `boundaries[i - 1] < step <= boundaries[i]`, and `values[-1]` after the last
    boundary. The step is compared with each boundary exactly, as integers: an
    integer step of any type, and a float step (`b + 0.5` is past `b`), with
    boundaries anywhere in int64, without x64. The value is the number given, in
    the compute dtype (float32, or float64 under x64). A NaN step gives NaN.
    optax's `piecewise_constant_schedule` multiplies scales and jumps one step
    later for float steps: `to_optax()` and `optax_kwargs()` refuse.

    Args:
      boundaries: strictly increasing integers in int64 (1 to 10,000 of them); a
        float that is an integer is taken as that integer.
      values: the learning rates, one more than `boundaries`; finite.

    Returns:
      A function from a step (a Python, NumPy or JAX integer or float, scalar or
      array) to the learning rate, elementwise. It is pure JAX: it works under
      `jax.jit` and `jax.vmap`; `jax.grad` gives 1 for the value in use and 0 for
      the others and for a float step.

    Raises:
      TypeError: an argument has the wrong type (the message names it).
      ValueError: an argument is out of range, or the counts do not fit (the
        message names it).

    Examples:
      >>> import jaxdecay
      >>> schedule = jaxdecay.piecewise_constant_decay([10, 20], [1.0, 0.5, 0.25])
      >>> print(schedule(10), schedule(10.5), schedule(21))
      1.0 0.5 0.25
    """,
)
