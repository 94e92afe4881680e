"""Accurate ``scale * rate ** (n / steps)`` for integer ``n``: the numerics core.

Keras and optax compute ``rate ** (step / decay_steps)`` after rounding
``step / decay_steps`` to the compute precision; for large steps that rounding is
many units in the last place (ulp) of the exponent, and the result is off by up to
~170 ulp.  :func:`power` is within 1 ulp of the exact value of its inputs (nearly
always exactly rounded), using only the compute dtype (no float64 or int64 when
computing in float32, which TPUs lack).

Every hyperparameter is data: :func:`prepare` computes the constants inside the
program, from arrays, and :func:`scaled_pow` evaluates them at every ``n``.  One
compiled program therefore serves every config, and a config gives the same bits
eagerly, under ``jit``, as a ``jit`` argument and under ``vmap``.

In short, with ``D = 64 * log2(rate) / steps``:

1. :func:`prepare` computes ``D`` in double-word ("double-float") arithmetic to
   ~2**-46 relative (float32), splits it into exact pieces of 8 significant bits
   (26 for float64) plus a tail, tabulates ``s * 2**(j/64)`` for the significand
   ``s`` of ``scale``, and finds ``n_limit``, from where the result is certainly
   0 or inf.
2. :func:`scaled_pow` splits ``n`` into two halves whose products with the pieces
   are exact, so ``n * D = q + u`` with ``q`` an integer and ``|u| <= 1/2`` accurate
   to ~2**-21 absolute, then returns
   ``(table[q & 63] * 2**(u/64)) * 2**((q >> 6) + E)``, rounded once.

The derivation, with the error bounds of each step, is in ``docs/numerics.md``.

Two compiler behaviours are guarded against.  XLA rewrites arithmetic on
compile-time constants (``(C + b) - C`` to ``b``, ``x / C`` to ``x * (1/C)``): the
inputs of :func:`prepare` pass an optimisation barrier.  And LLVM fuses ``a*b + c``
into one fused multiply-add, which rounds differently from an eager evaluation:
every rounded product that feeds an addition goes through :func:`_unfused`.
"""

from __future__ import annotations

import dataclasses
import decimal
import fractions
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = [
    "Constants",
    "Ramp",
    "linear",
    "power",
    "prepare",
    "prepare_ramp",
    "ramp_reaches",
    "scaled_linear",
    "scaled_pow",
    "unsigned_double_word",
    "unsigned_dtype",
]

# Table entries per unit of the binary exponent.  64 keeps |u/64| <= 1/128, so
# three (float32) or six (float64) Taylor terms suffice, in a 0.5/1 KiB table.
_TABLE_BITS = 6
_TABLE_SIZE = 1 << _TABLE_BITS

# Decimal digits for the host tables; float64 hi + lo pairs need ~33.
_DIGITS = 60


@dataclasses.dataclass(frozen=True)
class _Format:
    """Per-dtype parameters of the algorithm.

    Attributes:
        dtype: The compute dtype (float32 or float64).
        int_dtype: The signed integer dtype of the same width.
        unsigned: The unsigned integer dtype of ``n`` (uint32 or uint64).
        mantissa_bits: Significand bits including the implicit one (24 or 53).
        exponent_bias: IEEE exponent bias (127 or 1023).
        low_bits: ``n`` is split as ``n_hi + n_lo`` with ``n_lo < 2**low_bits``;
            ``n_hi`` has at most 16 (float32, ``n < 2**32``) or 27 (float64,
            ``n < 2**54``) significant bits.
        piece_bits: Significant bits of each exact piece of ``D``; with
            ``max(halves' bits) + piece_bits <= mantissa_bits`` every product of
            a half of ``n`` with a piece is exact.
        underflow_exponent: ``2**x`` rounds to zero for every ``x <= this``.
        overflow_exponent: ``2**x`` rounds to infinity for every ``x >= this``.
        taylor_terms: Taylor terms of ``2**(u/64) - 1`` for ``|u| <= 1/2``: the
            first omitted one is ``(ln2/128)**4/24 ~ 2**-34.7`` (float32) or
            ``(ln2/128)**7/5040 ~ 2**-65`` (float64).
    """

    dtype: np.dtype[Any]
    int_dtype: np.dtype[Any]
    unsigned: np.dtype[Any]
    mantissa_bits: int
    exponent_bias: int
    low_bits: int
    piece_bits: int
    underflow_exponent: int
    overflow_exponent: int
    taylor_terms: int


_FLOAT32 = _Format(
    dtype=np.dtype(np.float32),
    int_dtype=np.dtype(np.int32),
    unsigned=np.dtype(np.uint32),
    mantissa_bits=24,
    exponent_bias=127,
    low_bits=16,
    piece_bits=8,
    underflow_exponent=-151,
    overflow_exponent=129,
    taylor_terms=3,
)

_FLOAT64 = _Format(
    dtype=np.dtype(np.float64),
    int_dtype=np.dtype(np.int64),
    unsigned=np.dtype(np.uint64),
    mantissa_bits=53,
    exponent_bias=1023,
    low_bits=27,
    piece_bits=26,
    underflow_exponent=-1076,
    overflow_exponent=1025,
    taylor_terms=6,
)


def _format_for(dtype: Any) -> _Format:
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return _FLOAT32
    if dtype == np.float64:
        if jax.dtypes.canonicalize_dtype(np.float64) != np.float64:
            raise ValueError("float64 compute needs jax_enable_x64")
        return _FLOAT64
    raise ValueError(f"compute dtype must be float32 or float64, got {dtype}")


def unsigned_dtype(dtype: Any) -> np.dtype[Any]:
    """The dtype of ``n`` for a compute dtype: uint32 for float32, else uint64."""
    return _format_for(dtype).unsigned


def _unfused(product: Any, zero: Any) -> Any:
    """``product`` rounded on its own, never fused into the addition that follows.

    Compilers may contract ``a*b + c`` into one fused multiply-add (LLVM does, for
    XLA on CPU), which rounds once where an op-by-op evaluation rounds twice.
    ``zero`` is a +-0.0 that the compiler cannot prove is zero: ``a*b + zero`` is
    ``round(a*b)`` whether or not it is fused, and it is no longer a product, so
    the next addition cannot be fused with the multiplication.  Products that are
    exact need no guard: fusing changes nothing there.
    """
    return product + zero


class Constants(NamedTuple):
    """The constants of :func:`scaled_pow`, made by :func:`prepare`; arrays.

    Without ``vmap`` every field describes one config (scalars and 64-entry
    tables); under ``vmap`` the fields carry the batch dimension.

    Attributes:
        pieces: ``(D0, D1, D2)``, shape ``(3,)``: exact pieces of
            ``D = 64 * log2(rate) / steps`` with 8 (float32) or 26 (float64)
            significant bits.
        tail: ``D3 = D - D0 - D1 - D2`` rounded to the compute dtype.
        table_hi: ``s * 2**(j/64)``, ``j = 0..63``, high parts (``s`` in [1, 2)
            is the significand of ``|scale|``).
        table_lo: The low parts: ``hi + lo`` is exact to ~2**-2p relative.
        scale_exponent: ``E`` in ``|scale| = s * 2**E`` (signed integer dtype).
        sign: The sign bit of ``scale`` (0 or the integer dtype's minimum).
        n_limit: Clamp for ``n`` (unsigned): never below the first ``n`` whose
            result is certainly 0 or +-inf; the unsigned maximum if none is.
    """

    pieces: jax.Array
    tail: jax.Array
    table_hi: jax.Array
    table_lo: jax.Array
    scale_exponent: jax.Array
    sign: jax.Array
    n_limit: jax.Array


# ---------------------------------------------------------------------------
# Host tables, computed once per format in 60-digit decimal.
# ---------------------------------------------------------------------------

# log2 of the rate: rate = m * 2**e with m in [_LOG_SPLIT / 2, _LOG_SPLIT), then
# j = round((m - 1) * _LOG_STEPS), so c_j = 1 + j/_LOG_STEPS is within 1/256 of
# m, and c_0 = 1 exactly: rates near 1 are reduced exactly to r = m - 1.
_LOG_STEPS = 128
_LOG_SPLIT = 1 + 53 / 128  # 1.4140625 <= sqrt(2); m >= it is halved
_LOG_J_MIN = -38  # round((0.70703125 - 1) * 128) = round(-37.5) = -38
_LOG_J_MAX = 53  # (m - 1) * 128 < 53
# Significant bits of inv_j ~ 1/c_j: with the 12-bit (float32) or 26-bit
# (float64) half of m, and the other half, the products are exact.
_INV_BITS = 12


class _Tables(NamedTuple):
    """Host constants of :func:`prepare` and :func:`scaled_pow` for one format."""

    log_inv: np.ndarray  # inv_j, j = _LOG_J_MIN.._LOG_J_MAX
    log_hi: np.ndarray  # -64 * log2(inv_j), double-word
    log_lo: np.ndarray
    series: tuple[tuple[float, float], ...]  # (-1)**(k+1) / k, k = 1..K
    inv_ln2_64: tuple[float, float]  # 64 / ln(2)
    exp_hi: np.ndarray  # 2**(j/64), j = 0..63, double-word
    exp_lo: np.ndarray
    poly: tuple[float, ...]  # (ln2/64)**k / k!, k = 1..taylor_terms
    r_max: float  # largest |r| = |m * inv_j - 1|


def _round(x: decimal.Decimal, fmt: _Format) -> float:
    """``x`` rounded to the compute dtype (via float64: rarely off by an ulp for
    float32; callers keep the error in a second word or need no correct rounding).
    """
    return float(fmt.dtype.type(float(x)))


def _few_bits(x: decimal.Decimal, bits: int) -> float:
    """A number with at most ``bits`` significant bits within ``2**-bits|x|``."""
    if x == 0:
        return 0.0
    mantissa, exponent = math.frexp(float(x))  # 0.5 <= |mantissa| < 1
    return math.ldexp(round(mantissa * 2**bits), exponent - bits)


def _double_word(x: decimal.Decimal, fmt: _Format) -> tuple[float, float]:
    """``hi + lo ~ x``: ``hi`` the nearest float, ``lo`` the rounded rest."""
    hi = _round(x, fmt)
    top = fmt.dtype.type(np.inf)
    for candidate in (
        np.nextafter(fmt.dtype.type(hi), top),
        np.nextafter(fmt.dtype.type(hi), -top),
    ):
        if abs(x - decimal.Decimal(float(candidate))) < abs(x - decimal.Decimal(hi)):
            hi = float(candidate)  # repairs a double rounding via float64
    return hi, _round(x - decimal.Decimal(hi), fmt)


def _log_reduction(
    fmt: _Format, ln2: decimal.Decimal
) -> tuple[list[float], list[float], list[float], float]:
    """``inv_j ~ 1/c_j`` with few bits, ``-64 log2(inv_j)`` as double words, and
    the largest ``|r|`` the reduction leaves."""
    inv, log_hi, log_lo = [], [], []
    r_max = 0.0
    low_m = fractions.Fraction(_LOG_SPLIT) / 2
    half_width = fractions.Fraction(1, 2 * _LOG_STEPS)
    for j in range(_LOG_J_MIN, _LOG_J_MAX + 1):
        centre = 1 + fractions.Fraction(j, _LOG_STEPS)
        exact_centre = decimal.Decimal(centre.numerator) / centre.denominator
        inv_j = _few_bits(1 / exact_centre, _INV_BITS)
        inv.append(inv_j)
        hi, lo = _double_word(-_TABLE_SIZE * decimal.Decimal(inv_j).ln() / ln2, fmt)
        log_hi.append(hi)
        log_lo.append(lo)
        for m in (
            max(centre - half_width, low_m),
            min(centre + half_width, fractions.Fraction(_LOG_SPLIT)),
        ):
            r_max = max(r_max, abs(float(m * fractions.Fraction(inv_j) - 1)))
    return inv, log_hi, log_lo, r_max


@functools.cache
def _tables(fmt: _Format) -> _Tables:
    with decimal.localcontext() as ctx:
        ctx.prec = _DIGITS
        ln2 = decimal.Decimal(2).ln()
        table_step = ln2 / _TABLE_SIZE
        poly = tuple(
            _round(table_step**k / math.factorial(k), fmt)
            for k in range(1, fmt.taylor_terms + 1)
        )
        inv, log_hi, log_lo, r_max = _log_reduction(fmt, ln2)
        # Terms of log(1 + r): the first omitted one, r**(K+1)/(K+1), is below
        # 2**-2p of |r|.
        terms = 1
        while r_max**terms / (terms + 1) > 2.0 ** (-2 * fmt.mantissa_bits):
            terms += 1
        series = tuple(
            _double_word(decimal.Decimal((-1) ** (k + 1)) / k, fmt)
            for k in range(1, terms + 1)
        )
        exp_pairs = [
            _double_word((table_step * j).exp(), fmt) for j in range(_TABLE_SIZE)
        ]
        inv_ln2_64 = _double_word(_TABLE_SIZE / ln2, fmt)
    return _Tables(
        log_inv=np.asarray(inv, fmt.dtype),
        log_hi=np.asarray(log_hi, fmt.dtype),
        log_lo=np.asarray(log_lo, fmt.dtype),
        series=series,
        inv_ln2_64=inv_ln2_64,
        exp_hi=np.asarray([p[0] for p in exp_pairs], fmt.dtype),
        exp_lo=np.asarray([p[1] for p in exp_pairs], fmt.dtype),
        poly=poly,
        r_max=r_max,
    )


# ---------------------------------------------------------------------------
# Double-word ("double-float") arithmetic: a pair (hi, lo) of the compute dtype
# with |lo| <= ulp(hi)/2 stands for hi + lo.  u = 2**-p.  Error bounds from
# Joldes, Muller and Popescu, "Tight and rigorous error bounds for basic building
# blocks of double-word arithmetic" (2017).
# ---------------------------------------------------------------------------

_DW = tuple[Any, Any]  # (hi, lo)


def _two_sum(a: Any, b: Any) -> _DW:
    """``s + e = a + b`` exactly (Knuth), for any order of magnitudes."""
    s = a + b
    b_virtual = s - a
    a_virtual = s - b_virtual
    return s, (a - a_virtual) + (b - b_virtual)


def _fast_two_sum(a: Any, b: Any) -> _DW:
    """``s + e = a + b`` exactly (Dekker), if ``|a| >= |b|`` or ``a == 0``."""
    s = a + b
    return s, b - (s - a)


def _split(a: Any, fmt: _Format) -> _DW:
    """``a = hi + lo`` exactly: ``hi`` is ``a`` rounded to ``p - s`` bits, with
    ``s = ceil(p/2)`` (12 of 24, 26 of 53), so ``|lo|`` has at most ``s - 1``
    bits plus the sign (Veltkamp's split, by bits: contraction-proof)."""
    drop = (fmt.mantissa_bits + 1) // 2
    bits = lax.bitcast_convert_type(jnp.asarray(a, fmt.dtype), fmt.int_dtype)
    rounded = (bits + (1 << (drop - 1))) & -(1 << drop)
    hi = lax.bitcast_convert_type(rounded, fmt.dtype)
    return hi, a - hi  # within a factor 2 of each other: exact (Sterbenz)


def _two_prod(a: Any, b: Any, zero: jax.Array, fmt: _Format) -> _DW:
    """``p + e = a * b`` exactly (Dekker), barring underflow."""
    p = _unfused(a * b, zero)
    a_hi, a_lo = _split(a, fmt)
    b_hi, b_lo = _split(b, fmt)
    e = (((a_hi * b_hi - p) + a_hi * b_lo) + a_lo * b_hi) + a_lo * b_lo
    return p, e


def _dw_add(x: _DW, y: _DW) -> _DW:
    """AccurateDWPlusDW (alg. 6): relative error below 3u**2 / (1 - 4u)."""
    s_hi, s_lo = _two_sum(x[0], y[0])
    t_hi, t_lo = _two_sum(x[1], y[1])
    v_hi, v_lo = _fast_two_sum(s_hi, s_lo + t_hi)
    return _fast_two_sum(v_hi, t_lo + v_lo)


def _dw_mul(x: _DW, y: _DW, zero: jax.Array, fmt: _Format) -> _DW:
    """DWTimesDW1 (alg. 10, without FMA): relative error ~7u**2."""
    c_hi, c_lo1 = _two_prod(x[0], y[0], zero, fmt)
    cross = _unfused(x[0] * y[1], zero) + _unfused(x[1] * y[0], zero)
    return _fast_two_sum(c_hi, c_lo1 + cross)


def _dw_mul_fp(x: _DW, y: Any, zero: jax.Array, fmt: _Format) -> _DW:
    """DWTimesFP1 (alg. 7): relative error below 1.5u**2 + 4u**3."""
    c_hi, c_lo1 = _two_prod(x[0], y, zero, fmt)
    c_lo2 = _unfused(x[1] * y, zero)
    t_hi, t_lo1 = _fast_two_sum(c_hi, c_lo2)
    return _fast_two_sum(t_hi, t_lo1 + c_lo1)


def _dw_div(x: _DW, y: _DW, zero: jax.Array, fmt: _Format) -> _DW:
    """``x / y`` by three quotient digits: each remainder is formed with relative
    error ~1.5u**2 of ``x``, so ``q1 + q2 + q3`` is within ~4u**2 of ``x/y``.

    ``divisor = y[0] + zero`` hides a constant divisor from XLA, which would
    otherwise multiply by its rounded reciprocal instead of dividing.
    """
    divisor = y[0] + zero
    q1 = x[0] / divisor
    product = _dw_mul_fp(y, q1, zero, fmt)
    rest = _dw_add(x, (-product[0], -product[1]))
    q2 = rest[0] / divisor
    product = _dw_mul_fp(y, q2, zero, fmt)
    rest = _dw_add(rest, (-product[0], -product[1]))
    q3 = rest[0] / divisor
    return _dw_add(_fast_two_sum(q1, q2), (q3, jnp.zeros_like(q3)))


# ---------------------------------------------------------------------------
# Bits.
# ---------------------------------------------------------------------------


def _unpack(bits: jax.Array, fmt: _Format) -> tuple[jax.Array, jax.Array]:
    """``(e, m)`` with ``x = m * 2**e``, ``1 <= m < 2``, from the bits of a
    positive finite ``x`` (subnormals included, by integer normalisation)."""
    fraction_bits = fmt.mantissa_bits - 1
    width = 8 * fmt.int_dtype.itemsize
    field = bits >> fraction_bits
    fraction = bits & ((1 << fraction_bits) - 1)
    subnormal = field == 0
    shift = jnp.where(
        subnormal,
        lax.clz(fraction) - (width - fmt.mantissa_bits),
        fmt.int_dtype.type(0),
    )
    fraction = (fraction << shift) & ((1 << fraction_bits) - 1)
    exponent = jnp.where(
        subnormal, 1 - fmt.exponent_bias - shift, field - fmt.exponent_bias
    )
    one = fmt.exponent_bias << fraction_bits
    return exponent, lax.bitcast_convert_type(fraction | one, fmt.dtype)


def _round_bits(x: jax.Array, fmt: _Format) -> jax.Array:
    """``x`` rounded to ``piece_bits`` significant bits (by bits: exact)."""
    drop = fmt.mantissa_bits - fmt.piece_bits
    bits = lax.bitcast_convert_type(x, fmt.int_dtype)
    rounded = (bits + (1 << (drop - 1))) & -(1 << drop)
    return lax.bitcast_convert_type(rounded, fmt.dtype)


def _power_of_two(
    exponent: jax.Array, fmt: _Format, sign: jax.Array | None = None
) -> jax.Array:
    """Exactly ``2**exponent`` (negated if ``sign`` is the sign bit) for integer
    ``exponent`` in the normal range."""
    bits = ((exponent + fmt.exponent_bias) << (fmt.mantissa_bits - 1)).astype(
        fmt.int_dtype
    )
    if sign is not None:
        bits = bits | sign
    return lax.bitcast_convert_type(bits, fmt.dtype)


# ---------------------------------------------------------------------------
# Preparation: the constants, computed in the program from the hyperparameters.
# ---------------------------------------------------------------------------


def _log2_rate_64(rate_bits: jax.Array, zero: jax.Array, fmt: _Format) -> _DW:
    """``64 * log2(rate)`` as a double word, to ~2**-2p relative."""
    dtype, int_dtype, tables = fmt.dtype, fmt.int_dtype, _tables(fmt)
    exponent, m = _unpack(rate_bits, fmt)
    halve = m >= _LOG_SPLIT
    m = jnp.where(halve, m * dtype.type(0.5), m)  # exact
    exponent = jnp.where(halve, exponent + 1, exponent)
    # m in [0.70703125, 1.4140625): |log2(m)| < 1/2, so when e != 0 the sum
    # e + log2(m) does not cancel.  m - 1 and (m - 1) * 128 are exact.
    j = lax.round((m - 1) * dtype.type(_LOG_STEPS), lax.RoundingMethod.TO_NEAREST_EVEN)
    index = (j.astype(int_dtype) - _LOG_J_MIN).astype(jnp.uint32)

    def load(table: np.ndarray) -> jax.Array:
        return jnp.asarray(table).at[index].get(mode="promise_in_bounds")

    inv = load(tables.log_inv)
    # r = m * inv - 1 exactly: the products of the halves of m with the 12-bit
    # inv are exact; m_hi * inv is within 2**-6 of 1, so subtracting 1 is exact
    # (Sterbenz); two_sum adds the two exact terms exactly.
    m_hi, m_lo = _split(m, fmt)
    r = _two_sum(m_hi * inv - 1, m_lo * inv)

    def constant(pair: tuple[float, float]) -> _DW:
        return (dtype.type(pair[0]), dtype.type(pair[1]))

    # log(1 + r) by Horner in double words (|r| < 2**-7.4).
    acc = constant(tables.series[-1])
    for pair in reversed(tables.series[:-1]):
        acc = _dw_add(_dw_mul(acc, r, zero, fmt), constant(pair))
    log_1p = _dw_mul(acc, r, zero, fmt)
    scaled = _dw_mul(log_1p, constant(tables.inv_ln2_64), zero, fmt)
    # 64 * (e - log2(inv_j)): 64 * e is exact; the table is double-word.
    base = _dw_add(
        ((exponent * _TABLE_SIZE).astype(dtype), jnp.zeros((), dtype)),
        (load(tables.log_hi), load(tables.log_lo)),
    )
    return _dw_add(base, scaled)


def _steps_double_word(hi: jax.Array, lo: jax.Array, fmt: _Format) -> _DW:
    """``steps = hi * 2**32 + lo`` as a double word: four 16-bit limbs, each exact
    in the compute dtype, summed exactly below 2**48 and to ~u**2 above."""
    dtype = fmt.dtype
    limbs = ((hi >> 16, 48), (hi & 0xFFFF, 32), (lo >> 16, 16), (lo & 0xFFFF, 0))
    total: _DW = (jnp.zeros((), dtype), jnp.zeros((), dtype))
    for limb, shift in limbs:
        term = limb.astype(dtype) * dtype.type(2.0**shift)  # exact
        total = _dw_add(total, (term, jnp.zeros((), dtype)))
    return total


def _pieces(d: _DW, fmt: _Format) -> tuple[jax.Array, jax.Array]:
    """``D = D0 + D1 + D2 + D3``: each piece the rest rounded to ``piece_bits`` by
    bits (exact), each rest exact (Sterbenz + two_sum); the tail ``D3``
    (``<= ~2**-24 |D|`` for float32) is rounded once."""
    d0 = _round_bits(d[0], fmt)
    rest = _two_sum(d[0] - d0, d[1])
    d1 = _round_bits(rest[0], fmt)
    rest = _two_sum(rest[0] - d1, rest[1])
    d2 = _round_bits(rest[0], fmt)
    d3 = (rest[0] - d2) + rest[1]
    return jnp.stack([d0, d1, d2]), d3


def _saturation(d_hi: jax.Array, scale_exponent: jax.Array, fmt: _Format) -> jax.Array:
    """``n_limit``, never below the first ``n`` with a result below half the least
    subnormal (``d < 0``) or above the largest float (``d > 0``).

    ``log2|scale|`` is in ``[E, E + 1)``; the margin 2**-18 covers the rounding
    errors of ``d_hi`` and of this formula, and keeps ``n_limit * |D|`` small
    enough for the integer parts of the reduction to stay exact.
    """
    room = jnp.where(
        d_hi < 0,
        scale_exponent + (1 - fmt.underflow_exponent),
        fmt.overflow_exponent - scale_exponent,
    )
    bound = (room * _TABLE_SIZE).astype(fmt.dtype) / jnp.abs(d_hi)
    bound = bound * fmt.dtype.type(1 + 2.0**-18)
    top = fmt.dtype.type(2.0 ** (8 * fmt.int_dtype.itemsize - 2))  # 2**30 or 2**62
    finite = bound < top
    limit = jnp.ceil(jnp.where(finite, bound, fmt.dtype.type(0))).astype(fmt.unsigned)
    everything = fmt.unsigned.type(np.iinfo(fmt.unsigned).max)
    return jnp.where(finite, limit + fmt.unsigned.type(2), everything)


def prepare(scale: Any, rate: Any, steps: tuple[Any, Any], dtype: Any) -> Constants:
    """Computes the constants of ``scale * rate ** (n / steps)``, in the program.

    Pure ``jnp``/``lax`` in the compute dtype only (no float64 or int64 in a
    float32 program), bit-identical eagerly and under ``jit`` and ``vmap``.

    Args:
        scale: A scalar; converted to ``dtype``, whose value is used exactly.
        rate: A scalar, finite and positive; converted to ``dtype``.
        steps: ``(hi, lo)``, the int32 and uint32 words of an integer in
            ``[1, 2**63 - 1]``.  For a staircase pass 1 and count stairs in ``n``.
        dtype: The compute dtype, float32 or float64 (which needs x64).

    Returns:
        The :class:`Constants`.  A rate of 0 or inf, or an infinite scale, give
        0 or inf where the exact value is; invalid values (a NaN, a negative
        rate, steps < 1) make every result NaN: traced values cannot raise.
    """
    fmt = _format_for(dtype)
    scale, rate, hi, lo = _opaque_scalars(scale, rate, steps, fmt)
    sign_bit = np.iinfo(fmt.int_dtype).min
    rate_bits = lax.bitcast_convert_type(rate, fmt.int_dtype)
    scale_bits = lax.bitcast_convert_type(scale, fmt.int_dtype)
    magnitude_bits = scale_bits & ~sign_bit
    # +0.0 for valid inputs, from every input: opaque to the compiler.
    zero = lax.bitcast_convert_type(
        (
            rate_bits
            | magnitude_bits
            | hi.astype(fmt.int_dtype)
            | (lo >> 1).astype(fmt.int_dtype)
        )
        & sign_bit,
        fmt.dtype,
    )
    d = _dw_div(
        _log2_rate_64(rate_bits, zero, fmt), _steps_double_word(hi, lo, fmt), zero, fmt
    )
    pieces, tail = _pieces(d, fmt)
    # |scale| = s * 2**E; the table s * 2**(j/64) = (s * hi_j exactly) + s * lo_j.
    tables = _tables(fmt)
    scale_exponent, significand = _unpack(magnitude_bits, fmt)
    table_hi, error = _two_prod(significand, tables.exp_hi, zero, fmt)
    table_lo = _unfused(significand * tables.exp_lo, zero) + error
    constants = Constants(
        pieces=pieces,
        tail=tail,
        table_hi=table_hi,
        table_lo=table_lo,
        scale_exponent=scale_exponent,
        sign=scale_bits & sign_bit,
        n_limit=_saturation(d[0], scale_exponent, fmt),
    )
    valid_steps = (hi > 0) | ((hi == 0) & (lo > 0))
    return _special_cases(constants, rate_bits, magnitude_bits, valid_steps, fmt)


def _opaque_scalars(
    scale: Any, rate: Any, steps: tuple[Any, Any], fmt: _Format
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """The inputs as scalars of their types, opaque to XLA's rewrites of constant
    arithmetic (which would break the exact steps when some are constants)."""
    scale = jnp.asarray(scale).astype(fmt.dtype)
    rate = jnp.asarray(rate).astype(fmt.dtype)
    hi = jnp.asarray(steps[0]).astype(jnp.int32)
    lo = jnp.asarray(steps[1]).astype(jnp.uint32)
    if scale.ndim or rate.ndim or hi.ndim or lo.ndim:
        raise ValueError("scale, rate and steps must be scalars (use vmap)")
    opaque: tuple[jax.Array, jax.Array, jax.Array, jax.Array] = (
        lax.optimization_barrier((scale, rate, hi, lo))  # type: ignore[no-untyped-call]
    )
    return opaque


def _special_cases(
    constants: Constants,
    rate_bits: jax.Array,
    magnitude_bits: jax.Array,
    valid_steps: jax.Array,
    fmt: _Format,
) -> Constants:
    """The constants where the rate is 0 or inf, the scale 0 or inf, or the input
    invalid (NaN everywhere).  By bits, so that subnormals are not taken for 0."""
    float_dtype, int_dtype, unsigned = fmt.dtype, fmt.int_dtype, fmt.unsigned
    infinity_bits = int(np.asarray(np.inf, float_dtype).view(int_dtype))
    valid = (
        (rate_bits >= 0)
        & (rate_bits <= infinity_bits)
        & (magnitude_bits <= infinity_bits)
        & valid_steps
    )
    pieces, tail, table_hi, table_lo, scale_exponent, sign, n_limit = constants
    # A rate of 0 or inf: one huge exact piece, and n clamped to 1, make every
    # n >= 1 underflow or overflow.  An infinite scale: a unit significand at
    # the largest exponent overflows for every n (clamped to 0).
    extreme_rate = (rate_bits == 0) | (rate_bits == infinity_bits)
    huge = jnp.where(
        rate_bits == 0, float_dtype.type(-(2.0**20)), float_dtype.type(2.0**20)
    )
    pieces = jnp.where(extreme_rate, jnp.stack([huge, huge * 0, huge * 0]), pieces)
    tail = jnp.where(extreme_rate, float_dtype.type(0), tail)
    n_limit = jnp.where(extreme_rate, unsigned.type(1), n_limit)
    scale_is_inf = magnitude_bits == infinity_bits
    table_hi = jnp.where(scale_is_inf, float_dtype.type(1), table_hi)
    table_lo = jnp.where(scale_is_inf, float_dtype.type(0), table_lo)
    largest = int_dtype.type(2 * fmt.exponent_bias)
    scale_exponent = jnp.where(scale_is_inf, largest, scale_exponent)
    n_limit = jnp.where(scale_is_inf, unsigned.type(0), n_limit)

    scale_is_zero = magnitude_bits == 0
    nan, zero = float_dtype.type(np.nan), float_dtype.type(0)
    live = valid & ~scale_is_zero
    return Constants(
        pieces=jnp.where(valid, pieces, zero),
        tail=jnp.where(valid, tail, zero),
        table_hi=jnp.where(valid, jnp.where(scale_is_zero, zero, table_hi), nan),
        table_lo=jnp.where(valid, jnp.where(scale_is_zero, zero, table_lo), nan),
        scale_exponent=jnp.where(live, scale_exponent, int_dtype.type(0)),
        sign=sign,
        n_limit=jnp.where(live, n_limit, unsigned.type(0)),
    )


# ---------------------------------------------------------------------------
# Evaluation.
# ---------------------------------------------------------------------------


def _reduce(
    halves: tuple[jax.Array, jax.Array],
    pieces: jax.Array,
    frac: jax.Array,
    fmt: _Format,
) -> tuple[jax.Array, jax.Array]:
    """``sum(half * piece) + frac = q + u``: integer ``q``, ``|u| <= 1/2``.

    Each ``t = half * piece`` is exact and so is its split into the nearest
    integer ``k`` and ``t - k``; the integers add exactly (far below 2**p), the
    remainders with small rounding errors.  Smallest terms first.
    """
    whole = None
    for i in reversed(range(pieces.shape[-1])):
        for half in halves:
            t = half * pieces[..., i]
            k = lax.round(t, lax.RoundingMethod.TO_NEAREST_EVEN)
            whole = k if whole is None else whole + k
            frac = frac + (t - k)
    k = lax.round(frac, lax.RoundingMethod.TO_NEAREST_EVEN)
    u = frac - k  # exact, in [-1/2, 1/2]
    assert whole is not None  # there are always three pieces
    return (whole + k).astype(fmt.int_dtype), u


@jax.custom_batching.custom_vmap
def _lookup(table: jax.Array, index: jax.Array) -> jax.Array:
    """``table[index]`` for a 64-entry table and indices known to be in range."""
    return table.at[index].get(mode="promise_in_bounds")


@_lookup.def_vmap
def _lookup_batched(
    axis_size: int, in_batched: list[bool], table: jax.Array, index: jax.Array
) -> tuple[jax.Array, bool]:
    # A table per config (a vmapped sweep): one flat table and offset indices. XLA
    # would otherwise build the gather's (row, index) pairs in memory, at 8 bytes
    # per step, and the sweep ran at a third of the speed of a single config.
    table_batched, index_batched = in_batched
    if not table_batched:
        return _lookup(table, index), index_batched
    if not index_batched:
        index = jnp.broadcast_to(index, (axis_size, *index.shape))
    rows = jnp.arange(axis_size, dtype=index.dtype).reshape(
        (axis_size,) + (1,) * (index.ndim - 1)
    )
    size = table.shape[-1]
    flat = table.reshape(axis_size * size, *table.shape[2:])
    return _lookup(flat, index + rows * index.dtype.type(size)), True


def _finish(
    q: jax.Array, u: jax.Array, constants: Constants, fmt: _Format
) -> jax.Array:
    """``(table[q & 63] * 2**(u/64)) * 2**((q >> 6) + E)``, rounded once."""
    # Unsigned index: no negative-index wrapping code in the gather.
    index = (q & (_TABLE_SIZE - 1)).astype(jnp.uint32)
    hi = _lookup(constants.table_hi, index)
    lo = _lookup(constants.table_lo, index)
    # +-0.0 with the sign of the loaded hi: the compiler cannot prove it zero.
    sign_bit = np.iinfo(fmt.int_dtype).min
    zero = lax.bitcast_convert_type(
        lax.bitcast_convert_type(hi, fmt.int_dtype) & sign_bit, fmt.dtype
    )
    # p = 2**(u/64) - 1 by Horner.  |p| < 0.0055, so its rounding errors are
    # ~2**-30 of the result.
    coefficients = [fmt.dtype.type(c) for c in _tables(fmt).poly]
    p = u * coefficients[-1]
    for c in reversed(coefficients[:-1]):
        p = (_unfused(p, zero) + c) * u
    # The one rounding of the significand: lo + hi*p is a small correction
    # (< 0.006 * hi) whose own rounding errors are ~2**-8 ulp of y.
    y = hi + (_unfused(hi * p, zero) + lo)
    # y * 2**exponent as two exact normal powers of two: the first product stays
    # normal, the second rounds once into the subnormals or to inf.  Beyond the
    # clipped range the result is 0 or inf anyway (|y| < 4).
    exponent = jnp.clip(
        (q >> _TABLE_BITS) + constants.scale_exponent,
        fmt.int_dtype.type(2 * (1 - fmt.exponent_bias)),
        fmt.int_dtype.type(2 * fmt.exponent_bias),
    )
    half = exponent >> 1
    first = _power_of_two(half, fmt, constants.sign)
    result: jax.Array = (y * first) * _power_of_two(exponent - half, fmt)
    return result


def scaled_pow(constants: Constants, n: jax.Array) -> jax.Array:
    """``scale * 2**(n * d)`` elementwise, within 1 ulp, for :func:`prepare`'s
    constants and an unsigned integer ``n`` (uint32 for float32, uint64 for
    float64; within 1 ulp for ``n <= 2**53`` there, and close beyond).

    Results below the subnormal range are +-0, above the finite range +-inf,
    never NaN for valid constants.
    """
    fmt = _format_for(constants.table_hi.dtype)
    n = jnp.minimum(jnp.asarray(n).astype(fmt.unsigned), constants.n_limit)
    # n = n_hi + n_lo; each half has few significant bits and converts exactly.
    n_lo = n & ((1 << fmt.low_bits) - 1)
    halves = (n_lo.astype(fmt.dtype), (n - n_lo).astype(fmt.dtype))
    # The tail n * D3 as one rounded product of the rounded n: at most ~2**-8
    # (float32; 2**-60 for float64), so its error is ~2**-31 absolute.
    zero = lax.bitcast_convert_type(
        n.astype(fmt.int_dtype) & np.iinfo(fmt.int_dtype).min, fmt.dtype
    )
    frac = _unfused(n.astype(fmt.dtype) * constants.tail, zero)
    q, u = _reduce(halves, constants.pieces, frac, fmt)
    return _finish(q, u, constants, fmt)


@jax.custom_jvp
def power(
    constants: Constants, scale: Any, rate: Any, steps: tuple[Any, Any], n: jax.Array
) -> jax.Array:
    """``scale * rate ** (n / steps)``, from ``constants = prepare(scale, rate,
    steps, dtype)``: :func:`scaled_pow` with the analytic derivatives.

    ``scaled_pow`` works on the bits of the constants and has no useful
    derivative of its own; here ``d/dscale = rate ** (n / steps)`` and
    ``d/drate = value * (n / steps) / rate``.  ``constants`` gets none (pass it
    through ``lax.stop_gradient``); ``steps`` and ``n`` are integers.
    """
    del scale, rate, steps
    return scaled_pow(constants, n)


def _power_jvp(
    primals: tuple[Any, ...], tangents: tuple[Any, ...]
) -> tuple[jax.Array, jax.Array]:
    constants, scale, rate, steps, n = primals
    scale_dot, rate_dot = tangents[1], tangents[2]
    value = scaled_pow(constants, n)
    tangent = jnp.zeros_like(value)
    # Symbolic zeros are skipped: 0 * inf would make a NaN of a derivative that
    # was not asked for.
    if not isinstance(scale_dot, jax.custom_derivatives.SymbolicZero):
        unit = prepare(jnp.ones_like(scale), rate, steps, value.dtype)
        tangent = tangent + scaled_pow(unit, n) * scale_dot
    if not isinstance(rate_dot, jax.custom_derivatives.SymbolicZero):
        dtype = value.dtype
        hi = jnp.asarray(steps[0]).astype(dtype) * dtype.type(2.0**32)
        exponent = n.astype(dtype) / (hi + jnp.asarray(steps[1]).astype(dtype))
        tangent = tangent + value * exponent / rate * rate_dot
    return value, tangent


power.defjvp(_power_jvp, symbolic_zeros=True)


# ---------------------------------------------------------------------------
# The linear warmup: ``start + (stop - start) * t / total`` for ``0 <= t < total``.
# Counted from the end of smaller magnitude, ``near``, it is ``near + k * delta``
# with ``k`` the steps from ``near`` and ``delta = (far - near) / total``: when the
# ends do not have opposite signs the two terms have the same sign and do not
# cancel, and one exact product and an exact sum make the result within 1 ulp.
# ---------------------------------------------------------------------------


class Ramp(NamedTuple):
    """The constants of :func:`linear`, made by :func:`prepare_ramp`; scalars
    (with the batch dimension under ``vmap``).

    The ends are scaled by ``2**-E``, the binade of the larger one (``E`` in the
    normal range), so no product overflows. At ``k = 0`` the ramp is ``near``
    itself, which scaled may have underflowed; at every other ``k`` the term
    ``k * delta`` is at least ``|far - near| / total`` and ``near``'s error is far
    below an ulp of the result. An infinite ``far`` (a finite number beyond the
    compute dtype's range) makes the ramp ``far`` at every ``k > 0``.

    Eight numbers: stacked in one array, more would not fuse in XLA.

    Attributes:
        flags: ``1`` if ``near`` is ``start`` (``k = t``; else it is ``stop`` and
            ``k = total - t``), plus ``2`` if ``far`` is +inf, ``4`` if -inf.
        near: The end of smaller magnitude, unscaled.
        near_scaled: ``near * 2**-E``.
        delta_hi: ``(far - near) * 2**-E / total`` as a double word, high part.
        delta_lo: Its low part.
        unscale: ``2**E``.
        total_hi: The number of steps as a double word (exact below 2**48 for
            float32, 2**106 for float64), high part; 0 for no ramp.
        total_lo: Its low part.
    """

    flags: jax.Array
    near: jax.Array
    near_scaled: jax.Array
    delta_hi: jax.Array
    delta_lo: jax.Array
    unscale: jax.Array
    total_hi: jax.Array
    total_lo: jax.Array


def prepare_ramp(start: Any, stop: Any, steps: tuple[Any, Any], dtype: Any) -> Ramp:
    """Computes the constants of the ramp from ``start`` to ``stop`` over ``steps``.

    Args:
        start: A finite scalar, the value at ``t = 0``; converted to ``dtype``.
        stop: A finite scalar, the value at ``t = steps``; converted to ``dtype``.
        steps: ``(hi, lo)``, the int32 and uint32 words of an integer in
            ``[0, 2**63 - 1]``; 0 makes a ramp that :func:`linear` never reaches.
        dtype: The compute dtype, float32 or float64 (which needs x64).
    """
    fmt = _format_for(dtype)
    start, stop, hi, lo = _opaque_scalars(start, stop, steps, fmt)
    from_start = jnp.abs(start) <= jnp.abs(stop)
    near, far = jnp.where(from_start, start, stop), jnp.where(from_start, stop, start)
    zero = lax.bitcast_convert_type(
        (
            lax.bitcast_convert_type(jnp.abs(far), fmt.int_dtype)
            | hi.astype(fmt.int_dtype)
            | (lo >> 1).astype(fmt.int_dtype)
        )
        & np.iinfo(fmt.int_dtype).min,
        fmt.dtype,
    )
    total = _steps_double_word(hi, lo, fmt)
    some = total[0] > 0
    exponent = _binade(far, fmt)

    def scaled(x: jax.Array) -> jax.Array:  # x * 2**-E in two exact steps
        half = exponent >> 1
        return x * _power_of_two(-half, fmt) * _power_of_two(half - exponent, fmt)

    near_scaled = scaled(near)
    # far - near, exactly, then divided by the steps (by 1 for no ramp).
    difference = _two_sum(scaled(far), -near_scaled)
    divisor = (jnp.where(some, total[0], fmt.dtype.type(1)), total[1])
    delta = _dw_div(difference, divisor, zero, fmt)
    infinite = jnp.isinf(far)
    flags = (
        from_start.astype(fmt.dtype)
        + jnp.where(infinite & (far > 0), fmt.dtype.type(2), 0)
        + jnp.where(infinite & (far < 0), fmt.dtype.type(4), 0)
    )
    return Ramp(
        flags=flags,
        near=near,
        near_scaled=near_scaled,
        delta_hi=delta[0],
        delta_lo=delta[1],
        unscale=_power_of_two(exponent, fmt),
        total_hi=total[0],
        total_lo=total[1],
    )


def _binade(x: jax.Array, fmt: _Format) -> jax.Array:
    """``E`` with ``2**E <= |x| < 2**(E + 1)`` for a finite ``x`` (0 for 0),
    clipped to the normal range."""
    bits = lax.bitcast_convert_type(jnp.abs(x), fmt.int_dtype)
    one_bits = fmt.int_dtype.type(fmt.exponent_bias << (fmt.mantissa_bits - 1))
    exponent, _ = _unpack(jnp.where(x != 0, bits, one_bits), fmt)
    return jnp.clip(exponent, 1 - fmt.exponent_bias, fmt.exponent_bias)


def unsigned_double_word(n: jax.Array, dtype: Any) -> _DW:
    """An unsigned integer ``n`` (uint32 for float32, uint64 for float64) as an
    exact double word of ``dtype``: two halves that each convert exactly."""
    fmt = _format_for(dtype)
    n = jnp.asarray(n).astype(fmt.unsigned)
    low = n & ((1 << (4 * fmt.unsigned.itemsize)) - 1)
    return _fast_two_sum((n - low).astype(fmt.dtype), low.astype(fmt.dtype))


def ramp_reaches(ramp: Ramp, t: _DW) -> jax.Array:
    """Whether ``t < total``: the ramp is the value at ``t``. Exact for double
    words made by :func:`unsigned_double_word` or with a float and a zero."""
    below: jax.Array = (t[0] < ramp.total_hi) | (
        (t[0] == ramp.total_hi) & (t[1] < ramp.total_lo)
    )
    return below


def scaled_linear(ramp: Ramp, t: _DW) -> jax.Array:
    """``start + (stop - start) * t / total`` elementwise, for ``0 <= t < total``;
    within 1 ulp when ``start`` and ``stop`` do not have opposite signs."""
    fmt = _format_for(ramp.near.dtype)
    # The steps left, exactly (integers below 2**48, or a float step's own bits).
    high, low = _two_sum(ramp.total_hi, -t[0])
    remaining = _fast_two_sum(high, low + (ramp.total_lo - t[1]))
    flags = ramp.flags.astype(np.int32)
    from_start = (flags & 1) != 0
    k_hi = jnp.where(from_start, t[0], remaining[0])
    k_lo = jnp.where(from_start, t[1], remaining[1])
    # +-0.0 from the step's bits: the compiler cannot prove it zero.
    zero = lax.bitcast_convert_type(
        lax.bitcast_convert_type(k_hi, fmt.int_dtype) & np.iinfo(fmt.int_dtype).min,
        fmt.dtype,
    )
    # k * delta = p + e exactly for k_hi * delta_hi, plus the small cross terms.
    product = _unfused(k_hi * ramp.delta_hi, zero)
    k_split = _split(k_hi, fmt)
    d_split = _split(ramp.delta_hi, fmt)
    error = (
        ((k_split[0] * d_split[0] - product) + k_split[0] * d_split[1])
        + k_split[1] * d_split[0]
    ) + k_split[1] * d_split[1]
    cross = _unfused(k_hi * ramp.delta_lo, zero) + _unfused(k_lo * ramp.delta_hi, zero)
    total, rest = _two_sum(ramp.near_scaled, product)
    value = (total + (rest + (error + cross))) * ramp.unscale
    value = jnp.where((flags & 2) != 0, fmt.dtype.type(np.inf), value)
    value = jnp.where((flags & 4) != 0, fmt.dtype.type(-np.inf), value)
    at_near: jax.Array = jnp.where((k_hi == 0) & (k_lo == 0), ramp.near, value)
    return at_near


@jax.custom_jvp
def linear(ramp: Ramp, start: Any, stop: Any, t: _DW) -> jax.Array:
    """:func:`scaled_linear` with the analytic derivatives, as :func:`power` has:
    ``d/dstart = 1 - t/total``, ``d/dstop = t/total`` and ``d/dt = (stop -
    start) / total``. ``ramp`` gets none (pass it through ``lax.stop_gradient``);
    the tangent of ``t`` is that of its high word."""
    del start, stop
    return scaled_linear(ramp, t)


def _linear_jvp(
    primals: tuple[Any, ...], tangents: tuple[Any, ...]
) -> tuple[jax.Array, jax.Array]:
    ramp, start, stop, t = primals
    start_dot, stop_dot, t_dot = tangents[1], tangents[2], tangents[3][0]
    value = scaled_linear(ramp, t)
    tangent = jnp.zeros_like(value)
    inverse = jnp.where(ramp.total_hi > 0, 1 / ramp.total_hi, 0)
    fraction = t[0] * inverse
    # 1 - t/total, without the cancellation near the end of the ramp.
    remaining = (ramp.total_hi - t[0]) + (ramp.total_lo - t[1])
    if not isinstance(start_dot, jax.custom_derivatives.SymbolicZero):
        tangent = tangent + remaining * inverse * start_dot
    if not isinstance(stop_dot, jax.custom_derivatives.SymbolicZero):
        tangent = tangent + fraction * stop_dot
    if not isinstance(t_dot, jax.custom_derivatives.SymbolicZero):
        slope = (jnp.asarray(stop) - jnp.asarray(start)) * inverse
        tangent = tangent + slope.astype(value.dtype) * t_dot
    return value, tangent


linear.defjvp(_linear_jvp, symbolic_zeros=True)
