"""`InverseTimeDecay`: Keras' inverse time decay, as a family on the shared layers.

``initial / (1 + decay_rate * step / decay_steps)``, with the integer division
``step // decay_steps`` for a staircase. The kernel is exact to within 1 ulp:
`_prepare` makes ``c = decay_rate / decay_steps`` (``decay_rate`` for a staircase)
as a double word times a power of two; `_evaluate` multiplies it by the step (or
the stairs, counted exactly by `_divide`) as an exact double word, adds 1 and
divides the initial rate's significand by the sum (a reciprocal and one correction
from the exact remainder), rounding once. Every intermediate is a significand near
1 and an exponent apart, so that no step or rate overflows or underflows on the way
to a result that does not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdecay import _config, _divide, _hold, _steps, _validation, _warmup
from jaxdecay._dw import (
    DW,
    Format,
    binade,
    dw_add,
    dw_mul,
    dw_mul_fp,
    format_for,
    opaque_scalars,
    power_of_two,
    scaled_div,
    steps_double_word,
    unfused,
    unpack,
    unsigned_double_word,
    unsigned_dtype,
)
from jaxdecay._fields import field
from jaxdecay._program import Kernel
from jaxdecay._steps import ONE, Position


class _Constants(NamedTuple):
    """``c = decay_rate / decay_steps`` (``decay_rate`` for a staircase) as
    ``(hi + lo) * 2**exponent``, ``hi`` in ``(1/2, 2)`` (NaN for an invalid rate or
    divisor, 0 for a rate of 0), and for a staircase the divisor of the stairs."""

    hi: Any
    lo: Any
    exponent: Any
    divisor: _divide.Divisor | None


def _prepare(
    numbers: Mapping[str, Any], *, staircase: bool, host: bool = False
) -> _Constants:
    initial = numbers["initial_learning_rate"]
    fmt = format_for(initial.dtype)
    if host:
        fmt = fmt.on_host()
    ops = fmt.ops
    steps = ONE if staircase else numbers["decay_steps"]
    _, rate, hi, lo = opaque_scalars(initial, numbers["decay_rate"], steps, fmt)
    rate_bits = ops.bitcast(rate, fmt.int_dtype)
    sign_bit = np.iinfo(fmt.int_dtype).min
    # +0.0 from the inputs, for valid ones: opaque to the compiler.
    zero = ops.bitcast(
        (rate_bits | hi.astype(fmt.int_dtype) | (lo >> 1).astype(fmt.int_dtype))
        & sign_bit,
        fmt.dtype,
    )
    # rate = m * 2**e; m / steps in double words with the steps scaled into
    # [1, 2), so that every intermediate is normal (see `scaled_div`).
    rate_exponent, significand = unpack(rate_bits & ~sign_bit, fmt)
    (c_hi, c_lo), scale = scaled_div(
        (significand, ops.zeros(fmt.dtype)), steps_double_word(hi, lo, fmt), zero, fmt
    )
    exponent = rate_exponent - scale
    # By bits: a program on CPU reads a subnormal rate as 0 where it compares.
    magnitude = rate_bits & ~sign_bit
    infinity = ops.bitcast(ops.asarray(np.inf).astype(fmt.dtype), fmt.int_dtype)
    nothing = magnitude == 0
    positive = (rate_bits >= 0) & (magnitude <= infinity)
    valid = (positive | nothing) & ((hi > 0) | ((hi == 0) & (lo > 0)))
    nan, naught = fmt.dtype.type(np.nan), fmt.dtype.type(0)
    c_hi = ops.where(valid, ops.where(nothing, naught, c_hi), nan)
    c_lo = ops.where(valid & ~nothing, c_lo, naught)
    exponent = ops.where(valid & ~nothing, exponent, fmt.int_dtype.type(0))
    divisor = None
    if staircase:
        words = numbers["decay_steps"]
        unsigned = unsigned_dtype(initial.dtype)
        if host:
            divisor = _divide.prepare_divisor_host(words.hi, words.lo, unsigned)
        else:
            # At least 1, as for a traced value that validation could not see.
            lo_word = jnp.where(
                (words.hi == 0) & (words.lo == 0), jnp.uint32(1), words.lo
            )
            divisor = _divide.prepare_divisor(words.hi, lo_word, unsigned)
    constants = _Constants(c_hi, c_lo, exponent, divisor)
    # The kernel works on bits: the derivatives come from `_decay`.
    return constants if host else lax.stop_gradient(constants)


def _evaluate(
    numbers: Mapping[str, Any],
    constants: _Constants,
    position: Position,
    *,
    staircase: bool,
) -> jax.Array:
    """The decay at `position`; steps before 0 hold the initial rate."""
    initial, rate = numbers["initial_learning_rate"], numbers["decay_rate"]
    compute = initial.dtype
    per_rate = (  # d(rate * count / decay_steps) / d(rate * count)
        jnp.ones((), compute)
        if staircase
        else 1 / _steps.as_float(numbers["decay_steps"], compute)
    )
    whole, fraction = position.whole, position.fraction
    zero_count = jnp.zeros_like(whole)
    if constants.divisor is not None:  # a staircase: whole stairs, exactly
        count = _divide.divide(whole, constants.divisor)
        part = jnp.zeros(whole.shape, compute)
    else:
        count = whole
        part = jnp.zeros(whole.shape, compute)
        if fraction is not None:
            # The fraction of a float step past step 0, where the curve starts:
            # at 0 itself the derivative is that of the steps before, which hold.
            after = position.in_range & ((whole > 0) | (fraction > 0))
            part = jnp.where(after, fraction, 0).astype(compute)
    far = position.far
    if fraction is not None:
        # A float step beyond the integer range (infinity included), and after
        # the pieces before the family's own steps: its elapsed steps as a float
        # (at most the largest one, so that infinity gives 0, not NaN).
        elapsed = position.step.astype(compute)
        if position.offset is not None:
            elapsed = elapsed - position.offset
        largest = np.finfo(compute).max
        elapsed = jnp.where(far, jnp.clip(elapsed, 0, largest), 0)
        if staircase:
            elapsed = jnp.floor(
                elapsed / _steps.as_float(numbers["decay_steps"], compute)
            )
        count = jnp.where(far, zero_count, count)
        part = jnp.where(far, elapsed, part)
    value = _decay(constants, initial, rate, per_rate, count, part)
    if fraction is not None:
        # An infinite step: the exact value is 0 (unless the rate is).
        gone = far & (position.step == np.inf) & (constants.hi > 0)
        value = jnp.where(gone, initial * 0, value)
    return value


def _value(
    constants: _Constants, initial: jax.Array, count: jax.Array, part: jax.Array
) -> jax.Array:
    """``initial / (1 + c * n)``, ``n = count + part`` (exact as a double word),
    within 1 ulp where the result is normal."""
    fmt = format_for(initial.dtype)
    dtype, int_dtype = fmt.dtype, fmt.int_dtype
    sign_bit = np.iinfo(int_dtype).min
    n_hi, n_lo = unsigned_double_word(count, dtype)
    # +0.0 from the count's bits: the compiler cannot prove it zero.
    zero = lax.bitcast_convert_type(
        lax.bitcast_convert_type(n_hi, int_dtype) & sign_bit, dtype
    )
    n = dw_add((n_hi, n_lo), (part, jnp.zeros_like(part)))
    # n = N * 2**b with N in [1, 2) (exact); then t = c * N in (1/2, 4) and
    # c * n = t * 2**k.
    b = binade(n[0], fmt)
    n = _scale(n, -b, fmt)
    t = dw_mul((constants.hi, constants.lo), n, zero, fmt)
    k = constants.exponent + b
    y, ky = _one_plus(t, k, t[0] == 0, zero, fmt)
    # initial = sign * m * 2**e, m in [1, 2): m / y in double words, rounded once
    # to the significand of the result, then scaled by 2**(e - ky).
    bits = lax.bitcast_convert_type(initial, int_dtype)
    magnitude = bits & ~sign_bit
    initial_exponent, significand = unpack(
        jnp.where(magnitude == 0, jnp.asarray(1, int_dtype), magnitude), fmt
    )
    quotient = _quotient(significand, y, zero, fmt)
    exponent = jnp.clip(
        initial_exponent - ky,
        int_dtype.type(2 * (1 - fmt.exponent_bias)),
        int_dtype.type(2 * fmt.exponent_bias),
    )
    half = exponent >> 1
    first = power_of_two(half, fmt, bits & sign_bit)
    value = (quotient * first) * power_of_two(exponent - half, fmt)
    # 0 and inf stay what they are; a NaN rate or count makes a NaN.
    keep = (magnitude == 0) | jnp.isinf(initial)
    nan = jnp.isnan(t[0])
    value = jnp.where(keep, initial, value)
    result: jax.Array = jnp.where(nan, dtype.type(np.nan), value)
    return result


def _quotient(m: jax.Array, y: DW, zero: jax.Array, fmt: Format) -> jax.Array:
    """``m / y`` rounded once, for ``m`` in [1, 2) and ``y >= 1/2``: a quotient by
    the reciprocal of ``y``'s high word, and one correction from the remainder
    ``m - y * q``, formed to ~1.5u**2 (its high part cancels exactly). The error
    before the rounding is ~8u**2 of the quotient; one division, where `dw_div`'s
    three quotient digits take three and run at a third of the speed."""
    reciprocal = 1 / (y[0] + zero)  # `+ zero`: never a constant's reciprocal
    q = m * reciprocal
    product = dw_mul_fp(y, q, zero, fmt)
    rest = (m - product[0]) - product[1]  # m - product[0] is exact (Sterbenz)
    corrected: jax.Array = q + unfused(rest * reciprocal, zero)
    return corrected


# Beyond 2**(2p + 4), 1 + x is x to within u**2; below 2**-(2p + 4), 1.
def _limit(fmt: Format) -> int:
    return 2 * fmt.mantissa_bits + 4


def _one_plus(
    t: DW, k: jax.Array, nothing: jax.Array, zero: jax.Array, fmt: Format
) -> tuple[DW, jax.Array]:
    """``1 + t * 2**k`` as ``y * 2**ky``, ``y`` a double word of at least 1/2 and
    at most ``2**(2p + 6)``: every quotient by it stays normal."""
    dtype, int_dtype = fmt.dtype, fmt.int_dtype
    limit = _limit(fmt)
    big = (k >= limit) & ~nothing
    tiny = (k < -limit) | nothing
    # 1 from the data, not a constant: XLA would fold (1 + x) - 1 to x.
    one = lax.bitcast_convert_type(
        lax.bitcast_convert_type(zero, int_dtype)
        | int_dtype.type(fmt.exponent_bias << (fmt.mantissa_bits - 1)),
        dtype,
    )
    x = _scale(t, jnp.clip(k, -limit, limit), fmt)
    x = (jnp.where(tiny, 0, x[0]), jnp.where(tiny, 0, x[1]))
    sum_ = dw_add((one, jnp.zeros_like(one)), x)
    y = (jnp.where(big, t[0], sum_[0]), jnp.where(big, t[1], sum_[1]))
    ky = jnp.where(big, k, int_dtype.type(0))
    return y, ky


def _scale(x: DW, exponent: Any, fmt: Format) -> DW:
    """``x * 2**exponent`` exactly where the result is normal: two powers of two
    that are normal for any exponent up to twice the normal range's."""
    half = exponent >> 1
    first, second = power_of_two(half, fmt), power_of_two(exponent - half, fmt)
    return x[0] * first * second, x[1] * first * second


@jax.custom_jvp
def _decay(
    constants: _Constants,
    initial: Any,
    rate: Any,
    per_rate: Any,
    count: jax.Array,
    part: jax.Array,
) -> jax.Array:
    """`_value` with the analytic derivatives: with ``u = n * per_rate`` (``n /
    decay_steps``, or the stairs) and ``y = 1 + rate * u``, ``d/dinitial = 1/y``,
    ``d/drate = -value * u / y`` and ``d/dpart = -value * rate * per_rate / y``.
    ``constants`` gets none (pass it through ``lax.stop_gradient``); ``count`` is
    an integer."""
    del rate, per_rate
    return _value(constants, initial, count, part)


def _decay_jvp(
    primals: tuple[Any, ...], tangents: tuple[Any, ...]
) -> tuple[jax.Array, jax.Array]:
    constants, initial, rate, per_rate, count, part = primals
    initial_dot, rate_dot, part_dot = tangents[1], tangents[2], tangents[5]
    value = _value(constants, initial, count, part)

    def over_y(numerator: Any) -> jax.Array:
        # numerator / y by the kernel itself: no y**2 to overflow, and no 1/y
        # in the subnormals where the derivative is not.
        numerator = jnp.broadcast_to(numerator, value.shape).astype(value.dtype)
        return _value(constants, numerator, count, part)

    tangent = jnp.zeros_like(value)
    symbolic = jax.custom_derivatives.SymbolicZero
    if not isinstance(initial_dot, symbolic):
        tangent = tangent + over_y(1) * initial_dot
    steps = count.astype(value.dtype) + part
    if not isinstance(rate_dot, symbolic):
        tangent = tangent - value * (over_y(steps * per_rate) * rate_dot)
    if not isinstance(part_dot, symbolic):
        # None where the curve holds (no steps yet): there the slope of the
        # curve to come may overflow, and its cotangent would make a NaN.
        slope = jnp.where(steps == 0, 0, value * over_y(rate * per_rate))
        tangent = tangent - slope * part_dot
    return value, tangent


_decay.defjvp(_decay_jvp, symbolic_zeros=True)


_non_negative = _validation.non_negative(
    "a negative rate makes the denominator 0 at some step"
)


def _edges(config: InverseTimeDecay, last: int, limit: int) -> tuple[np.ndarray, int]:
    """The first step of each stair up to `last`: `k * decay_steps`."""
    return _steps.multiples(config.decay_steps, last, limit)


def _formula(config: InverseTimeDecay, lead: int) -> str:
    elapsed = "step" if lead == 0 else f"(step - {lead})"
    division = "//" if config.staircase else "/"
    return (
        f"{float(config.initial_learning_rate):.6g} / (1 + "
        f"{float(config.decay_rate):.6g} * ({elapsed} {division} "
        f"{config.decay_steps}))"
    )


_VIEW = _config.View(
    horizon=lambda config: 10 * config.decay_steps,
    bends=lambda config: (),
    stepwise=lambda config: config.staircase,
    edges=_edges,
    formula=_formula,
)


@_config.schedule_class(
    _config.Family(
        builder="inverse_time_decay",
        kernel=Kernel(_prepare, _evaluate),
        peak="initial_learning_rate",
        view=_VIEW,
        pieces=(_warmup.WARMUP, _hold.HOLD),
    )
)
@dataclasses.dataclass(frozen=True, eq=False)
class InverseTimeDecay(_config.Config):
    """Keras' `InverseTimeDecay` schedule as a frozen, serializable dataclass.

    The instance is itself the schedule, as `ExponentialDecay` is: call it with a
    step, or pass it to an optax optimizer as the learning rate. It is a JAX
    pytree whose numbers are data (`initial_learning_rate`, `decay_rate`, and
    `decay_steps` and `warmup_steps` as two integer words each): new values never
    recompile, and `jax.vmap` runs a stack of configs in one program.

    Attributes:
      initial_learning_rate: the learning rate at step 0 (and before), or at the
        end of the warmup and through the hold.
      decay_steps: the steps per unit of `decay_rate` in the denominator; an
        integer in [1, 2**63 - 1].
      decay_rate: the growth of the denominator per `decay_steps` steps; finite
        and >= 0.
      staircase: count whole stairs of `decay_steps` steps.
      name: a label kept for Keras configs; it does not change the math.
      warmup_steps: the length of the linear warmup before the decay; an integer
        >= 0, 0 for none (keyword-only).
      warmup_init: the learning rate at step 0, where the warmup starts; finite
        (keyword-only).
      transition_begin: the steps `initial_learning_rate` holds after the warmup,
        before the decay; an integer >= 0, 0 for none (keyword-only).

    Examples:
      >>> import jaxdecay
      >>> schedule = jaxdecay.InverseTimeDecay(0.1, decay_steps=1000, decay_rate=0.5)
      >>> print(schedule(2000))
      0.05
      >>> schedule.get_config()
      {'initial_learning_rate': 0.1, 'decay_steps': 1000, 'decay_rate': 0.5, \
'staircase': False, 'name': 'InverseTimeDecay'}
    """

    initial_learning_rate: float | np.generic = field(
        check=_validation.real(), leaf=True, keras=True
    )
    decay_steps: int = field(
        check=_validation.integer(minimum=1), leaf=True, keras=True
    )
    decay_rate: float | np.generic = field(check=_non_negative, leaf=True, keras=True)
    staircase: bool = field(
        check=_validation.boolean, leaf=False, keras=True, default=False
    )
    name: str | None = field(
        check=_validation.label,
        leaf=False,
        keras=True,
        label=True,
        default="InverseTimeDecay",
    )
    _: dataclasses.KW_ONLY
    warmup_steps: int = _warmup.steps_field()
    warmup_init: float | np.generic = _warmup.init_field()
    transition_begin: int = _hold.steps_field()


inverse_time_decay = _config.builder(
    InverseTimeDecay,
    doc="""Builds Keras' `InverseTimeDecay` as a pure, jit-able `step -> lr` function.

    For a step `t >= 0` the learning rate is::

        initial_learning_rate / (1 + decay_rate * t / decay_steps)

    With `staircase=True` the quotient is the integer division `t // decay_steps`,
    in integer arithmetic. Steps before 0 hold `initial_learning_rate`, as
    `exponential_decay` (and optax) do; Keras instead extrapolates the curve to
    negative steps, where its denominator reaches 0. optax has no inverse time
    schedule: `to_optax()` and `optax_kwargs()` refuse.

    With `warmup_steps > 0` the learning rate rises linearly from `warmup_init`
    at step 0 (and before) to `initial_learning_rate` at `warmup_steps`, and the
    decay above is counted from there. With `transition_begin > 0` the rate then
    holds `initial_learning_rate` for that many steps: the decay's step 0 is
    `warmup_steps + transition_begin`.

    The float hyperparameters are taken in the compute dtype (float32, or float64
    under x64), as the schedule's program receives them on every path; the result
    is within 1 ulp of the exact schedule of those values where it is a normal
    float (see docs/schedules.md).

    Args:
      initial_learning_rate: the learning rate at step 0; finite.
      decay_steps: the steps per unit of `decay_rate`; an integer in
        [1, 2**63 - 1].
      decay_rate: the growth of the denominator per `decay_steps` steps; finite
        and >= 0.
      staircase: count whole stairs of `decay_steps` steps.
      warmup_steps: the length of the linear warmup; an integer >= 0 (0: none).
      warmup_init: the learning rate at step 0, where the warmup starts; finite.
      transition_begin: the steps the peak holds after the warmup; an integer
        >= 0 (0: none).

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
      >>> schedule = jaxdecay.inverse_time_decay(0.1, decay_steps=1000, decay_rate=1.0)
      >>> print(schedule(1000))
      0.05
      >>> stairs = jaxdecay.inverse_time_decay(0.1, 1000, 1.0, staircase=True)
      >>> print(stairs(1999))
      0.05
    """,
)
