"""`PolynomialDecay`: Keras' polynomial decay, as a family on the shared layers.

``(initial - end) * r**power + end`` with ``r = 1 - step / decay_steps``, the
step capped at ``decay_steps``; with `cycle`, ``decay_steps`` is multiplied by
``ceil(step / decay_steps)`` (by 1 at step 0). Counted from the end of smaller
magnitude, ``near``, it is ``near + (far - near) * X`` with ``X = r**power`` (the
end is near) or ``X = 1 - r**power`` (the initial rate is): the two terms have
the same sign when the ends do not have opposite ones, and the kernel is within
1 ulp there.

The kernel forms ``r = (D - n) / D`` (or ``t = n / D = 1 - r`` where ``r`` is near
1) as a double word from the exact integers (`_divide` counts the cycles), takes
``64 * log2(r)`` as a double word by `_exact`'s reduction (``log1p(-t)`` near 1),
multiplies by ``power`` and raises 2 to it by `_exact`'s table and a double-word
``expm1``, then adds ``near`` in double words and rounds once. A power of 1 skips
the logarithm: ``X`` is the quotient itself. Exponents are carried as integers
beside the significands, so that no intermediate overflows or underflows on the
way to a result that does not.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdecay import _config, _divide, _exact, _hold, _steps, _validation, _warmup
from jaxdecay._dw import (
    DW,
    JAX,
    Format,
    binade,
    dw_add,
    dw_div,
    dw_mul,
    fast_two_sum,
    flush,
    format_for,
    opaque_scalars,
    power_of_two,
    scaled_div,
    split,
    steps_double_word,
    two_sum,
    unfused,
    unpack,
    unsigned_double_word,
    unsigned_dtype,
)
from jaxdecay._fields import Optax, field
from jaxdecay._program import Kernel
from jaxdecay._steps import Position

_OPTAX = "polynomial_schedule"

# Flags of a config, in `_Constants.flags`.
_FROM_END = 1  # |initial| >= |end|: X = r**power, else 1 - r**power
_LINEAR = 2  # power == 1: X is the quotient itself
_FLAT = 4  # power == 0: the initial rate at every step (0**0 is 1, as in Keras)


class _Constants(NamedTuple):
    """A config's numbers as the kernel reads them.

    ``far`` is the end of larger magnitude and ``near`` the other; ``E`` the
    binade of ``far``. The difference ``(far - near) * 2**-E`` is exact as a
    double word (a ``near`` that scaled underflows is below every rounding).
    """

    steps_hi: Any  # decay_steps as a double word
    steps_lo: Any
    inverse_hi: Any  # 1 / decay_steps as a double word
    inverse_lo: Any
    difference_hi: Any  # (far - near) * 2**-E
    difference_lo: Any
    power_significand: Any  # power = m * 2**e, m in [1, 2) (1 for power 0)
    exponent: Any  # E
    power_exponent: Any  # e
    flags: Any
    divisor: _divide.Divisor | None


def _prepare(
    numbers: Mapping[str, Any], *, cycle: bool, host: bool = False
) -> _Constants:
    initial = numbers["initial_learning_rate"]
    fmt = format_for(initial.dtype)
    if host:
        fmt = fmt.on_host()
    ops = fmt.ops
    words = numbers["decay_steps"]
    initial, end, hi, lo = opaque_scalars(
        initial, numbers["end_learning_rate"], words, fmt
    )
    power = ops.barrier(ops.asarray(numbers["power"]).astype(fmt.dtype))
    # A subnormal number is 0, as arithmetic in a program on CPU reads it.
    initial, end, power = flush(initial, fmt), flush(end, fmt), flush(power, fmt)
    sign_bit = np.iinfo(fmt.int_dtype).min
    # +-0.0 from the inputs: opaque to the compiler.
    zero = ops.bitcast(
        (ops.bitcast(initial, fmt.int_dtype) | hi.astype(fmt.int_dtype)) & sign_bit,
        fmt.dtype,
    )
    steps = steps_double_word(hi, lo, fmt)
    # 1 / decay_steps, the steps scaled into [1, 2) so that nothing is subnormal.
    one = (fmt.dtype.type(1) + zero, ops.zeros(fmt.dtype))
    inverse, scale = scaled_div(one, steps, zero, fmt)
    unit = power_of_two(-scale, fmt)
    from_end = ops.abs(initial) >= ops.abs(end)
    near, far = ops.where(from_end, end, initial), ops.where(from_end, initial, end)
    exponent = binade(far, fmt)
    half = exponent >> 1

    def scaled(x: Any) -> Any:  # x * 2**-E in two exact steps: 2**-E may be subnormal
        return x * power_of_two(-half, fmt) * power_of_two(half - exponent, fmt)

    difference = two_sum(scaled(far), flush(scaled(-near), fmt))
    power_exponent, significand = unpack(
        ops.bitcast(ops.where(power > 0, power, fmt.dtype.type(1)), fmt.int_dtype), fmt
    )
    integer = fmt.int_dtype.type
    nought = integer(0)
    flags = (
        ops.where(from_end, integer(_FROM_END), nought)
        + ops.where(power == 1, integer(_LINEAR), nought)
        + ops.where(power == 0, integer(_FLAT), nought)
    )
    divisor = _cycles(words, fmt, host) if cycle else None
    constants = _Constants(
        steps_hi=steps[0],
        steps_lo=steps[1],
        inverse_hi=inverse[0] * unit,
        inverse_lo=inverse[1] * unit,
        difference_hi=difference[0],
        difference_lo=difference[1],
        power_significand=significand,
        exponent=exponent,
        power_exponent=power_exponent,
        flags=flags,
        divisor=divisor,
    )
    # The kernel works on bits: the derivatives come from `_decay`.
    return constants if host else lax.stop_gradient(constants)


def _cycles(words: Any, fmt: Format, host: bool) -> _divide.Divisor:
    """The divisor that counts the cycles: ``n // decay_steps``, exactly."""
    unsigned = unsigned_dtype(fmt.dtype)
    if host:
        return _divide.prepare_divisor_host(words.hi, words.lo, unsigned)
    # At least 1, as for a traced value that validation could not see.
    lo_word = jnp.where((words.hi == 0) & (words.lo == 0), jnp.uint32(1), words.lo)
    return _divide.prepare_divisor(words.hi, lo_word, unsigned)


class _Where(NamedTuple):
    """Where each step is, in integers and flags: no derivative."""

    whole: jax.Array  # the steps counted (0 where `hold` or `far`)
    hold: jax.Array  # before the decay: the initial rate
    far: jax.Array | None  # a float step beyond the integer range: `part` is
    # the step (None for integer steps)
    steps: jax.Array  # decay_steps in the unsigned step type
    fits: jax.Array  # whether decay_steps fits that type


def _evaluate(
    numbers: Mapping[str, Any],
    constants: _Constants,
    position: Position,
    *,
    cycle: bool,
) -> jax.Array:
    """The decay at `position`; steps before 0 hold the initial rate."""
    initial = numbers["initial_learning_rate"]
    compute = initial.dtype
    steps, fits = _steps.unsigned(numbers["decay_steps"], unsigned_dtype(compute))
    whole, fraction = position.whole, position.fraction
    part = None  # integer steps: no fraction, no derivative
    started = position.in_range & (whole > 0)
    if fraction is not None:
        # The fraction of a float step past step 0, where the curve starts: at 0
        # itself the derivative is that of the steps before, which hold.
        started = started | (position.in_range & (fraction > 0))
        part = jnp.where(position.in_range, fraction, 0).astype(compute)
        # A float step beyond the integer range (infinity included), and after
        # the pieces before the family's own steps: its elapsed steps as a float.
        elapsed = position.step.astype(compute)
        if position.offset is not None:
            elapsed = elapsed - position.offset
        elapsed = jnp.where(position.far, jnp.maximum(elapsed, 0), 0)
        part = jnp.where(position.far, elapsed, part)
        started = started | (position.far & (elapsed > 0))
    far = position.far if fraction is not None else None
    counted = started if far is None else started & ~far
    where = _Where(
        whole=jnp.where(counted, whole, 0).astype(whole.dtype),
        hold=~started,
        far=far,
        steps=steps,
        fits=fits,
    )
    if part is not None:
        part = jnp.where(started, part, 0)
    return _decay(
        cycle,
        constants,
        initial,
        numbers["end_learning_rate"],
        numbers["power"],
        where,
        part,
    )


class _Ratio(NamedTuple):
    """``r = N / D`` where the step is: the elapsed steps ``T = D - N``, and
    where ``r`` is 0 (the end)."""

    elapsed: DW
    rest: DW
    denominator: DW
    zero: jax.Array


def _ratio(
    cycle: bool, c: _Constants, where: _Where, part: jax.Array | None, fmt: Format
) -> _Ratio:
    """The exact integers of ``r`` as double words: ``D = decay_steps`` (times
    the cycles), ``N = D - n`` and ``T = n``, ``n`` the step (its fraction
    included); exact below 2**(2p), and to ~u**2 beyond."""
    dtype = fmt.dtype
    whole = where.whole
    zeros = jnp.zeros(whole.shape, dtype)
    steps = (c.steps_hi, c.steps_lo)
    n = unsigned_double_word(whole, dtype)
    elapsed = n if part is None else dw_add(n, (part, zeros))
    if cycle:
        assert c.divisor is not None
        stairs = _divide.divide(whole, c.divisor)
        count = whole - stairs * where.steps  # n mod decay_steps, exactly
        at_edge = (count == 0) & (whole > 0)
        if part is not None:
            at_edge = at_edge & (part == 0)
        start = unsigned_double_word(whole - count, dtype)
        denominator = dw_add(start, steps)
    else:
        count = whole
        at_edge = where.fits & (whole >= where.steps)
        denominator = (zeros + c.steps_hi, zeros + c.steps_lo)
    negative = unsigned_double_word(count, dtype)
    rest = dw_add(steps, (-negative[0], -negative[1]))
    if part is not None:
        rest = dw_add(rest, (-part, zeros))
    edge = at_edge & ~where.hold
    if where.far is None or part is None:
        return _Ratio(elapsed, rest, denominator, edge)
    # A float step beyond the integer range: in float arithmetic (a cycle's
    # remainder by fmod of the rounded decay_steps).
    if cycle:
        length = c.steps_hi
        left = jnp.where(where.far, jnp.fmod(part, length), 0)
        far_edge = (left == 0) | jnp.isinf(part)
        far_denominator = two_sum(part - left, length)
        far_rest = two_sum(length, -left)
    else:
        far_edge = (part > c.steps_hi) | ((part == c.steps_hi) & (c.steps_lo <= 0))
        far_denominator = steps
        far_rest = dw_add(steps, (-part, zeros))
    far = where.far

    def pick(a: DW, b: DW) -> DW:
        return jnp.where(far, a[0], b[0]), jnp.where(far, a[1], b[1])

    elapsed = pick((part, zeros), elapsed)
    denominator = pick(far_denominator, denominator)
    rest = pick(far_rest, rest)
    edge = jnp.where(far, far_edge, edge) & ~where.hold
    return _Ratio(elapsed, rest, denominator, edge)


def _quotient(
    cycle: bool, c: _Constants, x: DW, ratio: _Ratio, zero: Any, fmt: Format
) -> DW:
    """``x / D`` as a double word, to ~10u**2: by the reciprocal without cycles
    (``D`` is decay_steps), by `dw_div` with them."""
    if cycle:
        return dw_div(x, ratio.denominator, zero, fmt)
    return dw_mul(x, (c.inverse_hi, c.inverse_lo), zero, fmt)


def _isolated_take(table: Any, index: Any) -> jax.Array:
    """A table lookup kept apart from the arithmetic around it: XLA on CPU does
    not vectorize a loop that holds a gather, and the arithmetic is most of the
    kernel's work (twice as fast so, at 4M steps)."""
    index = lax.optimization_barrier(index)  # type: ignore[no-untyped-call]
    value = jnp.asarray(table).at[index].get(mode="promise_in_bounds")
    isolated: jax.Array = lax.optimization_barrier(value)  # type: ignore[no-untyped-call]
    return isolated


_OPS = JAX._replace(take=_isolated_take)


class _Value(NamedTuple):
    """The decay, and what its derivatives read (in plain floats)."""

    value: jax.Array
    x: jax.Array  # r ** power
    complement: jax.Array  # 1 - r ** power
    log_r: jax.Array  # ln(r)
    over_r: jax.Array  # 1 / (r * D): d r / d step is -1 / D
    edge: jax.Array  # r == 0


def _times(x: Any, exponent: Any, fmt: Format) -> Any:
    """``x * 2**exponent`` exactly where the result is normal, for an exponent in
    twice the normal range (clipped there: beyond it the result is 0 or inf)."""
    bias = fmt.exponent_bias
    exponent = jnp.clip(exponent, -2 * bias, 2 * bias)
    half = exponent >> 1
    return x * power_of_two(half, fmt) * power_of_two(exponent - half, fmt)


def _scale(x: DW, exponent: Any, fmt: Format) -> DW:
    return _times(x[0], exponent, fmt), _times(x[1], exponent, fmt)


def _select(condition: Any, a: DW, b: DW) -> DW:
    return jnp.where(condition, a[0], b[0]), jnp.where(condition, a[1], b[1])


def _log2_64(quotient: DW, near_one: jax.Array, zero: Any, fmt: Format) -> DW:
    """``64 * log2(r)`` as a double word, from the quotient: ``r`` (in (0, 1]),
    or ``t = 1 - r`` where `near_one` (``t <= 1/256``), where the reduction's
    ``m = 1 + r'`` is ``r' = -t`` exactly, and the logarithm keeps ``t``'s bits."""
    dtype, int_dtype = fmt.dtype, fmt.int_dtype
    safe = jnp.where(quotient[0] > 0, quotient[0], dtype.type(1))
    e, m = unpack(lax.bitcast_convert_type(safe, int_dtype), fmt)
    halve = m >= dtype.type(_exact.LOG_SPLIT)
    m = jnp.where(halve, m * dtype.type(0.5), m)  # exact
    e = jnp.where(halve, e + 1, e)
    index, inv = _exact.log_index(m, fmt)
    # m * inv - 1 as in `_exact`, and the low word's share (rounded: it is far
    # below the table's term, at least 2**-8 where it is used).
    m_hi, m_lo = split(m, fmt)
    reduced = two_sum(m_hi * inv - 1, m_lo * inv)
    low = _times(quotient[1], -e, fmt)
    reduced = dw_add(reduced, (unfused(low * inv, zero), jnp.zeros_like(low)))
    index = jnp.where(near_one, jnp.asarray(_exact.LOG_ONE, np.uint32), index)
    e = jnp.where(near_one, int_dtype.type(0), e)
    reduced = _select(near_one, (-quotient[0], -quotient[1]), reduced)
    return _exact.log2_64(e, index, reduced, zero, fmt)


def _expm1(w: DW, exponent: Any, zero: Any, fmt: Format) -> DW:
    """``expm1(w * 2**exponent) * 2**-exponent`` as a double word, for ``|w *
    2**exponent| < 0.0055``: ``w + w * c`` with ``c = v/2 + v**2 * (1/6 + v/24 +
    ...)``, ``v = w * 2**exponent`` (which may underflow: then ``c`` is 0)."""
    dtype = fmt.dtype
    v = _scale(w, exponent, fmt)
    last = 8 if fmt.mantissa_bits == 24 else 12
    terms = [1 / math.factorial(k) for k in range(3, last)]
    tail = dtype.type(terms[-1])
    for coefficient in reversed(terms[:-1]):
        tail = unfused(tail * v[0], zero) + dtype.type(coefficient)
    c = fast_two_sum(
        v[0] * dtype.type(0.5),
        v[1] * dtype.type(0.5) + unfused(unfused(v[0] * v[0], zero) * tail, zero),
    )
    return dw_add(w, dw_mul(w, c, zero, fmt))


class _Power(NamedTuple):
    """``x = r**power = s * (1 + p) * 2**k`` and ``1 - x``, as double words with
    their exponents (``x = (hi + lo) * 2**k``)."""

    x: DW
    k: jax.Array
    complement: DW
    complement_exponent: jax.Array


def _raised(
    c: _Constants, quotient: DW, near_one: jax.Array, zero: Any, fmt: Format
) -> _Power:
    """``r ** power = 2**(z/64)``, ``z = 64 * power * log2(r) = z' * 2**e`` for
    ``power = m * 2**e``; ``q = round(z)`` and ``u = z - q`` make ``2**(z/64) =
    2**(j/64) * expm1(u ln2/64 + 1) * 2**k``, ``q = 64k + j``. Where ``q = 0``,
    ``1 - x = -expm1`` keeps its own exponent ``e``: it may be far below 1."""
    dtype, int_dtype = fmt.dtype, fmt.int_dtype
    bias = fmt.exponent_bias
    log64 = _log2_64(quotient, near_one, zero, fmt)
    unit = dw_mul(log64, (c.power_significand, jnp.zeros_like(zero)), zero, fmt)
    z = _scale(unit, c.power_exponent, fmt)
    # Below -limit, 2**(z/64) is below every product that can be normal.
    limit = dtype.type(64 * (2 * bias + 2 * fmt.mantissa_bits + 8))
    beyond = ~(z[0] >= -limit)
    high = jnp.where(beyond, -limit, z[0])
    q = lax.round(high, lax.RoundingMethod.TO_NEAREST_EVEN)
    u = fast_two_sum(high - q, jnp.where(beyond, 0, z[1]))  # high - q is exact
    ln2 = _exact.ln2_64(fmt)
    small = q == 0
    w = _select(small, dw_mul(unit, ln2, zero, fmt), dw_mul(u, ln2, zero, fmt))
    w_exponent = jnp.where(small, c.power_exponent, int_dtype.type(0))
    p_unit = _expm1(w, w_exponent, zero, fmt)
    p = _scale(p_unit, w_exponent, fmt)
    whole = q.astype(int_dtype)
    s = _exact.exp2_64((whole & 63).astype(np.uint32), fmt)
    k = whole >> 6
    sp = dw_mul(s, p, zero, fmt)
    x = dw_add(s, sp)
    # 1 - x where q < 0: 1 - 2**(q/64) >= 0.0054, no cancellation beyond 2 bits.
    s_k, sp_k = _scale(s, k, fmt), _scale(sp, k, fmt)
    one = (dtype.type(1) + zero, jnp.zeros_like(zero))
    rest = dw_add(dw_add(one, (-s_k[0], -s_k[1])), (-sp_k[0], -sp_k[1]))
    complement = _select(small, (-p_unit[0], -p_unit[1]), rest)
    return _Power(x, k, complement, jnp.where(small, w_exponent, int_dtype.type(0)))


def _value(
    cycle: bool,
    c: _Constants,
    initial: Any,
    end: Any,
    where: _Where,
    part: jax.Array | None,
) -> _Value:
    fmt = dataclasses.replace(format_for(initial.dtype), ops=_OPS)
    dtype, int_dtype = fmt.dtype, fmt.int_dtype
    sign_bit = np.iinfo(int_dtype).min
    # A subnormal rate is 0, as the constants took it (and arithmetic on CPU).
    initial, end = flush(initial, fmt), flush(end, fmt)
    # +-0.0 from the step's bits: the compiler cannot prove it zero.
    zero = lax.bitcast_convert_type(
        _steps.as_int(where.whole, int_dtype) & sign_bit, dtype
    )
    ratio = _ratio(cycle, c, where, part, fmt)
    from_end = (c.flags & _FROM_END) != 0
    # t = T / D where r is near 1 (t <= ~1/256): there r would lose t's bits.
    near_one = ratio.elapsed[0] * dtype.type(256) <= ratio.denominator[0]
    numerator = _select(near_one, ratio.elapsed, ratio.rest)
    quotient = _quotient(cycle, c, numerator, ratio, zero, fmt)
    one = (dtype.type(1) + zero, jnp.zeros_like(zero))
    other = dw_add(one, (-quotient[0], -quotient[1]))
    r = _select(near_one, other, quotient)
    t = _select(near_one, quotient, other)

    def linear(_: Any) -> _Power:  # power == 1: r and 1 - r themselves
        nothing = jnp.zeros(where.whole.shape, int_dtype)
        return _Power(r, nothing, t, nothing)

    def general(_: Any) -> _Power:
        return _raised(c, quotient, near_one, zero, fmt)

    # Both, selected: XLA on CPU runs a `lax.cond` over arrays several times
    # slower than the two branches fused (and under vmap it selects anyway).
    linear_flag = (c.flags & _LINEAR) != 0
    power = jax.tree.map(
        lambda a, b: jnp.where(linear_flag, a, b), linear(None), general(None)
    )
    # near + (far - near) * X: X = x (the end near) or 1 - x (the initial rate).
    factor = _select(from_end, power.x, power.complement)
    factor_exponent = jnp.where(from_end, power.k, power.complement_exponent)
    near = jnp.where(from_end, end, initial)
    value = _sum(c, near, factor, factor_exponent, ratio.zero, zero, fmt)
    # r == 0: the end (for power 0, the initial rate: 0**0 is 1, as in Keras).
    flat = (c.flags & _FLAT) != 0
    value = jnp.where(ratio.zero, end, value)
    value = jnp.where(flat | where.hold, initial, value)
    # What the derivatives read, in plain floats.
    x = _times(power.x[0], power.k, fmt)
    complement = _times(power.complement[0], power.complement_exponent, fmt)
    still = flat | where.hold
    x = jnp.where(still, 1, jnp.where(ratio.zero, 0, x)).astype(dtype)
    complement = jnp.where(still, 0, jnp.where(ratio.zero, 1, complement))
    log_r = jnp.where(
        near_one, jnp.log1p(-quotient[0]), jnp.log(jnp.maximum(quotient[0], 0))
    )
    r_float = jnp.where(ratio.zero | where.hold, 1, r[0])
    over_r = 1 / (r_float * ratio.denominator[0])
    return _Value(value, x, complement.astype(dtype), log_r, over_r, ratio.zero)


def _sum(
    c: _Constants,
    near: jax.Array,
    factor: DW,
    factor_exponent: jax.Array,
    edge: jax.Array,
    zero: Any,
    fmt: Format,
) -> jax.Array:
    """``near + (far - near) * factor * 2**factor_exponent``, rounded once: the
    two terms at the larger one's exponent, each a significand with its exponent
    apart (the product 0 where `edge`)."""
    int_dtype = fmt.int_dtype
    sign_bit = np.iinfo(int_dtype).min
    product = dw_mul((c.difference_hi, c.difference_lo), factor, zero, fmt)
    nothing = (product[0] == 0) | edge
    b = binade(product[0], fmt)
    product = _scale(product, -b, fmt)
    product_exponent = c.exponent + factor_exponent + b
    near_bits = lax.bitcast_convert_type(near, int_dtype)
    magnitude = near_bits & ~sign_bit
    absent = magnitude == 0
    near_exponent, significand = unpack(
        jnp.where(absent, jnp.asarray(1, int_dtype), magnitude), fmt
    )
    significand = jnp.where(near_bits < 0, -significand, significand)
    # The sum at the larger exponent; the smaller term beyond 3p bits below
    # only decides the rounding, as it would unclipped.
    top = jnp.where(
        absent,
        product_exponent,
        jnp.where(nothing, near_exponent, jnp.maximum(near_exponent, product_exponent)),
    )
    gap = 3 * fmt.mantissa_bits

    def aligned(exponent: Any) -> Any:
        return power_of_two(jnp.clip(exponent - top, -gap, 0), fmt)

    a = jnp.where(absent, 0, significand * aligned(near_exponent))
    shift = aligned(product_exponent)
    b_term = (
        jnp.where(nothing, 0, product[0] * shift),
        jnp.where(nothing, 0, product[1] * shift),
    )
    total = dw_add((a, jnp.zeros_like(a)), b_term)
    value: jax.Array = jnp.where(absent & nothing, near, _times(total[0], top, fmt))
    return value


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _decay(
    cycle: bool,
    constants: _Constants,
    initial: Any,
    end: Any,
    power: Any,
    where: _Where,
    part: jax.Array | None,
) -> jax.Array:
    """`_value` with the analytic derivatives: ``d/dinitial = x``, ``d/dend =
    1 - x``, ``d/dpower = (initial - end) * x * ln(r)`` (0 at ``r = 0``) and
    ``d/dstep = -(initial - end) * power * x / (r * D)`` (0 at ``r = 0``, where
    the curve ends, and before step 0). ``constants`` gets none (pass it through
    ``lax.stop_gradient``)."""
    del power  # read from the constants
    return _value(cycle, constants, initial, end, where, part).value


def _decay_jvp(
    cycle: bool, primals: tuple[Any, ...], tangents: tuple[Any, ...]
) -> tuple[jax.Array, jax.Array]:
    constants, initial, end, power, where, part = primals
    initial_dot, end_dot, power_dot, part_dot = (
        tangents[1],
        tangents[2],
        tangents[3],
        tangents[5],
    )
    out = _value(cycle, constants, initial, end, where, part)
    value = out.value
    dtype = value.dtype
    tangent = jnp.zeros_like(value)
    symbolic = jax.custom_derivatives.SymbolicZero
    if not isinstance(initial_dot, symbolic):
        tangent = tangent + out.x * initial_dot
    if not isinstance(end_dot, symbolic):
        tangent = tangent + out.complement * end_dot
    difference = (jnp.asarray(initial) - jnp.asarray(end)).astype(dtype)
    flat = (constants.flags & _FLAT) != 0
    moving = ~out.edge & ~where.hold & ~flat
    if not isinstance(power_dot, symbolic):
        slope = jnp.where(moving, difference * (out.x * out.log_r), 0)
        tangent = tangent + slope * power_dot
    if part is not None and not isinstance(part_dot, symbolic):
        rate = jnp.where(moving, out.x * out.over_r, 0)
        slope = -(difference * (jnp.asarray(power).astype(dtype) * rate))
        tangent = tangent + jnp.where(moving, slope, 0) * part_dot
    return value, tangent


_decay.defjvp(_decay_jvp, symbolic_zeros=True)


_power = _validation.non_negative(
    "a negative power makes the learning rate infinite at decay_steps, where "
    "1 - step / decay_steps is 0"
)


def _edges(config: PolynomialDecay, last: int, limit: int) -> tuple[np.ndarray, int]:
    """The first step of each cycle up to `last`: `k * decay_steps`."""
    return _steps.multiples(config.decay_steps, last, limit)


def _bends(config: PolynomialDecay) -> tuple[int, ...]:
    """The end of the decay; with cycles, the ends of the first 8 (each the end
    learning rate, the next step high again) and the steps after them."""
    steps = config.decay_steps
    if not config.cycle:
        return (steps,)
    return tuple(k * steps + j for k in range(1, 9) for j in (0, 1))


def _formula(config: PolynomialDecay, lead: int) -> str:
    elapsed = "step" if lead == 0 else f"(step - {lead})"
    steps = config.decay_steps
    if config.cycle:
        length = f"{steps} * max(1, ceil({elapsed} / {steps}))"
    else:
        length = f"{steps}"
        elapsed = f"min({elapsed}, {steps})"
    initial, end = float(config.initial_learning_rate), float(config.end_learning_rate)
    return (
        f"({initial:.6g} - {end:.6g}) * (1 - {elapsed} / ({length})) ** "
        f"{float(config.power):.6g} + {end:.6g}"
    )


_VIEW = _config.View(
    horizon=lambda config: (4 if config.cycle else 2) * config.decay_steps,
    bends=_bends,
    stepwise=lambda config: False,
    edges=_edges,
    formula=_formula,
)


_NO_WARMUP = (
    "optax has no polynomial schedule with a warmup; pass the PolynomialDecay "
    "itself to an optax optimizer as the learning rate"
)


def _optax_refusal(config: PolynomialDecay) -> str | None:
    """Why optax's `polynomial_schedule` is not this schedule: a warmup or a
    cycle, which it lacks."""
    if config._warmups().any():
        return _NO_WARMUP
    if config.cycle:
        return (
            "optax.polynomial_schedule has no cycle; this schedule sets "
            "cycle=True: pass the PolynomialDecay itself to an optax optimizer "
            "as the learning rate"
        )
    return None


@_config.schedule_class(
    _config.Family(
        builder="polynomial_decay",
        kernel=Kernel(_prepare, _evaluate),
        peak="initial_learning_rate",
        view=_VIEW,
        pieces=(_warmup.WARMUP, _hold.HOLD),
        optax=(_OPTAX, None),
        optax_refusal=_optax_refusal,
    )
)
@dataclasses.dataclass(frozen=True, eq=False)
class PolynomialDecay(_config.Config):
    """Keras' `PolynomialDecay` schedule as a frozen, serializable dataclass.

    The instance is itself the schedule, as `ExponentialDecay` is: call it with a
    step, or pass it to an optax optimizer as the learning rate. It is a JAX
    pytree whose numbers are data (`initial_learning_rate`, `end_learning_rate`,
    `power`, and `decay_steps` and `warmup_steps` as two integer words each): new
    values never recompile, and `jax.vmap` runs a stack of configs in one program.

    Attributes:
      initial_learning_rate: the learning rate at step 0 (and before), or at the
        end of the warmup and through the hold.
      decay_steps: the steps of the decay (of each cycle); an integer in
        [1, 2**63 - 1].
      end_learning_rate: the learning rate at `decay_steps` and after; finite.
      power: the power of the polynomial; finite and >= 0.
      cycle: start the decay again at each multiple of `decay_steps`, over
        `decay_steps * ceil(step / decay_steps)` steps.
      name: a label kept for Keras configs; it does not change the math.
      warmup_steps: the length of the linear warmup before the decay; an integer
        >= 0, 0 for none (keyword-only).
      warmup_init: the learning rate at step 0, where the warmup starts; finite
        (keyword-only).
      transition_begin: the steps `initial_learning_rate` holds after the warmup,
        before the decay; an integer >= 0, 0 for none (keyword-only); optax's
        `transition_begin`.

    Examples:
      >>> import jaxdecay
      >>> schedule = jaxdecay.PolynomialDecay(0.5, 1000, end_learning_rate=0.0)
      >>> print(schedule(250))
      0.375
      >>> schedule.get_config()
      {'initial_learning_rate': 0.5, 'decay_steps': 1000, 'end_learning_rate': 0.0, \
'power': 1.0, 'cycle': False, 'name': 'PolynomialDecay'}
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
        optax=Optax("transition_steps", 3, _OPTAX),
    )
    end_learning_rate: float | np.generic = field(
        check=_validation.real(),
        leaf=True,
        keras=True,
        optax=Optax("end_value", 1, _OPTAX),
        default=0.0001,
    )
    power: float | np.generic = field(
        check=_power,
        leaf=True,
        keras=True,
        optax=Optax("power", 2, _OPTAX),
        default=1.0,
    )
    cycle: bool = field(
        check=_validation.boolean, leaf=False, keras=True, default=False
    )
    name: str | None = field(
        check=_validation.label,
        leaf=False,
        keras=True,
        label=True,
        default="PolynomialDecay",
    )
    _: dataclasses.KW_ONLY
    warmup_steps: int = _warmup.steps_field()
    warmup_init: float | np.generic = _warmup.init_field()
    transition_begin: int = _hold.steps_field(_OPTAX, 4)

    def optax_kwargs(self, *, warmup: bool = False) -> dict[str, Any]:
        """Returns the keyword arguments of `optax.polynomial_schedule` for this
        schedule: `transition_begin` is optax's own hold.

        Raises:
          ValueError: `cycle` is True (optax's schedule has no cycle), or the
            schedule has a warmup, or `warmup` is True (optax has no polynomial
            schedule with a warmup).

        Examples:
          >>> import jaxdecay
          >>> jaxdecay.PolynomialDecay(0.1, 1000, 0.01, 2.0).optax_kwargs()
          {'init_value': 0.1, 'end_value': 0.01, 'power': 2.0, \
'transition_steps': 1000, 'transition_begin': 0}
        """
        if _validation.check_bool("warmup", warmup):
            raise ValueError(_NO_WARMUP)
        return super().optax_kwargs()


polynomial_decay = _config.builder(
    PolynomialDecay,
    doc="""Builds Keras' `PolynomialDecay` as a pure, jit-able `step -> lr` function.

    For a step `t >= 0` the learning rate is::

        (initial_learning_rate - end_learning_rate)
            * (1 - min(t, decay_steps) / decay_steps) ** power + end_learning_rate

    With `cycle=True` the step is not capped: `decay_steps` is multiplied by
    `ceil(t / decay_steps)` (by 1 at step 0), in integer arithmetic, so that the
    decay starts again after each multiple of `decay_steps` (where the value is
    `end_learning_rate`). Steps before 0 hold `initial_learning_rate`, as
    `exponential_decay` (and optax) do; Keras instead extrapolates the curve to
    negative steps. optax's `polynomial_schedule` is the same schedule without
    `cycle`: `to_optax()` builds it, and refuses `cycle=True`.

    With `warmup_steps > 0` the learning rate rises linearly from `warmup_init`
    at step 0 (and before) to `initial_learning_rate` at `warmup_steps`, and the
    decay above is counted from there (optax has no such schedule). With
    `transition_begin > 0` the rate then holds `initial_learning_rate` for that
    many steps, as optax's `transition_begin` does: the decay's step 0 is
    `warmup_steps + transition_begin`.

    The float hyperparameters are taken in the compute dtype (float32, or float64
    under x64), as the schedule's program receives them on every path; the result
    is within 1 ulp of the exact schedule of those values where it is a normal
    float and the two rates do not have opposite signs (see docs/schedules.md).

    Args:
      initial_learning_rate: the learning rate at step 0; finite.
      decay_steps: the steps of the decay; an integer in [1, 2**63 - 1].
      end_learning_rate: the learning rate at the end of the decay; finite.
      power: the power of the polynomial; finite and >= 0.
      cycle: start the decay again after each multiple of `decay_steps`.
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
      >>> schedule = jaxdecay.polynomial_decay(0.5, 1000, 0.0, power=2.0)
      >>> print(schedule(500))
      0.125
      >>> cycled = jaxdecay.polynomial_decay(0.5, 1000, 0.0, cycle=True)
      >>> print(cycled(1500))
      0.125
    """,
)
