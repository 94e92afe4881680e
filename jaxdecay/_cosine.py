"""`CosineDecay`: Keras' cosine decay and its warmup, as a family on the shared layers.

``peak * ((1 - alpha) * 0.5 * (1 + cos(pi * n / D)) + alpha)`` with ``n = min(step,
D)``, ``D = decay_steps`` and ``peak`` the initial rate, or `warmup_target` after
Keras' warmup (the shared warmup piece, started from the initial rate). The kernel
is exact to within 1 ulp, by a reduction that rounds nothing until the end:

- ``0.5 * (1 + cos(pi x)) = 1 - sin(pi x / 2)**2``, and past the middle ``x = n /
  D`` is replaced by ``(D - n) / D`` (an exact subtraction of steps), for which it
  is ``sin(pi x / 2)**2`` itself: the angle ``phi`` is at most ``pi/4``, and near
  the end the small value is a small sine squared, with all its bits;
- ``phi`` is an exact double word times the double word of ``pi / 2D``, and
  ``q = sin(phi)**2 = z (1 - z/3 + z**2 P(z))``, ``z = phi**2``, a series whose
  tail is below a tenth of the value and takes plain floats;
- the value is ``peak * (1 - (1 - alpha) q)`` or ``peak * (alpha + (1 - alpha)
  q)``, with ``1 - alpha`` exact as two words, formed in double words and rounded
  once.
"""

from __future__ import annotations

import dataclasses
import decimal
import fractions
import functools
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

from jaxdecay import _config, _hold, _steps, _validation, _warmup
from jaxdecay._dw import (
    DW,
    Format,
    binade,
    dw_add,
    dw_mul,
    dw_mul_fp,
    fast_two_sum,
    flush,
    format_for,
    opaque_scalars,
    power_of_two,
    scaled_div,
    steps_double_word,
    two_sum,
    unfused,
    unpack,
    unsigned_double_word,
)
from jaxdecay._fields import Optax, field
from jaxdecay._program import Kernel, Schedule
from jaxdecay._steps import Position

_OPTAX = "cosine_decay_schedule"

# pi to 60 digits, for the double word of pi / 2.
_PI = decimal.Decimal("3.14159265358979323846264338327950288419716939937510582097494")
# The series' terms by format: the first omitted one, 2**(2n - 1) z**(n - 1) /
# (2n)! at z = (pi/4)**2, is below 2**-34 (float32) or 2**-62 (float64) of z.
_TERMS = {np.dtype(np.float32): 8, np.dtype(np.float64): 12}


class _Series(NamedTuple):
    """The host constants of the kernel for one compute dtype."""

    half_pi: tuple[float, float]  # pi / 2 as a double word
    third: tuple[float, float]  # -1/3 as a double word
    tail: tuple[float, ...]  # P(z), highest power first


def _double_word(x: fractions.Fraction, dtype: Any) -> tuple[float, float]:
    """``hi + lo ~ x`` in `dtype`: ``hi`` within an ulp of ``x``, ``lo`` the rest."""
    hi = float(dtype.type(float(x)))
    return hi, float(dtype.type(float(x - fractions.Fraction(hi))))


@functools.cache
def _series(dtype: np.dtype[Any]) -> _Series:
    # sin(phi)**2 = (1 - cos(2 phi)) / 2 = sum over n >= 1 of
    # (-1)**(n + 1) 2**(2n - 1) z**n / (2n)!.
    coefficients = [
        fractions.Fraction((-1) ** (n + 1) * 2 ** (2 * n - 1), math.factorial(2 * n))
        for n in range(1, _TERMS[dtype] + 1)
    ]
    return _Series(
        half_pi=_double_word(fractions.Fraction(_PI) / 2, dtype),
        third=_double_word(coefficients[1], dtype),
        tail=tuple(float(dtype.type(float(c))) for c in reversed(coefficients[2:])),
    )


class _Constants(NamedTuple):
    """``pi / (2 decay_steps)`` and ``decay_steps`` as double words."""

    scale_hi: Any
    scale_lo: Any
    steps_hi: Any
    steps_lo: Any


def _prepare(numbers: Mapping[str, Any], *, host: bool = False) -> _Constants:
    initial = numbers["initial_learning_rate"]
    fmt = format_for(initial.dtype)
    if host:
        fmt = fmt.on_host()
    ops = fmt.ops
    _, _, hi, lo = opaque_scalars(initial, initial, numbers["decay_steps"], fmt)
    int_dtype = fmt.int_dtype
    # +0.0 and 1.0 from the inputs (valid ones): opaque to the compiler.
    zero_bits = (hi.astype(int_dtype) | (lo >> 1).astype(int_dtype)) & np.iinfo(
        int_dtype
    ).min
    zero = ops.bitcast(zero_bits, fmt.dtype)
    one = ops.bitcast(
        zero_bits | int_dtype.type(fmt.exponent_bias << (fmt.mantissa_bits - 1)),
        fmt.dtype,
    )
    steps = steps_double_word(hi, lo, fmt)
    # At least 1, as for a traced value that validation could not see.
    valid = steps[0] >= 1
    steps = (ops.where(valid, steps[0], one), ops.where(valid, steps[1], zero))
    inverse, exponent = scaled_div((one, zero), steps, zero, fmt)
    half_pi = tuple(fmt.dtype.type(x) for x in _series(fmt.dtype).half_pi)
    scale = dw_mul(inverse, half_pi, zero, fmt)  # in (pi/4, pi/2]: no underflow
    unit = power_of_two(-exponent, fmt)
    constants = _Constants(scale[0] * unit, scale[1] * unit, steps[0], steps[1])
    # The kernel works on bits: the derivatives come from `_decay`.
    return constants if host else lax.stop_gradient(constants)


def _evaluate(
    numbers: Mapping[str, Any], constants: _Constants, position: Position
) -> jax.Array:
    """The decay at `position`; steps before 0 hold the peak."""
    fmt = format_for(numbers["initial_learning_rate"].dtype)
    initial = flush(numbers["initial_learning_rate"], fmt)
    target = flush(numbers["warmup_target"], fmt)
    alpha = flush(numbers["alpha"], fmt)
    peak = jnp.where(jnp.isnan(target), initial, target)  # NaN: no warmup_target
    m, upper = _reduced(constants, position, fmt)
    return _decay(constants, peak, alpha, m, upper)


def _reduced(
    constants: _Constants, position: Position, fmt: Format
) -> tuple[DW, jax.Array]:
    """``m`` as a double word, and whether it counts from the end: the angle's
    numerator, ``n = min(step, D)`` in the first half of the decay and ``D - n`` in
    the second, so that ``m / D <= 1/2``. The steps are exact double words, and so
    is ``D`` wherever a step reaches its second half."""
    compute = fmt.dtype
    n = unsigned_double_word(position.whole, compute)
    fraction = position.fraction
    moving = None  # the float step, whose tangent m's high word carries
    if fraction is not None:
        f = jnp.where(position.in_range, fraction, 0).astype(compute)
        # A float step beyond the integer range (infinity included), and after
        # the pieces before the family's own steps: an integer, in float arithmetic.
        elapsed = position.step.astype(compute)
        if position.offset is not None:
            elapsed = elapsed - position.offset
        far = position.far
        elapsed = jnp.where(far, jnp.clip(elapsed, 0, np.finfo(compute).max), 0)
        moving = jnp.where(far, elapsed, f)
        f, elapsed = lax.stop_gradient(f), lax.stop_gradient(elapsed)
        n = dw_add(n, (f, jnp.zeros_like(f)))
        n = (jnp.where(far, elapsed, n[0]), jnp.where(far, 0, n[1]))
    d = (constants.steps_hi, constants.steps_lo)
    capped = ~_below(n, d)  # n >= D
    upper = capped | _below(d, (2 * n[0], 2 * n[1]))  # 2n > D
    rest = dw_add(d, (-n[0], -n[1]))
    m_hi, m_lo = (
        jnp.where(capped, 0, jnp.where(upper, r, x))
        for r, x in zip(rest, n, strict=True)
    )
    if moving is not None:
        # The tangent of the step alone, added as an exact 0: through the double
        # words' error terms, a large cotangent would overflow to inf.
        direction = jnp.where(capped, 0, jnp.where(upper, -1, 1)).astype(compute)
        m_hi = m_hi + direction * (moving - lax.stop_gradient(moving))
    return (m_hi, m_lo), upper


def _below(x: DW, y: DW) -> jax.Array:
    """``x < y`` for normalized double words."""
    below: jax.Array = (x[0] < y[0]) | ((x[0] == y[0]) & (x[1] < y[1]))
    return below


class _Parts(NamedTuple):
    """The value and what its derivatives read."""

    value: jax.Array
    h: jax.Array  # 0.5 * (1 + cos(pi x)), rounded
    s: jax.Array  # 1 - h, rounded
    sin_cos: jax.Array  # sin(phi) cos(phi) = sin(pi x) / 2, rounded


def _parts(
    constants: _Constants, peak: Any, alpha: Any, m: DW, upper: jax.Array
) -> _Parts:
    """``peak * (h + alpha * s)`` rounded once, within 1 ulp where it is normal."""
    dtype = jnp.result_type(peak)
    fmt = format_for(dtype)
    int_dtype = fmt.int_dtype
    # +0.0 from the angle's bits: the compiler cannot prove it zero.
    zero = lax.bitcast_convert_type(
        lax.bitcast_convert_type(m[0], int_dtype) & np.iinfo(int_dtype).min, dtype
    )
    q_up, down = _sine_squared(constants, m, zero, fmt)
    # h + alpha * s: 1 - (1 - alpha) q in the first half, alpha + (1 - alpha) q
    # in the second; scaled by 2**-E (E > 0 only for alpha >= 2**63) so that no
    # product overflows.
    alpha_exponent = jnp.maximum(binade(alpha, fmt) - 62, int_dtype.type(0))
    unit = power_of_two(-alpha_exponent, fmt)
    a = alpha * unit
    rest = two_sum(unit, -a)  # (1 - alpha) 2**-E, exactly
    c0 = jnp.where(upper, a, unit)
    c1 = (jnp.where(upper, rest[0], -rest[0]), jnp.where(upper, rest[1], -rest[1]))
    term_up = dw_mul(c1, q_up, zero, fmt)
    # Where its low word underflows, the term is below 2**-100 of c0.
    term = (term_up[0] * down * down, term_up[1] * down * down)
    scaled = dw_add((c0, jnp.zeros_like(c0)), term)
    value = _times(peak, scaled, alpha_exponent, zero, fmt)
    q = q_up[0] * down * down  # sin(phi)**2 <= 1/2
    s = jnp.where(upper, 1 - q, q)  # 1 - h
    # 0 and inf (a number beyond the compute dtype) as IEEE multiplies them.
    special = (peak == 0) | jnp.isinf(peak)
    value = jnp.where(special, peak * ((1 - s) + alpha * s), value)
    return _Parts(value, 1 - s, s, jnp.sqrt(q * (1 - q)))


def _sine_squared(
    constants: _Constants, m: DW, zero: jax.Array, fmt: Format
) -> tuple[DW, jax.Array]:
    """``sin(phi)**2 * 2**2S`` and ``2**-S``, ``phi = m * pi / 2D <= pi/4``."""
    dtype, int_dtype = fmt.dtype, fmt.int_dtype
    series = _series(dtype)
    phi = dw_mul(m, (constants.scale_hi, constants.scale_lo), zero, fmt)
    # phi 2**S in [1, 2) (0 <= S <= 60, so that 2**-2S is normal): phi may be as
    # small as 2**-63, and its square's low word would be subnormal, which XLA
    # flushes to 0.
    field = lax.bitcast_convert_type(phi[0], int_dtype) >> (fmt.mantissa_bits - 1)
    shift = jnp.clip(fmt.exponent_bias - field, 0, 60).astype(int_dtype)
    up = power_of_two(shift, fmt)
    phi_up = (phi[0] * up, phi[1] * up)
    z_up = dw_mul(phi_up, phi_up, zero, fmt)  # z 2**2S
    down = power_of_two(-shift, fmt)
    z = (z_up[0] * down * down, z_up[1] * down * down)  # <= (pi/4)**2
    third = tuple(dtype.type(x) for x in series.third)
    linear = dw_mul(z, third, zero, fmt)  # -z/3
    tail = jnp.zeros_like(z[0])
    for coefficient in series.tail:
        tail = unfused(tail * z[0], zero) + dtype.type(coefficient)
    tail = unfused((z[0] * z[0]) * tail, zero)  # z**2 P(z), below z/10
    # 1 from the data, not a constant: XLA would fold (1 + x) - 1 to x.
    one = lax.bitcast_convert_type(
        lax.bitcast_convert_type(zero, int_dtype)
        | int_dtype.type(fmt.exponent_bias << (fmt.mantissa_bits - 1)),
        dtype,
    )
    head, error = fast_two_sum(one, linear[0])  # |linear| <= 0.21
    factor = fast_two_sum(head, error + (linear[1] + tail))
    return dw_mul(z_up, factor, zero, fmt), down


def _times(
    peak: Any, scaled: DW, exponent: jax.Array, zero: jax.Array, fmt: Format
) -> jax.Array:
    """``peak * scaled * 2**exponent``: peak's significand times ``scaled``,
    rounded once, then the powers of two (0 and inf of peak aside)."""
    int_dtype = fmt.int_dtype
    sign_bit = np.iinfo(int_dtype).min
    bits = lax.bitcast_convert_type(peak, int_dtype)
    magnitude = bits & ~sign_bit
    peak_exponent, significand = unpack(
        jnp.where(magnitude == 0, jnp.asarray(1, int_dtype), magnitude), fmt
    )
    product = dw_mul_fp(scaled, significand, zero, fmt)[0]
    total = jnp.clip(
        peak_exponent + exponent,
        int_dtype.type(2 * (1 - fmt.exponent_bias)),
        int_dtype.type(2 * fmt.exponent_bias),
    )
    half = total >> 1
    first = power_of_two(half, fmt, bits & sign_bit)
    value: jax.Array = (product * first) * power_of_two(total - half, fmt)
    return value


@jax.custom_jvp
def _decay(
    constants: _Constants, peak: Any, alpha: Any, m: DW, upper: jax.Array
) -> jax.Array:
    """`_parts`' value with the analytic derivatives: ``d/dpeak = h + alpha s``,
    ``d/dalpha = peak s`` and ``d/dm = -+peak (1 - alpha) (pi / 2D) sin(pi x)``
    (the sign: ``m`` counts from the end past the middle). ``constants`` gets none
    (pass it through ``lax.stop_gradient``); the tangent of ``m`` is that of its
    high word."""
    return _parts(constants, peak, alpha, m, upper).value


def _decay_jvp(
    primals: tuple[Any, ...], tangents: tuple[Any, ...]
) -> tuple[jax.Array, jax.Array]:
    constants, peak, alpha, m, upper = primals
    peak_dot, alpha_dot, m_dot = tangents[1], tangents[2], tangents[3][0]
    parts = _parts(constants, peak, alpha, m, upper)
    value = parts.value
    tangent = jnp.zeros_like(value)
    if not isinstance(peak_dot, SymbolicZero):
        tangent = tangent + (parts.h + alpha * parts.s) * peak_dot
    if not isinstance(alpha_dot, SymbolicZero):
        tangent = tangent + (peak * parts.s) * alpha_dot
    if not isinstance(m_dot, SymbolicZero):
        per_step = constants.scale_hi  # pi / 2D
        # The numbers' factor in an order that the compiler keeps: regrouped
        # (with the 2, say), a huge alpha overflowed where the derivative does not.
        kept = (peak * (per_step * (1 - alpha)), 2 * parts.sin_cos)
        factor, sine = lax.optimization_barrier(kept)  # type: ignore[no-untyped-call]
        # None where the curve is flat (before the decay and after it): there a
        # huge factor would make inf * 0.
        slope = jnp.where(sine == 0, 0, factor * sine)
        tangent = tangent + jnp.where(upper, slope, -slope) * m_dot
    return value, tangent


_decay.defjvp(_decay_jvp, symbolic_zeros=True)


def _used(values: Mapping[str, Any]) -> bool:
    """Keras warms up only toward a `warmup_target`: without one, `warmup_steps`
    is kept but unused."""
    return values["warmup_target"] is not None and not _steps.known_zero(
        values["warmup_steps"]
    )


_WARMUP = _warmup.WARMUP._replace(used=_used)


def _formula(config: CosineDecay, lead: int) -> str:
    elapsed = "step" if lead == 0 else f"(step - {lead})"
    peak = config.initial_learning_rate
    if config.warmup_target is not None:
        peak = config.warmup_target
    alpha, steps = float(config.alpha), config.decay_steps
    return (
        f"{float(peak):.6g} * ((1 - {alpha:.6g}) * 0.5 * (1 + cos(pi * "
        f"min({elapsed}, {steps}) / {steps})) + {alpha:.6g})"
    )


def _no_edges(config: CosineDecay, last: int, limit: int) -> tuple[np.ndarray, int]:
    return np.zeros((0,), np.int64), 0


_VIEW = _config.View(
    horizon=lambda config: config.decay_steps + max(config.decay_steps // 4, 1),
    bends=lambda config: (config.decay_steps,),
    stepwise=lambda config: False,
    edges=_no_edges,
    formula=_formula,
)


_NO_HOLD = (
    "optax.cosine_decay_schedule has no hold (nor has its warmup schedule); this "
    "schedule sets transition_begin={}: pass the CosineDecay itself to an optax "
    "optimizer as the learning rate"
)


def _optax_refusal(schedule: CosineDecay) -> str:
    return (
        f"optax.warmup_cosine_decay_schedule differs from this schedule's warmup "
        f"(warmup_target={schedule.warmup_target!r}, "
        f"warmup_steps={_validation.preview(schedule.warmup_steps)}): its "
        "decay_steps counts the warmup too, and its end_value is absolute, from "
        "which it divides alpha back out (end_value / peak_value), rounding it, "
        "and overflowing or underflowing where alpha * warmup_target does; pass "
        "the CosineDecay itself to an optax optimizer as the learning rate"
    )


@_config.schedule_class(
    _config.Family(
        builder="cosine_decay",
        kernel=Kernel(_prepare, _evaluate),
        peak="warmup_target",
        view=_VIEW,
        pieces=(_WARMUP, _hold.HOLD),
        optax=(_OPTAX, None),
        start="initial_learning_rate",
    )
)
@dataclasses.dataclass(frozen=True, eq=False)
class CosineDecay(_config.Config):
    """Keras' `CosineDecay` schedule (with its warmup) as a frozen, serializable
    dataclass.

    The instance is itself the schedule, as `ExponentialDecay` is: call it with a
    step, or pass it to an optax optimizer as the learning rate. It is a JAX
    pytree whose numbers are data (`initial_learning_rate`, `alpha`,
    `warmup_target`, and `decay_steps` and `warmup_steps` as two integer words
    each): new values never recompile, and `jax.vmap` runs a stack of configs in
    one program. Whether it warms up (a `warmup_target` and `warmup_steps > 0`) is
    structure, as Keras' own branch is.

    Attributes:
      initial_learning_rate: the learning rate at step 0 (and before): where the
        decay starts, or with a `warmup_target` where the warmup starts.
      decay_steps: the length of the decay; an integer in [1, 2**63 - 1].
      alpha: the learning rate at the end of the decay (and after), as a fraction
        of the peak; finite.
      name: a label kept for Keras configs; it does not change the math.
      warmup_target: the learning rate the warmup rises to and the decay starts
        from; finite, or None for no warmup (then `warmup_steps` is unused, as in
        Keras).
      warmup_steps: the length of the linear warmup; an integer >= 0.
      transition_begin: the steps the peak holds after the warmup, before the
        decay; an integer >= 0, 0 for none (keyword-only; jaxdecay's extension,
        which Keras' CosineDecay lacks).

    Examples:
      >>> import jaxdecay
      >>> schedule = jaxdecay.CosineDecay(0.1, decay_steps=1000)
      >>> print(schedule(500))
      0.05
      >>> schedule.get_config()
      {'initial_learning_rate': 0.1, 'decay_steps': 1000, 'alpha': 0.0, \
'name': 'CosineDecay', 'warmup_target': None, 'warmup_steps': 0}
    """

    initial_learning_rate: float | np.generic = field(
        check=_validation.real(),
        leaf=True,
        keras=True,
        optax=Optax("init_value", 0, _OPTAX),
    )
    decay_steps: int = field(
        check=_validation.integer(minimum=1),
        leaf=True,
        keras=True,
        optax=Optax("decay_steps", 1, _OPTAX),
    )
    alpha: float | np.generic = field(
        check=_validation.real(),
        leaf=True,
        keras=True,
        optax=Optax("alpha", 2, _OPTAX),
        default=0.0,
    )
    name: str | None = field(
        check=_validation.label,
        leaf=False,
        keras=True,
        label=True,
        default="CosineDecay",
    )
    warmup_target: float | np.generic | None = field(
        check=_validation.real(optional=True), leaf=True, keras=True, default=None
    )
    warmup_steps: int = field(
        check=_validation.integer(minimum=0),
        leaf=True,
        keras=True,
        part=_warmup.PART,
        default=0,
    )
    _: dataclasses.KW_ONLY
    transition_begin: int = _hold.steps_field()

    def _warmups(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """Whether the schedule (each of a batch) warms up: a `warmup_target` and
        `warmup_steps > 0`."""
        warmups = super()._warmups()
        return warmups & (self.warmup_target is not None)

    def optax_kwargs(self, *, warmup: bool = False) -> dict[str, Any]:
        """Returns the keyword arguments of `optax.cosine_decay_schedule` for this
        schedule: its peak (`warmup_target`, or the initial rate without one) as
        `init_value`, and `exponent=1.0`.

        Raises:
          ValueError: the schedule warms up, or `warmup` is True: optax's warmup
            schedule is not this one (the message says how); or it holds
            (`transition_begin > 0`), which optax's cosine schedules cannot.
          TypeError: `warmup_steps` or `transition_begin` is traced: which
            schedule fits needs its value.

        Examples:
          >>> import jaxdecay
          >>> jaxdecay.CosineDecay(0.1, 1000, alpha=0.1).optax_kwargs()
          {'init_value': 0.1, 'decay_steps': 1000, 'alpha': 0.1, 'exponent': 1.0}
        """
        warmup = _validation.check_bool("warmup", warmup)
        if warmup or self._warmups().any():
            raise ValueError(_optax_refusal(self))
        if _hold.holds(self).any():
            steps = _validation.preview(self.transition_begin)
            raise ValueError(_NO_HOLD.format(steps))
        peak = self.initial_learning_rate
        if self.warmup_target is not None:
            peak = self.warmup_target
        return {
            "init_value": peak,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "exponent": 1.0,
        }

    def to_optax(self) -> Schedule:
        """Returns `optax.cosine_decay_schedule(**self.optax_kwargs())`, built by
        optax itself.

        Raises:
          ImportError: optax is not installed.
          ValueError: the schedule warms up (see `optax_kwargs`).
        """
        kwargs = self.optax_kwargs()
        try:
            import optax
        except ImportError as error:
            raise _validation.missing_extra("optax", "optax") from error
        return optax.cosine_decay_schedule(**kwargs)  # type: ignore[no-any-return]


cosine_decay = _config.builder(
    CosineDecay,
    doc="""Builds Keras' `CosineDecay` as a pure, jit-able `step -> lr` function.

    Without `warmup_target`, for a step `t >= 0` the learning rate is::

        initial_learning_rate * ((1 - alpha) * 0.5 * (1 + cos(pi * min(t,
            decay_steps) / decay_steps)) + alpha)

    With `warmup_target`, it rises linearly from `initial_learning_rate` at step 0
    to `warmup_target` at `warmup_steps`, then decays as above from
    `warmup_target`, counted from `warmup_steps`. Without `warmup_target`,
    `warmup_steps` is unused (as in Keras). With `transition_begin > 0` the peak
    (`warmup_target`, or `initial_learning_rate` without one) holds for that
    many steps after the warmup: the decay's step 0 is `warmup_steps +
    transition_begin` (jaxdecay's extension; Keras' CosineDecay has no hold).
    Steps before 0 hold the value at 0, as optax does; Keras instead
    extrapolates its curve there (a mirror of the decay without a warmup, a NaN
    or an extended line with one).

    The float hyperparameters are taken in the compute dtype (float32, or float64
    under x64), as the schedule's program receives them on every path; the result
    is within 1 ulp of the exact schedule of those values where it is a normal
    float (see docs/schedules.md).

    Args:
      initial_learning_rate: the learning rate at step 0; finite.
      decay_steps: the length of the decay; an integer in [1, 2**63 - 1].
      alpha: the final learning rate as a fraction of the peak; finite.
      warmup_target: the peak after the warmup; finite, or None (no warmup).
      warmup_steps: the length of the warmup; an integer >= 0.
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
      >>> schedule = jaxdecay.cosine_decay(0.1, decay_steps=1000, alpha=0.5)
      >>> print(schedule(1000))
      0.05
      >>> warm = jaxdecay.cosine_decay(0.0, 1000, warmup_target=0.1, warmup_steps=100)
      >>> print(warm(50), warm(600))
      0.05 0.05
    """,
)
