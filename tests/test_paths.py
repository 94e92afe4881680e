"""One config, one set of bits: every way of calling a schedule gives the same
learning rate, new numbers never compile, and gradients are the analytic ones.

The paths: an eager call on an array of steps and on scalar steps, `jax.jit` of the
schedule, the config as a jit argument, one row of `jax.vmap` over stacked configs,
and the learning rate `optax.sgd` applies. Expected values come from mpmath (the
exact schedule of the numbers in the compute dtype) and from the analytic
derivative; the paths are compared with one another bit for bit.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

mpmath = pytest.importorskip("mpmath")
optax = pytest.importorskip("optax")
pytest.importorskip("hypothesis")

from _paths import AS_ARGUMENT, SWEPT, counting_compiles, optax_lr, paths, stack
from _reference import PRECISION, bits, builder_of, round_exact, ulp_distance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxdecay import ExponentialDecay, exponential_decay

FLOAT = np.dtype(jnp.result_type(float))  # float32, or float64 under x64
INT64_MAX = 2**63 - 1


def computed(value):
    """A float hyperparameter as the schedule takes it: in the compute dtype, a
    subnormal one as a zero of its sign (docs/numerics.md)."""
    value = FLOAT.type(value)
    if abs(value) < np.finfo(FLOAT).tiny:
        value = value * 0
    return float(value)


def exact(config, step):
    """The schedule at an integer or float step, from mpmath, before rounding."""
    with mpmath.workprec(PRECISION):
        return _exact(config, step)


def _exact(config, step):
    initial = mpmath.mpf(computed(config.initial_learning_rate))
    rate = mpmath.mpf(computed(config.decay_rate))
    warmup = config.warmup_steps
    if step < warmup:  # the line from warmup_init, negative steps at its start
        start = mpmath.mpf(computed(config.warmup_init))
        return start + (initial - start) * max(mpmath.mpf(step), 0) / warmup
    elapsed = mpmath.mpf(step) - warmup - config.transition_begin
    # An initial rate that rounds to 0 or inf stays there, whatever the rate.
    if elapsed <= 0 or initial == 0 or mpmath.isinf(initial):
        value = initial
    else:
        exponent = elapsed / config.decay_steps
        if config.staircase:
            exponent = mpmath.floor(exponent)
        # 0 ** 0 is 1: a rate of 0 holds the initial rate until its first stair.
        value = initial * rate**exponent
    if config.end_learning_rate is not None:
        end = mpmath.mpf(computed(config.end_learning_rate))
        value = max(value, end) if rate < 1 else min(value, end)
    return value


def rounded(value):
    """An mpmath value rounded once to the compute dtype (0 and inf beyond it)."""
    if mpmath.isinf(value):
        return FLOAT.type(np.inf if value > 0 else -np.inf)
    return FLOAT.type(round_exact(value, FLOAT))


def within_one_ulp(got, expected):
    """`got` is `expected` (a rounded exact value) or its neighbour; 0 and inf
    exactly; a subnormal may be flushed to 0 (XLA on CPU)."""
    got = np.asarray(got, FLOAT).reshape(1)
    expected = np.asarray(expected, FLOAT).reshape(1)
    if not np.isfinite(expected[0]) or expected[0] == 0:
        return bool(got[0] == expected[0])
    if abs(expected[0]) < np.finfo(FLOAT).tiny and got[0] == 0:
        return True
    return bool(ulp_distance(got, expected)[0] <= 1)


def assert_one_set_of_bits(config, steps):
    got = paths(config, steps)
    eager = np.asarray(got["eager"])
    for name, values in got.items():
        assert bits(values) == bits(eager[: len(values)]), (name, config)
    return got["eager"]


extremes = st.sampled_from
initial_rates = st.floats(1e-6, 10.0) | extremes([0.0, -0.5, 1e-40, 1e-300, 1e300])
decay_rates = (
    st.floats(1e-4, 0.99999)
    | st.floats(0.999, 1.001)
    | st.floats(1.00001, 4.0)
    | extremes([1.0, 1e-300, 1e-30, 1e30, 1e300, 1 - 2**-25])
)
integers = st.integers(1, 10**6) | extremes([1, 2**31 - 1, 2**31, 2**32, INT64_MAX])


@st.composite
def configs(draw):
    initial = draw(initial_rates)
    # A warmup_init of the initial rate's sign: the line is then within 1 ulp.
    warmup_init = math.copysign(draw(st.just(0.0) | st.floats(0.0, 10.0)), initial)
    # The reference line has no infinite end; test_warmup.py checks that case.
    finite = math.isfinite(computed(initial))
    return ExponentialDecay(
        initial,
        draw(integers),
        draw(decay_rates),
        draw(st.booleans()),
        transition_begin=draw(st.just(0) | integers),
        end_learning_rate=draw(st.none() | st.floats(1e-6, 1.0)),
        warmup_steps=draw(st.just(0) | integers) if finite else 0,
        warmup_init=warmup_init,
    )


# 1e300 does not fit float32: NumPy warns when it rounds it to inf, and so does the
# schedule (as for 1e-300, which becomes 0, and 1 - 2**-25, a rate that becomes 1).
overflow_warning = pytest.mark.filterwarnings(
    "ignore:overflow encountered in cast:RuntimeWarning",
    "ignore:.* in float32, the dtype every path computes in:UserWarning",
)


@overflow_warning
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(config=configs(), seed=st.integers(0, 2**32 - 1))
def test_every_path_gives_the_same_bits(config, seed):
    rng = np.random.default_rng(seed)
    warmup = config.warmup_steps
    begin = warmup + config.transition_begin  # where the decay starts
    near = [warmup - 1, warmup, begin - 1, begin, begin + 1, begin + config.decay_steps]
    steps = np.concatenate(
        [
            rng.integers(0, min(max(warmup, 1), 2**31 - 1), 4),  # in the warmup
            rng.integers(0, 2**31 - 1, 20),
            np.clip(near, 0, 2**31 - 1),
            [0, 1, 999, 2**24 + 1, 2**31 - 1],
        ]
    ).astype(np.int32)
    values = assert_one_set_of_bits(config, steps)
    assert not np.isnan(values).any()
    for step, value in zip(steps[:8], values[:8], strict=True):
        assert within_one_ulp(value, rounded(exact(config, int(step)))), step


def test_a_constant_step_inside_jit_gives_the_eager_bits():
    """A step that is a compile-time constant of the caller's program."""
    config = ExponentialDecay(0.3, 7, 0.999)
    steps = np.random.default_rng(7).integers(0, 2**31 - 1, 64).astype(np.int32)
    folded = jax.jit(lambda: config(jnp.asarray(steps)))()
    assert bits(folded) == bits(config(steps))
    for step in steps[:8]:
        one = jax.jit(lambda s=int(step): config(s))()
        assert bits(one) == bits(config(int(step)))


def test_a_sweep_member_reproduces_its_single_run():
    """The sweep idiom on configs a jit boundary would round (the issue: up to
    225,197 ulp apart when a Python float became float32 at the boundary)."""
    configs = [
        ExponentialDecay(0.1, 1000, 0.96),
        ExponentialDecay(0.01, 1, 0.99999),
        ExponentialDecay(0.3, 7, 0.5, staircase=False, transition_begin=11),
    ]
    steps = jnp.arange(0, 1_000_000, 37, dtype=jnp.int32)
    swept = jax.jit(jax.vmap(lambda c: c(steps)))(stack(configs))
    for row, config in zip(swept, configs, strict=True):
        assert bits(row) == bits(config(steps))
        assert bits(row) == bits(jax.jit(lambda c: c(steps))(config))


def test_new_configs_never_compile():
    """After one call per kind of schedule, new numbers (Python and NumPy scalars,
    JAX arrays, a stack of configs) compile nothing, eagerly or as arguments."""
    steps = jnp.arange(16, dtype=jnp.int32)
    as_argument = jax.jit(lambda c, s: c(s))
    swept = jax.jit(jax.vmap(lambda c, s: c(s), in_axes=(0, None)))

    def calls(i):
        rate = 0.9 + i * 1e-3
        for staircase in (False, True):
            exponential_decay(0.1 + i, 1000 + i, rate, staircase)(3)
            config = ExponentialDecay(np.float32(0.2 * i), 7 + i, rate, staircase)
            config(steps)
            config(np.int32(5))
            as_argument(config, steps)
            swept(stack([config, dataclasses.replace(config, decay_rate=1.5)]), steps)
            ExponentialDecay(jnp.asarray(0.1 * i), 2**40 + i, rate, staircase)(3)

    calls(1)  # the first call of each kind compiles
    with counting_compiles() as compiles:
        for i in range(2, 12):
            calls(i)
        assert compiles == []


WARMUP_SWEEP = jax.jit(jax.vmap(lambda c, s: c(s), in_axes=(0, None)))


def warmup_sweeps(i, steps, staircase):
    """Sweeps over warmup_steps and over warmup_init (new numbers for each `i`):
    (configs, rows) each."""
    base = ExponentialDecay(
        0.1, 1000, 0.5, staircase, warmup_steps=100, warmup_init=0.01
    )
    # Lengths > 0: whether a config uses the warmup is its structure (see
    # docs/design.md), and the test below sweeps lengths from 0.
    lengths = [1, 2, 50 + i, 2**31 - 1 - i, 2**40 + i, INT64_MAX - i]
    inits = [0.0, 0.05 + i * 1e-3, 0.1, -0.2 * i, 1e-30 * i, 7.0 + i]
    sweeps = [
        [dataclasses.replace(base, warmup_steps=w) for w in lengths],
        [dataclasses.replace(base, warmup_init=x) for x in inits],
    ]
    return [(configs, WARMUP_SWEEP(stack(configs), steps)) for configs in sweeps]


@pytest.mark.parametrize("staircase", [False, True], ids=["smooth", "staircase"])
def test_a_warmup_sweep_compiles_nothing_and_gives_each_single_run(staircase):
    """vmap over warmup_steps (beyond int32 too) and over warmup_init: new values
    compile nothing, and each row has the bits of its config's own single run."""
    steps = jnp.asarray([-3, 0, 1, 49, 50, 51, 99, 100, 101, 2**31 - 1], jnp.int32)

    def check(i):
        for configs, rows in warmup_sweeps(i, steps, staircase):
            for config, row in zip(configs, rows, strict=True):
                assert bits(row) == bits(config(steps)), config

    check(0)  # the first sweep and single run compile
    with counting_compiles() as compiles:
        for i in range(1, 4):
            check(i)
        assert compiles == []


def test_number_types_and_names_share_one_program():
    """Configs built from Python floats and ints, NumPy scalars of any float or int
    type, and configs that differ only in name have one structure and one leaf
    type each: they stack, a jitted function taking them compiles once, and each
    gives the bits of its own single run."""
    import ml_dtypes

    values = [
        0.1,
        1,
        np.float64(0.2),
        np.float32(0.3),
        np.float16(0.25),
        ml_dtypes.bfloat16(0.5),
        np.int64(2),
        np.int8(3),
    ]
    configs = [
        ExponentialDecay(
            value, np.int64(1000), rate, name=f"run {i}", transition_begin=np.uint16(3)
        )
        for i, (value, rate) in enumerate(
            zip(values, [0.5, np.float16(0.5), np.float32(0.9), 0.7] * 2, strict=True)
        )
    ]
    assert len({jax.tree.structure(config) for config in configs}) == 1
    avals = {
        tuple(jax.typeof(jnp.asarray(leaf)) for leaf in jax.tree.leaves(config))
        for config in configs
    }
    assert len(avals) == 1
    steps = jnp.arange(0, 5000, 250)
    step_fn = jax.jit(lambda config, step: config(step))
    step_fn(configs[0], steps)
    for config in configs:
        config(steps)  # each config's own eager run, compiled once for the shape
    with counting_compiles() as compiles:
        for config in configs:
            assert bits(step_fn(config, steps)) == bits(config(steps))
        assert compiles == []
    swept = jax.jit(jax.vmap(lambda config: config(steps)))(stack(configs))
    for row, config in zip(swept, configs, strict=True):
        assert bits(row) == bits(config(steps))


def test_whether_a_config_uses_the_warmup_is_its_structure():
    """A config without a warmup runs no line: it does not stack with one that has
    a warmup, and a jitted function compiles once for each."""
    cold = ExponentialDecay(0.1, 1000, 0.5)
    warm = dataclasses.replace(cold, warmup_steps=100)
    assert jax.tree.structure(cold) != jax.tree.structure(warm)
    # The numbers and the constants stay leaves (an unused piece's are empty):
    # only the structure tells the two apart.
    assert len(jax.tree.leaves(cold)) == len(jax.tree.leaves(warm))
    with pytest.raises(ValueError, match="pytree"):
        stack([cold, warm])


@pytest.mark.parametrize("staircase", [False, True], ids=["smooth", "staircase"])
def test_a_sweep_of_warmup_lengths_from_0_built_in_vmap_gives_each_single_run(
    staircase,
):
    """Configs built inside vmap from traced lengths all use the warmup piece; a
    length of 0 gives the bits of no warmup."""
    steps = jnp.asarray([-3, 0, 1, 49, 50, 51, 99, 100, 1000, 2**31 - 1], jnp.int32)
    lengths = [0, 1, 50, 100, 2**31 - 1]
    swept = jax.jit(
        jax.vmap(
            lambda w: ExponentialDecay(
                0.1, 1000, 0.5, staircase, warmup_steps=w, warmup_init=0.01
            )(steps)
        )
    )(jnp.asarray(lengths, jnp.int32))
    for length, row in zip(lengths, swept, strict=True):
        config = ExponentialDecay(
            0.1, 1000, 0.5, staircase, warmup_steps=length, warmup_init=0.01
        )
        assert bits(row) == bits(config(steps)), config


def test_a_config_keeps_a_few_hundred_bytes_of_data():
    """The compiled programs are shared; a config holds only its prepared numbers,
    and the warmup's only when it has one."""
    x64 = jax.config.jax_enable_x64
    for warmup, sizes in ((0, (568, 1120)), (10, (616, 1208))):
        schedule = exponential_decay(0.1, 1000, 0.96, warmup_steps=warmup)
        schedule(1)
        prepared = schedule._known[1:]  # what an eager call hands the program
        # The decay: 135 floats (3 numbers, the kernel's 3 pieces and tail and two
        # 64-entry tables), 4 words (32-bit always) and 3 integers of the
        # kernel's; the warmup: 9 floats (its start and the line's 8), 2 words
        # and an integer array of one 0 (it has no integer constants, and no
        # leaf is empty). Floats and integers but the words double under x64.
        assert sum(leaf.nbytes for leaf in prepared) == sizes[x64]


@overflow_warning
@pytest.mark.parametrize("argument", [True, False], ids=["argument", "eager"])
def test_every_accepted_config_runs_on_every_path(argument):
    """Configs the constructor accepts that once broke as jit arguments: a rate
    that rounds to 0 (NaN), integers beyond int32 (OverflowError)."""
    call = jax.jit(lambda c, s: c(s)) if argument else (lambda c, s: c(s))
    steps = np.asarray([0, 1, 999, 2**31 - 1], np.int32)
    for config in [
        ExponentialDecay(0.1, 1000, 1e-300),
        ExponentialDecay(0.1, 2**31, 0.5),
        ExponentialDecay(0.1, INT64_MAX, 0.5, transition_begin=INT64_MAX),
        ExponentialDecay(0.1, 1, 0.5, staircase=True, transition_begin=2**31),
        ExponentialDecay(1e300, 1, 0.96),
    ]:
        values = np.asarray(call(config, steps))
        assert bits(values) == bits(config(steps))
        for step, value in zip(steps, values, strict=True):
            assert within_one_ulp(value, rounded(exact(config, int(step)))), config


@overflow_warning
def test_zero_and_inf_where_the_exact_value_is():
    """Never NaN: a huge initial rate far out, rates that round to 0 or inf (in
    float32; tiny and huge in float64), a zero rate growing, infinite steps."""
    steps = [1.0, 2.5, 1e12, np.inf]
    for config in [
        ExponentialDecay(1e300, 1000, 0.96),
        ExponentialDecay(0.1, 1, 1e-300),
        ExponentialDecay(0.1, 1, 1e300),
        ExponentialDecay(0.0, 1, 2.0),
        ExponentialDecay(-0.1, 3, 1e300, staircase=True),
    ]:
        values = np.asarray(config(jnp.asarray(steps, FLOAT)))
        expected = [rounded(exact(config, step)) for step in steps]
        assert (values == np.asarray(expected, FLOAT)).all(), (config, values)


# A subnormal of the compute dtype (1e-40 in float32), and float steps from before the
# start to past the integer range: fractions, 2**33 and 2**65 (far, in float
# arithmetic, without and with x64), infinity.
SUBNORMAL = float(np.finfo(FLOAT).smallest_normal) / 3
EDGE_STEPS = [-1.0, 0.0, 0.5, 1.0, 2.5, 1e6, 2.0**33, 2.0**65, np.inf]


def every_path(config, steps):
    """The schedule at float `steps` by every path, the bits of one array each."""
    steps = jnp.asarray(steps, FLOAT)
    rows = SWEPT(stack([config, dataclasses.replace(config, decay_rate=0.5)]), steps)
    got = {
        "eager": config(steps),
        "scalar": np.stack([config(step) for step in steps]),
        "jit": jax.jit(config)(steps),
        "argument": AS_ARGUMENT(config, steps),
        "vmap": rows[0],
        "builder": builder_of(config)(steps),
    }
    return {name: np.asarray(values) for name, values in got.items()}


@pytest.mark.parametrize(
    ("initial", "rate", "end", "expected"),
    [
        # A subnormal initial rate is 0 (of its sign) at every step, where 0 * inf
        # would otherwise be NaN (growth past overflow, an infinite step).
        (SUBNORMAL, 2.0, None, [0.0] * 9),
        (-SUBNORMAL, 0.5, None, [-0.0] * 9),
        (SUBNORMAL, 0.5, None, [0.0] * 9),
        # A subnormal rate is a rate of 0: the initial rate until the start, 0 after.
        (0.1, SUBNORMAL, None, [0.1, 0.1] + [0.0] * 7),
        # A subnormal floor is a floor of 0.
        (0.1, 0.5, SUBNORMAL, [0.1, 0.1, 0.1 * 0.5**0.5, 0.05, 0.1 * 0.5**2.5]),
    ],
)
def test_a_subnormal_number_counts_as_zero_on_every_path(initial, rate, end, expected):
    """XLA on CPU reads a subnormal as 0; so does every path, the host's
    preparation included, for every step (hand-worked values)."""
    config = ExponentialDecay(initial, 1, rate, end_learning_rate=end)
    got = every_path(config, EDGE_STEPS)
    for name, values in got.items():
        assert bits(values) == bits(got["eager"]), name
    want = np.asarray(expected, FLOAT)
    assert bits(np.signbit(got["eager"][: len(want)])) == bits(np.signbit(want))
    for value, step, exact_value in zip(got["eager"], EDGE_STEPS, want, strict=False):
        assert within_one_ulp(value, exact_value), step
    if end is not None:  # past the float range of 0.5**t: the floor of 0
        assert (got["eager"][len(want) :] == 0).all()


@overflow_warning
def test_no_whole_stair_of_a_zero_rate_far_out():
    """A rate that is 0 in the compute dtype, stairs longer than the step: the
    initial rate, not 0 * inf (NaN), also in float arithmetic past the integer
    range."""
    for rate in (SUBNORMAL, 1e-300):
        config = ExponentialDecay(0.1, INT64_MAX, rate, staircase=True)
        steps = [2.0**33, 2.0**62, 2.0**65]
        values = every_path(config, steps)["eager"]
        expected = [rounded(exact(config, step)) for step in steps]
        assert bits(values) == bits(np.asarray(expected, FLOAT)), rate


@pytest.mark.parametrize("begin", [0, 2**24 + 1, 2**31 - 5, INT64_MAX])
@pytest.mark.parametrize("staircase", [False, True], ids=["smooth", "staircase"])
def test_a_whole_float_step_gives_the_integer_steps_bits(begin, staircase):
    """For every transition_begin, also where float32 cannot hold it."""
    config = ExponentialDecay(0.1, 3, 0.5, staircase, transition_begin=begin)
    integers = np.asarray([2**24 + 2, 2**24 + 4, 2**31 - 128, 2**31 - 1], np.int64)
    integers = integers[integers <= 2**31 - 1]
    as_float = integers.astype(np.float32)
    whole = as_float.astype(np.int64) == integers
    got = np.asarray(config(jnp.asarray(as_float)))
    expected = np.asarray(config(jnp.asarray(integers.astype(np.int32))))
    assert bits(got[whole]) == bits(expected[whole])
    assert (got[as_float.astype(np.float64) <= begin] == FLOAT.type(0.1)).all()


@pytest.mark.parametrize("warmup", [1000, 2**24 + 3, 2**31 - 1, 2**40, INT64_MAX])
def test_a_whole_float_step_gives_the_integer_steps_bits_in_the_warmup(warmup):
    config = ExponentialDecay(0.1, 3, 0.5, warmup_steps=warmup, warmup_init=0.001)
    integers = np.asarray([0, 1, 7, 999, 2**24 + 2, 2**31 - 128], np.int64)
    integers = integers[integers < warmup]  # each a whole float32 too
    as_float = integers.astype(FLOAT)
    assert (as_float.astype(np.int64) == integers).all()
    got = np.asarray(config(jnp.asarray(as_float)))
    expected = np.asarray(config(jnp.asarray(integers, jnp.result_type(int))))
    assert bits(got) == bits(expected)
    for step, value in zip(integers.tolist(), got, strict=True):
        assert within_one_ulp(value, rounded(exact(config, step))), step


def test_uint32_steps_past_2_31():
    """praxis counts in uint32: the steps above int32 are within 1 ulp too."""
    config = ExponentialDecay(0.1, 10**6, 0.9, staircase=False)
    steps = np.asarray([0, 2**31 - 1, 2**31, 3 * 10**9, 2**32 - 1], np.uint32)
    values = np.asarray(jax.jit(config)(steps))
    assert bits(values) == bits(config(steps))
    for step, value in zip(steps, values, strict=True):
        assert within_one_ulp(value, rounded(exact(config, int(step))))
    stairs = dataclasses.replace(config, staircase=True)
    assert stairs(np.uint32(2**32 - 1)) == rounded(exact(stairs, 2**32 - 1))


# ---------------------------------------------------------------------------
# Gradients: the analytic derivative on every path.
# ---------------------------------------------------------------------------

GRAD_STEPS = [0.0, 350.0, 1000.0, 2500.5, 12345.0]


def analytic(initial, rate, step, *, staircase=False, begin=0, decay_steps=1000):
    """(lr, d/d initial, d/d rate, d/d step), from the formula in float64."""
    elapsed = max(step - begin, 0.0)
    exponent = math.floor(elapsed / decay_steps) if staircase else elapsed / decay_steps
    lr = initial * rate**exponent
    slope = 0.0 if staircase or elapsed == 0 else lr * math.log(rate) / decay_steps
    return lr, rate**exponent, lr * exponent / rate, slope


def close(got, expected):
    return math.isclose(float(got), expected, rel_tol=1e-5, abs_tol=1e-12)


@pytest.mark.parametrize("staircase", [False, True], ids=["smooth", "staircase"])
def test_gradients_of_the_builder(staircase):
    initial, rate = computed(0.1), computed(0.5)

    def lr(a, r, s):
        return exponential_decay(a, 1000, r, staircase, transition_begin=100)(s)

    grad = jax.jit(jax.grad(lr, argnums=(0, 1, 2)))
    for step in GRAD_STEPS:
        _, d_initial, d_rate, d_step = analytic(
            initial, rate, step, staircase=staircase, begin=100
        )
        got = grad(FLOAT.type(initial), FLOAT.type(rate), FLOAT.type(step))
        assert close(got[0], d_initial) and close(got[1], d_rate), step
        assert close(got[2], d_step), step
        # jvp agrees with grad
        _, tangent = jax.jvp(
            lambda r, s=step: lr(FLOAT.type(initial), r, FLOAT.type(s)),
            (FLOAT.type(rate),),
            (FLOAT.type(1),),
        )
        assert close(tangent, d_rate)


def test_gradients_of_a_config_on_every_path():
    """With respect to the config itself: eagerly, as a jit argument, in a vmapped
    sweep; the integer leaves get no gradient (float0)."""
    config = ExponentialDecay(0.1, 1000, 0.5, end_learning_rate=0.02)
    step = FLOAT.type(1500.0)
    lr, d_initial, d_rate, _ = analytic(computed(0.1), computed(0.5), 1500.0)
    assert lr > 0.02  # not clipped: no gradient to the end rate

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
        assert float(got.end_learning_rate) == 0.0
        assert got.decay_steps.hi.dtype == jax.dtypes.float0
    clipped = dataclasses.replace(config, end_learning_rate=0.09)
    got = jax.grad(lambda c: c(step), allow_int=True)(clipped)
    assert float(got.end_learning_rate) == 1.0
    assert float(got.initial_learning_rate) == 0.0


def test_gradient_through_optax():
    """The learning rate optax applies, differentiated by the initial rate."""
    config = ExponentialDecay(0.1, 1000, 0.5)

    def applied(initial):
        return optax_lr(
            dataclasses.replace(config, initial_learning_rate=initial), 2500
        )

    got = jax.grad(applied)(FLOAT.type(0.1))
    assert close(got, analytic(computed(0.1), computed(0.5), 2500.0)[1])


def exact_derivatives(config, step):
    """(value, d/d initial, d/d rate, d/d end, d/d step) of a config without a
    warmup at a float step, by mpmath from the formula: 0 and 1 where the bound
    is the value, the analytic derivatives of the decay elsewhere."""
    with mpmath.workprec(PRECISION):
        initial = mpmath.mpf(computed(config.initial_learning_rate))
        rate = mpmath.mpf(computed(config.decay_rate))
        elapsed = mpmath.mpf(step) - config.transition_begin
        if elapsed <= 0:
            value, derivatives = initial, (1, 0, 0)
        else:
            exponent = elapsed / config.decay_steps
            if config.staircase:
                exponent = mpmath.floor(exponent)
            power = rate**exponent
            value = initial * power
            slope = (
                0 if config.staircase else value * mpmath.log(rate) / config.decay_steps
            )
            derivatives = (power, value * exponent / rate, slope)
        end = config.end_learning_rate
        if end is not None and rate != 1:
            end = mpmath.mpf(computed(end))
            if (value > end) if rate > 1 else (value < end):
                return end, 0, 0, 1, 0
        return value, derivatives[0], derivatives[1], 0, derivatives[2]


def close_or_beyond(got, expected):
    """A derivative that is a float is close to it (float arithmetic, not the
    exact power, computes derivatives); one beyond the largest float is inf."""
    if expected == 0:
        return float(got) == 0
    want = rounded(expected)
    if np.isinf(want):
        return float(got) == float(want)
    return math.isclose(float(got), float(want), rel_tol=1e-4, abs_tol=1e-30)


GRADIENT = jax.grad(lambda c, s: c(s), argnums=(0, 1), allow_int=True)
SWEPT_GRADIENT = jax.jit(jax.vmap(GRADIENT, in_axes=(0, None)))
GRADIENT_PATHS = {
    "eager": GRADIENT,
    "argument": jax.jit(GRADIENT),
    "vmap": lambda c, s: jax.tree.map(lambda x: x[0], SWEPT_GRADIENT(stack([c, c]), s)),
}


@overflow_warning
@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    initial=st.floats(1e-3, 10.0) | extremes([1e-30, 0.5]),
    rate=st.floats(1.001, 4.0) | extremes([2.0, 1e30]),
    decay_steps=st.integers(1, 1000) | extremes([1, 2**32, 2**40]),
    growth=st.floats(1.5, 1e6),
    staircase=st.booleans(),
    data=st.data(),
)
def test_gradients_are_finite_where_the_value_is(
    initial, rate, decay_steps, growth, staircase, data
):
    """Growth with a ceiling, at float steps up to past overflow and infinity: the
    derivatives are 0 (and 1 by the bound) where the bound binds, the analytic ones
    elsewhere (inf only where those are beyond the largest float), never NaN,
    on every path."""
    config = ExponentialDecay(
        initial, decay_steps, rate, staircase, end_learning_rate=initial * growth
    )
    scale = data.draw(st.sampled_from([10.0, 1e3, 1e6, 2.0**33, 2.0**65]))
    steps = [data.draw(st.floats(0, scale)) for _ in range(2)]
    steps += [200.0, 2.0**33, np.inf]
    for step in [float(FLOAT.type(step)) for step in steps]:
        want = exact_derivatives(config, step)
        value = config(FLOAT.type(step))
        assert within_one_ulp(value, rounded(want[0])), step
        unbounded = exact_derivatives(
            dataclasses.replace(config, end_learning_rate=None), step
        )[0]
        if abs(unbounded / mpmath.mpf(computed(initial * growth)) - 1) < 1e-5:
            continue  # a near tie with the bound: either side is right
        for name in ("argument", "vmap"):  # compiled once (eager: the tests below)
            got, got_step = GRADIENT_PATHS[name](config, FLOAT.type(step))
            derivatives = (
                got.initial_learning_rate,
                got.decay_rate,
                got.end_learning_rate,
                got_step,
            )
            for k, derivative in enumerate(derivatives):
                assert not np.isnan(derivative), (name, step, k)
                assert close_or_beyond(derivative, want[k + 1]), (
                    name,
                    step,
                    k,
                    derivative,
                )


@pytest.mark.parametrize(
    ("config", "step", "expected"),
    [
        # The cases: a ceiling long reached; growth from a tiny rate that
        # is finite at a step past the integer range.
        (ExponentialDecay(0.5, 1, 2.0, end_learning_rate=1.0), 200.0, (0, 0, 1, 0)),
        (ExponentialDecay(0.5, 1, 2.0, end_learning_rate=1.0), np.inf, (0, 0, 1, 0)),
        (ExponentialDecay(0.1, 1, 0.5, end_learning_rate=0.01), 1e30, (0, 0, 1, 0)),
    ],
)
def test_gradients_where_the_bound_binds_are_exactly_0_and_1(config, step, expected):
    for name, path in GRADIENT_PATHS.items():
        got, got_step = path(config, FLOAT.type(step))
        derivatives = (
            got.initial_learning_rate,
            got.decay_rate,
            got.end_learning_rate,
            got_step,
        )
        assert [float(x) for x in derivatives] == list(expected), name


def test_the_gradient_of_growth_past_the_integer_range():
    """ExponentialDecay(1e-30, 2**32, 1e30) at float step 2**33 is 1e30; its
    derivatives by the rate (2 * value / rate) and the step are finite (d/d
    initial, 1e60, is beyond float32 and inf there)."""
    config = ExponentialDecay(1e-30, 2**32, 1e30)
    want = exact_derivatives(config, 2.0**33)
    for name, path in GRADIENT_PATHS.items():
        got, got_step = path(config, FLOAT.type(2.0**33))
        assert close_or_beyond(got.initial_learning_rate, want[1]), name
        assert close_or_beyond(got.decay_rate, want[2]), name
        assert np.isfinite(got.decay_rate) and np.isfinite(got_step), name
        assert close_or_beyond(got_step, want[4]), name


def test_gradient_through_optax_where_the_bound_binds():
    """The learning rate optax applies at an integer step, where the ceiling binds
    and the unbounded value is inf: 0 by the initial rate, 1 by the bound."""

    def applied(initial, end):
        config = ExponentialDecay(initial, 1, 2.0, end_learning_rate=end)
        return optax_lr(config, 200)

    got = jax.grad(applied, argnums=(0, 1))(FLOAT.type(0.5), FLOAT.type(1.0))
    assert [float(x) for x in got] == [0.0, 1.0]
