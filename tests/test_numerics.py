"""Accuracy of the numerics core against a 256-bit mpmath reference.

``scaled_pow(prepare(scale, rate, steps, dtype), n)`` must be within 1 ulp of
``scale * rate**(n / steps)`` rounded exactly, for the values of scale and rate in
the compute dtype and every unsigned ``n`` (uint32 for float32), for every result
in the normal range.  XLA on CPU flushes subnormal results to zero, so below the
normal range a result may be 0 (of the right sign) or the subnormal within 1 ulp,
and never NaN.  The constants are computed in the program, so the tests also check
that jit, eager, op by op and vmap over configs agree bit for bit.

The float32 tests work whether or not x64 is enabled (CI runs the suite both
ways).  The float64 tests and the check that a float32 program holds no 64-bit
type each run in a fresh interpreter with the x64 setting they need.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

mpmath = pytest.importorskip("mpmath")
pytest.importorskip("hypothesis")

from _reference import reference, reference_at, ulp_distance
from _reference import round_exact as _round_exact
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxdecay import ExponentialDecay, exponential_decay
from jaxdecay._exact import Constants, prepare, scaled_pow

mpmath.mp.prec = 256

_UNSIGNED = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}
_RATES = [0.9999, 0.96, 0.5, 1e-3, 1.0001, 2.0]
_DECAY_STEPS = [1, 1000, 2**31 - 1, 2**32 + 5, 2**62, 2**63 - 1]
_N_MAX = 2**32 - 1  # every uint32 n


def check_close(got, expected) -> None:
    """Asserts the accuracy contract element by element."""
    got, expected = np.asarray(got).ravel(), np.asarray(expected).ravel()
    assert got.dtype == expected.dtype
    assert not np.isnan(got).any(), "NaN result"
    normal = np.isfinite(expected) & (np.abs(expected) >= np.finfo(got.dtype).tiny)
    distance = ulp_distance(got, expected)
    bad = normal & (distance > 1)
    assert not bad.any(), (
        f"{bad.sum()} results off by > 1 ulp, worst {distance[bad].max()}: "
        f"got {got[bad][:4]}, expected {expected[bad][:4]}"
    )
    infinite = np.isinf(expected)
    assert (got[infinite] == expected[infinite]).all(), "overflow must give +-inf"
    tiny = np.isfinite(expected) & ~normal
    flushed = (got[tiny] == 0) & (np.signbit(got[tiny]) == np.signbit(expected[tiny]))
    assert (flushed | (distance[tiny] <= 1)).all(), "underflow must give 0 or ~exact"


def words(value: int) -> tuple[np.int32, np.uint32]:
    """An integer as the (int32, uint32) words that `prepare` takes."""
    return np.int32(value >> 32), np.uint32(value & 0xFFFFFFFF)


def kernel(scale, rate, hi, lo, n):
    return scaled_pow(prepare(scale, rate, (hi, lo), scale.dtype), n)


@functools.cache
def _program(dtype):
    """The kernel with every hyperparameter a jit argument, as a NumPy function."""
    dtype = np.dtype(dtype)
    jitted = jax.jit(kernel)

    def run(scale, rate, decay_steps, ns) -> np.ndarray:
        # Padded to a power of two, so that few shapes are compiled.
        ns = np.asarray(ns, _UNSIGNED[dtype]).ravel()
        padded = np.zeros(max(64, 1 << (ns.size - 1).bit_length()), ns.dtype)
        padded[: ns.size] = ns
        config = (dtype.type(scale), dtype.type(rate), *words(decay_steps))
        return np.asarray(jitted(*config, padded))[: ns.size]

    return run


@functools.cache
def _prepare_program(dtype):
    dtype = np.dtype(dtype)
    return jax.jit(lambda s, r, hi, lo: prepare(s, r, (hi, lo), dtype))


def n_limit(scale, rate, decay_steps, dtype=np.float32) -> int:
    dtype = np.dtype(dtype)
    config = (dtype.type(scale), dtype.type(rate), *words(decay_steps))
    return int(_prepare_program(dtype)(*config).n_limit)


def in_dtype(scale, rate, dtype=np.float32) -> tuple[float, float]:
    """scale and rate as the program takes them: rounded to the compute dtype."""
    dtype = np.dtype(dtype)
    return float(dtype.type(scale)), float(dtype.type(rate))


def evaluate(scale, rate, decay_steps, ns, dtype=np.float32) -> np.ndarray:
    return _program(dtype)(scale, rate, decay_steps, ns)


def check(scale, rate, decay_steps, ns, dtype=np.float32) -> np.ndarray:
    """Runs the kernel and checks it against mpmath; returns what it computed."""
    got = evaluate(scale, rate, decay_steps, ns, dtype)
    exact = reference(*in_dtype(scale, rate, dtype), decay_steps, ns, dtype)
    check_close(got, exact)
    return got


# Scales of both signs and every magnitude; rates of decay and growth, near 1 and far.
SCALES = st.floats(1e-6, 10.0) | st.floats(-10.0, -1e-6) | st.floats(1e-30, 1e30)
RATES = (
    st.floats(1e-4, 0.99999)
    | st.floats(1.00001, 4.0)
    | st.floats(0.999, 1.001)
    | st.floats(1e-30, 1e30)
)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    scale=SCALES,
    rate=RATES,
    decay_steps=st.sampled_from(_DECAY_STEPS) | st.integers(1, 2**63 - 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_float32_random(scale, rate, decay_steps, seed):
    top = min(n_limit(scale, rate, decay_steps), _N_MAX)
    rng = np.random.default_rng(seed)
    ns = np.concatenate(
        [
            rng.integers(0, top + 1, 40),
            rng.integers(0, min(top, 2**24) + 1, 12),
            rng.integers(max(top - 100, 0), top + 1, 9),
            [0, 1, top],
        ]
    )
    check(scale, rate, decay_steps, ns)


_COMPUTE = np.dtype(jnp.result_type(float))  # float32, or float64 under x64


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    scale=SCALES,
    rate=RATES,
    decay_steps=st.sampled_from([1, 2, 7, 1000, 2**31 - 1, 2**62])
    | st.integers(1, 2**63 - 1),
    begin=st.just(0) | st.integers(0, 10**6),
    seed=st.integers(0, 2**32 - 1),
)
def test_fractional_float_steps_within_one_ulp(scale, rate, decay_steps, begin, seed):
    """A float step's fraction enters the exact reduction: within 1 ulp of the
    exact value of the numbers in the compute dtype, as integer steps are (the
    float multiplication by rate ** (fraction / decay_steps) was up to 46 ulp
    off)."""
    rng = np.random.default_rng(seed)
    fractions = rng.uniform(0, 1, 24)
    fractions[:4] = [0.5, 0.9, 2.0**-20, 1 - 2.0**-20]
    wholes = rng.integers(0, 10 ** int(rng.integers(1, 10)), 24)
    steps = (begin + wholes + fractions).astype(_COMPUTE)
    steps = np.concatenate([steps, np.asarray([begin + 0.5, 2.0**31 + 0.5])])
    steps = steps.astype(_COMPUTE)
    config = ExponentialDecay(scale, decay_steps, rate, transition_begin=begin)
    got = np.asarray(config(jnp.asarray(steps)))
    scale, rate = in_dtype(scale, rate, _COMPUTE)
    check_close(got, reference_at(scale, rate, decay_steps, steps, _COMPUTE, begin))


def test_a_fraction_of_a_fast_decay_is_within_one_ulp():
    """The issue's example: ~9 ulp off in float32 when the fraction's factor was a
    separate rounded exp."""
    config = ExponentialDecay(0.1, 1, 1e-10)
    steps = np.asarray([0.9, 0.1, 0.5, 1.9, 3.5], _COMPUTE)
    expected = reference_at(*in_dtype(0.1, 1e-10, _COMPUTE), 1, steps, _COMPUTE)
    assert (ulp_distance(np.asarray(config(jnp.asarray(steps))), expected) <= 1).all()


def _stair_steps(decay_steps: int) -> np.ndarray:
    """Steps k*ds - 1 and k*ds near 2**24, 2**31 and 2**32 that fit in uint32."""
    steps = {0, 1, 2**24 - 1, 2**24, 2**24 + 1, 2**31 - 1, 2**31, _N_MAX - 1, _N_MAX}
    for anchor in (2**24, 2**31, _N_MAX):
        k = anchor // decay_steps
        for kk in (k - 1, k, k + 1):
            for step in (kk * decay_steps - 1, kk * decay_steps):
                if 0 <= step <= _N_MAX:
                    steps.add(step)
    return np.array(sorted(steps), np.int64)


@pytest.mark.parametrize("decay_steps", _DECAY_STEPS)
@pytest.mark.parametrize("rate", _RATES)
def test_float32_boundaries(rate, decay_steps):
    steps = _stair_steps(decay_steps)
    for scale in (0.1, -1.0):
        check(scale, rate, decay_steps, steps)
        # Staircase: the caller passes the completed stairs with steps=1.
        check(scale, rate, 1, steps // decay_steps)


def test_boundaries_in_one_vmap_equal_each_config_alone():
    """The boundary configs as one vmap over all of them: each row must have the
    bits of its config run alone."""
    configs, steps = [], []
    for rate in _RATES:
        for decay_steps in (1, 1000, 2**31 - 1, 2**40 + 3):
            for scale in (0.1, -1.0):
                n = _stair_steps(decay_steps)
                configs += [(scale, rate, decay_steps), (scale, rate, 1)]
                steps += [n, n // decay_steps]
    ns = np.zeros((len(steps), max(map(len, steps))), np.uint32)
    for row, n in zip(ns, steps, strict=True):
        row[: len(n)] = n
    columns = [
        np.asarray(column)
        for column in zip(
            *[(np.float32(s), np.float32(r), *words(d)) for s, r, d in configs],
            strict=True,
        )
    ]
    together = np.asarray(jax.jit(jax.vmap(kernel))(*columns, ns))
    for i, config in enumerate(configs):
        alone = evaluate(*config, ns[i])
        assert (alone.view(np.int32) == together[i].view(np.int32)).all(), config


@pytest.mark.parametrize(
    ("scale", "rate", "decay_steps"),
    [
        (1.0, 0.5, 1),
        (-1.0, 2.0, 1),
        (2.0, 1e-30, 1),
        (2.0, 1e30, 1),
        (0.1, 1.0, 3),  # rate 1: constant
        (1e-40, 1.5, 1),  # subnormal scale
        (3e38, 1e-45, 1),  # subnormal rate, large scale
        (1e-45, 3e38, 1),
        (1e30, 1e-20, 3),
        (-2.5, 1.0001, 7),
        (5.0, 1e-45, 2**31 - 1),
        (3e38, 0.99999994, 2**31 - 1),  # the float32 just below 1
        (3e38, 0.99999994, 2**63 - 1),
        (1e-45, 1.0000001, 1),  # grows across the whole range over uint32
        (0.75, 0.5, 1),  # every n across the underflow transition (below)
    ],
)
def test_float32_extremes(scale, rate, decay_steps):
    top = min(n_limit(scale, rate, decay_steps), _N_MAX)
    ns = np.concatenate(
        [
            np.arange(0, 200),
            [10**3, 10**6, 2**24, 2**31 - 1, 2**31, _N_MAX],
            np.clip(np.arange(-20, 21) + top, 0, _N_MAX),
        ]
    )
    got = check(scale, rate, decay_steps, ns)
    config = (np.float32(scale), np.float32(rate), *words(decay_steps))
    eager = np.asarray(kernel(*config, ns.astype(np.uint32)))
    assert (got.view(np.int32) == eager.view(np.int32)).all()


def test_special_values():
    ns = np.array([0, 1, 100, 10**6, 2**31 - 1, _N_MAX], np.uint32)
    zeros = evaluate(-0.0, 0.5, 3, ns)
    assert (zeros == 0).all() and np.signbit(zeros).all()
    zeros = evaluate(0.0, 2.0, 3, ns)
    assert (zeros == 0).all() and not np.signbit(zeros).any()
    assert (evaluate(0.1, 1.0, 3, ns) == np.float32(0.1)).all()
    # A rate of 0 or inf, or an infinite scale: 0 or inf wherever the exact
    # value is (a float32 config may hold them: 1e-300 and 1e300 round so).
    assert list(evaluate(2.0, 0.0, 1, ns)) == [2.0] + [0.0] * 5
    assert list(evaluate(-2.0, np.inf, 7, ns)) == [-2.0] + [-np.inf] * 5
    assert (evaluate(np.inf, 0.5, 1, ns) == np.inf).all()
    assert (evaluate(-np.inf, 2.0, 1, ns) == -np.inf).all()
    # Traced values cannot raise: invalid hyperparameters give NaN.
    for bad in [(1.0, -0.5, 1), (1.0, np.nan, 1), (np.nan, 0.5, 1), (1.0, 0.5, 0)]:
        assert np.isnan(evaluate(*bad, ns)).all(), bad
    negative_steps = (np.float32(1), np.float32(0.5), np.int32(-1), np.uint32(5))
    assert np.isnan(np.asarray(jax.jit(kernel)(*negative_steps, ns))).all()


def _exponent_error(dtype, count: int, seed: int) -> float:
    """Largest relative error of the program's D = 64*log2(rate)/decay_steps (the
    sum of its pieces and tail) over random, near-1 and awkward rates and steps."""
    dtype = np.dtype(dtype)
    info = np.finfo(dtype)
    rng = np.random.default_rng(seed)
    near_one = 1 + rng.choice([-1, 1], count) * np.exp2(
        rng.uniform(-info.nmant, -3, count)
    )
    rates = np.concatenate(
        [
            np.exp(rng.uniform(-80, 80, count)),
            near_one,
            [info.smallest_subnormal, info.tiny, info.max, 1 - info.epsneg],
            [1 + info.eps, 0.70703125, np.nextafter(0.70703125, 0), 1.4140625],
            [0.9999, 0.96, 1.0],
        ]
    ).astype(dtype)
    steps = [int(x) for x in rng.integers(1, 2**63 - 1, rates.size, dtype=np.int64)]
    for i in range(0, len(steps), 3):
        steps[i] = 1
    for i in range(1, len(steps), 5):
        steps[i] = 2**63 - 1
    for i in range(2, len(steps), 7):
        steps[i] = int(rng.integers(1, 2**32))
    hi, lo = (np.asarray(column) for column in zip(*map(words, steps), strict=True))
    prepare_all = jax.jit(
        jax.vmap(lambda r, h, low: prepare(dtype.type(1), r, (h, low), dtype))
    )
    constants = prepare_all(rates, hi, lo)
    pieces, tails = np.asarray(constants.pieces), np.asarray(constants.tail)
    worst = mpmath.mpf(0)
    for rate, decay_steps, parts, tail in zip(rates, steps, pieces, tails, strict=True):
        exact = 64 * mpmath.log(mpmath.mpf(float(rate)), 2) / decay_steps
        got = sum(mpmath.mpf(float(x)) for x in parts) + mpmath.mpf(float(tail))
        if exact == 0:
            assert got == 0
            continue
        worst = max(worst, abs(got / exact - 1))
    return float(worst)


def test_exponent_accuracy():
    """D is within 2**-44 relative (the reduction needs ~2**-36)."""
    assert _exponent_error(np.float32, 600, seed=32) < 2.0**-44


def test_jit_eager_op_by_op_and_vmap_bit_identical():
    """jit == op by op == vmap over configs == a Python loop, bit for bit; also with
    some hyperparameters compile-time constants and the others traced."""
    rng = np.random.default_rng(3)
    count = 16
    signs = rng.choice([-1, 1], count)
    scales = (rng.uniform(1e-4, 1, count) * signs).astype(np.float32)
    rates = np.exp(rng.uniform(-3, 0.3, count)).astype(np.float32)
    rates[:4] = [0.96, 1.0001, 0.9999, 0.999]
    steps = [int(x) for x in rng.integers(1, 2**40, count)]
    steps[:4] = [1000, 10, 2**31 - 1, 2**63 - 1]
    hi, lo = (np.asarray(column) for column in zip(*map(words, steps), strict=True))
    ns = rng.integers(0, _N_MAX, (count, 4096), dtype=np.uint32)
    ns[:, :256] = rng.integers(0, 2**16, (count, 256))

    mapped = np.asarray(jax.jit(jax.vmap(kernel))(scales, rates, hi, lo, ns))
    shared_n = jax.jit(jax.vmap(kernel, in_axes=(0, 0, 0, 0, None)))
    shared = np.asarray(shared_n(scales, rates, hi, lo, ns[0]))
    jitted = jax.jit(kernel)
    for i in range(count):
        config = (scales[i], rates[i], hi[i], lo[i])
        alone = np.asarray(jitted(*config, ns[i])).view(np.int32)
        assert (alone == mapped[i].view(np.int32)).all()
        if i < 4:  # op by op, preparation included (slow: a few configs)
            with jax.disable_jit():
                eager = np.asarray(kernel(*config, ns[i])).view(np.int32)
            assert (alone == eager).all()
        first = np.asarray(jitted(*config, ns[0])).view(np.int32)
        assert (first == shared[i].view(np.int32)).all()
    big = rng.integers(0, _N_MAX, 100_000, dtype=np.uint32)
    for i in (0, 3):
        config = (scales[i], rates[i], hi[i], lo[i])
        eager = np.asarray(kernel(*config, big)).view(np.int32)
        assert (np.asarray(jitted(*config, big)).view(np.int32) == eager).all()
        # A traced scale with the others constant (XLA must not simplify the
        # exact steps); all of them constant.
        partial = jax.jit(lambda s, n, c=config: kernel(s, *c[1:], n))
        assert (np.asarray(partial(config[0], big)).view(np.int32) == eager).all()
        known = jax.jit(lambda n, c=config: kernel(*c, n))
        assert (np.asarray(known(big)).view(np.int32) == eager).all()
        # Inside a larger jitted computation, as a schedule would use it.
        fused = jax.jit(lambda t, c=config: kernel(*c, jnp.maximum(t, 1) - 1) * 1)
        assert (np.asarray(fused(big + 1)).view(np.int32) == eager).all()


def test_shapes_and_pytree():
    config = (np.float32(0.1), np.float32(0.96), *words(1000))
    constants = prepare(*config[:2], config[2:], jnp.float32)
    assert isinstance(constants, Constants)
    assert len(jax.tree_util.tree_leaves(constants)) == len(Constants._fields)
    assert constants.table_hi.shape == (64,) and constants.pieces.shape == (3,)
    out = scaled_pow(constants, jnp.arange(12, dtype=jnp.uint32).reshape(3, 4))
    assert out.shape == (3, 4) and out.dtype == jnp.float32
    assert scaled_pow(constants, jnp.uint32(5)).shape == ()
    # The constants pass through jit as an argument (a pytree of arrays).
    n = jnp.arange(5, dtype=jnp.uint32)
    through = jax.jit(scaled_pow)(constants, n)
    assert (np.asarray(through) == np.asarray(scaled_pow(constants, n))).all()
    with pytest.raises(ValueError, match="scalars"):
        prepare(np.ones(2, np.float32), 0.96, words(1000), jnp.float32)


def _run_isolated(code: str, x64: bool) -> str:
    """Runs ``code`` in a fresh interpreter with x64 on or off; returns stdout."""
    env = dict(os.environ, JAX_ENABLE_X64="1" if x64 else "0", JAX_PLATFORMS="cpu")
    tests_dir = str(pathlib.Path(__file__).parent)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=tests_dir,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("x64", [False, True], ids=["x64_off", "x64_on"])
def test_float32_program_has_no_64_bit_types(x64):
    """The kernel, one config and a vmap over 16; and the public schedule of a
    float32 learning rate, with the config closed over and as an argument."""
    out = _run_isolated(
        """
        import json, jax, jax.numpy as jnp, numpy as np
        import jaxdecay
        from jaxdecay._exact import prepare, scaled_pow
        def kernel(s, r, hi, lo, n):
            return scaled_pow(prepare(s, r, (hi, lo), jnp.float32), n)
        texts = []
        f32, i32, u32 = jnp.float32, jnp.int32, jnp.uint32
        for shape in [(), (16,)]:
            fn = jax.jit(jax.vmap(kernel)) if shape else jax.jit(kernel)
            lowered = fn.lower(
                jax.ShapeDtypeStruct(shape, f32),
                jax.ShapeDtypeStruct(shape, f32),
                jax.ShapeDtypeStruct(shape, i32),
                jax.ShapeDtypeStruct(shape, u32),
                jax.ShapeDtypeStruct(shape + (16,), u32),
            )
            texts.append(lowered.as_text() + lowered.compile().as_text())
        if not jax.config.jax_enable_x64:  # under x64 the schedule computes in f64
            steps = jax.ShapeDtypeStruct((16,), i32)
            config = jaxdecay.ExponentialDecay(0.1, 2**40, 0.96, transition_begin=3)
            for fn, args in [
                (jax.jit(config), (steps,)),
                (jax.jit(lambda c, s: c(s)), (config, steps)),
            ]:
                lowered = fn.lower(*args)
                texts.append(lowered.as_text() + lowered.compile().as_text())
        print(json.dumps(texts))
        """,
        x64=x64,
    )
    # Array types: `tensor<16xf64>` in StableHLO, `f64[16]` in compiled HLO
    # (attributes such as `array<i64: 1>` are not data and may be 64-bit).
    wide = re.compile(r"tensor<(\d+x)*(f64|i64|ui64)>|\b[fsu]64\[")
    texts = json.loads(out)
    assert len(texts) == (2 if x64 else 4)
    for text in texts:
        assert "f32[" in text
        assert not wide.search(text), wide.search(text)


def float64_checks() -> str:
    """The float64 contract; run with x64 enabled (see test_float64)."""
    assert jax.config.jax_enable_x64
    rng = np.random.default_rng(64)
    lines = []
    cases = [
        (0.1, 0.96, 1000),
        (1e-3, 0.9999, 1),
        (-2.5, 1.0001, 7),
        (0.01, 0.5, 2**31 - 1),
        (1.0, 0.9, 2**62),
        (1.0, 0.9999, 2**63 - 1),
        (1e-300, 1.7e308, 3),
    ]
    for _ in range(6):
        cases.append(
            (
                float(rng.uniform(-3, 3)),
                float(np.exp(rng.uniform(-9, 0.7))),
                int(rng.choice([1, 7, 1000, 2**40 + 3, 2**62])),
            )
        )
    for scale, rate, decay_steps in cases:
        top = min(n_limit(scale, rate, decay_steps, np.float64), 2**53)
        ns = [rng.integers(0, top + 1, 150), rng.integers(0, min(top, 2**24) + 1, 50)]
        for anchor in (2**24, 2**31, 2**53):  # stair boundaries k*ds - 1, k*ds
            k = anchor // decay_steps
            ns.append(
                [s for s in (k * decay_steps - 1, k * decay_steps) if 0 <= s <= 2**53]
            )
        n = np.concatenate([np.asarray(x, np.uint64) for x in ns] + [[0, 1, top]])
        got = check(scale, rate, decay_steps, n, np.float64)
        assert got.dtype == np.float64
        if len(lines) < 3:  # op by op, preparation included: a few suffice
            config = (np.float64(scale), np.float64(rate), *words(decay_steps))
            with jax.disable_jit():
                eager = np.asarray(kernel(*config, n.astype(np.uint64)))
            assert (got.view(np.int64) == eager.view(np.int64)).all()
        lines.append(f"ok {scale} {rate} {decay_steps} n={n.size}")
    lines.append(f"exponent {_exponent_error(np.float64, 400, seed=64)}")
    return "\n".join(lines)


def test_float64():
    out = _run_isolated(
        "import test_numerics; print(test_numerics.float64_checks())", x64=True
    )
    assert out.count("ok ") == 13, out
    # D = 64*log2(rate)/decay_steps from the program, against mpmath.
    error = float(out.split("exponent ")[1].split()[0])
    assert error < 2.0**-100, out


# ---------------------------------------------------------------------------
# The public schedule: the same contract through `exponential_decay`, with the
# transition start, the staircase's integer division and the result dtypes.
# ---------------------------------------------------------------------------


def _public_reference(config, steps, staircase, dtype):
    """The schedule's exact value at integer `steps`, from mpmath, in `dtype`."""
    scale, rate, decay_steps, begin = config
    elapsed = np.maximum(np.asarray(steps, dtype=object) - begin, 0)
    if staircase:
        # The exact stair: integer division of Python ints.
        elapsed = elapsed // decay_steps * decay_steps
    # The hyperparameters as the schedule takes them: in the compute dtype.
    compute = jnp.result_type(float)
    return reference(*in_dtype(scale, rate, compute), decay_steps, elapsed, dtype)


_PUBLIC_CONFIGS = [
    (0.1, 0.9999, 1000, 0),
    (0.1, 0.96, 100_000, 0),
    (3e-4, 0.5, 7, 12_345),
    (1.0, 1.0001, 2**20 + 1, 0),
]


@pytest.mark.parametrize("staircase", [False, True], ids=["smooth", "staircase"])
@pytest.mark.parametrize("config", _PUBLIC_CONFIGS, ids=str)
def test_public_schedule_within_one_ulp_at_stair_edges(config, staircase):
    """Every k*decay_steps - 1 and k*decay_steps near 2**24 and near 2**31."""
    scale, rate, decay_steps, begin = config
    edges = []
    for centre in (2**24, 2**31 - 1 - 8 * decay_steps):
        k = np.arange(-4, 4) + (centre - begin) // decay_steps
        edges += [begin + k * decay_steps - 1, begin + k * decay_steps]
    steps = np.unique(np.concatenate(edges))
    steps = steps[(steps >= 0) & (steps < 2**31)].astype(np.int32)
    schedule = jax.jit(
        exponential_decay(scale, decay_steps, rate, staircase, transition_begin=begin)
    )
    expected = _public_reference(config, steps, staircase, schedule(0).dtype)
    check_close(schedule(steps), expected)


def test_public_staircase_is_not_a_stair_late():
    """Step 10,773,999 with decay_steps=1000 is on stair 10,773 (optax and Keras,
    dividing in float32, return stair 10,774)."""
    schedule = exponential_decay(0.1, 1000, 0.9999, staircase=True)
    dtype = schedule(0).dtype
    got = np.asarray(schedule(np.int32(10_773_999)))
    scale, rate = (mpmath.mpf(x) for x in in_dtype(0.1, 0.9999, dtype))
    stair_10773 = _round_exact(scale * rate**10_773, dtype)
    stair_10774 = _round_exact(scale * rate**10_774, dtype)
    assert ulp_distance(got.reshape(1), np.array([stair_10773], dtype))[0] <= 1
    assert got != dtype.type(stair_10774)


@pytest.mark.parametrize("dtype", [np.float16, jnp.bfloat16])
def test_16_bit_learning_rates_are_computed_at_their_value(dtype):
    """A 16-bit rate is taken at its exact value and computed in the compute dtype:
    the result is in that dtype, within 1 ulp of the exact value (a learning rate
    for 16-bit parameters is cast by the optimizer, as optax casts it)."""
    scale = dtype(0.1)
    schedule = exponential_decay(scale, 1000, 0.96)
    steps = np.arange(0, 2**31 - 1, 2**31 // 997, dtype=np.int64)
    steps = steps.astype(np.int32)
    got = np.asarray(schedule(steps))
    compute = np.dtype(jnp.result_type(float))
    assert got.dtype == compute
    exact = reference(*in_dtype(float(scale), 0.96, compute), 1000, steps, compute)
    normal = np.abs(exact) >= float(np.finfo(compute).tiny)
    assert np.all(ulp_distance(got, exact)[normal] <= 1)
