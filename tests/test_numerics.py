"""Accuracy of the numerics core against a 256-bit mpmath reference.

``scaled_pow(prepare(scale, rate, decay_steps, dtype), n)`` must be within 1 ulp
of ``scale * rate**(n / decay_steps)`` rounded exactly, for every result in the
normal range.  XLA on CPU flushes subnormal results to zero, so below the normal
range a result may be 0 (of the right sign) or the subnormal within 1 ulp, and
never NaN.

The same contract holds for constants prepared on the device from traced
hyperparameters (`prepare_traced`), for the values of scale and rate in the compute
dtype; those tests also check that jit, eager and vmap over configs agree bit for
bit.

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

from _reference import INT_TYPE as _INT_TYPE
from _reference import reference, ulp_distance
from _reference import round_exact as _round_exact
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxdecay import exponential_decay
from jaxdecay._exact import TracedConstants, prepare, prepare_traced, scaled_pow

mpmath.mp.prec = 256

_RATES = [0.9999, 0.96, 0.5, 1e-3, 1.0001, 2.0]
_DECAY_STEPS = [1, 1000, 2**31 - 1, 2**62, 2**63 - 1]


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


def _evaluate(scale, rate, decay_steps, ns, dtype=np.float32) -> np.ndarray:
    constants = prepare(scale, rate, decay_steps, dtype)
    n = jnp.asarray(np.asarray(ns, _INT_TYPE[np.dtype(dtype)]))
    return np.asarray(scaled_pow(constants, n))


def _normal_range_top(constants, n_cap: int) -> int:
    # n_top bounds where the result can still be non-zero and finite.
    return min(constants.n_top, n_cap)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    scale=st.floats(1e-6, 10.0) | st.floats(-10.0, -1e-6),
    rate=st.floats(1e-4, 0.99999) | st.floats(1.00001, 4.0),
    decay_steps=st.sampled_from(_DECAY_STEPS) | st.integers(1, 10**6),
    seed=st.integers(0, 2**32 - 1),
)
def test_float32_random(scale, rate, decay_steps, seed):
    constants = prepare(scale, rate, decay_steps, np.float32)
    top = _normal_range_top(constants, 2**31 - 1)
    rng = np.random.default_rng(seed)
    ns = np.concatenate(
        [
            rng.integers(0, top + 1, 48),
            rng.integers(0, min(top, 2**24) + 1, 16),
            [0, 1, top],
        ]
    ).astype(np.int32)
    got = np.asarray(scaled_pow(constants, jnp.asarray(ns)))
    check_close(got, reference(scale, rate, decay_steps, ns, np.float32))


def _stair_steps(decay_steps: int) -> np.ndarray:
    """Steps k*ds - 1 and k*ds near 2**24 and 2**31 that fit in int32."""
    steps = {0, 1, 2**24 - 1, 2**24, 2**24 + 1, 2**31 - 2, 2**31 - 1}
    for anchor in (2**24, 2**31 - 1):
        k = anchor // decay_steps
        for kk in (k - 1, k, k + 1):
            for step in (kk * decay_steps - 1, kk * decay_steps):
                if 0 <= step <= 2**31 - 1:
                    steps.add(step)
    return np.array(sorted(steps), np.int64)


@pytest.mark.parametrize("decay_steps", _DECAY_STEPS)
@pytest.mark.parametrize("rate", _RATES)
def test_float32_boundaries(rate, decay_steps):
    steps = _stair_steps(decay_steps)
    for scale in (0.1, 1.0):
        got = _evaluate(scale, rate, decay_steps, steps)
        check_close(got, reference(scale, rate, decay_steps, steps, np.float32))
        # Staircase: the caller passes the completed stairs with decay_steps=1.
        stairs = steps // decay_steps
        got = _evaluate(scale, rate, 1, stairs)
        check_close(got, reference(scale, rate, 1, stairs, np.float32))


@pytest.mark.parametrize(
    ("scale", "rate", "decay_steps"),
    [
        (0.1, 0.96, 1000),
        (1e-3, 0.9999, 1),
        (-2.5, 1.0001, 7),
        (1e30, 1e-20, 3),
        (1e-300, 1.7e308, 3),  # scale outside float32: its exact value is used
        (1e300, 1e-300, 1),
    ],
)
def test_float32_extremes_near_the_edges(scale, rate, decay_steps):
    constants = prepare(scale, rate, decay_steps, np.float32)
    top = min(constants.n_top, 2**31 - 1)
    ns = np.unique(np.clip(np.arange(-40, 41) + top, 0, 2**31 - 1))
    ns = np.concatenate([ns, np.arange(0, 40), np.linspace(0, top, 200).astype(int)])
    got = _evaluate(scale, rate, decay_steps, ns)
    check_close(got, reference(scale, rate, decay_steps, ns, np.float32))


def test_jit_eager_and_vmap_bit_identical():
    rng = np.random.default_rng(0)
    ns = rng.integers(0, 2**31 - 1, 200_000).astype(np.int32)
    ns[:1000] = rng.integers(0, 2**16, 1000)
    for scale, rate, decay_steps in [
        (0.1, 0.96, 1000),
        (-3.0, 1.0001, 10),
        (1e-3, 0.9999, 2**31 - 1),
        (0.5, 0.999, 12345),
    ]:
        constants = prepare(scale, rate, decay_steps, np.float32)
        eager = np.asarray(scaled_pow(constants, jnp.asarray(ns)))
        jitted = np.asarray(jax.jit(lambda n, c=constants: scaled_pow(c, n))(ns))
        mapped = np.asarray(jax.vmap(lambda n, c=constants: scaled_pow(c, n))(ns))
        assert (eager.view(np.int32) == jitted.view(np.int32)).all()
        assert (eager.view(np.int32) == mapped.view(np.int32)).all()
        # Inside a larger jitted computation, as a schedule would use it.
        fused = jax.jit(lambda t, c=constants: scaled_pow(c, jnp.maximum(t - 0, 0)) * 1)
        assert (np.asarray(fused(ns)).view(np.int32) == eager.view(np.int32)).all()


def test_underflow_overflow_and_special_scales():
    big = np.array([0, 1, 100, 10**6, 2**31 - 1], np.int32)
    down = _evaluate(1.0, 0.5, 1, big)
    assert down[0] == 1.0 and (down[-2:] == 0).all() and not np.isnan(down).any()
    up = _evaluate(-1.0, 2.0, 1, big)
    assert up[0] == -1.0 and up[2] == -(2.0**100) and (up[-2:] == -np.inf).all()
    assert (_evaluate(2.0, 1e-30, 1, big)[2:] == 0).all()
    assert (_evaluate(2.0, 1e30, 1, big)[2:] == np.inf).all()
    zeros = _evaluate(-0.0, 0.5, 3, big)
    assert (zeros == 0).all() and np.signbit(zeros).all()
    assert (_evaluate(0.1, 1.0, 3, big) == np.float32(0.1)).all()
    # Every n from 0 up, across the whole underflow transition.
    ns = np.arange(0, 200, dtype=np.int32)
    got = _evaluate(0.75, 0.5, 1, ns)
    check_close(got, reference(0.75, 0.5, 1, ns, np.float32))
    assert ((got > 0) | (got == 0)).all()


def test_shapes_and_dtypes():
    constants = prepare(0.1, 0.96, 1000, jnp.float32)
    out = scaled_pow(constants, jnp.arange(12, dtype=jnp.int32).reshape(3, 4))
    assert out.shape == (3, 4) and out.dtype == jnp.float32
    assert scaled_pow(constants, jnp.int32(5)).shape == ()
    assert hash(constants) == hash(prepare(0.1, 0.96, 1000, jnp.float32))
    with pytest.raises(ValueError):
        prepare(0.1, 0.0, 1000, jnp.float32)
    with pytest.raises(ValueError):
        prepare(0.1, 0.5, 0, jnp.float32)
    with pytest.raises(TypeError):
        scaled_pow(constants, jnp.ones(3, jnp.float32))


# ---------------------------------------------------------------------------
# Traced hyperparameters: constants prepared on the device by `prepare_traced`.
# The reference uses the values of scale and rate in the compute dtype.
# ---------------------------------------------------------------------------


@functools.cache
def _traced_program(dtype):
    """The kernel with every hyperparameter a jit argument, as a NumPy function."""
    dtype = np.dtype(dtype)

    def kernel(s, r, d, n):
        return scaled_pow(prepare_traced(s, r, d, dtype), n)

    jitted = jax.jit(kernel)

    def run(scale, rate, decay_steps, ns) -> np.ndarray:
        # Padded to a power of two, so that few shapes are compiled.
        ns = np.asarray(ns, _INT_TYPE[dtype]).ravel()
        padded = np.zeros(max(64, 1 << (ns.size - 1).bit_length()), ns.dtype)
        padded[: ns.size] = ns
        return np.asarray(jitted(scale, rate, decay_steps, padded))[: ns.size]

    return run


@functools.cache
def _traced_prepare(dtype):
    return jax.jit(lambda s, r, d: prepare_traced(s, r, d, np.dtype(dtype)))


def _traced_config(scale, rate, decay_steps, dtype=np.float32):
    """The hyperparameters as scalars of the compute dtype (and its integer)."""
    dtype = np.dtype(dtype)
    return dtype.type(scale), dtype.type(rate), _INT_TYPE[dtype](decay_steps)


def _traced_exponent_error(dtype, count: int, seed: int) -> float:
    """Largest relative error of the device's D = 64*log2(rate)/decay_steps (the
    sum of its pieces and tail) over random, near-1 and awkward rates."""
    dtype = np.dtype(dtype)
    int_type = _INT_TYPE[dtype]
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
    top = np.iinfo(int_type).max
    steps = rng.integers(1, top, rates.size, dtype=int_type)
    steps[::3], steps[1::5] = 1, top
    prepare_all = jax.jit(
        jax.vmap(lambda r, d: prepare_traced(dtype.type(1), r, d, dtype))
    )
    constants = prepare_all(rates, steps)
    pieces, tails = np.asarray(constants.pieces), np.asarray(constants.tail)
    worst = mpmath.mpf(0)
    for rate, decay_steps, parts, tail in zip(rates, steps, pieces, tails, strict=True):
        exact = 64 * mpmath.log(mpmath.mpf(float(rate)), 2) / int(decay_steps)
        got = sum(mpmath.mpf(float(x)) for x in parts) + mpmath.mpf(float(tail))
        if exact == 0:
            assert got == 0
            continue
        worst = max(worst, abs(got / exact - 1))
    return float(worst)


def test_traced_exponent_accuracy():
    """D from the device is within 2**-44 relative (the reduction needs ~2**-36)."""
    assert _traced_exponent_error(np.float32, 600, seed=32) < 2.0**-44


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    scale=st.floats(1e-6, 10.0) | st.floats(-10.0, -1e-6) | st.floats(1e-30, 1e30),
    rate=st.floats(1e-4, 0.99999)
    | st.floats(1.00001, 4.0)
    | st.floats(0.999, 1.001)
    | st.floats(1e-30, 1e30),
    decay_steps=st.sampled_from([1, 1000, 2**31 - 1]) | st.integers(1, 2**31 - 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_traced_float32_random(scale, rate, decay_steps, seed):
    config = _traced_config(scale, rate, decay_steps)
    top = int(_traced_prepare(np.float32)(*config).n_limit)
    rng = np.random.default_rng(seed)
    ns = np.concatenate(
        [
            rng.integers(0, top + 1, 40),
            rng.integers(0, min(top, 2**24) + 1, 12),
            rng.integers(max(top - 100, 0), top + 1, 9),
            [0, 1, top],
        ]
    ).astype(np.int32)
    got = _traced_program(np.float32)(*config, ns)
    scale, rate = float(config[0]), float(config[1])
    check_close(got, reference(scale, rate, decay_steps, ns, np.float32))


def test_traced_float32_boundaries_under_vmap():
    """The rates of the static tests with decay_steps up to 2**31-1 at the stair
    boundaries, smooth and staircase (n // decay_steps with decay_steps=1), as one
    vmap over all configs; each row must equal the config run alone."""
    configs, steps = [], []
    for rate in _RATES:
        for decay_steps in (1, 1000, 2**31 - 1):
            for scale in (0.1, -1.0):
                n = _stair_steps(decay_steps)
                configs += [(scale, rate, decay_steps), (scale, rate, 1)]
                steps += [n, n // decay_steps]
    ns = np.zeros((len(steps), max(map(len, steps))), np.int32)
    for row, n in zip(ns, steps, strict=True):
        row[: len(n)] = n
    hyper = [
        np.asarray(x)
        for x in zip(*map(_traced_config, *zip(*configs, strict=True)), strict=True)
    ]

    def kernel(s, r, d, n):
        return scaled_pow(prepare_traced(s, r, d, np.float32), n)

    got = np.asarray(jax.jit(jax.vmap(kernel))(*hyper, ns))
    single = _traced_program(np.float32)
    for i, (config, n) in enumerate(zip(configs, steps, strict=True)):
        alone = single(*(h[i] for h in hyper), ns[i])
        assert (alone.view(np.int32) == got[i].view(np.int32)).all(), config
        scale, rate = float(hyper[0][i]), float(hyper[1][i])
        expected = reference(scale, rate, config[2], n, np.float32)
        check_close(got[i, : len(n)], expected)


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
        (0.75, 0.5, 1),  # every n across the underflow transition (below)
    ],
)
def test_traced_float32_extremes(scale, rate, decay_steps):
    config = _traced_config(scale, rate, decay_steps)
    top = int(_traced_prepare(np.float32)(*config).n_limit)
    ns = np.concatenate(
        [
            np.arange(0, 200),
            [10**3, 10**6, 2**24, 2**31 - 1],
            np.clip(np.arange(-20, 21) + top, 0, 2**31 - 1),
        ]
    ).astype(np.int32)
    got = _traced_program(np.float32)(*config, ns)
    eager = np.asarray(scaled_pow(prepare_traced(*config, np.float32), ns))
    assert (got.view(np.int32) == eager.view(np.int32)).all()
    scale, rate = float(config[0]), float(config[1])
    check_close(got, reference(scale, rate, decay_steps, ns, np.float32))


def test_traced_special_values():
    ns = np.array([0, 1, 100, 10**6, 2**31 - 1], np.int32)
    run = _traced_program(np.float32)
    zeros = run(*_traced_config(-0.0, 0.5, 3), ns)
    assert (zeros == 0).all() and np.signbit(zeros).all()
    zeros = run(*_traced_config(0.0, 2.0, 3), ns)
    assert (zeros == 0).all() and not np.signbit(zeros).any()
    assert (run(*_traced_config(0.1, 1.0, 3), ns) == np.float32(0.1)).all()
    # Traced values cannot raise: invalid hyperparameters give NaN.
    for bad in [
        (1.0, 0.0, 1),
        (1.0, -0.5, 1),
        (1.0, np.inf, 1),
        (1.0, np.nan, 1),
        (np.inf, 0.5, 1),
        (np.nan, 0.5, 1),
        (1.0, 0.5, 0),
        (1.0, 0.5, -5),
    ]:
        assert np.isnan(run(*_traced_config(*bad), ns)).all(), bad


def test_traced_jit_eager_and_vmap_bit_identical():
    """jit == eager == vmap over configs == a Python loop, bit for bit; also with
    some hyperparameters compile-time constants and the others traced.  (Known
    hyperparameters are prepared by one compiled program; `jax.disable_jit()`
    runs everything op by op.)"""
    rng = np.random.default_rng(3)
    count = 16
    signs = rng.choice([-1, 1], count)
    scales = (rng.uniform(1e-4, 1, count) * signs).astype(np.float32)
    rates = np.exp(rng.uniform(-3, 0.3, count)).astype(np.float32)
    rates[:4] = [0.96, 1.0001, 0.9999, 0.999]
    steps = rng.integers(1, 2**31 - 1, count).astype(np.int32)
    steps[:4] = [1000, 10, 2**31 - 1, 12345]
    ns = rng.integers(0, 2**31 - 1, (count, 4096)).astype(np.int32)
    ns[:, :256] = rng.integers(0, 2**16, (count, 256))

    def kernel(s, r, d, n):
        return scaled_pow(prepare_traced(s, r, d, np.float32), n)

    mapped = np.asarray(jax.jit(jax.vmap(kernel))(scales, rates, steps, ns))
    shared_n = jax.jit(jax.vmap(kernel, in_axes=(0, 0, 0, None)))
    shared = np.asarray(shared_n(scales, rates, steps, ns[0]))
    jitted = jax.jit(kernel)
    for i in range(count):
        config = (scales[i], rates[i], steps[i])
        alone = np.asarray(jitted(*config, ns[i])).view(np.int32)
        assert (alone == mapped[i].view(np.int32)).all()
        if i < 4:  # op by op, preparation included (slow: a few configs)
            with jax.disable_jit():
                eager = np.asarray(kernel(*config, ns[i])).view(np.int32)
            assert (alone == eager).all()
        first = np.asarray(jitted(*config, ns[0])).view(np.int32)
        assert (first == shared[i].view(np.int32)).all()
    big = rng.integers(0, 2**31 - 1, 100_000).astype(np.int32)
    for i in (0, 2):
        config = (scales[i], rates[i], steps[i])
        eager = np.asarray(kernel(*config, big)).view(np.int32)
        assert (np.asarray(jitted(*config, big)).view(np.int32) == eager).all()
        # A traced scale with a constant rate and decay_steps (XLA must not
        # simplify the exact steps); all three constant (prepared at trace time).
        partial = jax.jit(lambda s, n, c=config: kernel(s, c[1], c[2], n))
        assert (np.asarray(partial(config[0], big)).view(np.int32) == eager).all()
        known = jax.jit(lambda n, c=config: kernel(*c, n))
        assert (np.asarray(known(big)).view(np.int32) == eager).all()
        # Inside a larger jitted computation, as a schedule would use it.
        fused = jax.jit(lambda t, c=config: kernel(*c, jnp.maximum(t - 0, 0)) * 1)
        assert (np.asarray(fused(big)).view(np.int32) == eager).all()


def test_traced_shapes_and_pytree():
    config = _traced_config(0.1, 0.96, 1000)
    constants = prepare_traced(*config, jnp.float32)
    assert isinstance(constants, TracedConstants)
    assert len(jax.tree_util.tree_leaves(constants)) == len(TracedConstants._fields)
    assert constants.table_hi.shape == (64,) and constants.pieces.shape == (3,)
    out = scaled_pow(constants, jnp.arange(12, dtype=jnp.int32).reshape(3, 4))
    assert out.shape == (3, 4) and out.dtype == jnp.float32
    assert scaled_pow(constants, jnp.int32(5)).shape == ()
    # The constants pass through jit as an argument (a pytree of arrays).
    through = jax.jit(scaled_pow)(constants, jnp.arange(5, dtype=jnp.int32))
    direct = scaled_pow(constants, jnp.arange(5, dtype=jnp.int32))
    assert (np.asarray(through) == np.asarray(direct)).all()
    with pytest.raises(ValueError):
        prepare_traced(np.ones(2, np.float32), 0.96, 1000, jnp.float32)
    with pytest.raises(TypeError):
        prepare_traced(0.1, 0.96, 1000.0, jnp.float32)
    with pytest.raises(TypeError):
        scaled_pow(constants, jnp.ones(3, jnp.float32))


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
    """Static and traced constants; the traced program also under vmap."""
    out = _run_isolated(
        """
        import json, jax, jax.numpy as jnp, numpy as np
        from jaxdecay._exact import prepare, prepare_traced, scaled_pow
        texts = []
        n = jax.ShapeDtypeStruct((16,), jnp.int32)
        for args in [(0.1, 0.96, 1000), (1e-300, 1.7e308, 3), (-2.0, 1.0001, 7)]:
            c = prepare(*args, jnp.float32)
            lowered = jax.jit(lambda n: scaled_pow(c, n)).lower(n)
            texts.append(lowered.as_text() + lowered.compile().as_text())
        def traced(s, r, d, n):
            return scaled_pow(prepare_traced(s, r, d, jnp.float32), n)
        f32, i32 = jnp.float32, jnp.int32
        for shape in [(), (16,)]:  # one config; a vmap over 16 configs
            fn = jax.jit(jax.vmap(traced)) if shape else jax.jit(traced)
            lowered = fn.lower(
                jax.ShapeDtypeStruct(shape, f32),
                jax.ShapeDtypeStruct(shape, f32),
                jax.ShapeDtypeStruct(shape, i32),
                jax.ShapeDtypeStruct(shape + (16,), i32),
            )
            texts.append(lowered.as_text() + lowered.compile().as_text())
        print(json.dumps(texts))
        """,
        x64=x64,
    )
    # Array types: `tensor<16xf64>` in StableHLO, `f64[16]` in compiled HLO
    # (attributes such as `array<i64: 1>` are not data and may be 64-bit).
    wide = re.compile(r"tensor<(\d+x)*(f64|i64|ui64)>|\b[fsu]64\[")
    texts = json.loads(out)
    assert len(texts) == 5
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
        constants = prepare(scale, rate, decay_steps, np.float64)
        top = min(constants.n_top, 2**53)
        ns = [rng.integers(0, top + 1, 150), rng.integers(0, min(top, 2**24) + 1, 50)]
        for anchor in (2**24, 2**31, 2**53):  # stair boundaries k*ds - 1, k*ds
            k = anchor // decay_steps
            ns.append(
                [s for s in (k * decay_steps - 1, k * decay_steps) if 0 <= s <= 2**53]
            )
        n = np.concatenate([np.asarray(x, np.int64) for x in ns] + [[0, 1, top]])
        eager = np.asarray(scaled_pow(constants, jnp.asarray(n)))
        jitted = np.asarray(jax.jit(lambda m, c=constants: scaled_pow(c, m))(n))
        assert eager.dtype == np.float64
        assert (eager.view(np.int64) == jitted.view(np.int64)).all()
        expected = reference(scale, rate, decay_steps, n, np.float64)
        check_close(eager, expected)
        # The traced path: the same steps, hyperparameters as jit arguments.
        hyper = (np.float64(scale), np.float64(rate), np.int64(decay_steps))
        traced = _traced_program(np.float64)(*hyper, n)
        assert traced.dtype == np.float64
        if len(lines) < 3:  # op by op, preparation included: a few suffice
            with jax.disable_jit():
                constants = prepare_traced(*hyper, np.float64)
                eager = np.asarray(scaled_pow(constants, n))
            assert (traced.view(np.int64) == eager.view(np.int64)).all()
        check_close(traced, expected)
        lines.append(f"ok {scale} {rate} {decay_steps} n={n.size}")
    lines.append(f"exponent {_traced_exponent_error(np.float64, 400, seed=64)}")
    return "\n".join(lines)


def test_float64():
    out = _run_isolated(
        "import test_numerics; print(test_numerics.float64_checks())", x64=True
    )
    assert out.count("ok ") == 13, out
    # D = 64*log2(rate)/decay_steps from the device, against mpmath.
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
    return reference(scale, rate, decay_steps, elapsed, dtype)


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
    stair_10773 = _round_exact(mpmath.mpf(0.1) * mpmath.mpf(0.9999) ** 10_773, dtype)
    stair_10774 = _round_exact(mpmath.mpf(0.1) * mpmath.mpf(0.9999) ** 10_774, dtype)
    assert ulp_distance(got.reshape(1), np.array([stair_10773], dtype))[0] <= 1
    assert got != dtype.type(stair_10774)


@pytest.mark.parametrize("dtype", [np.float16, jnp.bfloat16])
def test_16_bit_learning_rates_round_once(dtype):
    """A 16-bit rate is computed in float32 and rounded once: within 1 ulp of its
    own format's exactly rounded value."""
    scale = dtype(0.1)
    schedule = exponential_decay(scale, 1000, 0.96)
    steps = np.arange(0, 2**31 - 1, 2**31 // 997, dtype=np.int64)
    steps = steps.astype(np.int32)
    got = np.asarray(schedule(steps))
    assert got.dtype == np.dtype(dtype)
    exact = reference(float(scale), 0.96, 1000, steps, np.float64)
    expected = exact.astype(dtype)  # float64 holds the value to ~2**-53: one rounding
    normal = np.abs(expected.astype(np.float64)) >= float(jnp.finfo(dtype).tiny)
    as_int = (
        got.view(np.int16).astype(np.int64),
        expected.view(np.int16).astype(np.int64),
    )
    assert np.all(np.abs(as_int[0] - as_int[1])[normal] <= 1)
