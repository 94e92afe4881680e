"""`jaxdecay._divide`: the division by a prepared divisor against Python's `//`.

Every check compares the quotients bit for bit with Python's integer `//` (numpy
object arrays), for uint32 and, under x64 (`JAX_ENABLE_X64=1`), uint64 too. The
divisors are given as the two words the schedule holds (`hi` int32, `lo` uint32)
and prepared inside `jax.jit` and `jax.vmap`, as the schedule prepares
`decay_steps`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdecay._divide import Divisor, _divide_wide, divide, prepare_divisor

X64 = bool(jax.config.jax_enable_x64)
# uint64 exists only under x64; uint32 is tested in both modes.
DTYPES = [np.dtype(np.uint32), *([np.dtype(np.uint64)] if X64 else [])]
MAX_DIVISOR = 2**63 - 1  # decay_steps is at most this


def _bits(dtype: np.dtype[Any]) -> int:
    return 8 * dtype.itemsize


def _words(divisors: Any) -> tuple[np.ndarray, np.ndarray]:
    """Divisors (Python ints) as their high (int32) and low (uint32) words."""
    values = np.asarray(divisors, dtype=object)
    hi = np.asarray(values // 2**32, dtype=np.int64).astype(np.int32)
    lo = np.asarray(values % 2**32, dtype=np.int64).astype(np.uint32)
    return hi, lo


@functools.cache
def _batched(dtype: np.dtype[Any]) -> Any:
    """Jitted: prepare a batch of divisors, and divide each its row of numerators."""

    def one(hi: jax.Array, lo: jax.Array, n: jax.Array) -> jax.Array:
        return divide(n, prepare_divisor(hi, lo, dtype))

    return jax.jit(jax.vmap(one))


def _quotients(divisors: list[int], numerators: np.ndarray, dtype: Any) -> np.ndarray:
    """`numerators[i] // divisors[i]` by the module: prepared and divided in one jit,
    vmapped over the divisors (rows of `numerators`)."""
    hi, lo = _words(divisors)
    return np.asarray(_batched(np.dtype(dtype))(hi, lo, numerators))


def _mismatches(
    divisors: list[int], numerators: np.ndarray, got: np.ndarray
) -> list[tuple[int, int, int, int]]:
    """`(d, n, got, expected)` wherever `got` is not Python's `n // d`."""
    expected = numerators.astype(object) // np.asarray(divisors, dtype=object)[:, None]
    wrong = np.argwhere(got.astype(object) != expected)
    return [
        (divisors[i], int(numerators[i, j]), int(got[i, j]), int(expected[i, j]))
        for i, j in wrong
    ]


def _numerators(divisors: list[int], dtype: np.dtype[Any], seed: int) -> np.ndarray:
    """For each divisor, a row of numerators where a quotient most likely goes
    wrong: the ends of the type, around the first multiples of `d` and around the
    largest multiples below the top of the type (where a magic number's error
    grows largest), and random ones."""
    top = 2 ** _bits(dtype) - 1
    rng = np.random.default_rng(seed)
    rows = []
    for d in divisors:
        last = top // d * d  # the largest multiple of d in the type
        fixed = [0, 1, 2, d - 1, d, d + 1, 2 * d - 1, 2 * d, 3 * d - 1]
        fixed += [last - d - 1, last - d, last - 1, last, last + 1, top - 1, top]
        fixed += [top // 2, top // 2 + 1, top // 3, 2**16 - 1, 2**16, 2**31]
        random = rng.integers(0, top, size=16, dtype=dtype, endpoint=True).tolist()
        rows.append([n for n in fixed if 0 <= n <= top] + random)
    width = max(map(len, rows))
    # Pad the rows to one width with the type's top.
    return np.array([row + [top] * (width - len(row)) for row in rows], dtype=dtype)


def _check(divisors: list[int], dtype: np.dtype[Any], seed: int = 0) -> None:
    numerators = _numerators(divisors, dtype, seed)
    got = _quotients(divisors, numerators, dtype)
    assert got.dtype == dtype
    wrong = _mismatches(divisors, numerators, got)
    assert not wrong, (
        f"{len(wrong)} wrong quotients (d, n, got, expected): {wrong[:10]}"
    )


def _random_divisors(rng: np.random.Generator, bits: int, count: int) -> list[int]:
    """Divisors in [1, 2**bits - 1] spread over their bit lengths (uniform values
    would almost all have `bits` bits)."""
    lengths = rng.integers(1, bits, size=count, endpoint=True).tolist()
    return [int(rng.integers(2 ** (k - 1), 2**k, dtype=np.uint64)) for k in lengths]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_small_divisor(dtype):
    _check(list(range(1, 4097)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_small_numerator(dtype):
    """Every n below 2**16, for divisors small and large."""
    n = np.arange(2**16, dtype=dtype)
    divisors = [1, 2, 3, 5, 6, 7, 10, 11, 100, 641, 1000, 4095, 65535, 65536, 65537]
    divisors += [2**31 - 1, 2**32 - 1, 2**32, 2**40 + 1, MAX_DIVISOR]
    numerators = np.broadcast_to(n, (len(divisors), n.size))
    got = _quotients(divisors, numerators, dtype)
    assert not _mismatches(divisors, numerators, got)


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_32_bit(dtype):
    rng = np.random.default_rng(32)
    _check(_random_divisors(rng, 32, 3000), dtype, seed=1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_powers_of_two_and_neighbours(dtype):
    powers = [2**k for k in range(63)]
    divisors = sorted({p + e for p in powers for e in (-1, 0, 1) if p + e >= 1})
    _check([d for d in divisors if d <= MAX_DIVISOR], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_near_the_top_of_32_bits(dtype):
    divisors = list(range(2**31 - 100, 2**31 + 100))
    divisors += list(range(2**32 - 200, 2**32 + 3))
    _check(divisors, dtype)


def test_beyond_32_bits_is_quotient_zero():
    """Without a 64-bit step type, a divisor of 2**32 or more divides every uint32
    to 0."""
    divisors = [2**32, 2**32 + 1, 2**32 + 2**31, 2**33 - 1, 2**33, 2**40 + 12345]
    divisors += [2**62, MAX_DIVISOR]
    divisors += _random_divisors(np.random.default_rng(33), 63, 200)
    divisors = [d for d in divisors if d >= 2**32]
    numerators = _numerators(divisors, np.dtype(np.uint32), seed=2)
    got = _quotients(divisors, numerators, np.uint32)
    assert not got.any()
    assert not _mismatches(divisors, numerators, got)


@pytest.mark.skipif(not X64, reason="uint64 needs JAX_ENABLE_X64=1")
def test_random_64_bit():
    rng = np.random.default_rng(64)
    divisors = _random_divisors(rng, 63, 3000)
    divisors += [MAX_DIVISOR, MAX_DIVISOR - 1, 2**62 + 1, 2**63 // 3, 10**18]
    _check(divisors, np.dtype(np.uint64), seed=3)


@pytest.mark.skipif(not X64, reason="uint64 needs JAX_ENABLE_X64=1")
def test_64_bit_divisor_one_and_top_numerators():
    n = np.array([0, 1, 2**32 - 1, 2**32, 2**63, 2**64 - 2, 2**64 - 1], np.uint64)
    for d in (1, 2, 3, 2**32, 2**32 + 1, MAX_DIVISOR):
        divisor = prepare_divisor(*_words(d), np.uint64)
        got = np.asarray(divide(n, divisor))
        assert got.tolist() == [int(x) // d for x in n.tolist()]


@pytest.mark.parametrize("dtype", DTYPES)
def test_magic_is_the_formula(dtype):
    """`magic` and `shift` are Granlund and Montgomery's: for `d` not a power of
    two, `ceil(2**(w + L + 1) / d) - 2**w` and `L = floor(log2(d))`."""
    w = _bits(dtype)
    rng = np.random.default_rng(7)
    divisors = [d for d in _random_divisors(rng, w - 1, 500) if d & (d - 1)]
    divisors += [3, 5, 7, 1000, 2**31 - 1, 2 ** (w - 1) - 1]
    hi, lo = _words(divisors)
    prepared = jax.jit(jax.vmap(lambda hi, lo: prepare_divisor(hi, lo, dtype)))(hi, lo)
    for d, magic, shift, one in zip(divisors, *map(np.asarray, prepared), strict=True):
        floor_log2 = d.bit_length() - 1
        formula = -(-(2 ** (w + floor_log2 + 1)) // d) - 2**w
        assert (int(magic), int(shift), bool(one)) == (formula, floor_log2, False), d


def test_known_libdivide_constants():
    """libdivide's branchfree constants for a few uint32 divisors."""
    known = {3: (0x55555556, 1), 7: (0x24924925, 2), 10: (0x9999999A, 3)}
    known |= {8: (0, 2), 2: (0, 0), 2**31: (0, 30)}
    for d, constants in known.items():
        divisor = prepare_divisor(*_words(d), np.uint32)
        assert (int(divisor.magic), int(divisor.shift)) == constants, d
        assert divisor.magic.dtype == divisor.shift.dtype == np.uint32
    one = prepare_divisor(np.int32(0), np.uint32(1), np.uint32)
    assert bool(one.one)


@pytest.mark.parametrize("dtype", DTYPES)
def test_double_word_division(dtype):
    """The long division that makes the magic numbers, against Python's `divmod`."""
    w = _bits(dtype)
    rng = np.random.default_rng(128)
    divisors = [*_random_divisors(rng, w, 300), 1, 2, 3, 2**w - 1]
    his = [int(rng.integers(0, d, dtype=np.uint64)) for d in divisors]
    los = rng.integers(0, 2**w - 1, size=len(divisors), dtype=dtype, endpoint=True)
    los[:3] = [0, 1, 2**w - 1]
    d_array, hi_array = np.array(divisors, dtype), np.array(his, dtype)
    quotient, remainder = jax.jit(_divide_wide)(hi_array, los, d_array)
    for i, d in enumerate(divisors):
        q, r = divmod(his[i] * 2**w + int(los[i]), d)
        assert (int(quotient[i]), int(remainder[i])) == (q, r), (d, his[i], los[i])


@pytest.mark.parametrize("dtype", DTYPES)
def test_jit_divisor_is_an_argument(dtype):
    """One trace for every divisor: the divisor is data, never a constant."""
    traces = []

    @jax.jit
    def stairs(hi, lo, n):
        traces.append(None)
        return divide(n, prepare_divisor(hi, lo, dtype))

    n = _numerators([1], dtype, seed=4)[0]
    for d in (1, 2, 3, 7, 1000, 2**31 + 1, 2**32 - 1, 2**32 + 5, MAX_DIVISOR):
        got = np.asarray(stairs(*_words(d), n))
        assert not _mismatches([d], n[None], got[None]), d
    assert len(traces) == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_jit_divisor_as_a_pytree(dtype):
    """A `Divisor` prepared once is a jit argument (a pytree of arrays)."""
    traces = []

    @jax.jit
    def stairs(n, divisor):
        traces.append(None)
        return divide(n, divisor)

    n = _numerators([1], dtype, seed=5)[0]
    for d in (1, 4, 12, 4097, 2**31 - 1):
        divisor = prepare_divisor(*_words(d), dtype)
        assert isinstance(divisor, Divisor)
        assert not _mismatches([d], n[None], np.asarray(stairs(n, divisor))[None])
    assert len(traces) == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_eager_and_closed_over(dtype):
    """Eagerly, and with the divisor a constant of the jitted function."""
    n = _numerators([1], dtype, seed=6)[0]
    for d in (1, 6, 2**20, 999_999_937):
        divisor = prepare_divisor(*_words(d), dtype)
        eager = np.asarray(divide(n, divisor))
        constant = np.asarray(jax.jit(lambda n, divisor=divisor: divide(n, divisor))(n))
        assert not _mismatches([d], n[None], eager[None])
        np.testing.assert_array_equal(constant, eager)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vmap_over_16_divisors(dtype):
    """16 divisors against a batch of numerators, and against one broadcast row."""
    divisors = [1, 2, 3, 7, 10, 64, 641, 1000, 4097, 65537, 2**24 + 3]
    divisors += [2**31 - 1, 2**31, 2**32 - 1, 2**32, MAX_DIVISOR]
    assert len(divisors) == 16
    hi, lo = _words(divisors)
    batch = _numerators(divisors, dtype, seed=7)
    prepare = jax.vmap(lambda hi, lo: prepare_divisor(hi, lo, dtype))
    divisor = jax.jit(prepare)(hi, lo)
    assert divisor.magic.shape == (16,)

    per_row = jax.jit(jax.vmap(divide))(batch, divisor)
    assert not _mismatches(divisors, batch, np.asarray(per_row))

    row = batch[0]
    shared = jax.jit(jax.vmap(divide, in_axes=(None, 0)))(row, divisor)
    broadcast = np.broadcast_to(row, batch.shape)
    assert not _mismatches(divisors, broadcast, np.asarray(shared))

    # Prepared and divided in one vmapped function, outside jit too.
    both = jax.vmap(lambda hi, lo, n: divide(n, prepare_divisor(hi, lo, dtype)))
    np.testing.assert_array_equal(both(hi, lo, batch), per_row)


def test_wrong_magic_is_caught():
    """The check can fail: a magic number one too small or too large, a shift one
    too small, and a divisor of 1 without its select each give wrong quotients."""
    # Not 641: it divides 2**32 + 1, and a magic one too large is exact for it too.
    divisors = [7, 1000, 12345]
    numerators = _numerators(divisors, np.dtype(np.uint32), seed=8)
    hi, lo = _words(divisors)
    good = jax.vmap(lambda hi, lo: prepare_divisor(hi, lo, np.uint32))(hi, lo)
    tampered = [
        good._replace(magic=good.magic - np.uint32(1)),
        good._replace(magic=good.magic + np.uint32(1)),
        good._replace(shift=good.shift - np.uint32(1)),
    ]
    for divisor in tampered:
        got = np.asarray(jax.vmap(divide)(numerators, divisor))
        wrong = _mismatches(divisors, numerators, got)
        assert {d for d, *_ in wrong} == set(divisors)

    n = numerators[:1]
    one = prepare_divisor(np.int32(0), np.uint32(1), np.uint32)
    got = np.asarray(divide(n, one._replace(one=jnp.zeros((), bool))))
    assert _mismatches([1], n, got)
    assert not _mismatches([1], n, np.asarray(divide(n, one)))


def test_bad_types():
    divisor = prepare_divisor(np.int32(0), np.uint32(3), np.uint32)
    with pytest.raises(TypeError, match="is int32"):
        divide(jnp.arange(3, dtype=jnp.int32), divisor)
    with pytest.raises(TypeError, match="uint32 or uint64"):
        prepare_divisor(np.int32(0), np.uint32(3), np.int32)
    if not X64:
        with pytest.raises(ValueError, match="x64"):
            prepare_divisor(np.int32(0), np.uint32(3), np.uint64)
