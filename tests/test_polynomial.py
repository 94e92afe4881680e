"""`PolynomialDecay`: Keras' polynomial decay with every guarantee the other
families have.

Exact values from mpmath (the schedule of the numbers in the compute dtype), the
same bits on every path, no compile for new numbers, the host's preparation bit
for bit the program's, analytic gradients against mpmath's derivatives,
validation that names the field, serialization against Keras itself, optax, and
the command line.
"""

import dataclasses
import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

mpmath = pytest.importorskip("mpmath")
optax = pytest.importorskip("optax")
keras = pytest.importorskip("keras")
pytest.importorskip("hypothesis")

from _paths import AS_ARGUMENT, SWEPT, counting_compiles, optax_lr, paths, stack
from _reference import PRECISION, bits, round_exact, ulp_distance
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import jaxdecay
from jaxdecay import PolynomialDecay, _config, _polynomial, _program
from jaxdecay._program import compute_dtype
from jaxdecay._steps import Words

FLOAT = np.dtype(jnp.result_type(float))  # float32, or float64 under x64
X64 = np.float64 == FLOAT
UNSIGNED = np.dtype(np.uint64 if X64 else np.uint32)
INT64_MAX = 2**63 - 1
KerasPolynomialDecay = keras.optimizers.schedules.PolynomialDecay


def computed(value):
    """A float hyperparameter as the schedule takes it: in the compute dtype, a
    subnormal counted as 0 (as the schedule warns)."""
    with np.errstate(over="ignore", under="ignore"):
        value = float(FLOAT.type(value))
    return value if abs(value) >= np.finfo(FLOAT).tiny else math.copysign(0, value)


def exact(config, step):
    """The schedule at an integer or float step, from mpmath, before rounding:
    the issue's formula, written out again."""
    with mpmath.workprec(PRECISION):
        initial = mpmath.mpf(computed(config.initial_learning_rate))
        end = mpmath.mpf(computed(config.end_learning_rate))
        power = mpmath.mpf(computed(config.power))
        warmup = config.warmup_steps
        if step < warmup:  # the line from warmup_init, negative steps at its start
            start = mpmath.mpf(computed(config.warmup_init))
            return start + (initial - start) * max(mpmath.mpf(step), 0) / warmup
        n = mpmath.mpf(step) - warmup
        if n <= 0:
            return initial
        d = mpmath.mpf(config.decay_steps)
        if config.cycle:
            d = d * max(1, mpmath.ceil(n / d))
        else:
            n = min(n, d)
        r = 1 - n / d
        if r == 0:
            return initial if power == 0 else end
        return (initial - end) * r**power + end


def rounded(value):
    return FLOAT.type(round_exact(value, FLOAT))


def ulps(got, config, steps):
    """The ulp distance of each value from the exactly rounded one, where that is
    a normal float (NaN elsewhere: there the guarantee does not hold)."""
    expected = np.asarray([rounded(exact(config, int(s))) for s in steps], FLOAT)
    normal = np.isfinite(expected) & (np.abs(expected) >= np.finfo(FLOAT).tiny)
    distance = ulp_distance(np.asarray(got, FLOAT), expected)
    return np.where(normal, distance, np.nan)


rounding_warning = pytest.mark.filterwarnings(
    "ignore:overflow encountered in cast:RuntimeWarning",
    "ignore:.* in float(32|64), the dtype every path computes in:UserWarning",
)

magnitudes = (
    st.floats(1e-6, 10.0)
    | st.floats(1e-30, 1e30)
    | st.sampled_from([0.0, 1e-30, 3e38, 1e-300, 1e300, 1.5e-38])
).filter(lambda x: math.isfinite(computed(x)))  # beyond the dtype: warned, inf
powers = (
    st.sampled_from([1.0, 1.0, 2.0, 0.5, 3.0, 0.0, 1e-3, 100.0, 7.25])
    | st.floats(0.0, 5.0)
    | st.floats(1e-30, 1e30)
)
decay_steps = st.integers(1, 10**6) | st.sampled_from(
    [1, 7, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 1, 2**53 + 1, INT64_MAX]
)


@st.composite
def configs(draw, warmup=True):
    """Ends of one sign (either larger), never opposite signs: there the value
    crosses 0 and no ulp bound holds."""
    a, b = draw(magnitudes), draw(magnitudes)
    sign = draw(st.sampled_from([1.0, -1.0]))
    finite = math.isfinite(computed(a))
    return PolynomialDecay(
        sign * a,
        draw(decay_steps),
        sign * b,
        draw(powers),
        draw(st.booleans()),
        warmup_steps=draw(st.just(0) | decay_steps) if warmup and finite else 0,
        warmup_init=sign * draw(st.floats(0.0, 10.0)),
    )


def drawn_steps(rng, config):
    """Steps of the unsigned step type: random over its range and below a few
    cycles, the extremes, and the edges of the cycles."""
    top = int(np.iinfo(UNSIGNED).max)
    d = config.decay_steps
    edges = [d - 1, d, d + 1, 2 * d - 1, 2 * d, 2 * d + 1, d // 256, d // 256 + 1]
    fixed = [0, 1, 2, 999, 2**24 + 1, 2**31 - 1, 2**31, top - 1, top]
    steps = [*rng.integers(0, top, 16, dtype=UNSIGNED, endpoint=True), *fixed]
    steps += [*rng.integers(0, min(top, 3 * d), 16, dtype=UNSIGNED, endpoint=True)]
    steps += [s for s in edges if 0 <= s <= top]
    return np.asarray(steps + [0] * (56 - len(steps)), UNSIGNED)


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
@example(config=PolynomialDecay(0.1, INT64_MAX, 1e-30, 0.5), seed=0)
@example(config=PolynomialDecay(3e38, 1, 1.0, 2.0, True), seed=1)
@example(config=PolynomialDecay(0.0, 2**32 + 1, 0.1, 1e-3), seed=2)
@example(config=PolynomialDecay(-0.3, 7, -1e-3, 1.0, True), seed=3)
@example(config=PolynomialDecay(1e-30, 1000, 3e38, 100.0), seed=4)
def test_within_one_ulp_of_the_exact_value_at_every_unsigned_step(config, seed):
    """uint32 steps (uint64 under x64) over their whole range, both ends of any
    magnitude, powers from 0 to 1e30, `decay_steps` up to 2**63 - 1, with and
    without cycles: every value that is a normal float is within 1 ulp."""
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


def test_hand_worked_values():
    """Numbers worked by hand: a line, a square, a square root, and cycles."""
    line = PolynomialDecay(0.1, 1000, 0.0)
    assert float(line(250)) == pytest.approx(0.075, rel=1e-7)
    assert line(1000) == 0 and line(10**6) == 0
    square = PolynomialDecay(1.0, 4, 0.0, 2.0)
    assert [float(x) for x in square(jnp.arange(6))] == [1, 0.5625, 0.25, 0.0625, 0, 0]
    root = PolynomialDecay(1.0, 4, 0.5, 0.5)
    assert float(root(3)) == pytest.approx(0.75, rel=1e-7)  # 0.5 * 0.5 + 0.5
    cycled = PolynomialDecay(1.0, 4, 0.0, 1.0, True)
    # 5 -> D = 8, r = 3/8; 8 -> the end; 9 -> D = 12, r = 3/12.
    got = [float(x) for x in cycled(jnp.asarray([0, 4, 5, 8, 9]))]
    assert got == [1.0, 0.0, 0.375, 0.0, 0.25]
    # power 0: 0**0 is 1, as in Keras: the initial rate everywhere.
    assert float(PolynomialDecay(0.3, 4, 0.1, 0.0)(4)) == FLOAT.type(0.3)


def test_float_steps_are_within_one_ulp_and_whole_ones_give_the_integer_bits():
    for cycle in (False, True):
        config = PolynomialDecay(0.1, 1000, 0.001, 0.5, cycle)
        steps = np.asarray([0.25, 2.5, 999.75, 1500.5, 2000.0], np.float32)
        got = np.asarray(config(jnp.asarray(steps)))
        for step, value in zip(steps, got, strict=True):
            expected = rounded(exact(config, mpmath.mpf(float(step))))
            assert ulp_distance(np.asarray([value]), np.asarray([expected]))[0] <= 1
        integers = np.asarray([0, 1, 7, 999, 1000, 2**24 + 2], np.int64)
        assert bits(config(jnp.asarray(integers.astype(np.float32)))) == bits(
            config(jnp.asarray(integers, jnp.result_type(int)))
        )
    assert PolynomialDecay(0.1, 1000, 0.001)(jnp.inf) == FLOAT.type(0.001)
    assert PolynomialDecay(0.1, 1000, 0.001)(-jnp.inf) == FLOAT.type(0.1)


# ---------------------------------------------------------------------------
# Hyperparameters are data: one set of bits on every path, no compile.
# ---------------------------------------------------------------------------


@rounding_warning
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(config=configs(), seed=st.integers(0, 2**32 - 1))
@example(config=PolynomialDecay(0.1, 1000, 0.001, 1.0), seed=0)
@example(config=PolynomialDecay(0.1, 1000, 0.001, 2.0, True), seed=0)
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


def test_a_sweep_member_reproduces_its_single_run():
    configs = [
        PolynomialDecay(0.1, 1000, 0.001),
        PolynomialDecay(0.01, 1, 0.0, 2.0, True),
        PolynomialDecay(0.3, 2**40, 1e-9, 0.5),
        PolynomialDecay(1e-4, 77777, 0.1, 3.0, False),
    ]
    steps = jnp.arange(0, 1_000_000, 37, dtype=jnp.int32)
    for cycle in (False, True):
        same = [dataclasses.replace(c, cycle=cycle) for c in configs]
        swept = jax.jit(jax.vmap(lambda c: c(steps)))(stack(same))
        for row, config in zip(swept, same, strict=True):
            assert bits(row) == bits(config(steps))


def test_new_configs_never_compile():
    steps = jnp.arange(16, dtype=jnp.int32)

    def calls(i):
        power = 0.5 + i * 1e-3
        for cycle in (False, True):
            jaxdecay.polynomial_decay(0.1 + i, 1000 + i, 1e-4, power, cycle)(3)
            config = PolynomialDecay(np.float32(0.2 * i), 7 + i, 0.01, power, cycle)
            config(steps)
            config(np.int32(5))
            AS_ARGUMENT(config, steps)
            pair = stack([config, dataclasses.replace(config, power=1.0)])
            SWEPT(pair, steps)
            PolynomialDecay(jnp.asarray(0.1 * i), 2**40 + i, 0.0, power, cycle)(3)
            warm = dataclasses.replace(config, warmup_steps=10 + i, warmup_init=0.01)
            AS_ARGUMENT(warm, steps)

    calls(1)  # the first call of each kind compiles
    with counting_compiles() as compiles:
        for i in range(2, 8):
            calls(i)
        assert compiles == []


def test_the_warmup_comes_from_the_piece():
    config = PolynomialDecay(0.1, 1000, 0.0, warmup_steps=100)
    steps = jnp.asarray([-3, 0, 50, 100, 600, 1100, 2100], jnp.int32)
    expected = [0.0, 0.0, 0.05, 0.1, 0.05, 0.0, 0.0]
    for value, want in zip(np.asarray(config(steps)), expected, strict=True):
        assert math.isclose(float(value), want, rel_tol=1e-6, abs_tol=1e-12)
    assert _config.formula(config) == (
        "warmup 0 -> 0.1 to step 100, then (0.1 - 0) * (1 - min((step - 100), "
        "1000) / (1000)) ** 1 + 0"
    )


# ---------------------------------------------------------------------------
# The host prepares known numbers with the program's operations and bits.
# ---------------------------------------------------------------------------


def _words(value):
    return Words(np.int32(value >> 32), np.uint32(value & 0xFFFFFFFF))


@functools.cache
def _prepare_program(cycle):
    def prepare(initial, end, power, hi, lo):
        numbers = {
            "initial_learning_rate": initial,
            "end_learning_rate": end,
            "power": power,
            "decay_steps": Words(hi, lo),
        }
        return _polynomial._prepare(numbers, cycle=cycle)

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


finite = st.floats(allow_nan=False, allow_infinity=False, width=64 if X64 else 32)


@settings(max_examples=150, deadline=None)
@given(
    initial=finite,
    end=finite,
    power=st.floats(min_value=0, allow_nan=False, width=64 if X64 else 32),
    steps=st.one_of(st.integers(1, 2**12), st.integers(1, INT64_MAX)),
    cycle=st.booleans(),
)
@example(initial=0.1, end=1e-45, power=1.0, steps=INT64_MAX, cycle=False)
@example(initial=3e38, end=-3e38, power=0.0, steps=3, cycle=True)
def test_the_constants_are_prepared_alike_on_the_host_and_in_a_program(
    initial, end, power, steps, cycle
):
    dtype = compute_dtype()
    initial, end, power = dtype.type(initial), dtype.type(end), dtype.type(power)
    numbers = {
        "initial_learning_rate": initial,
        "end_learning_rate": end,
        "power": power,
        "decay_steps": _words(steps),
    }
    with np.errstate(all="ignore"):
        host = _polynomial._prepare(numbers, cycle=cycle, host=True)
    traced = _prepare_program(cycle)(initial, end, power, *_words(steps))
    assert_same_bits(host, traced)


@pytest.mark.parametrize("cycle", [False, True], ids=["capped", "cycle"])
def test_a_whole_config_is_prepared_alike(cycle):
    config = PolynomialDecay(-0.3, 2**40 + 7, -1e-3, 1.5, cycle, warmup_steps=3)
    schedule = config._schedule
    floats, words = _program.pack(schedule._plan, schedule._arguments)
    host = _program._prepare_host(schedule._plan, floats, words)
    traced = _program._prepare_program(schedule._plan)(floats, words)
    assert len(host) == 2 * len(schedule._plan.parts)
    assert_same_bits(host, traced)


# ---------------------------------------------------------------------------
# Gradients: mpmath's derivatives of the exact schedule.
# ---------------------------------------------------------------------------


def derivatives(initial, end, power, step, decay_steps, cycle):
    """(d/d initial, d/d end, d/d power, d/d step) by mpmath's numerical
    differentiation of the exact formula, as floats."""
    with mpmath.workprec(PRECISION):

        def f(a, b, p, s):
            n = mpmath.mpf(s)
            if n <= 0:
                return a
            d = mpmath.mpf(decay_steps)
            if cycle:
                d = d * max(1, mpmath.ceil(n / d))
            else:
                n = min(n, d)
            r = 1 - n / d
            return (a - b) * r**p + b if r > 0 else b

        point = [mpmath.mpf(initial), mpmath.mpf(end), mpmath.mpf(power)]
        s = mpmath.mpf(step)
        terms = [
            mpmath.diff(lambda a: f(a, point[1], point[2], s), point[0]),
            mpmath.diff(lambda b: f(point[0], b, point[2], s), point[1]),
            mpmath.diff(lambda p: f(point[0], point[1], p, s), point[2]),
            mpmath.diff(lambda t: f(point[0], point[1], point[2], t), s, h=1e-30),
        ]
        return tuple(float(t) for t in terms)


def close(got, expected):
    return math.isclose(float(got), expected, rel_tol=1e-4, abs_tol=1e-12)


@pytest.mark.parametrize("cycle", [False, True], ids=["capped", "cycle"])
@pytest.mark.parametrize("power", [1.0, 0.5, 2.0])
def test_gradients_of_the_builder(cycle, power):
    initial, end = computed(0.1), computed(0.001)

    def lr(a, b, p, s):
        return jaxdecay.polynomial_decay(a, 1000, b, p, cycle)(s)

    grad = jax.jit(jax.grad(lr, argnums=(0, 1, 2, 3)))
    for step in [350.0, 999.5, 1500.25, 12345.5]:
        if not cycle and step > 1000:
            continue
        expected = derivatives(initial, end, computed(power), step, 1000, cycle)
        got = grad(
            FLOAT.type(initial), FLOAT.type(end), FLOAT.type(power), FLOAT.type(step)
        )
        for k in range(4):
            assert close(got[k], expected[k]), (step, k, got[k], expected[k])


def test_gradients_at_the_edges_are_finite_and_documented():
    """At the cap the value is the end: d/dinitial 0, d/dend 1, d/dpower 0, and
    d/dstep 0 (chosen: for power < 1 the slope before the cap is unbounded);
    before step 0 the initial rate holds."""
    grad = jax.grad(
        lambda a, b, p, s: jaxdecay.polynomial_decay(a, 1000, b, p)(s),
        argnums=(0, 1, 2, 3),
    )
    for power in (0.5, 1.0, 2.0):
        for step in (1000.0, 5000.0, 1e30, np.inf):
            got = [float(g) for g in grad(0.1, 0.001, power, FLOAT.type(step))]
            assert got == [0.0, 1.0, 0.0, 0.0], (power, step)
        got = [float(g) for g in grad(0.1, 0.001, power, FLOAT.type(-3.0))]
        assert got == [1.0, 0.0, 0.0, 0.0]


def test_gradients_of_a_config_and_through_optax():
    config = PolynomialDecay(0.1, 1000, 0.001, 2.0)
    expected = derivatives(computed(0.1), computed(0.001), 2.0, 600, 1000, False)
    step = FLOAT.type(600.0)
    got = jax.jit(lambda c: jax.grad(lambda c: c(step), allow_int=True)(c))(config)
    assert close(got.initial_learning_rate, expected[0])
    assert close(got.end_learning_rate, expected[1])
    assert close(got.power, expected[2])
    assert got.decay_steps.hi.dtype == jax.dtypes.float0

    def applied(initial):
        return optax_lr(dataclasses.replace(config, initial_learning_rate=initial), 600)

    assert close(jax.grad(applied)(FLOAT.type(0.1)), expected[0])


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
            {"power": -1.0},
            ValueError,
            "power must be >= 0 (a negative power makes the learning rate infinite "
            "at decay_steps, where 1 - step / decay_steps is 0), got -1.0",
        ),
        ({"power": math.nan}, ValueError, "power must be finite, got nan"),
        ({"power": math.inf}, ValueError, "power must be finite, got inf"),
        (
            {"end_learning_rate": math.inf},
            ValueError,
            "end_learning_rate must be finite, got inf",
        ),
        (
            {"end_learning_rate": None},
            TypeError,
            "end_learning_rate must be a real number, got None of type NoneType",
        ),
        ({"cycle": 1}, TypeError, "cycle must be a bool, got 1 of type int"),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(kwargs, error, message):
    arguments = {"initial_learning_rate": 0.1, "decay_steps": 1000, **kwargs}
    for build in (PolynomialDecay, jaxdecay.polynomial_decay):
        with pytest.raises(error) as raised:
            build(**arguments)
        assert str(raised.value) == message


# ---------------------------------------------------------------------------
# Keras and optax.
# ---------------------------------------------------------------------------


def keras_values(schedule, steps):
    with jax.numpy_dtype_promotion("standard"):
        return np.asarray(schedule(jnp.asarray(steps)))


KERAS_ARGS = [
    (0.1, 1000),
    (0.1, 1000, 0.001, 2.0),
    (0.25, 7, 0.0, 0.5, True, "custom"),
    (1e-3, 1, 0.01, 1.0, False, None),
    (0.0, 2**15, 0.1, 3.0, True),
]


def test_constructor_signature_matches_keras():
    import inspect

    ours = inspect.signature(PolynomialDecay).parameters
    theirs = inspect.signature(KerasPolynomialDecay).parameters
    positional = [
        name
        for name, parameter in ours.items()
        if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    assert positional == list(theirs)
    for name, parameter in theirs.items():
        assert ours[name].default == parameter.default, name


@pytest.mark.parametrize("args", KERAS_ARGS)
def test_matches_keras_at_steps_from_0(args):
    """Keras' values for steps >= 0, but at the multiples of `decay_steps` with
    `cycle`: there the exact value is the end, and Keras' float quotient of an
    array of steps may round above the whole number and start the next cycle
    (its value at step 21 of 7-step cycles is 0.125, not 0, for an array)."""
    steps = np.arange(0, 3000).astype(jnp.result_type(int))
    keras_args = (*args[:5], args[5] or "PolynomialDecay") if len(args) > 5 else args
    expected = keras_values(KerasPolynomialDecay(*keras_args), steps)
    config = PolynomialDecay(*args)
    got = np.asarray(config(steps))
    compared = np.ones(len(steps), bool)
    if config.cycle:
        compared = (steps == 0) | (steps % config.decay_steps != 0)
        assert (got[~compared] == FLOAT.type(computed(config.end_learning_rate))).all()
        scalar = KerasPolynomialDecay(*keras_args)
        with jax.numpy_dtype_promotion("standard"):
            assert float(scalar(2 * config.decay_steps)) == pytest.approx(
                computed(config.end_learning_rate)
            )
    # Keras rounds 1 - step / decay_steps: near its end, and where the initial
    # rate is the nearer one, its error is relative to the larger rate.
    rtol = 1e-4 if expected.dtype == np.float32 else 1e-10
    atol = rtol * max(abs(args[0]), abs(args[2] if len(args) > 2 else 1e-4)) / 100
    np.testing.assert_allclose(got[compared], expected[compared], rtol=rtol, atol=atol)
    negative = np.asarray([-1, -10], jnp.result_type(int))
    assert (np.asarray(config(negative)) == FLOAT.type(computed(args[0]))).all()


@pytest.mark.parametrize("args", KERAS_ARGS)
def test_keras_serialized_loads_in_jaxdecay(args):
    data = keras.optimizers.schedules.serialize(KerasPolynomialDecay(*args))
    expected = PolynomialDecay(*args)
    tf2 = {"class_name": data["class_name"], "config": data["config"]}
    for shape in (data, json.dumps(data), tf2, json.dumps(tf2)):
        loaded = jaxdecay.deserialize(shape)
        assert type(loaded) is PolynomialDecay
        assert loaded == expected
    assert PolynomialDecay.from_json(json.dumps(data)) == expected


@pytest.mark.parametrize("args", KERAS_ARGS)
def test_jaxdecay_serialized_loads_in_keras(args):
    schedule = PolynomialDecay(*args)
    for data in (jaxdecay.serialize(schedule), json.loads(schedule.to_json())):
        loaded = keras.optimizers.schedules.deserialize(data)
        assert type(loaded) is KerasPolynomialDecay
        assert loaded.get_config() == schedule.get_config()
    assert jaxdecay.deserialize(schedule.to_json()) == schedule


def test_a_warmup_is_written_as_format_2_and_read_back():
    schedule = PolynomialDecay(0.1, 1000, warmup_steps=100, warmup_init=0.01)
    data = jaxdecay.serialize(schedule)
    assert data["jaxdecay_format"] == 2
    assert jaxdecay.deserialize(json.dumps(data)) == schedule


def test_optax_builds_the_same_schedule_without_cycle():
    schedule = PolynomialDecay(0.1, 1000, 0.001, 2.0)
    assert schedule.optax_kwargs() == {
        "init_value": 0.1,
        "end_value": 0.001,
        "power": 2.0,
        "transition_steps": 1000,
        "transition_begin": 0,
    }
    steps = jnp.arange(0, 1500, 7, dtype=jnp.int32)
    theirs = optax.polynomial_schedule(0.1, 0.001, 2.0, 1000)(steps)
    # optax computes with Python floats in float32, under x64 too.
    rtol = 1e-5 if np.asarray(theirs).dtype == np.float32 else 1e-12
    np.testing.assert_allclose(schedule.to_optax()(steps), theirs, rtol=rtol)
    np.testing.assert_allclose(schedule(steps), theirs, rtol=rtol)


def test_optax_refuses_a_cycle_and_a_warmup():
    cycled = PolynomialDecay(0.1, 1000, cycle=True)
    no_cycle = r"optax\.polynomial_schedule has no cycle"
    for call in (cycled.to_optax, cycled.optax_kwargs):
        with pytest.raises(ValueError, match=no_cycle):
            call()
    warm = PolynomialDecay(0.1, 1000, warmup_steps=10)
    for call in (warm.to_optax, warm.optax_kwargs):
        with pytest.raises(ValueError, match="optax has no polynomial schedule with"):
            call()
    with pytest.raises(ValueError, match="optax has no polynomial schedule with"):
        PolynomialDecay(0.1, 1000).optax_kwargs(warmup=True)


def test_exported_programs_take_the_config():
    from jax import export

    config = PolynomialDecay(0.1, 1000, 0.0, 0.5, True, warmup_steps=10)
    steps = jnp.arange(0, 5000, 250, dtype=jnp.int32)
    exported = export.export(jax.jit(lambda c, s: c(s)))(config, steps)
    restored = export.deserialize(exported.serialize())
    assert bits(restored.call(config, steps)) == bits(config(steps))


# ---------------------------------------------------------------------------
# The command line reads the curve through the family's View.
# ---------------------------------------------------------------------------

POLYNOMIAL = {
    "class_name": "PolynomialDecay",
    "config": {
        "initial_learning_rate": 0.1,
        "decay_steps": 1000,
        "end_learning_rate": 0.0,
        "power": 2.0,
        "cycle": False,
        "name": "PolynomialDecay",
    },
}


def test_show_prints_the_curve(capsys):
    from jaxdecay import _cli

    assert _cli.main(["show", json.dumps(POLYNOMIAL)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[0] == "step"
    steps = [int(line.split()[0]) for line in out[1:]]
    assert 1000 in steps and steps[0] == 0
    values = [FLOAT.type(line.split()[1]) for line in out[1:]]
    config = jaxdecay.deserialize(POLYNOMIAL)
    for step, value in zip(steps, values, strict=True):
        assert value == rounded(exact(config, step)), step


def test_plot_draws_the_cycles(tmp_path):
    pytest.importorskip("matplotlib")
    from jaxdecay import _cli, _plot

    cycled = PolynomialDecay(0.1, 1000, 0.0, 1.0, True)
    steps, note = _plot.plot_grid(cycled, 4000)
    assert note is None
    assert {1000, 2000, 3000} <= set(steps.tolist())
    path = tmp_path / "lr.png"
    assert (
        _cli.main(["plot", json.dumps(jaxdecay.serialize(cycled)), "-o", str(path)])
        == 0
    )
    assert path.stat().st_size > 1000
    assert _config.formula(cycled) == (
        "(0.1 - 0) * (1 - step / (1000 * max(1, ceil(step / 1000)))) ** 1 + 0"
    )


def test_convert_to_optax(capsys):
    from jaxdecay import _cli

    assert _cli.main(["convert", json.dumps(POLYNOMIAL), "--to", "optax"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "init_value": 0.1,
        "end_value": 0.0,
        "power": 2.0,
        "transition_steps": 1000,
        "transition_begin": 0,
    }
    cycled = {**POLYNOMIAL, "config": {**POLYNOMIAL["config"], "cycle": True}}
    assert _cli.main(["convert", json.dumps(cycled), "--to", "optax"]) == 2
    assert "optax.polynomial_schedule has no cycle" in capsys.readouterr().err


def test_registered_and_exported():
    assert jaxdecay.PolynomialDecay is PolynomialDecay
    assert {"PolynomialDecay", "polynomial_decay"} <= set(jaxdecay.__all__)
    from jaxdecay import _registry

    assert _registry.FAMILIES["PolynomialDecay"] is PolynomialDecay
