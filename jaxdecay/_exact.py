"""Accurate ``scale * rate ** ((n + f) / steps)``, integer ``n``, fraction ``f``.

Keras and optax compute ``rate ** (step / decay_steps)`` after rounding
``step / decay_steps`` to the compute precision; for large steps that rounding is
many units in the last place (ulp) of the exponent, and the result is off by up to
~170 ulp.  :func:`scaled_pow` is within 1 ulp of the exact value of its inputs (nearly
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

The double-word arithmetic, and the guards against XLA's rewrites of constant
arithmetic and LLVM's fused multiply-adds, are in ``_dw``.
"""

from __future__ import annotations

import decimal
import fractions
import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdecay._dw import (
    DW,
    Format,
    dw_add,
    dw_mul,
    flush,
    format_for,
    opaque_scalars,
    power_of_two,
    round_bits,
    scaled_div,
    split,
    steps_double_word,
    two_prod,
    two_sum,
    unfused,
    unpack,
)

__all__ = [
    "LOG_ONE",
    "LOG_SPLIT",
    "Constants",
    "exp2_64",
    "ln2_64",
    "log2_64",
    "log_index",
    "prepare",
    "scaled_pow",
]

# Table entries per unit of the binary exponent.  64 keeps |u/64| <= 1/128, so
# three (float32) or six (float64) Taylor terms suffice, in a 0.5/1 KiB table.
_TABLE_BITS = 6
_TABLE_SIZE = 1 << _TABLE_BITS

# Decimal digits for the host tables; float64 hi + lo pairs need ~33.
_DIGITS = 60


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
    ln2_64: tuple[float, float]  # ln(2) / 64
    exp_hi: np.ndarray  # 2**(j/64), j = 0..63, double-word
    exp_lo: np.ndarray
    poly: tuple[float, ...]  # (ln2/64)**k / k!, k = 1..taylor_terms
    r_max: float  # largest |r| = |m * inv_j - 1|


def _round(x: decimal.Decimal, fmt: Format) -> float:
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


def _double_word(x: decimal.Decimal, fmt: Format) -> tuple[float, float]:
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
    fmt: Format, ln2: decimal.Decimal
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
def _tables(fmt: Format) -> _Tables:
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
        ln2_64 = _double_word(table_step, fmt)
    return _Tables(
        log_inv=np.asarray(inv, fmt.dtype),
        log_hi=np.asarray(log_hi, fmt.dtype),
        log_lo=np.asarray(log_lo, fmt.dtype),
        series=series,
        inv_ln2_64=inv_ln2_64,
        ln2_64=ln2_64,
        exp_hi=np.asarray([p[0] for p in exp_pairs], fmt.dtype),
        exp_lo=np.asarray([p[1] for p in exp_pairs], fmt.dtype),
        poly=poly,
        r_max=r_max,
    )


# ---------------------------------------------------------------------------
# Preparation: the constants, computed in the program from the hyperparameters.
# ---------------------------------------------------------------------------


def _log2_rate_64(rate_bits: jax.Array, zero: jax.Array, fmt: Format) -> DW:
    """``64 * log2(rate)`` as a double word, to ~2**-2p relative."""
    dtype = fmt.dtype
    exponent, m = unpack(rate_bits, fmt)
    halve = m >= _LOG_SPLIT
    m = fmt.ops.where(halve, m * dtype.type(0.5), m)  # exact
    exponent = fmt.ops.where(halve, exponent + 1, exponent)
    index, inv = log_index(m, fmt)
    # r = m * inv - 1 exactly: the products of the halves of m with the 12-bit
    # inv are exact; m_hi * inv is within 2**-6 of 1, so subtracting 1 is exact
    # (Sterbenz); two_sum adds the two exact terms exactly.
    m_hi, m_lo = split(m, fmt)
    r = two_sum(m_hi * inv - 1, m_lo * inv)
    return log2_64(exponent, index, r, zero, fmt)


def log_index(m: Any, fmt: Format) -> tuple[Any, Any]:
    """For ``m`` in [0.70703125, 1.4140625): the index of ``c_j = 1 + j/128``
    nearest ``m`` in the tables, and ``inv_j ~ 1/c_j`` (12 significant bits, so
    that its products with the halves of a `split` are exact). ``|log2(m)| <
    1/2``, so that ``e + log2(m)`` does not cancel for ``e != 0``; ``m - 1`` and
    ``(m - 1) * 128`` are exact."""
    j = fmt.ops.rint((m - 1) * fmt.dtype.type(_LOG_STEPS))
    index = (j.astype(fmt.int_dtype) - _LOG_J_MIN).astype(np.uint32)
    return index, fmt.ops.take(_tables(fmt).log_inv, index)


LOG_ONE = -_LOG_J_MIN  # the index of `log_index` whose c_j is 1
LOG_SPLIT = _LOG_SPLIT  # m >= it is halved before `log_index`


def ln2_64(fmt: Format) -> DW:
    """``ln(2) / 64`` as a double word of the format's dtype."""
    pair = _tables(fmt).ln2_64
    return fmt.dtype.type(pair[0]), fmt.dtype.type(pair[1])


def exp2_64(index: jax.Array, fmt: Format) -> DW:
    """``2**(index / 64)`` for ``index`` in [0, 64) (uint32), a double word to
    ~2**-2p relative: the table of `scaled_pow` with a significand of 1."""
    tables = _tables(fmt)
    return fmt.ops.take(tables.exp_hi, index), fmt.ops.take(tables.exp_lo, index)


def log2_64(exponent: Any, index: Any, r: DW, zero: Any, fmt: Format) -> DW:
    """``64 * (exponent + log2(c_j) + log2(1 + r))`` as a double word, for
    ``m * inv_j = 1 + r`` (``|r| < 2**-7.4``) from `log_index`: to ~2**-2p
    relative of the sum, and of ``r`` itself where the table's term is 0
    (``exponent == 0`` and ``c_j = 1``)."""
    dtype, tables, ops = fmt.dtype, _tables(fmt), fmt.ops

    def load(table: np.ndarray) -> jax.Array:
        return ops.take(table, index)  # type: ignore[no-any-return]

    def constant(pair: tuple[float, float]) -> DW:
        return (dtype.type(pair[0]), dtype.type(pair[1]))

    # log(1 + r) by Horner in double words (|r| < 2**-7.4).
    acc = constant(tables.series[-1])
    for pair in reversed(tables.series[:-1]):
        acc = dw_add(dw_mul(acc, r, zero, fmt), constant(pair))
    log_1p = dw_mul(acc, r, zero, fmt)
    scaled = dw_mul(log_1p, constant(tables.inv_ln2_64), zero, fmt)
    # 64 * (e - log2(inv_j)): 64 * e is exact; the table is double-word.
    base = dw_add(
        ((exponent * _TABLE_SIZE).astype(dtype), ops.zeros(dtype)),
        (load(tables.log_hi), load(tables.log_lo)),
    )
    return dw_add(base, scaled)


def _pieces(d: DW, fmt: Format) -> tuple[jax.Array, jax.Array]:
    """``D = D0 + D1 + D2 + D3``: each piece the rest rounded to ``piece_bits`` by
    bits (exact), each rest exact (Sterbenz + two_sum); the tail ``D3``
    (``<= ~2**-24 |D|`` for float32) is rounded once."""
    d0 = round_bits(d[0], fmt)
    rest = two_sum(d[0] - d0, d[1])
    d1 = round_bits(rest[0], fmt)
    rest = two_sum(rest[0] - d1, rest[1])
    d2 = round_bits(rest[0], fmt)
    d3 = (rest[0] - d2) + rest[1]
    return fmt.ops.stack([d0, d1, d2]), d3


def _saturation(d_hi: Any, scale_exponent: Any, fmt: Format) -> Any:
    """``n_limit``, never below the first ``n`` with a result below half the least
    subnormal (``d < 0``) or above the largest float (``d > 0``).

    ``log2|scale|`` is in ``[E, E + 1)``; the margin 2**-18 covers the rounding
    errors of ``d_hi`` and of this formula, and keeps ``n_limit * |D|`` small
    enough for the integer parts of the reduction to stay exact.
    """
    ops = fmt.ops
    room = ops.where(
        d_hi < 0,
        scale_exponent + (1 - fmt.underflow_exponent),
        fmt.overflow_exponent - scale_exponent,
    )
    bound = (room * _TABLE_SIZE).astype(fmt.dtype) / ops.abs(d_hi)
    bound = bound * fmt.dtype.type(1 + 2.0**-18)
    top = fmt.dtype.type(2.0 ** (8 * fmt.int_dtype.itemsize - 2))  # 2**30 or 2**62
    finite = bound < top
    limit = ops.ceil(ops.where(finite, bound, fmt.dtype.type(0))).astype(fmt.unsigned)
    everything = fmt.unsigned.type(np.iinfo(fmt.unsigned).max)
    return ops.where(finite, limit + fmt.unsigned.type(2), everything)


def prepare(
    scale: Any, rate: Any, steps: tuple[Any, Any], dtype: Any, *, host: bool = False
) -> Constants:
    """Computes the constants of ``scale * rate ** (n / steps)``, in the program.

    Pure ``jnp``/``lax`` in the compute dtype only (no float64 or int64 in a
    float32 program), bit-identical eagerly and under ``jit`` and ``vmap``.

    Args:
        scale: A scalar; converted to ``dtype``, whose value is used exactly.
        rate: A scalar, finite and positive; converted to ``dtype``.
        steps: ``(hi, lo)``, the int32 and uint32 words of an integer in
            ``[1, 2**63 - 1]``.  For a staircase pass 1 and count stairs in ``n``.
        dtype: The compute dtype, float32 or float64 (which needs x64).
        host: compute with NumPy, for known scalars: the same operations, the
            same bits, no program.

    Returns:
        The :class:`Constants`.  A rate of 0 or inf, or an infinite scale, give
        0 or inf where the exact value is; invalid values (a NaN, a negative
        rate, steps < 1) make every result NaN: traced values cannot raise.
    """
    fmt = format_for(dtype)
    if host:
        fmt = fmt.on_host()
    ops = fmt.ops
    scale, rate, hi, lo = opaque_scalars(scale, rate, steps, fmt)
    sign_bit = np.iinfo(fmt.int_dtype).min
    rate_bits = ops.bitcast(rate, fmt.int_dtype)
    scale_bits = ops.bitcast(scale, fmt.int_dtype)
    magnitude_bits = scale_bits & ~sign_bit
    # +0.0 for valid inputs, from every input: opaque to the compiler.
    zero = ops.bitcast(
        (
            rate_bits
            | magnitude_bits
            | hi.astype(fmt.int_dtype)
            | (lo >> 1).astype(fmt.int_dtype)
        )
        & sign_bit,
        fmt.dtype,
    )
    # D * 2**e, e the binade of the steps, split into pieces, then scaled back:
    # exact, and no intermediate is subnormal (see `scaled_div`).
    d, e = scaled_div(
        _log2_rate_64(rate_bits, zero, fmt), steps_double_word(hi, lo, fmt), zero, fmt
    )
    pieces, tail = _pieces(d, fmt)
    unit = power_of_two(-e, fmt)
    pieces, tail = flush(pieces * unit, fmt), flush(tail * unit, fmt)
    d_hi = d[0] * unit
    # |scale| = s * 2**E; the table s * 2**(j/64) = (s * hi_j exactly) + s * lo_j.
    tables = _tables(fmt)
    scale_exponent, significand = unpack(magnitude_bits, fmt)
    table_hi, error = two_prod(significand, tables.exp_hi, zero, fmt)
    table_lo = unfused(significand * tables.exp_lo, zero) + error
    constants = Constants(
        pieces=pieces,
        tail=tail,
        table_hi=table_hi,
        table_lo=table_lo,
        scale_exponent=scale_exponent,
        sign=scale_bits & sign_bit,
        n_limit=_saturation(d_hi, scale_exponent, fmt),
    )
    valid_steps = (hi > 0) | ((hi == 0) & (lo > 0))
    return _special_cases(constants, rate_bits, magnitude_bits, valid_steps, fmt)


def _special_cases(
    constants: Constants,
    rate_bits: jax.Array,
    magnitude_bits: jax.Array,
    valid_steps: jax.Array,
    fmt: Format,
) -> Constants:
    """The constants where the rate is 0 or inf, the scale 0 or inf, or the input
    invalid (NaN everywhere).  By bits, so that subnormals are not taken for 0."""
    float_dtype, int_dtype, unsigned = fmt.dtype, fmt.int_dtype, fmt.unsigned
    where, stack = fmt.ops.where, fmt.ops.stack
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
    huge = where(
        rate_bits == 0, float_dtype.type(-(2.0**20)), float_dtype.type(2.0**20)
    )
    pieces = where(extreme_rate, stack([huge, huge * 0, huge * 0]), pieces)
    tail = where(extreme_rate, float_dtype.type(0), tail)
    n_limit = where(extreme_rate, unsigned.type(1), n_limit)
    scale_is_inf = magnitude_bits == infinity_bits
    table_hi = where(scale_is_inf, float_dtype.type(1), table_hi)
    table_lo = where(scale_is_inf, float_dtype.type(0), table_lo)
    largest = int_dtype.type(2 * fmt.exponent_bias)
    scale_exponent = where(scale_is_inf, largest, scale_exponent)
    n_limit = where(scale_is_inf, unsigned.type(0), n_limit)

    scale_is_zero = magnitude_bits == 0
    nan, zero = float_dtype.type(np.nan), float_dtype.type(0)
    live = valid & ~scale_is_zero
    return Constants(
        pieces=where(valid, pieces, zero),
        tail=where(valid, tail, zero),
        table_hi=where(valid, where(scale_is_zero, zero, table_hi), nan),
        table_lo=where(valid, where(scale_is_zero, zero, table_lo), nan),
        scale_exponent=where(live, scale_exponent, int_dtype.type(0)),
        sign=sign,
        n_limit=where(live, n_limit, unsigned.type(0)),
    )


# ---------------------------------------------------------------------------
# Evaluation.
# ---------------------------------------------------------------------------


def _reduce(
    halves: tuple[jax.Array, ...],
    pieces: jax.Array,
    frac: jax.Array,
    fmt: Format,
    fraction_halves: tuple[jax.Array, ...] = (),
) -> tuple[jax.Array, jax.Array]:
    """``sum(half * piece) + frac = q + u``: integer ``q``, ``|u| <= 1/2``.

    Each ``t = half * piece`` is exact and so is its split into the nearest
    integer ``k`` and ``t - k``; the integers add exactly (far below 2**p), the
    remainders with small rounding errors.  Smallest terms first.  The halves of
    a fraction (``fraction_halves``) are added after the whole ones' remainder is
    reduced to ``[-1/2, 1/2]``, so that it stays below 4 and each of their
    remainders adds an error of at most ``2**-(p - 1)``.
    """
    whole = None
    for i in reversed(range(pieces.shape[-1])):
        for half in halves:
            t = half * pieces[..., i]
            k = lax.round(t, lax.RoundingMethod.TO_NEAREST_EVEN)
            whole = k if whole is None else whole + k
            frac = frac + (t - k)
    assert whole is not None  # there are always three pieces
    for half in fraction_halves:
        k = lax.round(frac, lax.RoundingMethod.TO_NEAREST_EVEN)
        whole, frac = whole + k, frac - k  # exact
        for i in reversed(range(pieces.shape[-1])):
            t = half * pieces[..., i]
            k = lax.round(t, lax.RoundingMethod.TO_NEAREST_EVEN)
            whole, frac = whole + k, frac + (t - k)
    k = lax.round(frac, lax.RoundingMethod.TO_NEAREST_EVEN)
    u = frac - k  # exact, in [-1/2, 1/2]
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


def _finish(q: jax.Array, u: jax.Array, constants: Constants, fmt: Format) -> jax.Array:
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
        p = (unfused(p, zero) + c) * u
    # The one rounding of the significand: lo + hi*p is a small correction
    # (< 0.006 * hi) whose own rounding errors are ~2**-8 ulp of y.
    y = hi + (unfused(hi * p, zero) + lo)
    # y * 2**exponent as two exact normal powers of two: the first product stays
    # normal, the second rounds once into the subnormals or to inf.  Beyond the
    # clipped range the result is 0 or inf anyway (|y| < 4).
    exponent = jnp.clip(
        (q >> _TABLE_BITS) + constants.scale_exponent,
        fmt.int_dtype.type(2 * (1 - fmt.exponent_bias)),
        fmt.int_dtype.type(2 * fmt.exponent_bias),
    )
    half = exponent >> 1
    first = power_of_two(half, fmt, constants.sign)
    result: jax.Array = (y * first) * power_of_two(exponent - half, fmt)
    return result


def scaled_pow(
    constants: Constants, n: jax.Array, fraction: jax.Array | None = None
) -> jax.Array:
    """``scale * 2**((n + fraction) * d)`` elementwise, within 1 ulp, for
    :func:`prepare`'s constants, an unsigned integer ``n`` (uint32 for float32,
    uint64 for float64; within 1 ulp for ``n <= 2**53`` there, and close beyond)
    and a ``fraction`` in ``[0, 1)`` of the compute dtype (None: 0).

    Results below the subnormal range are +-0, above the finite range +-inf,
    never NaN for valid constants.  A fraction of 0 gives the bits of none.
    """
    fmt = format_for(constants.table_hi.dtype)
    n = jnp.minimum(jnp.asarray(n).astype(fmt.unsigned), constants.n_limit)
    # n = n_hi + n_lo; each half has few significant bits and converts exactly.
    n_lo = n & ((1 << fmt.low_bits) - 1)
    halves = (n_lo.astype(fmt.dtype), (n - n_lo).astype(fmt.dtype))
    # The tail n * D3 as one rounded product of the rounded n: at most ~2**-8
    # (float32; 2**-60 for float64), so its error is ~2**-31 absolute.
    zero = lax.bitcast_convert_type(
        n.astype(fmt.int_dtype) & np.iinfo(fmt.int_dtype).min, fmt.dtype
    )
    total = n.astype(fmt.dtype)
    fraction_halves: tuple[jax.Array, ...] = ()
    if fraction is not None:
        # Its halves (12 and 11 significant bits for float32, 26 and 26 for
        # float64) times the pieces are exact, as those of n are; a fraction that
        # never reaches a result (n clamped to n_limit) changes nothing there.
        fraction = jnp.asarray(fraction).astype(fmt.dtype)
        fraction_halves = split(fraction, fmt)
        total = total + fraction
    frac = unfused(total * constants.tail, zero)
    q, u = _reduce(halves, constants.pieces, frac, fmt, fraction_halves)
    return _finish(q, u, constants, fmt)
