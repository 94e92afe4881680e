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

Traced hyperparameters (:func:`prepare_traced`, :class:`TracedConstants`).  When
``scale``, ``rate`` and ``decay_steps`` are arrays inside ``jit``/``vmap``, the
same constants are computed on the device in the compute dtype, with
double-word ("double-float", hi + lo, u = 2**-p) arithmetic, and
:func:`scaled_pow` runs the same reduction and finish with every step emitted
(all pieces, always split integer parts, always clipped exponent):

a. ``rate = m * 2**e`` from its bits (subnormals by integer normalisation),
   ``m`` in [0.707, 1.414).  ``j = round((m - 1) * 128)`` (exact) picks
   ``inv_j ~ 1/(1 + j/128)`` with 12 significant bits (``inv_0 = 1``, so rates
   near 1 reduce to ``r = m - 1`` exactly).  ``m = m_hi + m_lo`` by bits; both
   products with ``inv_j`` are exact, ``m_hi*inv_j - 1`` is exact (Sterbenz)
   and two_sum makes ``r = m*inv_j - 1`` an exact double word, ``|r| < 2**-7.4``.
b. ``log(1 + r)`` by Horner in double words, 7 (float32) or 14 (float64) terms,
   so the first omitted term is below ``2**-2p |r|``; times ``64/ln 2`` (double
   word), plus ``64*e`` (exact) and the tabulated ``-64*log2(inv_j)`` (double
   word, 60-digit host values).  ``|log2 m| < 1/2`` and ``|log2 c_j|`` is at
   least twice ``|log2(1 + r)|`` for ``j != 0``: no cancellation beyond 2x.
c. Divided by ``decay_steps = hi + lo`` (exact integer halves, exact two_sum)
   with three quotient digits.  Each double-word operation has a relative
   error of a few ``u**2`` (Joldes, Muller, Popescu 2017); measured, ``D`` is
   within 2**-46 (float32) and 2**-104 (float64) relative, where the
   reduction needs ~2**-36: ``|n*D| <= ~2**15``, error ``<= 2**-31``.
d. ``D = D0 + D1 + D2 + D3``: each piece is the rest rounded to 8 (26) bits by
   integer operations, each rest exact (Sterbenz + two_sum), so the products
   with the halves of ``n`` are exact as in step 2.  The tail
   ``|D3| <= ~2**-24 |D|`` is one rounded float; ``n * D3`` is one rounded
   product of the rounded ``n``: ``|n*D3| <= ~2**-9`` (float32), so its
   relative error ~3u is ~2**-31 absolute, negligible next to the ~2**-21 of
   ``u`` (float64: ``|n*D3| <= 2**-60``).
e. ``n_limit = ceil(64*room/|D| * (1 + 2**-18)) + 2`` with ``room`` from the
   scale's binary exponent ``E`` (``E + 1 + 151`` below, ``129 - E`` above; for
   float64 1076/1025): never below the true saturation point, since
   ``log2|scale|`` is in ``[E, E + 1)`` and the margin exceeds the rounding
   errors; ``n_limit*|D| <= 64*(280 + margin) + |D|`` keeps the integer parts
   exact.  No saturation before the integer maximum: no effective clamp.
f. The table ``s * 2**(j/64)`` is a host double word ``2**(j/64)`` times the
   scale's significand ``s`` (exact two_prod, plus ``s*lo`` rounded): within
   ~2**-2p of exact, as the host table.  The sign of the scale is put into the
   first power of two of step 4 (by bits), so a zero scale gives signed zeros.
   Invalid values (rate <= 0 or not finite, scale not finite, decay_steps < 1)
   give NaN: traced values cannot raise.

The inputs pass through an optimisation barrier: XLA otherwise rewrites
arithmetic on compile-time constants (``(C + b) - C`` to ``b``, ``x / C`` to
``x * (1/C)``), which breaks the exact steps when some inputs are constants.
Known (non-traced) inputs are prepared at once by one compiled program that
takes them as arguments.

Compilers may fuse ``a*b + c`` into one fused multiply-add (XLA on CPU does),
which rounds differently from the two separate operations that an eager (op by
op) evaluation performs.  Every product that feeds an addition is therefore
either exact (then fusing changes nothing) or followed by ``+ zero``, a +-0.0
that the compiler cannot see is zero; fused or not, ``round(a*b) + zero`` is
the same number.  So jitted and eager results are bit-identical (unless ``n``
itself is a compile-time constant: XLA may then fold the guard).
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
    "TracedConstants",
    "prepare",
    "prepare_traced",
    "scaled_pow",
]

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


# ---------------------------------------------------------------------------
# The kernel, shared by static (host-prepared) and traced (device-prepared)
# constants.  Each operand below is either a Python float/int, which the
# static path uses to decide at trace time which steps to emit, or an array,
# for which every step is emitted (data-independent structure).
# ---------------------------------------------------------------------------


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


def _x64_enabled() -> bool:
    return bool(jax.dtypes.canonicalize_dtype(np.float64) == np.float64)


def _check_n(n: Any, fmt: _Format) -> jax.Array:
    if fmt.dtype == np.float64 and not _x64_enabled():
        raise ValueError("float64 compute needs jax_enable_x64")
    array: jax.Array = jnp.asarray(n)
    if not jnp.issubdtype(array.dtype, jnp.integer):
        raise TypeError(f"n must be an integer array, got {array.dtype}")
    return array


def _clamp(n: jax.Array, limit: int | jax.Array, fmt: _Format) -> jax.Array:
    """``min(n, limit)`` in the integer dtype of the format.

    From the limit on the result is saturated, so clamping changes nothing and
    bounds all later magnitudes.  It also keeps wider inputs in range.
    """
    if isinstance(limit, int):
        if limit < int(np.iinfo(n.dtype).max):
            n = jnp.minimum(n, jnp.asarray(limit, n.dtype))
        return n.astype(fmt.int_dtype)
    clamped: jax.Array
    if int(np.iinfo(n.dtype).max) <= fmt.n_max:  # n converts exactly
        clamped = jnp.minimum(n.astype(fmt.int_dtype), limit)
    else:
        clamped = jnp.minimum(n, limit.astype(n.dtype)).astype(fmt.int_dtype)
    return clamped


def _reduce(
    halves: list[tuple[jax.Array, int | None]],
    pieces: list[Any],
    frac: jax.Array | None,
    shape: tuple[int, ...],
    fmt: _Format,
) -> tuple[jax.Array, jax.Array]:
    """``sum(half * piece) + frac = q + u``: integer ``q``, ``|u| <= 1/2``.

    ``halves`` pairs each exact half of ``n`` with its largest value, or None
    if unknown; ``pieces`` are the exact few-bit pieces of ``D`` (Python
    floats, skipped when zero, or arrays).  Smallest terms first, for a smaller
    rounding error in ``frac``.  Each ``t = half * piece`` is exact; when
    ``|t|`` may reach 1/2 it is split into its nearest integer ``k`` and
    ``t - k``, both exact, and the integers add exactly.
    """
    whole: jax.Array | None = None
    for piece in reversed(pieces):
        magnitude: float | None = None
        if isinstance(piece, float):
            if piece == 0.0:
                continue
            magnitude = abs(piece)
            piece = fmt.dtype.type(piece)
        for half, half_top in halves:
            t = half * piece
            if magnitude is None or half_top is None or half_top * magnitude >= 0.5:
                k = lax.round(t, lax.RoundingMethod.TO_NEAREST_EVEN)
                whole = k if whole is None else whole + k
                t = t - k
            frac = t if frac is None else frac + t
    if frac is None:  # rate == 1: the exponent is zero
        frac = jnp.zeros(shape, fmt.dtype)
    k = lax.round(frac, lax.RoundingMethod.TO_NEAREST_EVEN)
    u = frac - k  # exact, in [-1/2, 1/2]
    q = (k if whole is None else whole + k).astype(fmt.int_dtype)
    return q, u


def _finish(
    q: jax.Array,
    u: jax.Array,
    table_hi: jax.Array,
    table_lo: jax.Array,
    poly: tuple[float, ...],
    scale_exponent: int | jax.Array,
    clip: bool,
    sign: jax.Array | None,
    fmt: _Format,
) -> jax.Array:
    """``(table[q & 63] * 2**(u/64)) * 2**((q >> 6) + scale_exponent)``."""
    # Unsigned index: no negative-index wrapping code in the gather.
    index = (q & (_TABLE_SIZE - 1)).astype(jnp.uint32)
    hi = table_hi.at[index].get(mode="promise_in_bounds")  # index in [0, 63]
    lo = table_lo.at[index].get(mode="promise_in_bounds")

    # +-0.0 with the sign of the loaded hi: the compiler cannot prove it zero.
    # `round(x*y) + zero` is round(x*y) whether or not x*y + zero is fused into
    # one multiply-add, and it is no longer a product, so the following add
    # cannot be fused with the multiplication.
    sign_bit = np.iinfo(fmt.int_dtype).min  # only the sign bit set
    hi_bits = lax.bitcast_convert_type(hi, fmt.int_dtype)
    zero = lax.bitcast_convert_type(hi_bits & sign_bit, fmt.dtype)

    # p = 2**(u/64) - 1 by Horner.  |p| < 0.0055, so its rounding errors are
    # ~2**-30 of the result.
    coefficients = [fmt.dtype.type(c) for c in poly]
    p = u * coefficients[-1]
    for c in reversed(coefficients[:-1]):
        p = ((p + zero) + c) * u

    # The one rounding of the significand: lo + hi*p is a small correction
    # (< 0.006 * hi) whose own rounding errors are ~2**-8 ulp of y.
    y = hi + ((hi * p + zero) + lo)

    # y * 2**exponent as two exact normal powers of two: the first product
    # stays normal, the second rounds once into the subnormals or to inf.
    exponent = (q >> _TABLE_BITS) + scale_exponent
    if clip:
        # Beyond this range the result is 0 or inf anyway (|y| < 4).
        exponent = jnp.clip(
            exponent,
            exponent.dtype.type(2 * (1 - fmt.exponent_bias)),
            exponent.dtype.type(2 * fmt.exponent_bias),
        )
    half_exponent = exponent >> 1
    result: jax.Array = (y * _power_of_two(half_exponent, fmt, sign)) * _power_of_two(
        exponent - half_exponent, fmt
    )
    return result


def scaled_pow(constants: Constants | TracedConstants, n: jax.Array) -> jax.Array:
    """Computes ``scale * 2**(n * d)`` elementwise, within 1 ulp.

    Pure ``jnp``/``lax``: works eagerly and under ``jit`` and ``vmap``, with
    bit-identical results.

    Args:
        constants: The result of :func:`prepare` (static: a closure or a static
            argument; the fast path), or of :func:`prepare_traced` (a pytree of
            arrays, e.g. from traced hyperparameters; its scalars broadcast
            against ``n``, and under ``vmap`` it may be batched).
        n: Integer array of any shape with ``n >= 0``.  For float32 compute it
            must fit in int32.  For float64 compute (needs ``jax_enable_x64``)
            the result is within 1 ulp for ``n <= 2**53`` and close beyond.

    Returns:
        An array of ``n.shape`` in the compute dtype.  Results below the
        subnormal range are +-0, above the finite range +-inf, never NaN (for
        traced constants: NaN for invalid hyperparameters).
    """
    if isinstance(constants, TracedConstants):
        return _scaled_pow_traced(constants, n)
    fmt = _format_for(constants.dtype)
    n = _check_n(n, fmt)
    if constants.zero:
        return jnp.full(n.shape, constants.zero_value, fmt.dtype)

    limit = fmt.n_max if constants.n_limit is None else constants.n_limit
    n = _clamp(n, limit, fmt)
    n_top = constants.n_top

    # n = n_hi + n_lo; each half has few significant bits and converts exactly.
    n_lo_int = n & ((1 << fmt.low_bits) - 1)
    halves: list[tuple[jax.Array, int | None]] = [
        (n_lo_int.astype(fmt.dtype), min(n_top, (1 << fmt.low_bits) - 1))
    ]
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

    q, u = _reduce(halves, list(constants.pieces), frac, n.shape, fmt)
    return _finish(
        q,
        u,
        jnp.asarray(np.asarray(constants.table_hi, fmt.dtype)),
        jnp.asarray(np.asarray(constants.table_lo, fmt.dtype)),
        constants.poly,
        constants.scale_exponent,
        constants.clip_exponent,
        None,
        fmt,
    )


def _scaled_pow_traced(constants: TracedConstants, n: jax.Array) -> jax.Array:
    """:func:`scaled_pow` for device-prepared constants: every step, always."""
    fmt = _format_for(constants.table_hi.dtype)
    n = _check_n(n, fmt)
    n = _clamp(n, constants.n_limit, fmt)
    n_lo_int = n & ((1 << fmt.low_bits) - 1)
    halves: list[tuple[jax.Array, int | None]] = [
        (n_lo_int.astype(fmt.dtype), None),
        ((n - n_lo_int).astype(fmt.dtype), None),
    ]
    # The tail n * D3 as one rounded product of the rounded n: |n * D3| is at
    # most ~2**-9 (float32; 2**-60 for float64), so its relative error ~2**-22
    # is ~2**-31 absolute, negligible next to the ~2**-21 of frac.  The product
    # feeds an addition, so it is hidden from contraction by `+ zero`, a +0.0
    # (n >= 0) that the compiler cannot see is zero.
    zero = lax.bitcast_convert_type(n & np.iinfo(fmt.int_dtype).min, fmt.dtype)
    frac = n.astype(fmt.dtype) * constants.tail + zero
    pieces = [constants.pieces[..., i] for i in range(_PIECES)]
    q, u = _reduce(halves, pieces, frac, n.shape, fmt)
    return _finish(
        q,
        u,
        constants.table_hi,
        constants.table_lo,
        _traced_tables(fmt).poly,
        constants.scale_exponent,
        True,
        constants.sign,
        fmt,
    )


# ---------------------------------------------------------------------------
# Device-side preparation for traced hyperparameters.
# ---------------------------------------------------------------------------


class TracedConstants(NamedTuple):
    """Device-prepared constants for :func:`scaled_pow`; a pytree of arrays.

    Made by :func:`prepare_traced`.  Without ``vmap`` every field describes one
    config (scalars and 64-entry tables); under ``vmap`` the fields carry the
    batch dimension and ``scaled_pow`` is mapped with them.

    Attributes:
        pieces: ``(D0, D1, D2)``, shape ``(3,)``: exact pieces of ``D = 64 * d``
            with 8 (float32) or 26 (float64) significant bits.
        tail: ``D3 = D - D0 - D1 - D2`` rounded to the compute dtype.
        table_hi: ``s * 2**(j/64)``, ``j = 0..63``, high parts (``|s|`` in
            [1, 2) is the significand of ``|scale|``).
        table_lo: The low parts: ``hi + lo`` is exact to ~2**-2p relative.
        scale_exponent: ``E`` in ``|scale| = s * 2**E`` (integer dtype).
        sign: The sign bit of ``scale`` (0 or the integer dtype's minimum).
        n_limit: Clamp for ``n``, never below the first ``n`` whose result is
            certainly 0 or +-inf (the integer maximum if there is none).
    """

    pieces: jax.Array
    tail: jax.Array
    table_hi: jax.Array
    table_lo: jax.Array
    scale_exponent: jax.Array
    sign: jax.Array
    n_limit: jax.Array


# log2 of the rate: rate = m * 2**e with m in [_LOG_LOW_M, _LOG_SPLIT), then
# j = round((m - 1) * _LOG_STEPS), so c_j = 1 + j/_LOG_STEPS is within 1/256 of
# m, and c_0 = 1 exactly: rates near 1 are reduced exactly to r = m - 1.
_LOG_STEPS = 128
_LOG_SPLIT = 1 + 53 / 128  # 1.4140625 <= sqrt(2); m >= it is halved
_LOG_J_MIN = -38  # round((0.70703125 - 1) * 128) = round(-37.5) = -38
_LOG_J_MAX = 53  # (m - 1) * 128 < 53
# Significant bits of inv_j ~ 1/c_j: with the 12-bit (float32) or 26-bit
# (float64) half of m, and the other half, the products are exact.
_INV_BITS = 12


class _TracedTables(NamedTuple):
    """Host constants of :func:`prepare_traced` for one format."""

    log_inv: np.ndarray  # inv_j, j = _LOG_J_MIN.._LOG_J_MAX
    log_hi: np.ndarray  # -64 * log2(inv_j), double-word
    log_lo: np.ndarray
    series: tuple[tuple[float, float], ...]  # (-1)**(k+1) / k, k = 1..K
    inv_ln2_64: tuple[float, float]  # 64 / ln(2)
    exp_hi: np.ndarray  # 2**(j/64), j = 0..63, double-word
    exp_lo: np.ndarray
    poly: tuple[float, ...]  # as Constants.poly
    r_max: float  # largest |r| = |m * inv_j - 1|


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


@functools.cache
def _traced_tables(fmt: _Format) -> _TracedTables:
    with decimal.localcontext() as ctx:
        ctx.prec = _DIGITS
        ln2 = decimal.Decimal(2).ln()
        table_step = ln2 / _TABLE_SIZE
        poly = tuple(
            _round(table_step**k / math.factorial(k), fmt)
            for k in range(1, fmt.taylor_terms + 1)
        )
        inv, log_hi, log_lo = [], [], []
        r_max = 0.0
        low_m = fractions.Fraction(_LOG_SPLIT) / 2
        for j in range(_LOG_J_MIN, _LOG_J_MAX + 1):
            centre = 1 + fractions.Fraction(j, _LOG_STEPS)
            inv_j = _few_bits(1 / _to_decimal(centre), _INV_BITS)
            inv.append(inv_j)
            hi, lo = _double_word(-_TABLE_SIZE * decimal.Decimal(inv_j).ln() / ln2, fmt)
            log_hi.append(hi)
            log_lo.append(lo)
            half_width = fractions.Fraction(1, 2 * _LOG_STEPS)
            for m in (
                max(centre - half_width, low_m),
                min(centre + half_width, fractions.Fraction(_LOG_SPLIT)),
            ):
                r_max = max(r_max, abs(float(m * fractions.Fraction(inv_j) - 1)))
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
    return _TracedTables(
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


# Double-word ("double-float", "double-double") arithmetic: a pair (hi, lo)
# of the compute dtype with |lo| <= ulp(hi)/2 stands for hi + lo.  u = 2**-p.
# Every rounded product that feeds an addition is followed by `+ zero` (see
# the module docstring); products of split halves are exact and need none.
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
    p = a * b + zero
    a_hi, a_lo = _split(a, fmt)
    b_hi, b_lo = _split(b, fmt)
    e = (((a_hi * b_hi - p) + a_hi * b_lo) + a_lo * b_hi) + a_lo * b_lo
    return p, e


def _dw_add(x: _DW, y: _DW) -> _DW:
    """AccurateDWPlusDW (Joldes, Muller, Popescu 2017, alg. 6): relative error
    below 3u**2 / (1 - 4u)."""
    s_hi, s_lo = _two_sum(x[0], y[0])
    t_hi, t_lo = _two_sum(x[1], y[1])
    v_hi, v_lo = _fast_two_sum(s_hi, s_lo + t_hi)
    return _fast_two_sum(v_hi, t_lo + v_lo)


def _dw_mul(x: _DW, y: _DW, zero: jax.Array, fmt: _Format) -> _DW:
    """DWTimesDW1 (ibid., alg. 10, without FMA): relative error ~7u**2."""
    c_hi, c_lo1 = _two_prod(x[0], y[0], zero, fmt)
    cross = (x[0] * y[1] + zero) + (x[1] * y[0] + zero)
    return _fast_two_sum(c_hi, c_lo1 + cross)


def _dw_mul_fp(x: _DW, y: Any, zero: jax.Array, fmt: _Format) -> _DW:
    """DWTimesFP1 (ibid., alg. 7): relative error below 1.5u**2 + 4u**3."""
    c_hi, c_lo1 = _two_prod(x[0], y, zero, fmt)
    c_lo2 = x[1] * y + zero
    t_hi, t_lo1 = _fast_two_sum(c_hi, c_lo2)
    return _fast_two_sum(t_hi, t_lo1 + c_lo1)


def _dw_div(x: _DW, y: _DW, zero: jax.Array, fmt: _Format) -> _DW:
    """``x / y`` by three quotient digits: each remainder ``x - y*(q1+...)`` is
    formed with relative error ~1.5u**2 of ``x``, so ``q1 + q2 + q3`` is
    within ~4u**2 of ``x/y`` relative.

    ``divisor = y[0] + zero`` hides a compile-time constant divisor (such as a
    static decay_steps) from XLA, which would otherwise multiply by its
    rounded reciprocal instead of dividing.
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


def _log2_rate_64(
    rate_bits: jax.Array, zero: jax.Array, fmt: _Format, tables: _TracedTables
) -> _DW:
    """``64 * log2(rate)`` as a double word, to ~2**-2p relative."""
    dtype, int_dtype = fmt.dtype, fmt.int_dtype
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
    # r = m * inv - 1 exactly: the products of the halves of m with the
    # 12-bit inv are exact; m_hi * inv is within 2**-6 of 1, so subtracting 1
    # is exact (Sterbenz); two_sum adds the two exact terms exactly.
    m_hi, m_lo = _split(m, fmt)
    r = _two_sum(m_hi * inv - 1, m_lo * inv)

    # log(1 + r) by Horner in double words (|r| < 2**-7.4: the first omitted
    # term is below 2**-2p |r|; magnitudes stay near |r| or 1, never tiny).
    def constant(pair: tuple[float, float]) -> _DW:
        return (dtype.type(pair[0]), dtype.type(pair[1]))

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


def prepare_traced(
    scale: Any, rate: Any, decay_steps: Any, dtype: Any
) -> TracedConstants:
    """Prepares :func:`scaled_pow` constants on the device, from arrays.

    The counterpart of :func:`prepare` for hyperparameters that are traced
    (``jit`` arguments, pytree leaves, ``vmap`` over a batch of configs): pure
    ``jnp``/``lax`` in the compute dtype only (no float64/int64 in a float32
    program), bit-identical under ``jit``, ``vmap`` and eagerly.  The results
    of ``scaled_pow`` are within 1 ulp of ``scale * rate**(n / decay_steps)``
    for the values of ``scale`` and ``rate`` in the compute dtype.

    Args:
        scale: Scalar; converted to ``dtype`` (its value there is used exactly).
        rate: Scalar, finite and positive; converted to ``dtype``.
        decay_steps: Integer scalar >= 1; converted to int32 (float32 compute)
            or int64 (float64 compute).  For a staircase schedule pass 1 and
            the number of completed stairs as ``n``.
        dtype: Compute dtype, ``jnp.float32`` or ``jnp.float64`` (needs x64).

    Returns:
        A :class:`TracedConstants`.  Invalid values (a non-finite scale, a rate
        that is not finite and positive, decay_steps < 1) make every result
        NaN; they cannot raise, being traced.

    Raises:
        ValueError: For a non-scalar argument (``vmap`` over batches) or an
            unsupported dtype.
        TypeError: For a non-integer ``decay_steps`` dtype.
    """
    fmt = _format_for(dtype)
    if fmt.dtype == np.float64 and not _x64_enabled():
        raise ValueError("float64 compute needs jax_enable_x64")
    if not jnp.issubdtype(jnp.result_type(decay_steps), jnp.integer):
        raise TypeError("decay_steps must be an integer")
    if not any(isinstance(x, jax.core.Tracer) for x in (scale, rate, decay_steps)):
        # Known values (eagerly, or closed over inside jit): prepare them now,
        # in one compiled program that takes them as arguments.  Compiled as
        # constants into a caller's program, XLA and LLVM could fold the
        # `+ zero` guards and contract products into additions.  (Under
        # `jax.disable_jit()` this runs op by op, with the same bits.)
        with jax.ensure_compile_time_eval():
            known: TracedConstants = _prepare_compiled(scale, rate, decay_steps, fmt)
            return known
    return _prepare_traced(scale, rate, decay_steps, fmt)


def _prepare_traced(
    scale: Any, rate: Any, decay_steps: Any, fmt: _Format
) -> TracedConstants:
    float_dtype, int_dtype = fmt.dtype, fmt.int_dtype
    scale = jnp.asarray(scale, float_dtype)
    rate = jnp.asarray(rate, float_dtype)
    decay_steps = jnp.asarray(decay_steps, int_dtype)
    if scale.ndim or rate.ndim or decay_steps.ndim:
        raise ValueError("scale, rate and decay_steps must be scalars (use vmap)")
    # XLA rewrites arithmetic on compile-time constants, e.g. (C + b) - C to b
    # and x / C to x * (1/C), which would break the exact two_sum steps when
    # some inputs are constants and others traced.  The barrier makes every
    # input opaque: all of the preparation is then either computed as written
    # or (all inputs constant) folded op by op, as eagerly.
    scale, rate, decay_steps = lax.optimization_barrier(  # type: ignore[no-untyped-call]
        (scale, rate, decay_steps)
    )
    tables = _traced_tables(fmt)
    sign_bit = np.iinfo(int_dtype).min
    infinity_bits = int(np.asarray(np.inf, float_dtype).view(int_dtype))

    rate_bits = lax.bitcast_convert_type(rate, int_dtype)
    scale_bits = lax.bitcast_convert_type(scale, int_dtype)
    magnitude_bits = scale_bits & ~sign_bit
    # By bits, so that subnormal inputs are not taken for zero.
    valid = (
        (rate_bits > 0)
        & (rate_bits < infinity_bits)
        & (magnitude_bits < infinity_bits)
        & (decay_steps >= 1)
    )
    scale_is_zero = magnitude_bits == 0
    # +0.0 for valid inputs, that the compiler cannot see is zero (see the
    # module docstring); it depends on every input, so it stays opaque even
    # if some inputs are compile-time constants.
    zero = lax.bitcast_convert_type(
        (rate_bits | magnitude_bits | decay_steps) & sign_bit, float_dtype
    )

    # D = 64 * log2(rate) / decay_steps; decay_steps = hi + lo exactly (15/16
    # or 36/27 significant bits), then a double word by an exact two_sum.
    log_64 = _log2_rate_64(rate_bits, zero, fmt, tables)
    steps_lo = decay_steps & ((1 << fmt.low_bits) - 1)
    steps = _two_sum(
        (decay_steps - steps_lo).astype(float_dtype), steps_lo.astype(float_dtype)
    )
    d_hi, d_lo = _dw_div(log_64, steps, zero, fmt)

    # Exact pieces with piece_bits significant bits: each rounding by bits is
    # exact, each rest d - piece is exact (Sterbenz) and two_sum keeps the
    # double word exact.  |D1| <= 2**-8 |D|, |D2| <= 2**-16 |D|, and the tail
    # |D3| <= 2**-24 |D| (float32) is rounded once.
    d0 = _round_bits(d_hi, fmt)
    rest = _two_sum(d_hi - d0, d_lo)
    d1 = _round_bits(rest[0], fmt)
    rest = _two_sum(rest[0] - d1, rest[1])
    d2 = _round_bits(rest[0], fmt)
    d3 = (rest[0] - d2) + rest[1]

    # |scale| = s * 2**E; the table s * 2**(j/64) = (s * hi_j exactly as a
    # double word) + s * lo_j.
    scale_exponent, significand = _unpack(magnitude_bits, fmt)
    table_hi, error = _two_prod(significand, tables.exp_hi, zero, fmt)
    table_lo = (significand * tables.exp_lo + zero) + error

    # n_limit >= the first n with |result| below half the least subnormal
    # (d < 0: n*|d| >= log2|scale| + 151 >= ... since log2|scale| < E + 1) or
    # above the largest float (d > 0: log2|scale| >= E).  The margin 2**-18
    # covers the rounding errors of d_hi and of this formula.
    room = jnp.where(
        d_hi < 0,
        scale_exponent + (1 - fmt.underflow_exponent),
        fmt.overflow_exponent - scale_exponent,
    )
    # No product feeds an addition here (the + 2 is on integers), so the
    # formula cannot be contracted into a multiply-add.
    bound = (room * _TABLE_SIZE).astype(float_dtype) / jnp.abs(d_hi)
    bound = bound * float_dtype.type(1 + 2.0**-18)
    top = float_dtype.type(fmt.n_max // 2)  # 2**30 or 2**62, exact
    finite = bound < top
    n_limit = jnp.where(
        finite,
        jnp.ceil(jnp.where(finite, bound, float_dtype.type(0))).astype(int_dtype) + 2,
        int_dtype.type(fmt.n_max),
    )

    nan, zero_float = float_dtype.type(np.nan), float_dtype.type(0)
    zero_int = int_dtype.type(0)
    pieces = jnp.stack([d0, d1, d2])
    return TracedConstants(
        pieces=jnp.where(valid, pieces, zero_float),
        tail=jnp.where(valid, d3, zero_float),
        table_hi=jnp.where(valid, jnp.where(scale_is_zero, zero_float, table_hi), nan),
        table_lo=jnp.where(valid, jnp.where(scale_is_zero, zero_float, table_lo), nan),
        scale_exponent=jnp.where(valid & ~scale_is_zero, scale_exponent, zero_int),
        sign=scale_bits & sign_bit,
        n_limit=jnp.where(valid & ~scale_is_zero, n_limit, zero_int),
    )


_prepare_compiled = jax.jit(_prepare_traced, static_argnums=3)
