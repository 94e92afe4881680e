"""`CosineDecay`: Keras' cosine decay and its warmup, with every guarantee the
other families have.

Exact values from mpmath (Keras' formula in the numbers of the compute dtype, at
256 bits), the same bits on every path, no compile for new numbers, the host's
preparation bit for bit the program's, gradients against mpmath's numerical
derivatives, validation that names the field, Keras' and optax's values,
serialization against Keras itself, and the command line.
"""

import dataclasses
import json
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

mpmath = pytest.importorskip("mpmath")
optax = pytest.importorskip("optax")
keras = pytest.importorskip("keras")
chex = pytest.importorskip("chex")
pytest.importorskip("hypothesis")

from _paths import AS_ARGUMENT, SWEPT, counting_compiles, optax_lr, paths, stack
from _reference import PRECISION, bits, round_exact, ulp_distance
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import jaxdecay
from jaxdecay import CosineDecay, _config, _cosine, _program
from jaxdecay._program import compute_dtype
from jaxdecay._steps import Words

FLOAT = np.dtype(jnp.result_type(float))  # float32, or float64 under x64
X64 = np.float64 == FLOAT
UNSIGNED = np.dtype(np.uint64 if X64 else np.uint32)
INT64_MAX = 2**63 - 1
KerasCosineDecay = keras.optimizers.schedules.CosineDecay


def computed(value):
    """A float hyperparameter as the schedule takes it: in the compute dtype, a
    subnormal one as a zero of its sign (as every path reads it, and warns)."""
    with np.errstate(over="ignore", under="ignore"):
        value = float(FLOAT.type(value))
    return math.copysign(0.0, value) if abs(value) < np.finfo(FLOAT).tiny else value


def exact(config, step, **changes):
    """Keras' schedule at an integer or float step (mpmath), before rounding; the
    numbers in `changes` (mpmath numbers, for derivatives) replace the config's."""
    # At least 256 bits; more inside mpmath.diff, which raises the precision.
    with mpmath.workprec(max(PRECISION, mpmath.mp.prec)):
        numbers = {
            name: None if value is None else mpmath.mpf(computed(value))
            for name, value in (
                ("initial_learning_rate", config.initial_learning_rate),
                ("alpha", config.alpha),
                ("warmup_target", config.warmup_target),
            )
        }
        numbers.update(changes)
        if any(x is not None and mpmath.isinf(x) for x in numbers.values()):
            return mpmath.nan  # a number beyond the compute dtype: no guarantee
        initial, alpha = numbers["initial_learning_rate"], numbers["alpha"]
        target = numbers["warmup_target"]
        step = mpmath.mpf(step)
        peak, warmup = initial, 0
        if target is not None:
            peak, warmup = target, config.warmup_steps
            if step < warmup:  # the line, held at its start before step 0
                return initial + (target - initial) * max(step, 0) / warmup
        # Steps before the decay hold its start (Keras extrapolates there).
        elapsed = min(max(step - warmup, 0), config.decay_steps)
        cosine = (1 + mpmath.cos(mpmath.pi * elapsed / config.decay_steps)) / 2
        return peak * ((1 - alpha) * cosine + alpha)


def rounded(value):
    if mpmath.isnan(value):
        return FLOAT.type(np.nan)
    if mpmath.isinf(value):
        return FLOAT.type(np.inf if value > 0 else -np.inf)
    return FLOAT.type(round_exact(value, FLOAT))


def ulps(got, config, steps):
    """The ulp distance of each value from the exactly rounded one, where that is
    a normal float (NaN elsewhere: there the guarantee does not hold)."""
    expected = np.asarray([rounded(exact(config, int(s))) for s in steps], FLOAT)
    normal = np.isfinite(expected) & (np.abs(expected) >= np.finfo(FLOAT).tiny)
    distance = ulp_distance(np.asarray(got, FLOAT), expected)
    return np.where(normal, distance, np.nan)


# Numbers that the compute dtype rounds to 0 or inf warn (the schedule uses the
# rounded number): the draws include them on purpose.
rounding_warning = pytest.mark.filterwarnings(
    "ignore:overflow encountered in cast:RuntimeWarning",
    "ignore:.* in float(32|64), the dtype every path computes in:UserWarning",
)

extremes = st.sampled_from
rates = (
    st.floats(1e-6, 10.0)
    | st.floats(-10.0, -1e-6)
    | extremes([0.0, -0.0, 1e-30, 3e38, 1e-300, 1e300, 1.5e-38])
)
# alpha >= 0: the value's two terms have one sign (a negative alpha makes the
# curve cross 0, where an exact value near 0 needs its own test).
alphas = (
    st.floats(0.0, 1.0)
    | st.floats(0.0, 10.0)
    | st.floats(1e-45, 1e38)
    | extremes([0.0, 1.0, 0.1, 1e-30, 1e30, 3e38, 1e300])
)
decay_steps = st.integers(1, 10**6) | extremes(
    [1, 2, 3, 7, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**33 + 1, INT64_MAX]
)


@st.composite
def configs(draw, warmup=True):
    initial = draw(rates)
    target = None
    if warmup and draw(st.booleans()):
        # Keras' example warms up from 0; ends of one sign keep the line exact.
        target = draw(st.floats(1e-6, 10.0) | extremes([0.1, 1e-30, 3e38]))
        initial = math.copysign(draw(st.floats(0.0, 10.0)), target)
    return CosineDecay(
        initial,
        draw(decay_steps),
        draw(alphas),
        warmup_target=target,
        warmup_steps=draw(st.just(0) | decay_steps) if warmup else 0,
    )


def drawn_steps(rng, config):
    """Steps of the unsigned step type: random over its range and below the end
    of the decay, the extremes, and the middle and the end of each phase."""
    top = int(np.iinfo(UNSIGNED).max)
    d = config.decay_steps
    w = config.warmup_steps if config.warmup_target is not None else 0
    edges = [w + e for e in (-1, 0, 1, d // 2 - 1, d // 2, d // 2 + 1, d - 1, d, d + 1)]
    fixed = [0, 1, 2, 999, 2**24 + 1, 2**31 - 1, 2**31, top - 1, top]
    steps = [*rng.integers(0, top, 16, dtype=UNSIGNED, endpoint=True), *fixed]
    steps += list(rng.integers(0, min(w + d, top), 16, dtype=UNSIGNED, endpoint=True))
    steps += [s for s in edges if 0 <= s <= top]
    return np.asarray(steps + [0] * (64 - len(steps)), UNSIGNED)


# ---------------------------------------------------------------------------
# Exact: within 1 ulp of the exact value of the compute-dtype numbers.
# ---------------------------------------------------------------------------


@rounding_warning
@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(config=configs(), seed=st.integers(0, 2**32 - 1))
@example(config=CosineDecay(0.1, INT64_MAX, 0.0), seed=0)
@example(config=CosineDecay(3e38, 1, 3e38), seed=1)
@example(config=CosineDecay(1.5e-38, 7, 1e-30), seed=2)
@example(config=CosineDecay(-0.3, 2**32 + 1, 0.5), seed=3)
@example(config=CosineDecay(1.0, 2**33 + 1, 0.0), seed=4)
@example(config=CosineDecay(0.0, 10**6, 0.0, None, 0.1, 1000), seed=5)
def test_within_one_ulp_of_the_exact_value_at_every_unsigned_step(config, seed):
    """uint32 steps (uint64 under x64) over their whole range, the ends of every
    phase, huge and tiny rates and alphas, `decay_steps` up to 2**63 - 1: every
    value that is a normal float is within 1 ulp."""
    steps = drawn_steps(np.random.default_rng(seed), config)
    got = AS_ARGUMENT(config, jnp.asarray(steps))
    assert np.nanmax(ulps(got, config, steps), initial=0) <= 1, config


@rounding_warning
@settings(max_examples=40, deadline=None, derandomize=True)
@given(config=configs(), seed=st.integers(0, 2**32 - 1))
def test_within_one_ulp_at_signed_steps(config, seed):
    """JAX's default integer steps (int32; int64 under x64), up to their maximum,
    and negative steps, which hold the value at step 0."""
    signed = np.dtype(jnp.result_type(int))
    top = int(np.iinfo(signed).max)
    rng = np.random.default_rng(seed)
    steps = np.asarray(
        [*rng.integers(0, top, 24, dtype=signed, endpoint=True), 0, 1, top, top - 1],
        signed,
    )
    got = np.asarray(AS_ARGUMENT(config, jnp.asarray(steps)))
    assert np.nanmax(ulps(got, config, steps), initial=0) <= 1, config
    negative = np.asarray([-1, -1000, np.iinfo(signed).min], signed)
    held = np.asarray(config(jnp.asarray(negative)))
    assert bits(held) == bits(np.full(3, config(jnp.asarray(0, signed))))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    decay=st.integers(1, 4) | st.integers(5, 10**6),
    alpha=st.floats(0.0, 2.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_float_steps_are_within_one_ulp(decay, alpha, seed):
    """Fractions in both halves of the decay, around its middle and its end, and
    past the integer range."""
    config = CosineDecay(0.1, decay, alpha)
    rng = np.random.default_rng(seed)
    fractions = rng.uniform(0, 1, 8)
    steps = [*(decay * fractions), *(decay / 2 + fractions - 0.5), *(decay - fractions)]
    steps += [decay - 0.5, decay / 2, decay / 2 + 0.25, 5e9, 3e38]
    steps = np.asarray(steps, FLOAT)
    got = np.asarray(config(jnp.asarray(steps)))
    for step, value in zip(steps, got, strict=True):
        expected = rounded(exact(config, float(step)))
        if abs(expected) >= np.finfo(FLOAT).tiny:
            distance = ulp_distance(np.asarray([value]), np.asarray([expected]))[0]
            assert distance <= 1, (config, step, value, expected)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    decay=st.integers(1, 10**6) | extremes([1, 2, 3, 2**31 - 1, 2**32 + 1]),
    alpha=st.floats(-10.0, -1e-6) | extremes([-1.0, -0.5, -3e38]),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_negative_alpha_is_within_its_bound(decay, alpha, seed):
    """A negative alpha (Keras accepts it) makes the curve cross 0: there the
    value is within 1 ulp plus 2**-(p+2) of peak * (1 - alpha), p the precision,
    and elsewhere within 1 ulp."""
    config = CosineDecay(0.1, decay, alpha)
    rng = np.random.default_rng(seed)
    top = min(decay + 1, int(np.iinfo(UNSIGNED).max))
    steps = rng.integers(0, top, 48, dtype=UNSIGNED, endpoint=True)
    got = np.asarray(config(jnp.asarray(steps)), np.float64)
    precision = np.finfo(FLOAT).nmant + 1
    bound = 2.0 ** -(precision + 2) * abs(computed(0.1) * (1 - computed(alpha)))
    for step, value in zip(steps, got, strict=True):
        expected = rounded(exact(config, int(step)))
        if not np.isfinite(expected):
            continue
        unit = float(np.spacing(np.abs(expected)))
        assert abs(value - float(expected)) <= unit + bound, (step, value, expected)


def test_whole_float_steps_give_the_integer_steps_bits():
    config = CosineDecay(0.1, 3000, 0.1)
    integers = np.asarray([0, 1, 7, 1500, 2999, 3000, 2**24 + 2, 2**31 - 128])
    got = np.asarray(config(jnp.asarray(integers.astype(np.float32))))
    expected = np.asarray(config(jnp.asarray(integers, jnp.result_type(int))))
    assert bits(got) == bits(expected)


def test_infinity_and_huge_float_steps_give_the_end():
    config = CosineDecay(0.1, 1000, 0.25)
    end = FLOAT.type(computed(0.1) * computed(0.25))
    got = np.asarray(config(jnp.asarray([np.inf, 3e38, 5e9], FLOAT)))
    assert (got == end).all()
    assert config(-jnp.inf) == FLOAT.type(0.1)
    # A decay longer than the integer steps: a huge float step is on the curve.
    long = CosineDecay(1.0, 2**40, 0.0)
    expected = rounded(exact(long, 2.0**39))
    assert long(jnp.asarray(2.0**39, FLOAT)) == expected


def test_hand_worked_values():
    """The middle of the decay is half way between the peak and its end; the end
    is the peak times alpha; a quarter is (1 + cos(pi/4)) / 2."""
    config = CosineDecay(1.0, 4, 0.0)
    got = np.asarray(config(jnp.arange(6, dtype=jnp.int32)), np.float64)
    quarter = (1 + math.sqrt(0.5)) / 2
    expected = [1.0, quarter, 0.5, 1 - quarter, 0.0, 0.0]
    np.testing.assert_allclose(got, expected, rtol=2e-7, atol=0)
    if not X64:  # exact in float64 from the float32 numbers: rounded once here
        tenth = computed(0.1)
        middle = FLOAT.type(tenth * (0.5 + tenth / 2))
        assert CosineDecay(0.1, 1000, 0.1)(500) == middle
        assert CosineDecay(0.1, 1000, 0.1)(10**6) == FLOAT.type(tenth * tenth)


def test_zero_and_signs_are_kept():
    assert bits(CosineDecay(-0.0, 5, 0.5)(2)) == bits(np.asarray(-0.0, FLOAT))
    assert bits(CosineDecay(-0.3, 4, 0.0)(4)) == bits(np.asarray(-0.0, FLOAT))
    assert CosineDecay(-0.3, 2, 0.0)(1) == FLOAT.type(computed(-0.3) / 2)
    # alpha of 1 holds the peak at every step.
    steps = jnp.asarray([0, 5, 2**31 - 1])
    assert (np.asarray(CosineDecay(0.3, 7, 1.0)(steps)) == FLOAT.type(0.3)).all()


# ---------------------------------------------------------------------------
# Keras' warmup, and which numbers it uses.
# ---------------------------------------------------------------------------


def test_the_warmup_rises_to_the_target_and_the_decay_starts_there():
    config = CosineDecay(0.0, 1000, 0.1, warmup_target=0.1, warmup_steps=100)
    steps = jnp.asarray([-3, 0, 50, 99, 100, 600, 1100, 5000], jnp.int32)
    expected = [0.0, 0.0, 0.05, 0.099, 0.1, 0.055, 0.01, 0.01]
    got = np.asarray(config(steps))
    for value, want in zip(got, expected, strict=True):
        assert math.isclose(float(value), want, rel_tol=1e-6), (value, want)
    assert _config.formula(config) == (
        "warmup 0 -> 0.1 to step 100, then 0.1 * ((1 - 0.1) * 0.5 * (1 + "
        "cos(pi * min((step - 100), 1000) / 1000)) + 0.1)"
    )
    assert _config.pieces_in_use(config) == (_cosine._WARMUP,)


def test_without_a_target_warmup_steps_is_unused_as_in_keras():
    steps = jnp.asarray([0, 10, 500, 999, 1000, 1500], jnp.int32)
    plain = CosineDecay(0.1, 1000, 0.1)
    unused = CosineDecay(0.1, 1000, 0.1, warmup_steps=200)
    assert bits(unused(steps)) == bits(plain(steps))
    assert _config.pieces_in_use(unused) == ()
    theirs = keras_values(KerasCosineDecay(0.1, 1000, 0.1, warmup_steps=200), steps)
    chex.assert_trees_all_close(unused(steps), theirs, rtol=keras_rtol(theirs))


def test_a_target_without_warmup_steps_decays_from_the_target():
    config = CosineDecay(0.5, 1000, 0.0, warmup_target=0.1)
    assert _config.pieces_in_use(config) == ()
    steps = jnp.asarray([0, 250, 500, 1000], jnp.int32)
    expected = [rounded(exact(config, int(s))) for s in steps]
    assert bits(np.asarray(config(steps))) == bits(np.asarray(expected, FLOAT))
    assert float(config(0)) == computed(0.1)
    theirs = keras_values(KerasCosineDecay(0.5, 1000, 0.0, warmup_target=0.1), steps)
    chex.assert_trees_all_close(
        config(steps), theirs, rtol=keras_rtol(theirs), atol=1e-7
    )


def test_a_sweep_of_warmup_lengths_built_inside_vmap_gives_each_single_run():
    steps = jnp.asarray([-3, 0, 50, 100, 1099, 1100, 2100], jnp.int32)
    lengths = [0, 1, 50, 100, 2**31 - 1]

    def build(w):
        return CosineDecay(0.01, 1000, 0.1, warmup_target=0.1, warmup_steps=w)

    swept = jax.jit(jax.vmap(lambda w: build(w)(steps)))(jnp.asarray(lengths))
    for length, row in zip(lengths[1:], swept[1:], strict=True):
        assert bits(row) == bits(build(length)(steps)), length
    # A length of 0 inside vmap is data: the warmup is in the program, and a line
    # of no steps is never reached, so the decay starts from the target at 0.
    assert bits(swept[0]) == bits(build(0)(steps))


# ---------------------------------------------------------------------------
# Warmup, hold, decay: the phases of docs/schedules.md.
# ---------------------------------------------------------------------------


def wsd_reference(step, start, peak, warmup, decay, alpha):
    """Warmup-then-cosine written out by hand, in float64: the line, then the
    half cosine from `peak` to `alpha * peak`, then flat."""
    if step < warmup:
        return start + (peak - start) * max(step, 0) / warmup
    t = min(step - warmup, decay) / decay
    return peak * (alpha + (1 - alpha) * (1 + math.cos(math.pi * t)) / 2)


def test_warmup_then_decay_phase_boundaries():
    """The first and last step of each phase: the warmup (0 and warmup - 1), the
    decay (warmup and warmup + decay - 1), and the end (warmup + decay on)."""
    start, peak, warmup, decay, alpha = 0.0, 3e-4, 2000, 98000, 0.1
    config = CosineDecay(start, decay, alpha, warmup_target=peak, warmup_steps=warmup)
    boundaries = [0, warmup - 1, warmup, warmup + decay - 1, warmup + decay, 10**6]
    got = np.asarray(config(jnp.asarray(boundaries, jnp.int32)), np.float64)
    for step, value in zip(boundaries, got, strict=True):
        want = wsd_reference(step, start, peak, warmup, decay, alpha)
        assert math.isclose(value, want, rel_tol=1e-6, abs_tol=1e-12), step
    assert got[2] == computed(peak) and got[4] == got[5]


# ---------------------------------------------------------------------------
# Hyperparameters are data: one set of bits on every path, no compile.
# ---------------------------------------------------------------------------


@rounding_warning
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(config=configs(), seed=st.integers(0, 2**32 - 1))
def test_every_path_gives_the_same_bits(config, seed):
    rng = np.random.default_rng(seed)
    warmup = config.warmup_steps if config.warmup_target is not None else 0
    d = config.decay_steps
    near = [warmup - 1, warmup, warmup + 1, warmup + d // 2, warmup + d]
    steps = np.concatenate(
        [
            rng.integers(0, min(warmup + d, 2**31 - 1), 4),
            rng.integers(0, 2**31 - 1, 20),
            np.clip(near, 0, 2**31 - 1),
            [0, 1, 999, 2**24 + 1, 2**31 - 1],
        ]
    ).astype(np.int32)
    got = paths(config, steps)
    eager = np.asarray(got["eager"])
    for name, values in got.items():
        assert bits(values) == bits(eager[: len(values)]), (name, config)
    for step, value in zip(steps[:8], eager[:8], strict=True):
        expected = rounded(exact(config, int(step)))
        if np.isfinite(expected) and abs(expected) >= np.finfo(FLOAT).tiny:
            assert ulp_distance(np.asarray([value]), np.asarray([expected]))[0] <= 1


def test_a_sweep_member_reproduces_its_single_run():
    configs = [
        CosineDecay(0.1, 1000, 0.0),
        CosineDecay(0.01, 1, 0.5),
        CosineDecay(0.3, 2**40, 1e9),
    ]
    steps = jnp.arange(0, 1_000_000, 37, dtype=jnp.int32)
    swept = jax.jit(jax.vmap(lambda c: c(steps)))(stack(configs))
    for row, config in zip(swept, configs, strict=True):
        assert bits(row) == bits(config(steps))


def test_new_configs_never_compile():
    steps = jnp.arange(16, dtype=jnp.int32)

    def calls(i):
        alpha = 0.1 + i * 1e-3
        jaxdecay.cosine_decay(0.1 + i, 1000 + i, alpha)(3)
        config = CosineDecay(np.float32(0.2 * i), 7 + i, alpha)
        config(steps)
        config(np.int32(5))
        AS_ARGUMENT(config, steps)
        SWEPT(stack([config, dataclasses.replace(config, alpha=0.5)]), steps)
        CosineDecay(jnp.asarray(0.1 * i), 2**40 + i, alpha)(3)
        warm = dataclasses.replace(config, warmup_target=0.3 + i, warmup_steps=10 + i)
        AS_ARGUMENT(warm, steps)
        jaxdecay.cosine_decay(0.0, 50 + i, alpha, 0.1 * i, 5 + i)(steps)

    calls(1)  # the first call of each kind compiles
    with counting_compiles() as compiles:
        for i in range(2, 8):
            calls(i)
        assert compiles == []


# ---------------------------------------------------------------------------
# The host prepares known numbers with the program's operations and bits.
# ---------------------------------------------------------------------------


def _words(value):
    return Words(np.int32(value >> 32), np.uint32(value & 0xFFFFFFFF))


@jax.jit
def _prepare_program(initial, hi, lo):
    numbers = {"initial_learning_rate": initial, "decay_steps": Words(hi, lo)}
    return _cosine._prepare(numbers)


def assert_same_bits(host, traced):
    leaves, treedef = jax.tree.flatten(host)
    other, other_treedef = jax.tree.flatten(traced)
    assert treedef == other_treedef
    for index, (a, b) in enumerate(zip(leaves, other, strict=True)):
        a, b = np.asarray(a), np.asarray(b)
        assert (a.dtype, a.shape, a.tobytes()) == (b.dtype, b.shape, b.tobytes()), (
            index,
            a,
            b,
        )


@settings(max_examples=200, deadline=None)
@given(
    steps=st.one_of(
        st.integers(1, 2**12),
        st.integers(0, 62).map(lambda k: 2**k),
        st.integers(1, INT64_MAX),
    )
)
@example(steps=INT64_MAX)
@example(steps=3)
def test_the_constants_are_prepared_alike_on_the_host_and_in_a_program(steps):
    initial = compute_dtype().type(0.1)
    numbers = {"initial_learning_rate": initial, "decay_steps": _words(steps)}
    with np.errstate(all="ignore"):
        host = _cosine._prepare(numbers, host=True)
    assert_same_bits(host, _prepare_program(initial, *_words(steps)))


@pytest.mark.parametrize("target", [None, 0.3])
def test_a_whole_config_is_prepared_alike(target):
    config = CosineDecay(-0.3, 2**40 + 7, 0.5, warmup_target=target, warmup_steps=3)
    schedule = config._schedule
    floats, words = _program.pack(schedule._plan, schedule._arguments)
    host = _program._prepare_host(schedule._plan, floats, words)
    traced = _program._prepare_program(schedule._plan)(floats, words)
    assert len(host) == 2 * len(schedule._plan.parts)
    assert_same_bits(host, traced)


# ---------------------------------------------------------------------------
# Gradients: mpmath's numerical derivatives of Keras' formula.
# ---------------------------------------------------------------------------


NAMES = ("initial_learning_rate", "alpha", "warmup_target")


def derivatives(config, step):
    """(d/d initial, d/d alpha, d/d warmup_target, d/d step) of the exact schedule,
    by mpmath's numerical differentiation at 256 bits, as floats."""
    with mpmath.workprec(PRECISION):
        point = {
            name: mpmath.mpf(computed(getattr(config, name)))
            for name in NAMES
            if getattr(config, name) is not None
        }
        result = []
        for name in NAMES:
            if name not in point:
                result.append(0.0)
                continue

            def along(x, name=name):
                return exact(config, step, **{**point, name: x})

            result.append(float(mpmath.diff(along, point[name])))
        by_step = mpmath.diff(lambda s: exact(config, s, **point), mpmath.mpf(step))
        result.append(float(by_step))
    return tuple(result)


def close(got, expected):
    return math.isclose(float(got), expected, rel_tol=1e-5, abs_tol=1e-12)


GRAD_STEPS = [50.5, 100.25, 350.0, 777.75, 1100.5, 1450.0, 5000.0]


@pytest.mark.parametrize("target", [None, 0.2])
def test_gradients_of_the_builder(target):
    """Every float number and a float step, in the warmup, the decay and after
    it (steps away from the kinks, where the derivative has no single value)."""
    warmup = 100 if target is not None else 0
    config = CosineDecay(0.05, 1000, 0.1, warmup_target=target, warmup_steps=warmup)

    def lr(a, alpha, t, s):
        return jaxdecay.cosine_decay(a, 1000, alpha, t, warmup)(s)

    t0 = FLOAT.type(0 if target is None else target)
    arguments = (FLOAT.type(0.05), FLOAT.type(0.1))
    if target is None:
        grad = jax.jit(jax.grad(lambda a, al, s: lr(a, al, None, s), (0, 1, 2)))
    else:
        grad = jax.jit(jax.grad(lr, (0, 1, 2, 3)))
    for step in GRAD_STEPS:
        expected = derivatives(config, step)
        if target is None:
            got = grad(*arguments, FLOAT.type(step))
            got = (got[0], got[1], 0.0, got[2])
        else:
            got = grad(*arguments, t0, FLOAT.type(step))
        for k in range(4):
            assert close(got[k], expected[k]), (step, k, got[k], expected[k])


def test_gradients_of_a_config_on_every_path():
    """With respect to the config itself: eagerly, as a jit argument, in a vmapped
    sweep; the integer leaves get no gradient (float0)."""
    config = CosineDecay(0.01, 1000, 0.1, warmup_target=0.1, warmup_steps=100)
    step = FLOAT.type(700.0)
    expected = derivatives(config, 700.0)

    def grad_of(c):
        return jax.grad(lambda c: c(step), allow_int=True)(c)

    sweep = stack([config, dataclasses.replace(config, initial_learning_rate=0.02)])
    for got in [
        grad_of(config),
        jax.jit(grad_of)(config),
        jax.tree.map(lambda x: x[0], jax.jit(jax.vmap(grad_of))(sweep)),
    ]:
        assert close(got.initial_learning_rate, expected[0])
        assert close(got.alpha, expected[1])
        assert close(got.warmup_target, expected[2])
        assert got.decay_steps.hi.dtype == jax.dtypes.float0


def test_gradient_through_optax():
    config = CosineDecay(0.1, 1000, 0.2)

    def applied(initial):
        return optax_lr(dataclasses.replace(config, initial_learning_rate=initial), 250)

    got = jax.grad(applied)(FLOAT.type(0.1))
    assert close(got, derivatives(config, 250)[0])


@rounding_warning
def test_gradients_are_finite_wherever_the_value_is():
    """Huge and infinite steps, huge and tiny numbers, steps before 0, the ends of
    the decay: finite derivatives wherever the value is finite."""
    grad = jax.jit(
        jax.vmap(
            jax.grad(
                lambda a, al, s, d: jaxdecay.cosine_decay(a, d, al)(s),
                argnums=(0, 1, 2),
            ),
            in_axes=(None, None, 0, None),
        ),
        static_argnums=3,
    )
    steps = jnp.asarray([-5.0, 0.0, 0.5, 1.0, 1e6, 1e30, 3e38, np.inf], FLOAT)
    for initial, alpha, decay in [
        (0.1, 0.0, 1000),
        (3e38, 0.5, 1),
        (1e-30, 1e-30, 7),
        (0.1, 3e38, 10),
        (-2.0, -1.0, 2**40),
    ]:
        values = np.asarray(jaxdecay.cosine_decay(initial, decay, alpha)(steps))
        got = grad(FLOAT.type(initial), FLOAT.type(alpha), steps, decay)
        for k in range(3):
            have = np.asarray(got[k])
            assert np.isfinite(have[np.isfinite(values)]).all(), (initial, alpha, k)


# ---------------------------------------------------------------------------
# Validation: the field and the value named.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"decay_steps": 0},
            ValueError,
            "decay_steps must be an integer in [1, 9223372036854775807], got 0",
        ),
        (
            {"decay_steps": -5},
            ValueError,
            "decay_steps must be an integer in [1, 9223372036854775807], got -5",
        ),
        (
            {"decay_steps": 1000.0},
            TypeError,
            "decay_steps must be an integer, got 1000.0 of type float",
        ),
        ({"alpha": math.nan}, ValueError, "alpha must be finite, got nan"),
        ({"alpha": math.inf}, ValueError, "alpha must be finite, got inf"),
        (
            {"initial_learning_rate": -math.inf},
            ValueError,
            "initial_learning_rate must be finite, got -inf",
        ),
        (
            {"warmup_target": math.nan},
            ValueError,
            "warmup_target must be finite, got nan",
        ),
        (
            {"warmup_target": "0.1"},
            TypeError,
            "warmup_target must be a real number, got '0.1' of type str",
        ),
        (
            {"warmup_steps": -1},
            ValueError,
            "warmup_steps must be an integer in [0, 9223372036854775807], got -1",
        ),
        (
            {"warmup_steps": 10.0},
            TypeError,
            "warmup_steps must be an integer, got 10.0 of type float",
        ),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(kwargs, error, message):
    arguments = {"initial_learning_rate": 0.1, "decay_steps": 1000, **kwargs}
    for build in (CosineDecay, jaxdecay.cosine_decay):
        with pytest.raises(error) as raised:
            build(**arguments)
        assert str(raised.value) == message


def test_configs_keras_computes_finitely_are_accepted():
    """A negative alpha, an alpha above 1, a negative target, a huge warmup."""
    for config in [
        CosineDecay(0.1, 10, -0.5),
        CosineDecay(0.1, 10, 2.0),
        CosineDecay(-0.1, 10, 0.0, warmup_target=-0.2, warmup_steps=5),
        CosineDecay(0.1, 10, 0.0, warmup_target=0.2, warmup_steps=INT64_MAX),
    ]:
        assert np.isfinite(np.asarray(config(jnp.arange(30)))).all(), config


# ---------------------------------------------------------------------------
# optax: the plain schedule, and the warmup that is not optax's.
# ---------------------------------------------------------------------------


def test_to_optax_is_optax_cosine_decay_schedule():
    config = CosineDecay(0.1, 1000, 0.1)
    assert config.optax_kwargs() == {
        "init_value": 0.1,
        "decay_steps": 1000,
        "alpha": 0.1,
        "exponent": 1.0,
    }
    steps = jnp.arange(0, 1500, 7, dtype=jnp.int32)
    with jax.numpy_dtype_promotion("standard"):  # optax mixes int steps and floats
        theirs = optax.cosine_decay_schedule(0.1, 1000, 0.1)(steps)
        converted = config.to_optax()(steps)
    chex.assert_trees_all_close(converted, theirs, rtol=0, atol=0)
    chex.assert_trees_all_close(
        config(steps), theirs, rtol=keras_rtol(theirs), atol=1e-8
    )
    # A target without warmup steps is the peak; unused warmup steps change nothing.
    target = CosineDecay(0.5, 1000, warmup_target=0.1, warmup_steps=0)
    assert target.optax_kwargs()["init_value"] == 0.1
    assert CosineDecay(0.1, 1000, warmup_steps=7).optax_kwargs()["init_value"] == 0.1


def test_a_warmup_is_refused_by_optax_with_the_reason():
    config = CosineDecay(0.0, 1000, 0.1, warmup_target=0.1, warmup_steps=100)
    for call in (config.to_optax, config.optax_kwargs):
        with pytest.raises(ValueError, match="its end_value is absolute"):
            call()
    with pytest.raises(ValueError, match="decay_steps counts the warmup too"):
        CosineDecay(0.1, 1000).optax_kwargs(warmup=True)


# ---------------------------------------------------------------------------
# Keras: the signature, the values, and serialization both ways.
# ---------------------------------------------------------------------------


def keras_values(schedule, steps):
    """Keras' values; its reference alone runs with standard promotion. Its warmup
    branches on a scalar step (`ops.cond`): steps one at a time, by vmap."""
    with jax.numpy_dtype_promotion("standard"):
        return np.asarray(jax.vmap(schedule)(jnp.asarray(steps)))


def keras_rtol(value):
    """Keras computes in its floatx (float32 under x64 too, some of its numbers)."""
    floatx = keras.config.floatx()
    return 4e-6 if "float32" in (np.asarray(value).dtype, floatx) else 1e-13


def test_constructor_signature_matches_keras():
    import inspect

    ours = inspect.signature(CosineDecay).parameters
    theirs = inspect.signature(KerasCosineDecay).parameters
    # Keras' parameters in Keras' order, then jaxdecay's extension, keyword-only.
    assert list(ours) == [*theirs, "transition_begin"]
    assert ours["transition_begin"].kind == inspect.Parameter.KEYWORD_ONLY
    for name, parameter in theirs.items():
        assert ours[name].default == parameter.default, name
        assert ours[name].kind == parameter.kind, name


KERAS_ARGS = [
    (0.1, 1000),
    (0.25, 7, 0.1, "custom"),
    (1e-3, 1, 0.01, None),
    (0.0, 1000, 0.1, "CosineDecay", 0.1, 100),
    (0.05, 2**15, 0.0, "CosineDecay", 0.2, 0),
    (0.1, 500, 0.2, "CosineDecay", None, 50),
]


@pytest.mark.parametrize("args", KERAS_ARGS)
def test_matches_keras_at_steps_from_0(variant, args):
    """Keras' values for steps >= 0; before 0 the schedule holds its value at 0,
    where Keras extrapolates its curve."""
    steps = np.concatenate(
        [np.arange(0, 3000), np.random.default_rng(1).integers(0, 2**20, 2000)]
    ).astype(jnp.result_type(int))
    keras_args = args if len(args) < 4 or args[3] else (*args[:3], "CosineDecay")
    expected = keras_values(KerasCosineDecay(*keras_args), steps)
    chex.assert_trees_all_close(
        variant(CosineDecay(*args))(steps),
        expected,
        rtol=keras_rtol(expected),
        atol=4e-9 if keras_rtol(expected) > 1e-6 else 1e-17,
    )


@pytest.mark.parametrize("args", KERAS_ARGS)
def test_keras_serialized_loads_in_jaxdecay(args):
    """Keras 3's shape, as a dict and as JSON text, and TF 2's shape, with and
    without the warmup keys (TF 2's CosineDecay had none)."""
    keras_args = args if len(args) < 4 or args[3] else (*args[:3], "CosineDecay")
    data = keras.optimizers.schedules.serialize(KerasCosineDecay(*keras_args))
    expected = CosineDecay(*keras_args)
    tf2 = {"class_name": data["class_name"], "config": data["config"]}
    for shape in (data, json.dumps(data), tf2, json.dumps(tf2)):
        loaded = jaxdecay.deserialize(shape)
        assert type(loaded) is CosineDecay
        assert loaded == expected
    assert CosineDecay.from_json(json.dumps(data)) == expected
    if keras_args[4:5] in ((), (None,)):
        old = {k: v for k, v in data["config"].items() if not k.startswith("warmup")}
        old_tf2 = {"class_name": "CosineDecay", "config": {**old, "name": None}}
        assert jaxdecay.deserialize(old_tf2) == dataclasses.replace(
            expected, name=None, warmup_steps=0
        )
    bare = KerasCosineDecay(*keras_args[:3]).get_config()
    assert jaxdecay.deserialize(bare) == CosineDecay(*keras_args[:3])


@pytest.mark.parametrize("args", KERAS_ARGS)
def test_jaxdecay_serialized_loads_in_keras(args):
    schedule = CosineDecay(*args)
    for data in (jaxdecay.serialize(schedule), json.loads(schedule.to_json())):
        assert "jaxdecay_format" not in data
        loaded = keras.optimizers.schedules.deserialize(data)
        assert type(loaded) is KerasCosineDecay
        assert loaded.get_config() == schedule.get_config()
    assert CosineDecay.from_json(schedule.to_json()) == schedule
    assert jaxdecay.deserialize(schedule.to_json()) == schedule


def test_exported_programs_take_the_config():
    from jax import export

    config = CosineDecay(0.0, 1000, 0.1, warmup_target=0.1, warmup_steps=10)
    steps = jnp.arange(0, 5000, 250, dtype=jnp.int32)
    exported = export.export(jax.jit(lambda c, s: c(s)))(config, steps)
    restored = export.deserialize(exported.serialize())
    assert bits(restored.call(config, steps)) == bits(config(steps))


# ---------------------------------------------------------------------------
# The command line reads the curve through the family's View.
# ---------------------------------------------------------------------------

COSINE = {
    "class_name": "CosineDecay",
    "config": {
        "initial_learning_rate": 0.1,
        "decay_steps": 1000,
        "alpha": 0.0,
        "name": "CosineDecay",
        "warmup_target": None,
        "warmup_steps": 0,
    },
}


def test_show_prints_the_curve(capsys):
    from jaxdecay import _cli

    assert _cli.main(["show", json.dumps(COSINE)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[0] == "step"
    steps = [int(line.split()[0]) for line in out[1:]]
    assert steps == [0, 10, 100, 1000, 1250]  # the horizon: past the decay's end
    values = [FLOAT.type(line.split()[1]) for line in out[1:]]
    config = jaxdecay.deserialize(COSINE)
    for step, value in zip(steps, values, strict=True):
        assert value == rounded(exact(config, step)), step


def test_show_runs_as_a_module_with_a_warmup():
    import subprocess
    import sys

    warm = {
        **COSINE,
        "config": {**COSINE["config"], "warmup_target": 0.2, "warmup_steps": 100},
    }
    result = subprocess.run(
        [sys.executable, "-m", "jaxdecay", "show", json.dumps(warm)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    # The warmup's middle and end, the decay's middle, its end and past it.
    assert [row[0] for row in rows] == ["0", "10", "50", "100", "1000", "1350"]
    config = jaxdecay.deserialize(warm)
    for step, value in rows:
        assert FLOAT.type(value) == rounded(exact(config, int(step))), step
    assert [row[1] for row in rows[:2]] == ["0.1", "0.11"] and rows[-1][1] == "0.0"


def test_plot_draws_the_curve(tmp_path):
    pytest.importorskip("matplotlib")
    from jaxdecay import _cli, _plot

    config = CosineDecay(0.1, 1000, 0.1)
    steps, note = _plot.plot_grid(config, 1250)
    assert note is None and 1000 in set(steps.tolist())
    path = tmp_path / "lr.png"
    assert _cli.main(["plot", json.dumps(COSINE), "-o", str(path)]) == 0
    assert path.stat().st_size > 1000
    assert _config.formula(config) == (
        "0.1 * ((1 - 0.1) * 0.5 * (1 + cos(pi * min(step, 1000) / 1000)) + 0.1)"
    )


def test_convert_to_optax_and_to_keras(capsys):
    from jaxdecay import _cli

    unused = {**COSINE, "config": {**COSINE["config"], "warmup_steps": 50}}
    assert _cli.main(["convert", json.dumps(unused), "--to", "optax"]) == 0
    converted = json.loads(capsys.readouterr().out)
    assert converted == {
        "init_value": 0.1,
        "decay_steps": 1000,
        "alpha": 0.0,
        "exponent": 1.0,
    }
    warm = {**COSINE, "config": {**COSINE["config"], "warmup_target": 0.2}}
    warm["config"]["warmup_steps"] = 10
    assert _cli.main(["convert", json.dumps(warm), "--to", "optax"]) == 2
    assert "optax.warmup_cosine_decay_schedule differs" in capsys.readouterr().err
    assert _cli.main(["convert", json.dumps(warm), "--to", "keras"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert keras.optimizers.schedules.deserialize(data).get_config() == warm["config"]


def test_registered_and_exported():
    assert jaxdecay.CosineDecay is CosineDecay
    assert "CosineDecay" in jaxdecay.__all__
    assert "cosine_decay" in jaxdecay.__all__
    from jaxdecay import _registry

    assert _registry.FAMILIES["CosineDecay"] is CosineDecay
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert repr(jaxdecay.cosine_decay(0.1, 10)).startswith("cosine_decay(")
