"""Exact unsigned division by a divisor that is data, as a multiply and shifts.

The staircase counts its stairs as ``elapsed // decay_steps``, with ``decay_steps``
data (a traced scalar), so XLA cannot turn the division into a multiplication as
it does for a constant divisor; on CPU it emits one scalar division per element.
This module does by hand what a compiler does for a constant: it prepares the
divisor once per config, and then divides every element by a high multiply, a
subtraction, an add and two shifts, which vectorize.

The scheme is libdivide's "branchfree" unsigned one (``libdivide_u32_branchfree``
and ``libdivide_u64_branchfree``), which is Granlund and Montgomery's Figure 4.1
("Division by Invariant Integers using Multiplication", PLDI 1994; Hacker's
Delight, 2nd ed., section 10-8). For a ``w``-bit type and a divisor ``d`` that is
not a power of two, with ``L = floor(log2(d))``::

    magic = ceil(2**(w + L + 1) / d) - 2**w      # fits w bits
    q = mulhi(magic, n)                          # (magic * n) >> w
    n // d == (((n - q) >> 1) + q) >> L

``((n - q) >> 1) + q`` is ``(n + q) // 2`` without the overflow of ``n + q``, which
supplies the ``2**w`` that ``magic`` leaves out. A power of two ``2**L`` has
``magic = 0`` and shift ``L - 1`` (the fixed ``>> 1`` does the rest), a divisor of
1 would need a shift of -1 and is a select instead, and a divisor beyond the type
(``>= 2**32`` for uint32) has ``magic = 0`` and shift ``w - 1``, whose quotient
is 0 for every ``n``. ``mulhi`` is built from half-width limbs (Hacker's Delight,
section 8-2), so that uint32 needs no 64-bit type (x64 may be off) and uint64 no
128-bit one.

Computing ``magic`` takes a ``2w``-by-``w``-bit division (libdivide's
``libdivide_64_div_32_to_32`` and ``libdivide_128_div_64_to_64``); here it is a
bit-serial long division in a ``lax.fori_loop``, exact in integer ops and run once
per config.

Example:
  >>> import numpy as np
  >>> divisor = prepare_divisor(np.int32(0), np.uint32(7), np.uint32)
  >>> print(divide(jnp.arange(0, 30, 3, dtype=jnp.uint32), divisor))
  [0 0 0 1 1 2 2 3 3 3]
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["Divisor", "divide", "prepare_divisor", "prepare_divisor_host"]

_UNSIGNED = (np.dtype(np.uint32), np.dtype(np.uint64))


class Divisor(NamedTuple):
    """The prepared constants of a divisor ``d`` for one unsigned type.

    A pytree of arrays (scalars for one divisor; a leading axis for a batch of
    them), so it can be a `jax.jit` argument, carried in a `jax.vmap`, or closed
    over as a constant.

    Attributes:
      magic: ``ceil(2**(w + L + 1) / d) - 2**w`` in the unsigned type, with
        ``L = floor(log2(d))``; 0 for a power of two, for 1, and for a divisor
        beyond the type.
      shift: the final right shift, in the unsigned type: ``L`` (``L - 1`` for a
        power of two, since the scheme's fixed ``>> 1`` does one of the
        divisions by 2; ``w - 1`` for a divisor beyond the type, which with
        ``magic = 0`` gives 0 for every numerator; 0 for 1).
      one: bool, whether ``d == 1``, the one divisor the scheme cannot express
        (it would need a shift of -1): there the quotient is the numerator.
    """

    magic: Any
    shift: Any
    one: Any


def _bits(dtype: np.dtype[Any]) -> int:
    return 8 * dtype.itemsize


def _unsigned_dtype(unsigned_dtype: Any) -> np.dtype[Any]:
    dtype: np.dtype[Any] = np.dtype(unsigned_dtype)
    if dtype not in _UNSIGNED:
        raise TypeError(f"unsigned_dtype must be uint32 or uint64, not {dtype}")
    x64 = bool(jax.config.jax_enable_x64)  # type: ignore[attr-defined]
    if dtype == np.uint64 and not x64:
        # Without x64, JAX would silently make every uint64 array a uint32 one.
        raise ValueError("uint64 needs x64 (JAX_ENABLE_X64=1)")
    return dtype


def _divide_wide(
    hi: jax.Array, lo: jax.Array, d: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The quotient and remainder of the double word ``hi * 2**w + lo`` by ``d``.

    The role of libdivide's ``libdivide_64_div_32_to_32`` (``_128_div_64_to_64``
    for uint64), done as a restoring long division, one quotient bit per
    iteration, in integer ops of the type itself: no wider type, no float.

    Args:
      hi: the high word, ``hi < d`` so that the quotient fits one word.
      lo: the low word.
      d: the divisor, ``d >= 1``; all three of one unsigned type, broadcastable.

    Returns:
      ``(quotient, remainder)``, each of the broadcast shape.
    """
    dtype = d.dtype
    bits = _bits(dtype)
    u = dtype.type
    hi, lo, d = jnp.broadcast_arrays(hi, lo, d)

    def step(i: jax.Array, carry: tuple[jax.Array, jax.Array]) -> tuple[Any, Any]:
        quotient, remainder = carry
        bit = (lo >> (u(bits - 1) - i.astype(dtype))) & u(1)
        # The remainder is below d, but twice it plus a bit may need w + 1 bits:
        # the bit shifted out says the true value is at least 2**w > d.
        out = (remainder >> u(bits - 1)) != 0
        doubled = (remainder << u(1)) | bit
        take = out | (doubled >= d)
        # The true difference is below d, so the wrapped one is exact.
        remainder = jnp.where(take, doubled - d, doubled)
        quotient = (quotient << u(1)) | take.astype(dtype)
        return quotient, remainder

    result: tuple[jax.Array, jax.Array] = lax.fori_loop(
        0, bits, step, (jnp.zeros_like(hi), hi)
    )
    return result


def prepare_divisor(hi: Any, lo: Any, unsigned_dtype: Any) -> Divisor:
    """The constants that `divide` needs to divide by ``hi * 2**32 + lo``.

    Pure `jax.numpy` and `jax.lax` on the values, so the divisor may be traced:
    under `jax.jit` (a config that is data) and under `jax.vmap` (a batch of
    configs, one divisor each). It runs once per divisor; its cost is a
    ``w``-iteration loop on scalars.

    Args:
      hi: the high word of the divisor, int32 (scalar, or an array for a batch).
      lo: the low word, uint32, of the same shape. The divisor is in
        ``[1, 2**63 - 1]``.
      unsigned_dtype: the type of the numerators: uint32 (a divisor of 2**32 or
        more then gives the quotient 0 for every numerator), or uint64, which
        needs x64.

    Returns:
      The divisor's `Divisor`, fields of the shape of ``hi`` and ``lo``.

    Raises:
      TypeError: ``unsigned_dtype`` is neither uint32 nor uint64.
      ValueError: uint64 without x64.
    """
    dtype = _unsigned_dtype(unsigned_dtype)
    bits = _bits(dtype)
    u = dtype.type
    hi = jnp.asarray(hi, dtype=jnp.int32)
    lo = jnp.asarray(lo, dtype=jnp.uint32)
    if bits == 32:
        fits = hi == 0
        # Any divisor the type holds, where the real one is beyond it: its
        # constants are replaced below.
        d = jnp.where(fits, lo, u(2))
    else:
        fits = jnp.ones(jnp.broadcast_shapes(hi.shape, lo.shape), dtype=bool)
        d = (hi.astype(dtype) << u(32)) | lo.astype(dtype)
    floor_log2 = u(bits - 1) - lax.clz(d)
    power_of_two = (d & (d - u(1))) == 0
    one = d == u(1)
    # 2**(w + L) / d, as libdivide does it; for a power of two (whose high word
    # 2**L would not be below d) a harmless 0 / d, whose result is not used.
    top = jnp.where(power_of_two, u(0), u(1) << floor_log2)
    quotient, remainder = _divide_wide(top, u(0), d)
    # Then 2**(w + L + 1) / d, by doubling the quotient and the remainder
    # (libdivide's "general 33-bit algorithm"): the quotient is above 2**w, and
    # the doubling drops that bit, which the scheme's add of the numerator puts
    # back. A doubled remainder that wraps was at least 2**w > d.
    twice = remainder + remainder
    carry = (twice >= d) | (twice < remainder)
    floor_magic = quotient + quotient + carry.astype(dtype)
    magic = jnp.where(power_of_two, u(0), floor_magic + u(1))
    # A power of two 2**L shifts by L - 1 after the fixed >> 1; 1 (also a power
    # of two) is the select in `divide`, and keeps shift 0 rather than a wrapped -1.
    shift = jnp.where(power_of_two & ~one, floor_log2 - u(1), floor_log2)
    # Beyond the type: magic 0 makes the high product 0, and (n >> 1) >> (w - 1)
    # is 0 for every n.
    magic = jnp.where(fits, magic, u(0))
    shift = jnp.where(fits, shift, u(bits - 1))
    return Divisor(magic, shift, one & fits)


def prepare_divisor_host(hi: Any, lo: Any, unsigned_dtype: Any) -> Divisor:
    """`prepare_divisor` for a known divisor, on the host: the same constants, by
    Python's exact integers (``magic`` is ``floor(2**(w + L + 1) / d) + 1`` modulo
    ``2**w``), with no program. ``hi`` and ``lo`` are scalars; a divisor of 0 is
    taken as 1."""
    dtype = _unsigned_dtype(unsigned_dtype)
    bits = _bits(dtype)
    d = (int(hi) << 32) | int(lo)
    fits = bits == 64 or d < 1 << 32
    if not fits:
        return Divisor(dtype.type(0), dtype.type(bits - 1), np.bool_(False))
    d = max(d, 1)
    floor_log2 = d.bit_length() - 1
    power_of_two = d & (d - 1) == 0
    magic = 0 if power_of_two else ((1 << (bits + floor_log2 + 1)) // d + 1)
    shift = floor_log2 - 1 if power_of_two and d != 1 else floor_log2
    return Divisor(dtype.type(magic % (1 << bits)), dtype.type(shift), np.bool_(d == 1))


def _mulhi(a: jax.Array, b: jax.Array) -> jax.Array:
    """The high word of the double-word product ``a * b`` (unsigned, one type).

    Hacker's Delight's ``mulhu`` (section 8-2): four products of half-width
    limbs, each exact in the type, since a 2w-bit type is not there (uint64
    without x64, uint128 ever). Vectorizes as plain multiplies and shifts.
    """
    dtype = a.dtype
    half = _bits(dtype) // 2
    u = dtype.type
    mask, shift = u((1 << half) - 1), u(half)
    a0, a1 = a & mask, a >> shift
    b0, b1 = b & mask, b >> shift
    low = a0 * b0
    # Each sum below stays under 2**w: (2**h - 1)**2 + 2**h - 1 < 2**(2h).
    middle = a1 * b0 + (low >> shift)
    cross = (middle & mask) + a0 * b1
    high: jax.Array = a1 * b1 + (middle >> shift) + (cross >> shift)
    return high


def divide(n: Any, divisor: Divisor) -> jax.Array:
    """``n // d``, exactly, for every element of ``n`` in its unsigned type.

    A high multiply and libdivide's branchfree step
    (``libdivide_u32_branchfree_do``): ``t = ((n - q) >> 1) + q; t >> shift``,
    elementwise, with no division and no branch, so it vectorizes. Under
    `jax.vmap` the divisor may be batched, against a batch of ``n`` or the same
    ``n`` for every divisor.

    Args:
      n: the numerators, an array of the divisor's unsigned type.
      divisor: from `prepare_divisor` for that type; its fields broadcast against
        ``n``.

    Returns:
      The quotients, of the type of ``n`` and the broadcast shape.

    Raises:
      TypeError: ``n`` is not of the divisor's type.
    """
    magic, shift, one = divisor
    n = jnp.asarray(n)
    if n.dtype != magic.dtype:
        raise TypeError(f"n is {n.dtype}, the divisor is prepared for {magic.dtype}")
    q = _mulhi(magic, n)
    # (n + q) >> 1 without overflow: q <= n, as magic < 2**w.
    t = ((n - q) >> n.dtype.type(1)) + q
    quotient: jax.Array = jnp.where(one, n, t >> shift)
    return quotient
