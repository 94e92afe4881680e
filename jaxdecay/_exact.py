"""Accurate ``scale * 2**(n * d)`` for integer ``n``: the numerics core of jaxdecay.

Keras and optax compute ``rate ** (step / decay_steps)`` after rounding
``step / decay_steps`` to the compute precision; for large steps that rounding
is many units in the last place (ulp) of the exponent and the result is off by
up to ~170 ulp.  Here the value is within 1 ulp of the exactly rounded result
(nearly always exactly rounded), using only the compute dtype on the device (no
float64 or int64 when computing in float32, which TPUs lack) and doing all
high-precision work once on the host with :mod:`decimal`.

With ``d = log2(rate) / decay_steps`` and ``D = 64 * d`` (one unit of ``D`` is
one step of a 64-entry table), for an integer ``n >= 0``:

1. Host (:func:`prepare`).  Split ``D = D0 + D1 + D2 (+ D3)`` where ``D0..D2``
   have few significant bits (8 for float32, 26 for float64).  Write
   ``scale = s * 2**E`` with ``1 <= |s| < 2`` and tabulate ``s * 2**(j/64)``,
   ``j = 0..63``, as hi + lo pairs.  Find ``n_limit``, the first ``n`` whose
   result is certainly 0 or inf; ``n`` is clamped to it on the device, which
   bounds every intermediate without changing any result.
2. Reduction.  ``n = n_hi + n_lo`` by bit masking (16/27 low bits), both exact
   in the float dtype.  Every product ``n_half * Di`` is exact (15 + 8 <= 24
   bits, 27 + 26 <= 53 bits) and so is its split ``t = k + (t - k)`` into the
   nearest integer ``k`` and a remainder in ``[-1/2, 1/2]``.  The integers add
   exactly (they stay far below ``2**24``), the remainders add with small
   rounding errors.  For float32 the tail ``n * D3`` (at most ~2**-8) is formed
   with 16-bit integer limbs; for float64 it is below 2**-60 and dropped.
   Result: ``n * D = q + u``, ``q`` an integer, ``|u| <= 1/2`` with an
   absolute error below ~2**-21 (float32), i.e. 2**-27 in the exponent.
3. ``2**(n*d) = 2**(q >> 6) * 2**((q & 63) / 64) * 2**(u / 64)``.  The middle
   factor times ``s`` is the table entry ``hi + lo``; ``p = 2**(u/64) - 1`` is
   a short Taylor polynomial (``|p| < 0.0055``, so its rounding errors are
   ~2**-30 of the result).  ``y = hi + (lo + hi*p)`` rounds the significand
   once, after a relative error below ~2**-27: the result is within 1 ulp.
4. ``y * 2**(E + (q >> 6))`` as two multiplications by exact powers of two made
   from bits: no intermediate overflow, and subnormal or infinite results are
   rounded once.

Compilers may fuse ``a*b + c`` into one fused multiply-add (XLA on CPU does),
which rounds differently from the two separate operations that an eager (op by
op) evaluation performs.  Every product that feeds an addition is therefore
either exact (then fusing changes nothing) or followed by ``+ zero``, a +-0.0
that the compiler cannot see is zero; fused or not, ``round(a*b) + zero`` is
the same number.  So jitted and eager results are bit-identical.
"""

from __future__ import annotations

import dataclasses
import decimal
import fractions
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["Constants", "prepare", "scaled_pow"]

# Table entries per unit of the binary exponent.  64 keeps |u/64| <= 1/128, so
# three (float32) or six (float64) Taylor terms suffice, in a 0.5/1 KiB table.
_TABLE_BITS = 6
_TABLE_SIZE = 1 << _TABLE_BITS

# Decimal digits for host computations; float64 hi + lo pairs need ~33.
_DIGITS = 60

# Exact pieces of D per format: two would leave the float32 tail too large to
# form cheaply and the float64 tail not negligible.
_PIECES = 3


@dataclasses.dataclass(frozen=True)
class _Format:
    """Per-dtype parameters of the algorithm.

    Attributes:
        dtype: The compute dtype (float32 or float64).
        int_dtype: The integer dtype of the same width.
        mantissa_bits: Significand bits including the implicit one (24 or 53).
        exponent_bias: IEEE exponent bias (127 or 1023).
        low_bits: ``n`` is split as ``n_hi + n_lo`` with ``n_lo < 2**low_bits``.
            ``n_hi / 2**low_bits`` has at most 15 (float32: ``n < 2**31``) or
            27 (float64: ``n < 2**54``) significant bits.
        piece_bits: Significant bits of each exact piece of ``D``; with
            ``max(halves' bits) + piece_bits <= mantissa_bits`` every product
            of a half of ``n`` with a piece is exact.
        n_max: Largest ``n`` of the integer dtype.
        underflow_exponent: ``2**x`` rounds to zero for every ``x <= this``
            (2**-150 is the tie below the least subnormal 2**-149 and rounds
            to zero; likewise 2**-1075 for float64).
        overflow_exponent: ``2**x`` rounds to infinity for every ``x >= this``.
        taylor_terms: Taylor terms of ``2**(u/64) - 1`` for ``|u| <= 1/2``:
            the first omitted one is ``(ln2/128)**4/24 ~ 2**-34.7`` (float32)
            or ``(ln2/128)**7/5040 ~ 2**-65`` (float64).
        tail: Whether the remainder ``n * D3`` must be added (float32 only).
    """

    dtype: np.dtype[Any]
    int_dtype: np.dtype[Any]
    mantissa_bits: int
    exponent_bias: int
    low_bits: int
    piece_bits: int
    n_max: int
    underflow_exponent: int
    overflow_exponent: int
    taylor_terms: int
    tail: bool


_FLOAT32 = _Format(
    dtype=np.dtype(np.float32),
    int_dtype=np.dtype(np.int32),
    mantissa_bits=24,
    exponent_bias=127,
    low_bits=16,
    piece_bits=8,
    n_max=2**31 - 1,
    underflow_exponent=-151,
    overflow_exponent=129,
    taylor_terms=3,
    tail=True,
)

_FLOAT64 = _Format(
    dtype=np.dtype(np.float64),
    int_dtype=np.dtype(np.int64),
    mantissa_bits=53,
    exponent_bias=1023,
    low_bits=27,
    piece_bits=26,
    n_max=2**63 - 1,
    underflow_exponent=-1076,
    overflow_exponent=1025,
    taylor_terms=6,
    tail=False,
)


def _format_for(dtype: Any) -> _Format:
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return _FLOAT32
    if dtype == np.float64:
        return _FLOAT64
    raise ValueError(f"compute dtype must be float32 or float64, got {dtype}")


@dataclasses.dataclass(frozen=True)
class Constants:
    """Host-prepared constants for :func:`scaled_pow`; hashable, so static.

    Every float is a Python float exactly representable in ``dtype``.

    Attributes:
        dtype: Name of the compute dtype, ``"float32"`` or ``"float64"``.
        zero: True when ``scale`` is zero: the result is ``zero_value``.
        zero_value: ``0.0`` or ``-0.0``, with the sign of ``scale``.
        pieces: Exact pieces ``(D0, D1, D2)`` of ``D = 64 * d``.
        tail_multiplier: For float32, ``round(|D3| * 2**tail_shift)`` with
            ``D3 = D - D0 - D1 - D2``, at most ``2**15``; 0 if negligible.
        tail_scale: ``+-2**-tail_shift``: ``n * D3`` is about
            ``n * tail_multiplier * tail_scale``.
        table_hi: ``s * 2**(j/64)`` rounded to ``dtype``, ``j = 0..63``.
        table_lo: ``s * 2**(j/64) - table_hi[j]``, rounded to ``dtype``.
        poly: Taylor coefficients ``(ln2/64)**k / k!``, ``k = 1, 2, ...``.
        scale_exponent: ``E`` in ``scale = s * 2**E``.
        n_limit: Clamp for ``n``: from here on the result is 0 or +-inf.
            ``None`` if the clamp is never needed.
        n_top: The largest ``n`` the reduction sees (``n_limit`` or the
            dtype's maximum); bounds decide at trace time which steps to emit.
        clip_exponent: Whether the final binary exponent may leave the range
            that two normal powers of two cover (only for extreme inputs).
    """

    dtype: str
    zero: bool
    zero_value: float
    pieces: tuple[float, ...]
    tail_multiplier: int
    tail_scale: float
    table_hi: tuple[float, ...]
    table_lo: tuple[float, ...]
    poly: tuple[float, ...]
    scale_exponent: int
    n_limit: int | None
    n_top: int
    clip_exponent: bool


def _exact_fraction(x: Any) -> fractions.Fraction:
    """The exact rational value of a Python or NumPy float."""
    if isinstance(x, np.floating):
        return fractions.Fraction(*x.as_integer_ratio())
    return fractions.Fraction(*float(x).as_integer_ratio())


def _to_decimal(x: fractions.Fraction) -> decimal.Decimal:
    # Correct to the context's precision (the denominator is a power of two).
    return decimal.Decimal(x.numerator) / decimal.Decimal(x.denominator)


def _round(x: decimal.Decimal, fmt: _Format) -> float:
    """``x`` rounded to the compute dtype (possibly off by an ulp for float32).

    ``float(Decimal)`` is correctly rounded to float64; rounding again to
    float32 can differ from direct rounding in rare ties.  Callers keep the
    error in a second word or need no correct rounding.
    """
    return float(fmt.dtype.type(float(x)))


def _few_bits(x: decimal.Decimal, bits: int) -> float:
    """A number with at most ``bits`` significant bits within ``2**-bits|x|``."""
    if x == 0:
        return 0.0
    mantissa, exponent = math.frexp(float(x))  # 0.5 <= |mantissa| < 1
    # |round(mantissa * 2**bits)| <= 2**bits has at most `bits` significant
    # bits (2**bits itself has one).
    return math.ldexp(round(mantissa * 2**bits), exponent - bits)


def _representable(x: float, fmt: _Format) -> bool:
    return float(fmt.dtype.type(x)) == x


def prepare(scale: Any, rate: Any, decay_steps: int, dtype: Any) -> Constants:
    """Prepares the host constants for ``scale * rate**(n / decay_steps)``.

    Pure Python/NumPy; logarithms, exponentials and the exact splitting of
    constants happen here, once, with 60-digit :mod:`decimal` arithmetic.

    Args:
        scale: Finite Python or NumPy float; its exact binary value is used.
        rate: Finite positive Python or NumPy float; its exact value is used.
        decay_steps: Integer in ``[1, 2**63 - 1]``.  For a staircase schedule
            pass 1 and the number of completed stairs as ``n``.
        dtype: Compute dtype, ``jnp.float32`` or ``jnp.float64``.

    Returns:
        A hashable :class:`Constants` to pass to :func:`scaled_pow`.

    Raises:
        ValueError: For a non-finite scale, a non-positive or non-finite rate,
            a decay_steps outside ``[1, 2**63 - 1]`` or another dtype.
    """
    fmt = _format_for(dtype)
    if not math.isfinite(float(scale)):
        raise ValueError(f"scale must be finite, got {scale}")
    if not (math.isfinite(float(rate)) and float(rate) > 0):
        raise ValueError(f"rate must be finite and positive, got {rate}")
    if isinstance(decay_steps, bool) or not isinstance(decay_steps, (int, np.integer)):
        raise ValueError(f"decay_steps must be an integer, got {decay_steps!r}")
    decay_steps = int(decay_steps)
    if not 1 <= decay_steps <= 2**63 - 1:
        raise ValueError(f"decay_steps must be in [1, 2**63-1], got {decay_steps}")

    scale_exact = _exact_fraction(scale)
    with decimal.localcontext() as ctx:
        ctx.prec = _DIGITS
        ln2 = decimal.Decimal(2).ln()
        table_step = ln2 / _TABLE_SIZE  # ln(2**(1/64))
        poly = tuple(
            _round(table_step**k / math.factorial(k), fmt)
            for k in range(1, fmt.taylor_terms + 1)
        )
        if scale_exact == 0:
            return Constants(
                dtype=fmt.dtype.name,
                zero=True,
                zero_value=math.copysign(0.0, float(scale)),
                pieces=(),
                tail_multiplier=0,
                tail_scale=0.0,
                table_hi=(),
                table_lo=(),
                poly=poly,
                scale_exponent=0,
                n_limit=None,
                n_top=0,
                clip_exponent=False,
            )

        # scale = significand * 2**scale_exponent, 1 <= |significand| < 2.
        magnitude = abs(scale_exact)
        scale_exponent = (
            magnitude.numerator.bit_length() - magnitude.denominator.bit_length()
        )
        if magnitude < fractions.Fraction(2) ** scale_exponent:
            scale_exponent -= 1
        significand = _to_decimal(scale_exact / fractions.Fraction(2) ** scale_exponent)

        # hi + lo equals significand * 2**(j/64) to ~2**-2p relative; lo also
        # absorbs any misrounding of hi.
        table_hi, table_lo = [], []
        for j in range(_TABLE_SIZE):
            entry = significand * (table_step * j).exp()
            hi = _round(entry, fmt)
            table_hi.append(hi)
            table_lo.append(_round(entry - decimal.Decimal(hi), fmt))

        d = _to_decimal(_exact_fraction(rate)).ln() / ln2 / decay_steps
        big_d = d * _TABLE_SIZE

        # Largest n that matters: from n_limit on, |result| is below half the
        # least subnormal (d < 0) or above the largest float (d > 0).
        log2_scale = scale_exponent + abs(significand).ln() / ln2
        if d < 0:
            bound = (log2_scale - fmt.underflow_exponent) / -d
        elif d > 0:
            bound = (fmt.overflow_exponent - log2_scale) / d
        n_limit: int | None = None
        if d != 0:
            n_limit = max(0, int(bound.to_integral_value(decimal.ROUND_CEILING)))
            if n_limit >= fmt.n_max:
                n_limit = None  # never reached by a valid n: no clamp
        n_top = fmt.n_max if n_limit is None else n_limit

        # Every |n * Di| is below 2 * n_top * |D| + 1; the integer parts must
        # add exactly, i.e. stay well below 2**mantissa_bits.  n_top * |d| is
        # at most ~(1075 + 1074 + 1076), so this holds for every valid input.
        if n_top * abs(big_d) * 4 >= 2 ** (fmt.mantissa_bits - 2):
            raise ValueError(
                "exponent range too large for exact reduction: "
                f"scale={scale}, rate={rate}, decay_steps={decay_steps}"
            )

        # Pieces with piece_bits significant bits each, so that products with
        # the halves of n are exact.  A piece whose products all stay below
        # 2**-(p + 8) (units of D) contributes nothing and is dropped; this
        # also drops any piece too small to be represented exactly.
        pieces = []
        rest = big_d
        for _ in range(_PIECES):
            piece = _few_bits(rest, fmt.piece_bits)
            negligible = n_top * abs(piece) < 2.0 ** -(fmt.mantissa_bits + 8)
            if negligible or not _representable(piece, fmt):
                piece = 0.0
            pieces.append(piece)
            rest -= decimal.Decimal(piece)
        pieces_tuple = tuple(pieces)

        # The tail n * D3 (|D3| <~ 2**-2p |D|).  Its largest value must be far
        # below the ~2**-21 accuracy of u for float32 and below 2**-50 for
        # float64, where it is dropped.
        # (Only n < 2**(2 * low_bits) has exact products; float64 accuracy is
        # promised up to 2**53.)
        tail_max = min(n_top, 2 ** (2 * fmt.low_bits)) * abs(rest)
        tail_multiplier, tail_scale = 0, 0.0
        if fmt.tail and tail_max >= decimal.Decimal(2) ** -30:
            # 2**14 <= multiplier <= 2**15: the limb products stay below 2**31
            # (int32) and the multiplier is accurate to 2**-15.
            tail_shift = 14 - math.floor(math.log2(abs(float(rest))))
            tail_multiplier = round(abs(rest) * decimal.Decimal(2) ** tail_shift)
            tail_scale = math.copysign(2.0**-tail_shift, float(rest))
        elif tail_max >= decimal.Decimal(2) ** -(fmt.mantissa_bits + 4):
            raise AssertionError(f"unexpected reduction tail {tail_max}")

        # Largest |binary exponent| for n in [0, n_top] plus 2 (|y| < 4 and
        # rounding of q), against the range 2*(1 - bias) .. 2*bias that two
        # normal powers of two cover.
        largest_exponent = max(abs(log2_scale), abs(log2_scale + n_top * d)) + 2
        clip_exponent = bool(largest_exponent >= 2 * (fmt.exponent_bias - 1))

    return Constants(
        dtype=fmt.dtype.name,
        zero=False,
        zero_value=0.0,
        pieces=pieces_tuple,
        tail_multiplier=tail_multiplier,
        tail_scale=tail_scale,
        table_hi=tuple(table_hi),
        table_lo=tuple(table_lo),
        poly=poly,
        scale_exponent=scale_exponent,
        n_limit=n_limit,
        n_top=n_top,
        clip_exponent=clip_exponent,
    )


def _power_of_two(exponent: jax.Array, fmt: _Format) -> jax.Array:
    """Exactly ``2**exponent`` for integer ``exponent`` in the normal range."""
    bits = (exponent + fmt.exponent_bias) << (fmt.mantissa_bits - 1)
    return lax.bitcast_convert_type(bits.astype(fmt.int_dtype), fmt.dtype)


def _x64_enabled() -> bool:
    return bool(jax.dtypes.canonicalize_dtype(np.float64) == np.float64)


def scaled_pow(constants: Constants, n: jax.Array) -> jax.Array:
    """Computes ``scale * 2**(n * d)`` elementwise, within 1 ulp.

    Pure ``jnp``/``lax``: works eagerly and under ``jit`` and ``vmap``, with
    bit-identical results.  ``constants`` is static (a closure or a static
    argument).

    Args:
        constants: The result of :func:`prepare`.
        n: Integer array of any shape with ``n >= 0``.  For float32 compute it
            must fit in int32.  For float64 compute (needs ``jax_enable_x64``)
            the result is within 1 ulp for ``n <= 2**53`` and close beyond.

    Returns:
        An array of ``n.shape`` in the compute dtype.  Results below the
        subnormal range are +-0, above the finite range +-inf, never NaN.
    """
    fmt = _format_for(constants.dtype)
    if fmt.dtype == np.float64 and not _x64_enabled():
        raise ValueError("float64 compute needs jax_enable_x64")
    n = jnp.asarray(n)
    if not jnp.issubdtype(n.dtype, jnp.integer):
        raise TypeError(f"n must be an integer array, got {n.dtype}")
    if constants.zero:
        return jnp.full(n.shape, constants.zero_value, fmt.dtype)

    # From n_limit on the result is saturated, so clamping changes nothing and
    # bounds all later magnitudes.  It also keeps wider inputs in range.
    limit = fmt.n_max if constants.n_limit is None else constants.n_limit
    if limit < int(np.iinfo(n.dtype).max):
        n = jnp.minimum(n, jnp.asarray(limit, n.dtype))
    n = n.astype(fmt.int_dtype)
    n_top = constants.n_top

    # n = n_hi + n_lo; each half has few significant bits and converts exactly.
    n_lo_int = n & ((1 << fmt.low_bits) - 1)
    halves = [(n_lo_int.astype(fmt.dtype), min(n_top, (1 << fmt.low_bits) - 1))]
    if n_top >> fmt.low_bits:
        halves.append(((n - n_lo_int).astype(fmt.dtype), n_top))

    # n * D3 = (n_hi * m + n_lo * m) * 2**-shift * sign (m = tail_multiplier)
    # with exact int32 products (m < 2**15), each rounded once on conversion
    # and scaled by an exact power of two.  |tail| <~ 2**-8.
    frac: jax.Array | None = None
    if constants.tail_multiplier:
        m = constants.tail_multiplier
        frac = (n_lo_int * m).astype(fmt.dtype) * fmt.dtype.type(constants.tail_scale)
        if n_top >> fmt.low_bits:
            tail_hi = ((n >> fmt.low_bits) * m).astype(fmt.dtype)
            scale_hi = constants.tail_scale * 2.0**fmt.low_bits
            frac = frac + tail_hi * fmt.dtype.type(scale_hi)

    # 64 * n * d = whole + frac.  Smallest terms first, for a smaller rounding
    # error in frac.  Each t is exact; when |t| may reach 1/2 it is split into
    # its nearest integer k and t - k, both exact.
    whole: jax.Array | None = None
    for piece in reversed(constants.pieces):
        if piece == 0.0:
            continue
        for half, half_top in halves:
            t = half * fmt.dtype.type(piece)
            if half_top * abs(piece) >= 0.5:
                k = lax.round(t, lax.RoundingMethod.TO_NEAREST_EVEN)
                whole = k if whole is None else whole + k
                t = t - k
            frac = t if frac is None else frac + t
    if frac is None:  # rate == 1: the exponent is zero
        frac = jnp.zeros(n.shape, fmt.dtype)
    k = lax.round(frac, lax.RoundingMethod.TO_NEAREST_EVEN)
    u = frac - k  # exact, in [-1/2, 1/2]
    q = (k if whole is None else whole + k).astype(fmt.int_dtype)

    # Unsigned index: no negative-index wrapping code in the gather.
    index = (q & (_TABLE_SIZE - 1)).astype(jnp.uint32)
    hi_table = jnp.asarray(np.asarray(constants.table_hi, fmt.dtype))
    lo_table = jnp.asarray(np.asarray(constants.table_lo, fmt.dtype))
    hi = hi_table.at[index].get(mode="promise_in_bounds")  # index in [0, 63]
    lo = lo_table.at[index].get(mode="promise_in_bounds")

    # +-0.0 with the sign of the loaded hi: the compiler cannot prove it zero.
    # `round(x*y) + zero` is round(x*y) whether or not x*y + zero is fused into
    # one multiply-add, and it is no longer a product, so the following add
    # cannot be fused with the multiplication.
    sign_bit = np.iinfo(fmt.int_dtype).min  # only the sign bit set
    hi_bits = lax.bitcast_convert_type(hi, fmt.int_dtype)
    zero = lax.bitcast_convert_type(hi_bits & sign_bit, fmt.dtype)

    # p = 2**(u/64) - 1 by Horner.  |p| < 0.0055, so its rounding errors are
    # ~2**-30 of the result.
    coefficients = [fmt.dtype.type(c) for c in constants.poly]
    p = u * coefficients[-1]
    for c in reversed(coefficients[:-1]):
        p = ((p + zero) + c) * u

    # The one rounding of the significand: lo + hi*p is a small correction
    # (< 0.006 * hi) whose own rounding errors are ~2**-8 ulp of y.
    y = hi + ((hi * p + zero) + lo)

    # y * 2**exponent as two exact normal powers of two: the first product
    # stays normal, the second rounds once into the subnormals or to inf.
    exponent = (q >> _TABLE_BITS) + constants.scale_exponent
    if constants.clip_exponent:
        # Beyond this range the result is 0 or inf anyway (|y| < 4).
        exponent = jnp.clip(
            exponent, 2 * (1 - fmt.exponent_bias), 2 * fmt.exponent_bias
        )
    half_exponent = exponent >> 1
    result: jax.Array = (y * _power_of_two(half_exponent, fmt)) * _power_of_two(
        exponent - half_exponent, fmt
    )
    return result
