"""`CosineDecay`: Keras' cosine decay and its warmup, as a family on the shared layers.

``peak * ((1 - alpha) * 0.5 * (1 + cos(pi * n / D)) + alpha)`` with ``n = min(step,
D)``, ``D = decay_steps`` and ``peak`` the initial rate, or `warmup_target` after
Keras' warmup (the shared warmup piece, started from the initial rate). The kernel
is exact to within 1 ulp, by a reduction that rounds nothing until the end:

- ``0.5 * (1 + cos(pi x)) = cos(pi x / 2)**2`` and ``1 - that = sin(pi x / 2)**2``,
  and the value is ``peak * (h + alpha * s)`` with ``h`` the first and ``s`` the
  second: two terms of the same sign for ``alpha >= 0``, never ``1 - alpha``;
- past the middle, ``x = n / D`` is replaced by ``(D - n) / D`` (an exact integer
  subtraction), which swaps ``h`` and ``s``: the angle is always at most ``pi/4``,
  and near the end ``h`` is a small sine squared, with all its bits;
- ``64 * m / D`` is an exact double word times the double word of ``64 / D``; its
  nearest integer ``k`` picks ``sin`` and ``cos`` of ``pi k / 128`` from a table of
  double words, and the rest (``|b| <= pi/256``) takes a short polynomial;
- ``peak * (h + alpha * s)`` is formed in double words and rounded once.
"""

from __future__ import annotations

import dataclasses
import decimal
import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

from jaxdecay import _config, _steps, _validation, _warmup
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
    unfused,
    unpack,
    unsigned_double_word,
)
from jaxdecay._fields import Optax, field
from jaxdecay._program import Kernel, Schedule
from jaxdecay._steps import Position

_OPTAX = "cosine_decay_schedule"

# pi to 60 digits: the table and its step are made from it in decimal arithmetic.
_PI = decimal.Decimal("3.14159265358979323846264338327950288419716939937510582097494")
_DIGITS = 50
_TABLE_STEPS = 64  # the table holds sin and cos of (pi/2) * k / 64, k = 0..32


class _Tables(NamedTuple):
    """The host constants of the kernel for one compute dtype."""

    table: np.ndarray  # (33, 4): sin hi, sin lo, cos hi, cos lo of pi k / 128
    step: tuple[float, float]  # pi / 128 as a double word
    sine: tuple[float, ...]  # sin b = b + b * b2 * (sine[0] + b2 * (...))
    cosine: tuple[float, ...]  # cos b = 1 + b2 * (cosine[0] + b2 * (...))


def _double_word(x: decimal.Decimal, dtype: np.dtype[Any]) -> tuple[float, float]:
    """``hi + lo ~ x`` in `dtype`: ``hi`` within an ulp of ``x``, ``lo`` the rest."""
    hi = float(dtype.type(float(x)))
    return hi, float(dtype.type(float(x - decimal.Decimal(hi))))


def _sin_cos(x: decimal.Decimal) -> tuple[decimal.Decimal, decimal.Decimal]:
    """sin and cos of ``0 <= x <= 1`` by their series, to the context's precision."""
    sine, cosine = decimal.Decimal(0), decimal.Decimal(0)
    term, k = decimal.Decimal(1), 0
    while term != 0 and abs(term) > decimal.Decimal(10) ** -(_DIGITS + 5):
        # term = x**k / k!
        if k % 2 == 0:
            cosine += term if k % 4 == 0 else -term
        else:
            sine += term if k % 4 == 1 else -term
        k += 1
        term = term * x / k
    return sine, cosine


@functools.cache
def _tables(dtype: np.dtype[Any]) -> _Tables:
    with decimal.localcontext() as context:
        context.prec = _DIGITS
        step = _PI / (2 * _TABLE_STEPS)
        rows = []
        for k in range(_TABLE_STEPS // 2 + 1):
            sine, cosine = _sin_cos(step * k)
            rows.append((*_double_word(sine, dtype), *_double_word(cosine, dtype)))
        # Taylor coefficients of (sin b - b) / b**3 and (cos b - 1) / b**2 in b**2:
        # with |b| <= pi/256 the first omitted term is below 2**-60 of the value.
        sine_terms = (-1 / 6, 1 / 120, -1 / 5040)
        cosine_terms = (-1 / 2, 1 / 24, -1 / 720)
        return _Tables(
            table=np.asarray(rows, dtype),
            step=_double_word(step, dtype),
            sine=tuple(float(dtype.type(c)) for c in sine_terms),
            cosine=tuple(float(dtype.type(c)) for c in cosine_terms),
        )


class _Constants(NamedTuple):
    """``64 / decay_steps`` and ``decay_steps`` as double words."""

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
    (q_hi, q_lo), exponent = scaled_div((one, zero), steps, zero, fmt)
    unit = power_of_two(int_dtype.type(6) - exponent, fmt)
    constants = _Constants(q_hi * unit, q_lo * unit, steps[0], steps[1])
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
    sign_bit = np.iinfo(int_dtype).min
    tables = _tables(fmt.dtype)
    # +0.0 from the angle's bits: the compiler cannot prove it zero.
    zero = lax.bitcast_convert_type(
        lax.bitcast_convert_type(m[0], int_dtype) & sign_bit, dtype
    )
    w = dw_mul(m, (constants.scale_hi, constants.scale_lo), zero, fmt)  # 64 m / D
    k = lax.round(w[0], lax.RoundingMethod.TO_NEAREST_EVEN)
    t = fast_two_sum(w[0] - k, w[1])  # w[0] - k is exact
    step = tuple(dtype.type(x) for x in tables.step)
    b = dw_mul(t, step, zero, fmt)  # phi = pi k / 128 + b, |b| <= pi / 256
    b2 = b[0] * b[0]
    sine = tables.sine
    cosine = tables.cosine
    poly_s = unfused(b2 * dtype.type(sine[2]), zero) + dtype.type(sine[1])
    poly_s = unfused(b2 * poly_s, zero) + dtype.type(sine[0])
    e = b[0] * (b2 * poly_s)  # sin b - b
    poly_c = unfused(b2 * dtype.type(cosine[2]), zero) + dtype.type(cosine[1])
    poly_c = unfused(b2 * poly_c, zero) + dtype.type(cosine[0])
    d = b2 * poly_c  # cos b - 1
    row = jnp.asarray(tables.table).at[k.astype(np.int32)].get(mode="promise_in_bounds")
    s_k, c_k = (row[..., 0], row[..., 1]), (row[..., 2], row[..., 3])
    # sin(phi) = S + (C b + C e + S d); cos(phi) = C + (C d - S b - S e).
    cb = dw_mul(c_k, b, zero, fmt)
    small = unfused(c_k[0] * e, zero) + unfused(s_k[0] * d, zero)
    sin_phi = dw_add(s_k, fast_two_sum(cb[0], cb[1] + small))
    sb = dw_mul(s_k, b, zero, fmt)
    small = unfused(c_k[0] * d, zero) - unfused(s_k[0] * e, zero)
    cos_phi = dw_add(c_k, fast_two_sum(-sb[0], small - sb[1]))
    sin2 = dw_mul(sin_phi, sin_phi, zero, fmt)
    cos2 = dw_mul(cos_phi, cos_phi, zero, fmt)
    h = (jnp.where(upper, sin2[0], cos2[0]), jnp.where(upper, sin2[1], cos2[1]))
    s = (jnp.where(upper, cos2[0], sin2[0]), jnp.where(upper, cos2[1], sin2[1]))
    # h + alpha * s = 2**E (h 2**-E + a s) with a = alpha 2**-E < 2**63: no
    # product overflows. E > 0 only for a huge alpha, where h 2**-E counts only
    # at step 0 (h = 1 exactly: s is 0 or above 2**-130).
    alpha_exponent = jnp.maximum(binade(alpha, fmt) - 62, int_dtype.type(0))
    unit = power_of_two(-alpha_exponent, fmt)
    scaled = dw_add((h[0] * unit, h[1] * unit), dw_mul_fp(s, alpha * unit, zero, fmt))
    # peak = sign * p * 2**e with p in [1, 2): p * scaled rounded once, then the
    # powers of two.
    bits = lax.bitcast_convert_type(peak, int_dtype)
    magnitude = bits & ~sign_bit
    peak_exponent, significand = unpack(
        jnp.where(magnitude == 0, jnp.asarray(1, int_dtype), magnitude), fmt
    )
    product = dw_mul_fp(scaled, significand, zero, fmt)[0]
    exponent = jnp.clip(
        peak_exponent + alpha_exponent,
        int_dtype.type(2 * (1 - fmt.exponent_bias)),
        int_dtype.type(2 * fmt.exponent_bias),
    )
    half = exponent >> 1
    first = power_of_two(half, fmt, bits & sign_bit)
    value = (product * first) * power_of_two(exponent - half, fmt)
    # 0 and inf (a number beyond the compute dtype) as IEEE multiplies them.
    special = (magnitude == 0) | jnp.isinf(peak)
    value = jnp.where(special, peak * (h[0] + alpha * s[0]), value)
    return _Parts(value, h[0], s[0], sin_phi[0] * cos_phi[0])


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
        step = _tables(value.dtype).step
        per_step = constants.scale_hi * value.dtype.type(step[0])  # pi / 2D
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
        pieces=(_WARMUP,),
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
            schedule is not this one (the message says how).
          TypeError: `warmup_steps` is traced: which schedule fits needs its value.

        Examples:
          >>> import jaxdecay
          >>> jaxdecay.CosineDecay(0.1, 1000, alpha=0.1).optax_kwargs()
          {'init_value': 0.1, 'decay_steps': 1000, 'alpha': 0.1, 'exponent': 1.0}
        """
        warmup = _validation.check_bool("warmup", warmup)
        if warmup or self._warmups().any():
            raise ValueError(_optax_refusal(self))
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
    `warmup_steps` is unused (as in Keras). Steps before 0 hold the value at 0,
    as optax does; Keras instead extrapolates its curve there (a mirror of the
    decay without a warmup, a NaN or an extended line with one).

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
      >>> schedule = jaxdecay.cosine_decay(0.1, decay_steps=1000, alpha=0.1)
      >>> print(schedule(1000))
      0.01
      >>> warm = jaxdecay.cosine_decay(0.0, 1000, warmup_target=0.1, warmup_steps=100)
      >>> print(warm(50), warm(600))
      0.05 0.05
    """,
)
