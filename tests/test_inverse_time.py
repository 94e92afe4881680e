"""`InverseTimeDecay`: Keras' inverse time decay with every guarantee the first
family has.

Exact values from mpmath (the schedule of the numbers in the compute dtype), the
same bits on every path, no compile for new numbers, the host's preparation bit
for bit the program's, analytic gradients against the hand-derived formulas,
validation that names the field, serialization against Keras itself, and the
command line.
"""

import dataclasses
import functools
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
from jaxdecay import InverseTimeDecay, _config, _inverse_time, _program
from jaxdecay._program import compute_dtype
from jaxdecay._steps import Words

FLOAT = np.dtype(jnp.result_type(float))  # float32, or float64 under x64
X64 = np.float64 == FLOAT
UNSIGNED = np.dtype(np.uint64 if X64 else np.uint32)
INT64_MAX = 2**63 - 1
KerasInverseTimeDecay = keras.optimizers.schedules.InverseTimeDecay


def computed(value):
    """A float hyperparameter as the schedule takes it: in the compute dtype."""
    with np.errstate(over="ignore", under="ignore"):
        return float(FLOAT.type(value))


def exact(config, step):
    """The schedule at an integer or float step, from mpmath, before rounding."""
    with mpmath.workprec(PRECISION):
        initial = mpmath.mpf(computed(config.initial_learning_rate))
        rate = mpmath.mpf(computed(config.decay_rate))
        warmup = config.warmup_steps
        if step < warmup:  # the line from warmup_init, negative steps at its start
            start = mpmath.mpf(computed(config.warmup_init))
            return start + (initial - start) * max(mpmath.mpf(step), 0) / warmup
        elapsed = mpmath.mpf(step) - warmup
        if elapsed <= 0:
            return initial
        units = elapsed / config.decay_steps
        if config.staircase:
            units = mpmath.floor(units)
        if units == 0:  # also for a rate that rounds to inf
            return initial
        return initial / (1 + rate * units)


def rounded(value):
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
initial_rates = (
    st.floats(1e-6, 10.0)
    | st.floats(-10.0, -1e-6)
    | extremes([0.0, -0.0, 1e-30, 3e38, 1e-300, 1e300, 1.5e-38])
)
decay_rates = (
    st.floats(0.0, 10.0)
    | st.floats(1e-45, 1e38)
    | st.floats(1e-300, 1e300)
    | extremes([0.0, 1e-40, 1e-30, 1.0, 1e30, 3e38, 1e-310, 1e300])
)
decay_steps = st.integers(1, 10**6) | extremes(
    [1, 7, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**53 + 1, INT64_MAX]
)


@st.composite
def configs(draw, warmup=True):
    initial = draw(initial_rates)
    finite = math.isfinite(computed(initial))
    return InverseTimeDecay(
        initial,
        draw(decay_steps),
        draw(decay_rates),
        draw(st.booleans()),
        warmup_steps=draw(st.just(0) | decay_steps) if warmup and finite else 0,
        warmup_init=math.copysign(draw(st.floats(0.0, 10.0)), initial),
    )


def drawn_steps(rng, config):
    """Steps of the unsigned step type: random over its range, the extremes, and
    the stair edges."""
    top = int(np.iinfo(UNSIGNED).max)
    d = config.decay_steps
    edges = [d - 1, d, d + 1, 2 * d - 1, 2 * d, 3 * d]
    fixed = [0, 1, 2, 999, 2**24 + 1, 2**31 - 1, 2**31, top - 1, top]
    steps = [*rng.integers(0, top, 32, dtype=UNSIGNED, endpoint=True), *fixed]
    steps += [s for s in edges if s <= top]
    return np.asarray(steps + [0] * (48 - len(steps)), UNSIGNED)


# ---------------------------------------------------------------------------
# Exact: within 1 ulp of the exact value of the compute-dtype numbers.
# ---------------------------------------------------------------------------


@rounding_warning
@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(config=configs(warmup=False), seed=st.integers(0, 2**32 - 1))
@example(config=InverseTimeDecay(0.1, INT64_MAX, 1e-30), seed=0)
@example(config=InverseTimeDecay(3e38, 1, 3e38), seed=1)
@example(config=InverseTimeDecay(1.5e-38, 7, 1e-40, True), seed=2)
@example(config=InverseTimeDecay(-0.3, 2**32 + 1, 0.999999, True), seed=3)
def test_within_one_ulp_of_the_exact_value_at_every_unsigned_step(config, seed):
    """uint32 steps (uint64 under x64) over their whole range, huge and tiny
    rates, `decay_steps` up to 2**63 - 1: every value that is a normal float is
    within 1 ulp (nearly always exactly rounded)."""
    steps = drawn_steps(np.random.default_rng(seed), config)
    got = AS_ARGUMENT(config, jnp.asarray(steps))
    assert np.nanmax(ulps(got, config, steps), initial=0) <= 1, config


@rounding_warning
@settings(max_examples=40, deadline=None, derandomize=True)
@given(config=configs(warmup=False), seed=st.integers(0, 2**32 - 1))
def test_within_one_ulp_at_signed_steps(config, seed):
    """JAX's default integer steps (int32; int64 under x64), up to their maximum,
    and negative steps, which hold the initial rate."""
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
    assert bits(held) == bits(
        np.full(3, FLOAT.type(computed(config.initial_learning_rate)))
    )


@pytest.mark.parametrize("staircase", [False, True], ids=["smooth", "staircase"])
def test_whole_float_steps_give_the_integer_steps_bits(staircase):
    config = InverseTimeDecay(0.1, 3, 0.5, staircase)
    integers = np.asarray([0, 1, 7, 2**24 + 2, 2**24 + 4, 2**31 - 128], np.int64)
    got = np.asarray(config(jnp.asarray(integers.astype(np.float32))))
    expected = np.asarray(config(jnp.asarray(integers, jnp.result_type(int))))
    assert bits(got) == bits(expected)


def test_float_steps_are_within_one_ulp_and_infinity_gives_0():
    config = InverseTimeDecay(0.1, 1000, 0.5)
    steps = np.asarray([0.25, 2.5, 999.75, 1e6 + 0.5, 5e9, 3e38], np.float32)
    got = np.asarray(config(jnp.asarray(steps)))
    with mpmath.workprec(PRECISION):
        for step, value in zip(steps, got, strict=True):
            expected = rounded(exact(config, mpmath.mpf(float(step))))
            assert ulp_distance(np.asarray([value]), np.asarray([expected]))[0] <= 1
    assert config(jnp.inf) == 0 and config(-jnp.inf) == FLOAT.type(0.1)
    assert InverseTimeDecay(0.1, 1000, 0.0)(jnp.inf) == FLOAT.type(0.1)


def test_zero_and_signs_are_kept():
    assert bits(InverseTimeDecay(-0.0, 5, 2.0)(7)) == bits(np.asarray(-0.0, FLOAT))
    assert InverseTimeDecay(-0.3, 1, 1.0)(1) == FLOAT.type(computed(-0.3) / 2)
    # A rate of 0 holds the initial rate at every step.
    config = InverseTimeDecay(0.3, 1, 0.0)
    assert (np.asarray(config(jnp.asarray([0, 5, 2**31 - 1]))) == FLOAT.type(0.3)).all()


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
    warmup = config.warmup_steps
    near = [warmup - 1, warmup, warmup + 1, warmup + config.decay_steps]
    steps = np.concatenate(
        [
            rng.integers(0, min(max(warmup, 1), 2**31 - 1), 4),
            rng.integers(0, 2**31 - 1, 20),
            np.clip(near, 0, 2**31 - 1),
            [0, 1, 999, 2**24 + 1, 2**31 - 1],
        ]
    ).astype(np.int32)
    got = paths(config, steps)
    eager = np.asarray(got["eager"])
    for name, values in got.items():
        assert bits(values) == bits(eager[: len(values)]), (name, config)
    assert not np.isnan(eager).any()
    for step, value in zip(steps[:8], eager[:8], strict=True):
        expected = rounded(exact(config, int(step)))
        if np.isfinite(expected) and abs(expected) >= np.finfo(FLOAT).tiny:
            assert ulp_distance(np.asarray([value]), np.asarray([expected]))[0] <= 1


def test_a_sweep_member_reproduces_its_single_run():
    configs = [
        InverseTimeDecay(0.1, 1000, 0.96),
        InverseTimeDecay(0.01, 1, 0.99999),
        InverseTimeDecay(0.3, 2**40, 1e9),
    ]
    steps = jnp.arange(0, 1_000_000, 37, dtype=jnp.int32)
    swept = jax.jit(jax.vmap(lambda c: c(steps)))(stack(configs))
    for row, config in zip(swept, configs, strict=True):
        assert bits(row) == bits(config(steps))


def test_new_configs_never_compile():
    steps = jnp.arange(16, dtype=jnp.int32)

    def calls(i):
        rate = 0.5 + i * 1e-3
        for staircase in (False, True):
            jaxdecay.inverse_time_decay(0.1 + i, 1000 + i, rate, staircase)(3)
            config = InverseTimeDecay(np.float32(0.2 * i), 7 + i, rate, staircase)
            config(steps)
            config(np.int32(5))
            AS_ARGUMENT(config, steps)
            pair = stack([config, dataclasses.replace(config, decay_rate=1.5)])
            SWEPT(pair, steps)
            InverseTimeDecay(jnp.asarray(0.1 * i), 2**40 + i, rate, staircase)(3)
            warm = dataclasses.replace(config, warmup_steps=10 + i, warmup_init=0.01)
            AS_ARGUMENT(warm, steps)

    calls(1)  # the first call of each kind compiles
    with counting_compiles() as compiles:
        for i in range(2, 8):
            calls(i)
        assert compiles == []


@pytest.mark.parametrize("staircase", [False, True], ids=["smooth", "staircase"])
def test_the_warmup_comes_from_the_piece(staircase):
    """The warmup's line, then the decay counted from its end; a sweep of
    lengths from 0 built inside vmap gives each single run."""
    config = InverseTimeDecay(0.1, 1000, 1.0, staircase, warmup_steps=100)
    steps = jnp.asarray([-3, 0, 50, 100, 1099, 1100, 2100], jnp.int32)
    before_stair = 0.1 if staircase else 0.1 / 1.999
    expected = [0.0, 0.0, 0.05, 0.1, before_stair, 0.05, 0.1 / 3]
    got = np.asarray(config(steps))
    for value, want in zip(got, expected, strict=True):
        assert math.isclose(float(value), want, rel_tol=1e-6)
    assert _config.formula(config) == (
        "warmup 0 -> 0.1 to step 100, then 0.1 / (1 + 1 * ((step - 100) "
        f"{'//' if staircase else '/'} 1000))"
    )
    lengths = [0, 1, 50, 100, 2**31 - 1]
    swept = jax.jit(
        jax.vmap(
            lambda w: InverseTimeDecay(0.1, 1000, 1.0, staircase, warmup_steps=w)(steps)
        )
    )(jnp.asarray(lengths, jnp.int32))
    for length, row in zip(lengths, swept, strict=True):
        single = InverseTimeDecay(0.1, 1000, 1.0, staircase, warmup_steps=length)
        assert bits(row) == bits(single(steps)), length


# ---------------------------------------------------------------------------
# The host prepares known numbers with the program's operations and bits.
# ---------------------------------------------------------------------------


def _words(value):
    return Words(np.int32(value >> 32), np.uint32(value & 0xFFFFFFFF))


@functools.cache
def _prepare_program(staircase):
    def prepare(initial, rate, hi, lo):
        numbers = {
            "initial_learning_rate": initial,
            "decay_rate": rate,
            "decay_steps": Words(hi, lo),
        }
        return _inverse_time._prepare(numbers, staircase=staircase)

    return jax.jit(prepare)


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
    rate=st.floats(min_value=0, allow_nan=False, width=64 if X64 else 32),
    steps=st.one_of(
        st.integers(1, 2**12),
        st.integers(0, 62).map(lambda k: 2**k),
        st.integers(1, INT64_MAX),
    ),
    staircase=st.booleans(),
)
@example(rate=1e-45 if not X64 else 5e-324, steps=INT64_MAX, staircase=False)
@example(rate=np.inf, steps=3, staircase=False)
@example(rate=0.0, steps=2**32, staircase=True)
def test_the_constants_are_prepared_alike_on_the_host_and_in_a_program(
    rate, steps, staircase
):
    """Tiny rates over 2**63 steps (quotients near the subnormals) included."""
    dtype = compute_dtype()
    initial, rate = dtype.type(0.1), dtype.type(rate)
    numbers = {
        "initial_learning_rate": initial,
        "decay_rate": rate,
        "decay_steps": _words(steps),
    }
    with np.errstate(all="ignore"):
        host = _inverse_time._prepare(numbers, staircase=staircase, host=True)
    traced = _prepare_program(staircase)(initial, rate, *_words(steps))
    assert_same_bits(host, traced)


@pytest.mark.parametrize("staircase", [False, True], ids=["smooth", "staircase"])
def test_a_whole_config_is_prepared_alike(staircase):
    config = InverseTimeDecay(-0.3, 2**40 + 7, 1.5, staircase, warmup_steps=3)
    schedule = config._schedule
    floats, words = _program.pack(schedule._plan, schedule._arguments)
    host = _program._prepare_host(schedule._plan, floats, words)
    traced = _program._prepare_program(schedule._plan)(floats, words)
    assert len(host) == 2 * len(schedule._plan.parts)
    assert_same_bits(host, traced)


# ---------------------------------------------------------------------------
# Gradients: the hand-derived formulas, in float64.
# ---------------------------------------------------------------------------


def analytic(initial, rate, step, decay_steps, staircase):
    """(lr, d/d initial, d/d rate, d/d step) of initial / (1 + rate * p), in
    mpmath, as floats (inf beyond float64)."""
    with mpmath.workprec(PRECISION):
        initial, rate = mpmath.mpf(initial), mpmath.mpf(rate)
        elapsed = max(mpmath.mpf(step), 0)
        p = elapsed / decay_steps
        if staircase:
            p = mpmath.floor(p)
        y = 1 + rate * p
        slope = 0 if staircase or step <= 0 else -initial * rate / decay_steps / y**2
        terms = (initial / y, 1 / y, -initial * p / y**2, slope)
        return tuple(float(term) for term in terms)


def close(got, expected):
    return math.isclose(float(got), expected, rel_tol=1e-5, abs_tol=1e-30)


GRAD_STEPS = [0.0, 350.0, 1000.0, 2500.5, 12345.0, 1e9]


@pytest.mark.parametrize("staircase", [False, True], ids=["smooth", "staircase"])
def test_gradients_of_the_builder(staircase):
    initial, rate = computed(0.1), computed(0.5)

    def lr(a, r, s):
        return jaxdecay.inverse_time_decay(a, 1000, r, staircase)(s)

    grad = jax.jit(jax.grad(lr, argnums=(0, 1, 2)))
    for step in GRAD_STEPS:
        _, d_initial, d_rate, d_step = analytic(initial, rate, step, 1000, staircase)
        got = grad(FLOAT.type(initial), FLOAT.type(rate), FLOAT.type(step))
        assert close(got[0], d_initial), step
        assert close(got[1], d_rate), step
        assert close(got[2], d_step), step
        _, tangent = jax.jvp(
            lambda r, s=step: lr(FLOAT.type(initial), r, FLOAT.type(s)),
            (FLOAT.type(rate),),
            (FLOAT.type(1),),
        )
        assert close(tangent, d_rate)


def test_gradients_of_a_config_on_every_path():
    """With respect to the config itself: eagerly, as a jit argument, in a vmapped
    sweep; the integer leaves get no gradient (float0)."""
    config = InverseTimeDecay(0.1, 1000, 0.5)
    step = FLOAT.type(1500.0)
    _, d_initial, d_rate, _ = analytic(computed(0.1), computed(0.5), 1500.0, 1000, 0)

    def grad_of(c):
        return jax.grad(lambda c: c(step), allow_int=True)(c)

    sweep = stack([config, dataclasses.replace(config, initial_learning_rate=0.2)])
    for got in [
        grad_of(config),
        jax.jit(grad_of)(config),
        jax.tree.map(lambda x: x[0], jax.jit(jax.vmap(grad_of))(sweep)),
    ]:
        assert close(got.initial_learning_rate, d_initial)
        assert close(got.decay_rate, d_rate)
        assert got.decay_steps.hi.dtype == jax.dtypes.float0


def test_gradient_through_optax():
    config = InverseTimeDecay(0.1, 1000, 0.5)

    def applied(initial):
        return optax_lr(
            dataclasses.replace(config, initial_learning_rate=initial), 2500
        )

    got = jax.grad(applied)(FLOAT.type(0.1))
    assert close(got, analytic(computed(0.1), computed(0.5), 2500.0, 1000, False)[1])


@rounding_warning
@pytest.mark.parametrize("staircase", [False, True], ids=["smooth", "staircase"])
def test_gradients_are_finite_wherever_the_value_is(staircase):
    """Huge and infinite steps, huge and tiny rates and initial rates, a rate of 0
    and steps before 0: finite derivatives, each the formula's where it is normal."""
    grad = jax.jit(
        jax.vmap(
            jax.grad(
                lambda a, r, s, d: jaxdecay.inverse_time_decay(a, d, r, staircase)(s),
                argnums=(0, 1, 2),
            ),
            in_axes=(None, None, 0, None),
        ),
        static_argnums=3,
    )
    steps = jnp.asarray([-5.0, 0.0, 1.0, 1e6, 1e30, 3e38, np.inf], FLOAT)
    for initial, rate, decay_steps in [
        (0.1, 0.5, 1000),
        (3e38, 3e38, 1),
        (1e-30, 1e-30, 7),
        (0.1, 0.0, 10),
        (-2.0, 1e20, 2**40),
    ]:
        values = jaxdecay.inverse_time_decay(initial, decay_steps, rate, staircase)(
            steps
        )
        got = grad(FLOAT.type(initial), FLOAT.type(rate), steps, decay_steps)
        a, r = computed(initial), computed(rate)
        for index, step in enumerate(np.asarray(steps, np.float64)):
            expected = analytic(a, r, min(step, 1e300), decay_steps, staircase)
            for k in range(3):
                want, have = expected[k + 1], float(got[k][index])
                if not np.isfinite(values[index]):
                    continue
                # Finite wherever the value and the derivative are.
                if abs(want) <= np.finfo(FLOAT).max:
                    assert math.isfinite(have), (initial, rate, step, k)
                if abs(want) >= np.finfo(FLOAT).tiny * 2**30 and step < 1e30:
                    assert close(have, want), (initial, rate, step, k)


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
            {"decay_steps": 1000.0},
            TypeError,
            "decay_steps must be an integer, got 1000.0 of type float",
        ),
        (
            {"decay_rate": -0.5},
            ValueError,
            "decay_rate must be >= 0 (a negative rate makes the denominator 0 at "
            "some step), got -0.5",
        ),
        ({"decay_rate": math.nan}, ValueError, "decay_rate must be finite, got nan"),
        ({"decay_rate": math.inf}, ValueError, "decay_rate must be finite, got inf"),
        (
            {"decay_rate": np.asarray([0.5, -1.0])},
            ValueError,
            "decay_rate must be >= 0 (a negative rate makes the denominator 0 at "
            "some step), got -1.0",
        ),
        (
            {"initial_learning_rate": -math.inf},
            ValueError,
            "initial_learning_rate must be finite, got -inf",
        ),
        (
            {"initial_learning_rate": "0.1"},
            TypeError,
            "initial_learning_rate must be a real number, got '0.1' of type str",
        ),
        ({"staircase": 0}, TypeError, "staircase must be a bool, got 0 of type int"),
        (
            {"warmup_steps": -1},
            ValueError,
            "warmup_steps must be an integer in [0, 9223372036854775807], got -1",
        ),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(kwargs, error, message):
    arguments = {
        "initial_learning_rate": 0.1,
        "decay_steps": 1000,
        "decay_rate": 0.5,
        **kwargs,
    }
    for build in (InverseTimeDecay, jaxdecay.inverse_time_decay):
        with pytest.raises(error) as raised:
            build(**arguments)
        assert str(raised.value) == message


def test_a_rate_of_0_is_accepted_and_optax_has_no_equivalent():
    assert InverseTimeDecay(0.1, 10, 0.0)(100) == FLOAT.type(0.1)
    schedule = InverseTimeDecay(0.1, 10, 0.5)
    message = (
        "optax has no schedule like InverseTimeDecay; pass the InverseTimeDecay "
        "itself to an optax optimizer as the learning rate"
    )
    for call in (schedule.to_optax, schedule.optax_kwargs):
        with pytest.raises(ValueError) as raised:
            call()
        assert str(raised.value) == message


# ---------------------------------------------------------------------------
# Keras: the signature, the values, and serialization both ways.
# ---------------------------------------------------------------------------


def keras_values(schedule, steps):
    """Keras' values; its reference alone runs with standard promotion (as in
    test_keras.py)."""
    with jax.numpy_dtype_promotion("standard"):
        return np.asarray(schedule(jnp.asarray(steps)))


def keras_rtol(value):
    return 4e-6 if np.asarray(value).dtype == np.float32 else 1e-13


def test_constructor_signature_matches_keras():
    import inspect

    ours = inspect.signature(InverseTimeDecay).parameters
    theirs = inspect.signature(KerasInverseTimeDecay).parameters
    positional = [
        name
        for name, parameter in ours.items()
        if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    assert positional == list(theirs)
    for name, parameter in theirs.items():
        assert ours[name].default == parameter.default, name


KERAS_ARGS = [
    (0.1, 1000, 0.5),
    (0.25, 7, 1.5, True, "custom"),
    (1e-3, 1, 0.01, False, None),
    (0.1, 2**15, 3.0, True),
]


@pytest.mark.parametrize("args", KERAS_ARGS)
def test_matches_keras_at_steps_from_0(variant, args):
    """Keras' values for steps >= 0; before 0 the schedule holds the initial rate,
    where Keras extrapolates its curve."""
    steps = np.concatenate(
        [np.arange(0, 5000), np.random.default_rng(1).integers(0, 2**20, 2000)]
    ).astype(jnp.result_type(int))
    keras_args = (*args[:4], args[4] or "InverseTimeDecay") if len(args) > 4 else args
    expected = keras_values(KerasInverseTimeDecay(*keras_args), steps)
    chex.assert_trees_all_close(
        variant(InverseTimeDecay(*args))(steps), expected, rtol=keras_rtol(expected)
    )
    negative = np.asarray([-1, -10], jnp.result_type(int))
    ours = np.asarray(InverseTimeDecay(*args)(negative))
    assert (ours == FLOAT.type(computed(args[0]))).all()
    assert (keras_values(KerasInverseTimeDecay(*keras_args), negative) != ours).any()


@pytest.mark.parametrize("args", KERAS_ARGS)
def test_keras_serialized_loads_in_jaxdecay(args):
    """Keras 3's shape, as a dict and as JSON text, and TF 2's shape."""
    data = keras.optimizers.schedules.serialize(KerasInverseTimeDecay(*args))
    expected = InverseTimeDecay(*args)
    tf2 = {"class_name": data["class_name"], "config": data["config"]}
    for shape in (data, json.dumps(data), tf2, json.dumps(tf2)):
        loaded = jaxdecay.deserialize(shape)
        assert type(loaded) is InverseTimeDecay
        assert loaded == expected
    assert InverseTimeDecay.from_json(json.dumps(data)) == expected
    # A bare get_config() with Keras' default name is read as this family.
    bare = KerasInverseTimeDecay(*args[:4]).get_config()
    assert jaxdecay.deserialize(bare) == InverseTimeDecay(*args[:4])


@pytest.mark.parametrize("args", KERAS_ARGS)
def test_jaxdecay_serialized_loads_in_keras(args):
    schedule = InverseTimeDecay(*args)
    for data in (jaxdecay.serialize(schedule), json.loads(schedule.to_json())):
        loaded = keras.optimizers.schedules.deserialize(data)
        assert type(loaded) is KerasInverseTimeDecay
        assert loaded.get_config() == schedule.get_config()
    assert InverseTimeDecay.from_json(schedule.to_json()) == schedule
    assert jaxdecay.deserialize(schedule.to_json()) == schedule


def test_a_warmup_is_written_as_format_2_and_read_back():
    schedule = InverseTimeDecay(0.1, 1000, 0.5, warmup_steps=100, warmup_init=0.01)
    data = jaxdecay.serialize(schedule)
    assert data["jaxdecay_format"] == 2
    assert jaxdecay.deserialize(json.dumps(data)) == schedule


def test_exported_programs_take_the_config():
    from jax import export

    config = InverseTimeDecay(0.1, 1000, 0.5, True, warmup_steps=10)
    steps = jnp.arange(0, 5000, 250, dtype=jnp.int32)
    exported = export.export(jax.jit(lambda c, s: c(s)))(config, steps)
    restored = export.deserialize(exported.serialize())
    assert bits(restored.call(config, steps)) == bits(config(steps))


# ---------------------------------------------------------------------------
# The command line reads the curve through the family's View.
# ---------------------------------------------------------------------------

INVERSE = {
    "class_name": "InverseTimeDecay",
    "config": {
        "initial_learning_rate": 0.1,
        "decay_steps": 1000,
        "decay_rate": 1.0,
        "staircase": False,
        "name": "InverseTimeDecay",
    },
}


def test_show_prints_the_curve(capsys):
    from jaxdecay import _cli

    assert _cli.main(["show", json.dumps(INVERSE)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[0] == "step"
    steps = [int(line.split()[0]) for line in out[1:]]
    assert steps == [0, 10, 100, 1000, 10000]  # the horizon: 10 * decay_steps
    values = [FLOAT.type(line.split()[1]) for line in out[1:]]
    config = jaxdecay.deserialize(INVERSE)
    for step, value in zip(steps, values, strict=True):
        assert value == rounded(exact(config, step)), step


def test_show_runs_as_a_module():
    import subprocess
    import sys

    stairs = {**INVERSE, "config": {**INVERSE["config"], "staircase": True}}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxdecay",
            "show",
            json.dumps(stairs),
            "--steps=999,1000,2000",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    third = "0.03333333333333333" if X64 else "0.033333335"
    assert rows == [["999", "0.1"], ["1000", "0.05"], ["2000", third]]


def test_plot_draws_the_stairs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from jaxdecay import _cli, _plot

    stairs = InverseTimeDecay(0.1, 1000, 1.0, True)
    steps, note = _plot.plot_grid(stairs, 10_000)
    assert note is None
    assert {999, 1000, 1999, 2000} <= set(steps.tolist())
    path = tmp_path / "lr.png"
    data = json.dumps(jaxdecay.serialize(stairs))
    assert _cli.main(["plot", data, "-o", str(path)]) == 0
    assert path.stat().st_size > 1000
    assert _config.formula(stairs) == "0.1 / (1 + 1 * (step // 1000))"


def test_convert_to_optax_is_refused(capsys):
    from jaxdecay import _cli

    assert _cli.main(["convert", json.dumps(INVERSE), "--to", "optax"]) == 2
    assert "optax has no schedule like InverseTimeDecay" in capsys.readouterr().err


def test_registered_and_exported():
    assert jaxdecay.InverseTimeDecay is InverseTimeDecay
    assert "InverseTimeDecay" in jaxdecay.__all__
    assert "inverse_time_decay" in jaxdecay.__all__
    from jaxdecay import _registry

    assert _registry.FAMILIES["InverseTimeDecay"] is InverseTimeDecay
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert repr(jaxdecay.inverse_time_decay(0.1, 10, 0.5)).startswith(
            "inverse_time_decay("
        )
