"""Double-word ("double-float") arithmetic and the bit-level helpers of the kernels.

A double word is a pair ``(hi, lo)`` of the compute dtype with ``|lo| <= ulp(hi)/2``
that stands for ``hi + lo``; ``u = 2**-p``.  The error bounds are from Joldes,
Muller and Popescu, "Tight and rigorous error bounds for basic building blocks of
double-word arithmetic" (2017).  Plain functions on arrays: any kernel may import
them.

Two compiler behaviours are guarded against here once.  XLA rewrites arithmetic
on compile-time constants (``(C + b) - C`` to ``b``, ``x / C`` to ``x * (1/C)``):
a kernel's inputs pass :func:`opaque_scalars`.  And LLVM fuses ``a*b + c`` into one
fused multiply-add, which rounds differently from an eager evaluation: every
rounded product that feeds an addition goes through :func:`unfused`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


@dataclasses.dataclass(frozen=True)
class Format:
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


FLOAT32 = Format(
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


FLOAT64 = Format(
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


def format_for(dtype: Any) -> Format:
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return FLOAT32
    if dtype == np.float64:
        if jax.dtypes.canonicalize_dtype(np.float64) != np.float64:
            raise ValueError("float64 compute needs jax_enable_x64")
        return FLOAT64
    raise ValueError(f"compute dtype must be float32 or float64, got {dtype}")


def unsigned_dtype(dtype: Any) -> np.dtype[Any]:
    """The dtype of ``n`` for a compute dtype: uint32 for float32, else uint64."""
    return format_for(dtype).unsigned


def unfused(product: Any, zero: Any) -> Any:
    """``product`` rounded on its own, never fused into the addition that follows.

    Compilers may contract ``a*b + c`` into one fused multiply-add (LLVM does, for
    XLA on CPU), which rounds once where an op-by-op evaluation rounds twice.
    ``zero`` is a +-0.0 that the compiler cannot prove is zero: ``a*b + zero`` is
    ``round(a*b)`` whether or not it is fused, and it is no longer a product, so
    the next addition cannot be fused with the multiplication.  Products that are
    exact need no guard: fusing changes nothing there.
    """
    return product + zero


DW = tuple[Any, Any]  # (hi, lo)


def two_sum(a: Any, b: Any) -> DW:
    """``s + e = a + b`` exactly (Knuth), for any order of magnitudes."""
    s = a + b
    b_virtual = s - a
    a_virtual = s - b_virtual
    return s, (a - a_virtual) + (b - b_virtual)


def fast_two_sum(a: Any, b: Any) -> DW:
    """``s + e = a + b`` exactly (Dekker), if ``|a| >= |b|`` or ``a == 0``."""
    s = a + b
    return s, b - (s - a)


def split(a: Any, fmt: Format) -> DW:
    """``a = hi + lo`` exactly: ``hi`` is ``a`` rounded to ``p - s`` bits, with
    ``s = ceil(p/2)`` (12 of 24, 26 of 53), so ``|lo|`` has at most ``s - 1``
    bits plus the sign (Veltkamp's split, by bits: contraction-proof)."""
    drop = (fmt.mantissa_bits + 1) // 2
    bits = lax.bitcast_convert_type(jnp.asarray(a, fmt.dtype), fmt.int_dtype)
    rounded = (bits + (1 << (drop - 1))) & -(1 << drop)
    hi = lax.bitcast_convert_type(rounded, fmt.dtype)
    return hi, a - hi  # within a factor 2 of each other: exact (Sterbenz)


def two_prod(a: Any, b: Any, zero: jax.Array, fmt: Format) -> DW:
    """``p + e = a * b`` exactly (Dekker), barring underflow."""
    p = unfused(a * b, zero)
    a_hi, a_lo = split(a, fmt)
    b_hi, b_lo = split(b, fmt)
    e = (((a_hi * b_hi - p) + a_hi * b_lo) + a_lo * b_hi) + a_lo * b_lo
    return p, e


def dw_add(x: DW, y: DW) -> DW:
    """AccurateDWPlusDW (alg. 6): relative error below 3u**2 / (1 - 4u)."""
    s_hi, s_lo = two_sum(x[0], y[0])
    t_hi, t_lo = two_sum(x[1], y[1])
    v_hi, v_lo = fast_two_sum(s_hi, s_lo + t_hi)
    return fast_two_sum(v_hi, t_lo + v_lo)


def dw_mul(x: DW, y: DW, zero: jax.Array, fmt: Format) -> DW:
    """DWTimesDW1 (alg. 10, without FMA): relative error ~7u**2."""
    c_hi, c_lo1 = two_prod(x[0], y[0], zero, fmt)
    cross = unfused(x[0] * y[1], zero) + unfused(x[1] * y[0], zero)
    return fast_two_sum(c_hi, c_lo1 + cross)


def dw_mul_fp(x: DW, y: Any, zero: jax.Array, fmt: Format) -> DW:
    """DWTimesFP1 (alg. 7): relative error below 1.5u**2 + 4u**3."""
    c_hi, c_lo1 = two_prod(x[0], y, zero, fmt)
    c_lo2 = unfused(x[1] * y, zero)
    t_hi, t_lo1 = fast_two_sum(c_hi, c_lo2)
    return fast_two_sum(t_hi, t_lo1 + c_lo1)


def dw_div(x: DW, y: DW, zero: jax.Array, fmt: Format) -> DW:
    """``x / y`` by three quotient digits: each remainder is formed with relative
    error ~1.5u**2 of ``x``, so ``q1 + q2 + q3`` is within ~4u**2 of ``x/y``.

    ``divisor = y[0] + zero`` hides a constant divisor from XLA, which would
    otherwise multiply by its rounded reciprocal instead of dividing.
    """
    divisor = y[0] + zero
    q1 = x[0] / divisor
    product = dw_mul_fp(y, q1, zero, fmt)
    rest = dw_add(x, (-product[0], -product[1]))
    q2 = rest[0] / divisor
    product = dw_mul_fp(y, q2, zero, fmt)
    rest = dw_add(rest, (-product[0], -product[1]))
    q3 = rest[0] / divisor
    return dw_add(fast_two_sum(q1, q2), (q3, jnp.zeros_like(q3)))


def unpack(bits: jax.Array, fmt: Format) -> tuple[jax.Array, jax.Array]:
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


def round_bits(x: jax.Array, fmt: Format) -> jax.Array:
    """``x`` rounded to ``piece_bits`` significant bits (by bits: exact)."""
    drop = fmt.mantissa_bits - fmt.piece_bits
    bits = lax.bitcast_convert_type(x, fmt.int_dtype)
    rounded = (bits + (1 << (drop - 1))) & -(1 << drop)
    return lax.bitcast_convert_type(rounded, fmt.dtype)


def power_of_two(
    exponent: jax.Array, fmt: Format, sign: jax.Array | None = None
) -> jax.Array:
    """Exactly ``2**exponent`` (negated if ``sign`` is the sign bit) for integer
    ``exponent`` in the normal range."""
    bits = ((exponent + fmt.exponent_bias) << (fmt.mantissa_bits - 1)).astype(
        fmt.int_dtype
    )
    if sign is not None:
        bits = bits | sign
    return lax.bitcast_convert_type(bits, fmt.dtype)


def steps_double_word(hi: jax.Array, lo: jax.Array, fmt: Format) -> DW:
    """``steps = hi * 2**32 + lo`` as a double word: four 16-bit limbs, each exact
    in the compute dtype, summed exactly below 2**48 and to ~u**2 above."""
    dtype = fmt.dtype
    limbs = ((hi >> 16, 48), (hi & 0xFFFF, 32), (lo >> 16, 16), (lo & 0xFFFF, 0))
    total: DW = (jnp.zeros((), dtype), jnp.zeros((), dtype))
    for limb, shift in limbs:
        term = limb.astype(dtype) * dtype.type(2.0**shift)  # exact
        total = dw_add(total, (term, jnp.zeros((), dtype)))
    return total


def unsigned_double_word(n: jax.Array, dtype: Any) -> DW:
    """An unsigned integer ``n`` (uint32 for float32, uint64 for float64) as an
    exact double word of ``dtype``: two halves that each convert exactly."""
    fmt = format_for(dtype)
    n = jnp.asarray(n).astype(fmt.unsigned)
    low = n & ((1 << (4 * fmt.unsigned.itemsize)) - 1)
    return fast_two_sum((n - low).astype(fmt.dtype), low.astype(fmt.dtype))


def opaque_scalars(
    scale: Any, rate: Any, steps: tuple[Any, Any], fmt: Format
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


def binade(x: jax.Array, fmt: Format) -> jax.Array:
    """``E`` with ``2**E <= |x| < 2**(E + 1)`` for a finite ``x`` (0 for 0),
    clipped to the normal range."""
    bits = lax.bitcast_convert_type(jnp.abs(x), fmt.int_dtype)
    one_bits = fmt.int_dtype.type(fmt.exponent_bias << (fmt.mantissa_bits - 1))
    exponent, _ = unpack(jnp.where(x != 0, bits, one_bits), fmt)
    return jnp.clip(exponent, 1 - fmt.exponent_bias, fmt.exponent_bias)
