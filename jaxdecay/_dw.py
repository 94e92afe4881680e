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
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax


class Ops(NamedTuple):
    """The operations the kernels' preparation uses beyond arithmetic operators,
    from JAX (in a program) or from NumPy (on the host, for known numbers).

    Both round every operation as IEEE 754 does, so a preparation written once
    gives the same bits either way (tests/test_host.py checks it); the NumPy ones
    work on one config's scalars (and the 64-entry tables).
    """

    where: Callable[[Any, Any, Any], Any]
    bitcast: Callable[[Any, Any], Any]
    clz: Callable[[Any], Any]
    rint: Callable[[Any], Any]
    stack: Callable[[Any], Any]
    abs: Callable[[Any], Any]
    ceil: Callable[[Any], Any]
    clip: Callable[[Any, Any, Any], Any]
    isinf: Callable[[Any], Any]
    zeros: Callable[[Any], Any]
    zeros_like: Callable[[Any], Any]
    take: Callable[[Any, Any], Any]
    barrier: Callable[[Any], Any]
    stop_gradient: Callable[[Any], Any]
    asarray: Callable[[Any], Any]


JAX = Ops(
    where=jnp.where,
    bitcast=lax.bitcast_convert_type,
    clz=lax.clz,
    rint=lambda x: lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN),
    stack=jnp.stack,
    abs=jnp.abs,
    ceil=jnp.ceil,
    clip=jnp.clip,
    isinf=jnp.isinf,
    zeros=lambda dtype: jnp.zeros((), dtype),
    zeros_like=jnp.zeros_like,
    take=lambda table, index: (
        jnp.asarray(table).at[index].get(mode="promise_in_bounds")
    ),
    barrier=lax.optimization_barrier,
    stop_gradient=lax.stop_gradient,
    asarray=jnp.asarray,
)


def _clz(x: Any) -> Any:
    """Leading zero bits of a non-negative integer scalar, in its type."""
    x = np.asarray(x)
    return x.dtype.type(8 * x.dtype.itemsize - int(x).bit_length())


def _where(condition: Any, x: Any, y: Any) -> Any:
    """`np.where`, a scalar for scalars of one type: NumPy's scalars compute
    several times faster than arrays of no dimension."""
    if type(x) is type(y) and isinstance(x, np.generic) and np.ndim(condition) == 0:
        return x if condition else y
    return np.where(condition, x, y)


def _bitcast(x: Any, dtype: Any) -> Any:
    """The bits of `x` as `dtype`, a scalar for a scalar."""
    if isinstance(x, np.generic):
        return x.view(dtype)
    return np.asarray(x).view(dtype)


def _asarray(x: Any) -> Any:
    """`x` as NumPy holds it, a scalar for a number or a scalar."""
    if isinstance(x, (np.generic, np.ndarray)):
        return x
    return np.asarray(x)[()]


NUMPY = Ops(
    where=_where,
    bitcast=_bitcast,
    clz=_clz,
    rint=np.rint,
    stack=np.stack,
    abs=np.abs,
    ceil=np.ceil,
    clip=np.clip,
    isinf=np.isinf,
    zeros=lambda dtype: np.dtype(dtype).type(0),
    zeros_like=np.zeros_like,
    take=lambda table, index: np.asarray(table)[index],
    barrier=lambda x: x,
    stop_gradient=lambda x: x,
    asarray=_asarray,
)


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
        ops: JAX's operations (in a program), or NumPy's (`on_host`); not
            compared: a format on the host is the same format.
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
    ops: Ops = dataclasses.field(default=JAX, compare=False)

    def on_host(self) -> Format:
        """The same format, computed by NumPy on the host."""
        return _ON_HOST[self.dtype]


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


_ON_HOST = {f.dtype: dataclasses.replace(f, ops=NUMPY) for f in (FLOAT32, FLOAT64)}


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
    ops = fmt.ops
    bits = ops.bitcast(ops.asarray(a).astype(fmt.dtype), fmt.int_dtype)
    rounded = (bits + (1 << (drop - 1))) & -(1 << drop)
    hi = ops.bitcast(rounded, fmt.dtype)
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
    return dw_add(fast_two_sum(q1, q2), (q3, fmt.ops.zeros_like(q3)))


def scaled_div(x: DW, y: DW, zero: jax.Array, fmt: Format) -> tuple[DW, Any]:
    """``x / y`` as :func:`dw_div`, with ``y`` scaled into ``[1, 2)`` first:
    ``(q * 2**E, E)``, ``E`` the binade of ``y[0] >= 1``.

    Dividing by a large ``y`` (steps up to 2**63) takes the low-order parts of the
    quotient into the subnormals, which XLA on CPU flushes to zero and NumPy keeps;
    scaled, every intermediate stays normal, so a preparation gives the same bits
    in a program and on the host, and the same as unscaled wherever nothing was
    subnormal (scaling by a power of two commutes with rounding).
    """
    exponent = binade(y[0], fmt)
    unit = power_of_two(-exponent, fmt)
    return dw_div(x, (y[0] * unit, y[1] * unit), zero, fmt), exponent


def flush(x: Any, fmt: Format) -> Any:
    """``x`` with a subnormal value flushed to a zero of its sign, as XLA on CPU
    flushes it (and NumPy does not): for the few results of a preparation that
    may be subnormal, and for the numbers a program reads as 0.  Its derivative is
    0 where it flushes (the value does not move there), selected rather than a
    product by 0, which an infinite cotangent would make a NaN."""
    tiny = fmt.dtype.type(np.finfo(fmt.dtype).smallest_normal)
    return fmt.ops.where(fmt.ops.abs(x) < tiny, fmt.ops.stop_gradient(x * 0), x)


def unpack(bits: jax.Array, fmt: Format) -> tuple[jax.Array, jax.Array]:
    """``(e, m)`` with ``x = m * 2**e``, ``1 <= m < 2``, from the bits of a
    positive finite ``x`` (subnormals included, by integer normalisation)."""
    ops = fmt.ops
    fraction_bits = fmt.mantissa_bits - 1
    width = 8 * fmt.int_dtype.itemsize
    field = bits >> fraction_bits
    fraction = bits & ((1 << fraction_bits) - 1)
    subnormal = field == 0
    shift = ops.where(
        subnormal,
        ops.clz(fraction) - (width - fmt.mantissa_bits),
        fmt.int_dtype.type(0),
    )
    fraction = (fraction << shift) & ((1 << fraction_bits) - 1)
    exponent = ops.where(
        subnormal, 1 - fmt.exponent_bias - shift, field - fmt.exponent_bias
    )
    one = fmt.exponent_bias << fraction_bits
    return exponent, ops.bitcast(fraction | one, fmt.dtype)


def round_bits(x: Any, fmt: Format) -> Any:
    """``x`` rounded to ``piece_bits`` significant bits (by bits: exact)."""
    drop = fmt.mantissa_bits - fmt.piece_bits
    bits = fmt.ops.bitcast(x, fmt.int_dtype)
    rounded = (bits + (1 << (drop - 1))) & -(1 << drop)
    return fmt.ops.bitcast(rounded, fmt.dtype)


def power_of_two(exponent: Any, fmt: Format, sign: Any = None) -> Any:
    """Exactly ``2**exponent`` (negated if ``sign`` is the sign bit) for integer
    ``exponent`` in the normal range."""
    bits = ((exponent + fmt.exponent_bias) << (fmt.mantissa_bits - 1)).astype(
        fmt.int_dtype
    )
    if sign is not None:
        bits = bits | sign
    return fmt.ops.bitcast(bits, fmt.dtype)


def steps_double_word(hi: jax.Array, lo: jax.Array, fmt: Format) -> DW:
    """``steps = hi * 2**32 + lo`` as a double word: four 16-bit limbs, each exact
    in the compute dtype, summed exactly below 2**48 and to ~u**2 above."""
    dtype = fmt.dtype
    limbs = ((hi >> 16, 48), (hi & 0xFFFF, 32), (lo >> 16, 16), (lo & 0xFFFF, 0))
    zeros = fmt.ops.zeros
    total: DW = (zeros(dtype), zeros(dtype))
    for limb, shift in limbs:
        term = limb.astype(dtype) * dtype.type(2.0**shift)  # exact
        total = dw_add(total, (term, zeros(dtype)))
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
    ops = fmt.ops
    scale = ops.asarray(scale).astype(fmt.dtype)
    rate = ops.asarray(rate).astype(fmt.dtype)
    hi = ops.asarray(steps[0]).astype(np.int32)
    lo = ops.asarray(steps[1]).astype(np.uint32)
    if scale.ndim or rate.ndim or hi.ndim or lo.ndim:
        raise ValueError("scale, rate and steps must be scalars (use vmap)")
    opaque: tuple[jax.Array, jax.Array, jax.Array, jax.Array] = ops.barrier(
        (scale, rate, hi, lo)
    )
    return opaque


def binade(x: Any, fmt: Format) -> Any:
    """``E`` with ``2**E <= |x| < 2**(E + 1)`` for a finite ``x`` (0 for 0),
    clipped to the normal range."""
    ops = fmt.ops
    bits = ops.bitcast(ops.abs(x), fmt.int_dtype)
    one_bits = fmt.int_dtype.type(fmt.exponent_bias << (fmt.mantissa_bits - 1))
    exponent, _ = unpack(ops.where(x != 0, bits, one_bits), fmt)
    low, high = (
        fmt.int_dtype.type(x) for x in (1 - fmt.exponent_bias, fmt.exponent_bias)
    )
    return ops.clip(exponent, low, high)
