"""The schedule's values, against optax.exponential_decay and hand-worked numbers.

Every test runs under `jax.jit` and eagerly (the `variant` fixture in conftest.py).
The parity configs use decay rates that float32 holds exactly (0.5, 0.75, 1 - 2**-8,
1 + 2**-7): optax rounds `decay_rate` to float32 and raises it to `p`, so a rate such
as 0.96 would put an error of p * 2**-24 into the *reference* (3e-5 at p = 1000),
which says nothing about jaxdecay. They also keep |p * ln(decay_rate)| <= ~10 for
steps below 2**20, which the `rtol` fixture's bound relies on.
"""

import functools
import math

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

chex = pytest.importorskip("chex")
optax = pytest.importorskip("optax")

from _reference import bits

from jaxdecay import ExponentialDecay, exponential_decay

LIMIT = 2**20  # steps in [0, LIMIT) are compared with optax
SAMPLE = 2**17  # one sample length for every config, so eager ops compile once

CONFIGS = {
    "slow": dict(initial_learning_rate=0.1, decay_steps=1000, decay_rate=1 - 2**-8),
    "growth": dict(initial_learning_rate=1e-3, decay_steps=1000, decay_rate=1 + 2**-7),
    "halving": dict(initial_learning_rate=0.1, decay_steps=2**17, decay_rate=0.5),
    "three-quarters": dict(
        initial_learning_rate=0.1, decay_steps=2**15, decay_rate=0.75
    ),
    "begin": dict(
        initial_learning_rate=0.1,
        decay_steps=1000,
        decay_rate=1 - 2**-8,
        transition_begin=12345,
    ),
    "floor": dict(
        initial_learning_rate=0.1,
        decay_steps=1000,
        decay_rate=1 - 2**-8,
        end_learning_rate=0.01,
    ),
    "ceiling": dict(
        initial_learning_rate=1e-3,
        decay_steps=1000,
        decay_rate=1 + 2**-7,
        end_learning_rate=2e-3,
    ),
    "begin-floor": dict(
        initial_learning_rate=0.1,
        decay_steps=2**15,
        decay_rate=0.75,
        transition_begin=54321,
        end_learning_rate=0.02,
    ),
}

all_configs = pytest.mark.parametrize("name", list(CONFIGS))
some_configs = pytest.mark.parametrize(
    "name", ["slow", "halving", "ceiling", "begin-floor"]
)
staircase_params = pytest.mark.parametrize(
    "staircase", [False, True], ids=["smooth", "staircase"]
)


def optax_schedule(config, staircase):
    """optax's schedule for the same arguments, with the names mapped by hand."""
    return optax.exponential_decay(
        init_value=config["initial_learning_rate"],
        transition_steps=config["decay_steps"],
        decay_rate=config["decay_rate"],
        transition_begin=config.get("transition_begin", 0),
        staircase=staircase,
        end_value=config.get("end_learning_rate"),
    )


@functools.cache
def parity_steps(name):
    """2**17 int64 steps in [0, 2**20): every stair edge transition_begin +
    k*decay_steps and the step before it, the rest drawn at random."""
    config = CONFIGS[name]
    rng = np.random.default_rng(20240601)
    begin = config.get("transition_begin", 0)
    edges = np.arange(1, LIMIT // config["decay_steps"] + 1) * config["decay_steps"]
    steps = np.concatenate(
        [
            edges + begin - 1,
            edges + begin,
            [0, 1, begin - 1, begin, begin + 1, LIMIT - 1],
        ]
    )
    steps = np.unique(steps[(steps >= 0) & (steps < LIMIT)])
    steps = np.concatenate([steps, rng.integers(0, LIMIT, SAMPLE - steps.size)])
    steps.sort()
    return steps


@functools.cache
def optax_values(name, staircase):
    """optax's values on `parity_steps(name)` as JAX's default int, once a session."""
    steps = jnp.asarray(parity_steps(name).astype(jnp.result_type(int)))
    return np.asarray(optax_schedule(CONFIGS[name], staircase)(steps))


# ---------------------------------------------------------------------------
# Parity with optax.
# ---------------------------------------------------------------------------


@all_configs
@staircase_params
def test_matches_optax_on_integer_steps(variant, name, staircase, int_dtype, rtol):
    """Integer steps in [0, 2**20), stair edges included, agree with optax."""
    steps = parity_steps(name).astype(int_dtype)
    actual = variant(ExponentialDecay(**CONFIGS[name], staircase=staircase))(steps)
    assert actual.dtype == jnp.result_type(float)
    assert actual.shape == steps.shape
    chex.assert_trees_all_close(actual, optax_values(name, staircase), rtol=rtol)


@some_configs
@staircase_params
def test_int32_steps_match_optax(variant, name, staircase, rtol):
    """int32 step arrays give optax's values (optax evaluated on default ints)."""
    steps = parity_steps(name).astype(np.int32)
    actual = variant(ExponentialDecay(**CONFIGS[name], staircase=staircase))(steps)
    assert actual.dtype == jnp.result_type(float)
    chex.assert_trees_all_close(actual, optax_values(name, staircase), rtol=rtol)


@some_configs
@staircase_params
def test_float_steps_match_optax(variant, name, staircase, float_dtype, rtol):
    """Float steps (fractional, half a step either side of stair edges) agree with
    optax, except where optax's own floor is off by a stair (see below)."""
    config = CONFIGS[name]
    begin = config.get("transition_begin", 0)
    edges = np.arange(1, 9) * config["decay_steps"] + begin
    rng = np.random.default_rng(7)
    fixed = np.concatenate([edges - 0.5, edges + 0.5, [0.0, 0.5, 1.5, begin + 0.25]])
    steps = np.concatenate([fixed, rng.uniform(0, LIMIT, 2**14 - fixed.size)])
    steps = steps.astype(float_dtype)
    actual = variant(ExponentialDecay(**config, staircase=staircase))(steps)
    expected = optax_schedule(config, staircase)(jnp.asarray(steps))
    assert actual.dtype == float_dtype
    if staircase:
        # optax floors a quotient that XLA rounds (its CPU division is not correctly
        # rounded), so within ~1e-6 below a stair edge optax is already on the next
        # stair; jaxdecay floors exactly (test_float_staircase_floors_exactly).
        quotient = (steps.astype(np.float64) - begin) / config["decay_steps"]
        clear = np.ceil(quotient) - quotient > 1e-5 * np.maximum(quotient, 1)
        assert clear.mean() > 0.99
        actual, expected = np.asarray(actual)[clear], np.asarray(expected)[clear]
    chex.assert_trees_all_close(actual, expected, rtol=rtol)


# ---------------------------------------------------------------------------
# Hand-worked values.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("staircase", "step", "expected"),
    [
        (False, 0, 0.1),
        (False, 1000, 0.05),  # 0.1 * 0.5**1
        (False, 2000, 0.025),  # 0.1 * 0.5**2
        (False, 1500, 0.1 / (2 * math.sqrt(2))),  # 0.1 * 0.5**1.5
        (True, 999, 0.1),
        (True, 1999, 0.05),
        (True, 2000, 0.025),
        (False, 1500.0, 0.1 / (2 * math.sqrt(2))),
        (True, 1999.5, 0.05),
    ],
)
def test_hand_worked_values(variant, staircase, step, expected, rtol):
    """0.1 halved every 1000 steps: 0.05 at 1000, 0.025 at 2000, stairs hold."""
    schedule = variant(ExponentialDecay(0.1, 1000, 0.5, staircase=staircase))
    chex.assert_trees_all_close(schedule(step), np.asarray(expected), rtol=rtol)


@staircase_params
def test_float_step_between_integers(variant, staircase, rtol):
    """A float step 1.5 with decay_steps=1: 0.1 * 0.5**1.5, or 0.05 on stairs."""
    schedule = variant(exponential_decay(0.1, 1, 0.5, staircase=staircase))
    expected = 0.05 if staircase else 0.1 / (2 * math.sqrt(2))
    chex.assert_trees_all_close(schedule(1.5), np.asarray(expected), rtol=rtol)
    chex.assert_trees_all_close(
        schedule(jnp.asarray([1.5, 2.5])),
        np.asarray([expected, expected / 2]),
        rtol=rtol,
    )


def test_float_staircase_floors_exactly(variant, rtol):
    """A float32 step just below a stair edge (43000 - 2**-8, decay_steps=1000) is on
    stair 42: 0.5**42 (optax's rounded quotient puts it on stair 43)."""
    schedule = variant(exponential_decay(1.0, 1000, 0.5, staircase=True))
    step = np.float32(43000 - 2**-8)
    assert float(step) < 43000  # the step is exactly representable
    chex.assert_trees_all_close(schedule(step), np.asarray(0.5**42), rtol=rtol)


@staircase_params
def test_halving_is_exact_at_multiples_of_decay_steps(variant, staircase, rtol):
    """decay_rate=0.5: lr(k * decay_steps) = 2**-k, a float32-exact number.

    optax returns these exactly (its p = step / decay_steps is exact there), so the
    schedule must be within `rtol` of them for every k a step below 2**20 reaches.
    """
    k = np.arange(0, LIMIT // 10_000 + 1)  # 2**-104 is still a normal float32
    schedule = variant(exponential_decay(1.0, 10_000, 0.5, staircase=staircase))
    actual = schedule(jnp.asarray(k * 10_000))
    chex.assert_trees_all_close(actual, np.ldexp(1.0, -k), rtol=rtol)


# ---------------------------------------------------------------------------
# Steps outside the decay: before the start, and very large.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["slow", "begin-floor"])
@staircase_params
def test_negative_steps_hold_initial_rate(variant, name, staircase, int_dtype):
    """Negative steps (down to int32 min) and steps up to transition_begin give the
    initial learning rate, as optax does (Keras would extrapolate instead)."""
    config = CONFIGS[name]
    begin = config.get("transition_begin", 0)
    steps = np.concatenate(
        [
            np.linspace(-(2**31), 0, 4000, dtype=np.int64),
            [-(2**31), -(2**30), -1, 0, begin],
            np.linspace(0, begin, 91, dtype=np.int64),
        ]
    ).astype(np.int32)
    schedule = variant(ExponentialDecay(**config, staircase=staircase))
    initial = np.full(steps.shape, np.asarray(0.1, jnp.result_type(float)))
    np.testing.assert_array_equal(schedule(steps), initial)
    np.testing.assert_array_equal(schedule(steps.astype(int_dtype)), initial)
    # optax agrees where it can shift the step by transition_begin without overflow.
    small = jnp.asarray(steps[steps >= -(2**30)].astype(int_dtype))
    np.testing.assert_array_equal(
        schedule(small), optax_schedule(config, staircase)(small)
    )


@staircase_params
def test_negative_float_steps_hold_initial_rate(variant, staircase):
    """Float steps at or before transition_begin give the initial learning rate."""
    schedule = variant(exponential_decay(0.1, 10, 0.5, staircase, transition_begin=5))
    steps = jnp.asarray([-1e30, -2.5, -0.0, 0.0, 4.75, 5.0])
    expected = np.full(steps.shape, np.asarray(0.1, jnp.result_type(float)))
    np.testing.assert_array_equal(schedule(steps), expected)


LIMITS = pytest.mark.parametrize(
    ("decay_rate", "end_learning_rate", "expected"),
    [
        (0.5, None, 0.0),  # tends to 0
        (0.5, 0.01, 0.01),  # the floor
        (2.0, 10.0, 10.0),  # the ceiling
        (1.01, None, np.inf),  # grows without bound, as optax's does; never NaN
    ],
)


@LIMITS
@staircase_params
def test_large_steps_never_nan(
    variant, decay_rate, end_learning_rate, expected, staircase
):
    """Huge finite steps (int32 max, int64 max under x64, 3e38) give the limit of the
    decay (0, or the bound), never NaN."""
    schedule = variant(
        exponential_decay(
            0.1,
            1000,
            decay_rate,
            staircase,
            transition_begin=7,
            end_learning_rate=end_learning_rate,
        )
    )
    steps = [
        np.int32(2**31 - 1),
        np.asarray([2**31 - 1, 2**31 - 2, 2**30], np.int32),
        np.asarray([3e38, 1e30], jnp.result_type(float)),
    ]
    if jax.config.jax_enable_x64:
        steps.append(np.asarray([2**63 - 1, 2**62], np.int64))
    for step in steps:
        actual = np.asarray(schedule(step))
        np.testing.assert_array_equal(
            actual, np.full(np.shape(step), np.asarray(expected, actual.dtype))
        )


@LIMITS
@staircase_params
def test_infinite_float_step_never_nan(
    variant, decay_rate, end_learning_rate, expected, staircase
):
    """A float step of +inf gives the limit of the decay (optax's value), not NaN."""
    schedule = variant(
        exponential_decay(
            0.1, 1000, decay_rate, staircase, end_learning_rate=end_learning_rate
        )
    )
    actual = np.asarray(schedule(np.inf))
    reference = optax.exponential_decay(
        0.1, 1000, decay_rate, staircase=staircase, end_value=end_learning_rate
    )(jnp.inf)
    np.testing.assert_array_equal(reference, np.asarray(expected, actual.dtype))
    np.testing.assert_array_equal(actual, np.asarray(expected, actual.dtype))


def test_begin_beyond_int32_holds_initial_rate_for_int32_steps(variant):
    """A transition_begin no int32 can reach: int32 steps never start decaying."""
    schedule = variant(exponential_decay(0.1, 1000, 0.5, transition_begin=2**40))
    steps = np.asarray([0, 2**31 - 1, -(2**31)], np.int32)
    np.testing.assert_array_equal(
        schedule(steps), np.full(3, np.asarray(0.1, jnp.result_type(float)))
    )


# ---------------------------------------------------------------------------
# Kinds of step: Python, NumPy and JAX scalars, arrays of any shape.
# ---------------------------------------------------------------------------


@staircase_params
def test_python_int_steps(variant, staircase, int_dtype, rtol):
    """Python int steps give 0-d arrays with optax's values."""
    config = CONFIGS["begin"]
    schedule = variant(ExponentialDecay(**config, staircase=staircase))
    values = [0, 1, 999, 12345, 12346, 13344, 13345, 13346, 500_000, 2**20 - 1]
    actual = [schedule(value) for value in values]
    assert all(a.shape == () and a.dtype == jnp.result_type(float) for a in actual)
    expected = optax_schedule(config, staircase)(jnp.asarray(values, int_dtype))
    chex.assert_trees_all_close(jnp.stack(actual), expected, rtol=rtol)


@pytest.mark.parametrize(
    "scalar_type", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16]
)
@staircase_params
def test_numpy_int_steps(variant, scalar_type, staircase, int_dtype, rtol):
    """NumPy integer scalars of each width give optax's values."""
    config = dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.75)
    schedule = variant(ExponentialDecay(**config, staircase=staircase))
    values = [0, 5, 10, 15, 100, 127]
    actual = jnp.stack([schedule(scalar_type(value)) for value in values])
    expected = optax_schedule(config, staircase)(jnp.asarray(values, int_dtype))
    assert actual.dtype == jnp.result_type(float)
    chex.assert_trees_all_close(actual, expected, rtol=rtol)


@pytest.mark.parametrize("shape", [(), (2, 3, 4), (3, 0)])
@pytest.mark.parametrize("kind", [int, float])
def test_arrays_are_elementwise_and_keep_shape(variant, shape, kind, rtol):
    """An array of steps gives an array of the same shape, element by element."""
    config = CONFIGS["begin"]
    steps = np.linspace(0, 40_000, math.prod(shape)).reshape(shape)
    steps = steps.astype(jnp.result_type(kind))
    actual = variant(ExponentialDecay(**config))(steps)
    assert actual.shape == shape
    expected = optax_schedule(config, False)(jnp.asarray(steps))
    chex.assert_trees_all_close(actual, expected, rtol=rtol)


@pytest.mark.parametrize("name", ["slow", "begin-floor"])
@staircase_params
def test_integer_valued_float_steps_give_the_integer_steps_bits(
    variant, name, staircase
):
    """A float step equal to an integer takes the float path (its whole part, then
    the fraction's factor) and gives the integer step's bits, stair edges included."""
    int_steps = parity_steps(name).astype(np.int32)[::16]
    float_steps = int_steps.astype(jnp.result_type(float))  # exact below 2**24
    schedule = variant(ExponentialDecay(**CONFIGS[name], staircase=staircase))
    assert bits(schedule(float_steps)) == bits(schedule(int_steps))


# ---------------------------------------------------------------------------
# Transformations: vmap, grad, and no retracing under jit.
# ---------------------------------------------------------------------------


@staircase_params
def test_vmap(variant, staircase, rtol):
    """`jax.vmap` over steps (and over a batch of step arrays) matches optax."""
    schedule = ExponentialDecay(**CONFIGS["begin-floor"], staircase=staircase)
    steps = parity_steps("begin-floor").astype(jnp.result_type(int))[:4096]
    expected = optax_values("begin-floor", staircase)[:4096]
    chex.assert_trees_all_close(variant(jax.vmap(schedule))(steps), expected, rtol=rtol)
    chex.assert_trees_all_close(
        variant(jax.vmap(jax.vmap(schedule)))(steps.reshape(64, 64)),
        expected.reshape(64, 64),
        rtol=rtol,
    )


@staircase_params
def test_grad_with_respect_to_float_step(variant, staircase, float_dtype, rtol):
    """d lr / d step = lr * ln(decay_rate) / decay_steps after the start (0 on stairs),
    and 0 (finite) up to transition_begin."""
    decay_steps, decay_rate, begin = 1000, 0.75, 100
    schedule = ExponentialDecay(
        0.1, decay_steps, decay_rate, staircase, transition_begin=begin
    )
    after = np.asarray([100.5, 150.25, 1000.0, 1500.0, 12345.5, 40000.0], float_dtype)
    before = np.asarray([-1e6, -3.0, 0.0, 50.0, 99.5, 100.0], float_dtype)
    reference = optax.exponential_decay(0.1, decay_steps, decay_rate, begin)
    lr = np.asarray(reference(jnp.asarray(after)), np.float64)
    slope = 0.0 if staircase else math.log(decay_rate) / decay_steps
    expected = (lr * slope).astype(float_dtype)
    grad = variant(jax.vmap(jax.grad(schedule)))
    actual = grad(jnp.asarray(after))
    assert actual.dtype == float_dtype
    # The reference's own float32 error is that of the optax value (see `rtol`).
    chex.assert_trees_all_close(actual, expected, rtol=rtol)
    np.testing.assert_array_equal(grad(jnp.asarray(before)), np.zeros_like(before))
    scalar = variant(jax.grad(schedule))(jnp.asarray(1500.0, float_dtype))
    chex.assert_trees_all_close(scalar, expected[3], rtol=rtol)


def test_jit_does_not_retrace_over_steps(int_dtype, rtol):
    """50 different int32 scalar steps (and 50 Python ints) trace the schedule once."""
    config = CONFIGS["slow"]
    schedule = ExponentialDecay(**config)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def on_int32(step):
        return schedule(step)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def on_python_int(step):
        return schedule(step)

    values = [17 * i * i + 3 * i for i in range(50)]
    actual = jnp.stack([on_int32(np.int32(value)) for value in values])
    also = jnp.stack([on_python_int(value) for value in values])
    expected = optax_schedule(config, False)(jnp.asarray(values, int_dtype))
    chex.assert_trees_all_close(actual, expected, rtol=rtol)
    chex.assert_trees_all_close(also, expected, rtol=rtol)


def test_jit_does_not_retrace_over_step_arrays(rtol):
    """Step arrays of one shape and dtype but different values trace once."""
    schedule = exponential_decay(0.1, 1000, 0.5, staircase=True)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def on_array(steps):
        return schedule(steps)

    for offset in range(0, 20_000, 1000):
        result = on_array(jnp.arange(offset, offset + 8, dtype=np.int32))
        # 0.1 * 0.5 ** (offset // 1000), the same for the 8 steps of one stair.
        expected = np.full(8, 0.1 * 0.5 ** (offset // 1000))
        chex.assert_trees_all_close(result, expected, rtol=rtol)


# ---------------------------------------------------------------------------
# Result dtype.
# ---------------------------------------------------------------------------


NUMBER_TYPES = [
    pytest.param(np.float16(0.1), id="float16"),
    pytest.param(ml_dtypes.bfloat16(0.1), id="bfloat16"),
    pytest.param(jnp.asarray(0.1, jnp.bfloat16), id="jax-bfloat16"),
    pytest.param(np.float32(0.1), id="float32"),
    pytest.param(jnp.asarray(0.1, np.float32), id="jax-float32"),
    pytest.param(np.float64(0.1), id="float64"),
    pytest.param(0.1, id="python-float"),
    pytest.param(1, id="python-int"),
]


@pytest.mark.parametrize("initial", NUMBER_TYPES)
@pytest.mark.parametrize("constructor", [exponential_decay, ExponentialDecay])
def test_the_result_is_in_the_compute_dtype_whatever_the_number_type(
    variant, constructor, initial
):
    """Any Python, NumPy or JAX number is taken at its value in the compute dtype,
    and the learning rate is in the compute dtype (JAX's default float): the
    value is initial * 0.5**2 at step 2 (decay_steps=1), within 1 ulp."""
    schedule = variant(constructor(initial, 1, 0.5))
    compute = jnp.result_type(float)
    for step in (2, np.asarray([2.0, 2.0], np.float32)):
        actual = np.asarray(schedule(step))
        assert actual.dtype == compute
        # A quarter of a float is exact: initial in the compute dtype, times 1/4.
        expected = np.full(np.shape(step), np.asarray(initial, np.float64) * 0.25)
        np.testing.assert_array_equal(actual, expected.astype(compute))


@pytest.mark.parametrize("rate", [1.0, np.float32(1.0), 0.9999999976])
def test_a_rate_of_1_holds_the_initial_rate_whatever_the_bound(variant, rate):
    """A rate that is 1 in the compute dtype neither decays nor grows: neither a
    floor nor a ceiling moves it (optax, at exactly 1.0, applies the ceiling)."""
    if jnp.result_type(float) == np.float64 and rate == 0.9999999976:
        pytest.skip("not 1 in float64")
    initial, end = 0.000256, 2.56e-6
    for bound in (end, 1.0):
        schedule = variant(exponential_decay(initial, 1, rate, end_learning_rate=bound))
        steps = np.asarray([0, 1, 1000, 2**31 - 1], np.int32)
        expected = np.full(4, initial, jnp.result_type(float))
        np.testing.assert_array_equal(np.asarray(schedule(steps)), expected)
        np.testing.assert_array_equal(np.asarray(schedule(1e30)), expected[0])
    optax_value = optax.exponential_decay(initial, 1, 1.0, end_value=end)(5)
    assert float(optax_value) == np.float32(end)
