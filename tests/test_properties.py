"""Properties over the space of valid configs and steps (hypothesis).

Each example builds a new schedule, and a new schedule is a new function for JAX
(about one compilation per call), so every test evaluates one array of steps per
example and keeps `max_examples` small; `derandomize=True` makes CI deterministic.
Bounds and monotonicity are compared exactly: jaxdecay is within 1 ulp of the exact
value, and these properties hold for every rounding that is monotone.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import pickle

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

optax = pytest.importorskip("optax")
pytest.importorskip("hypothesis")

from _reference import bits
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import jaxdecay
from jaxdecay import ExponentialDecay

INT = np.dtype(jnp.result_type(int))  # int32, or int64 under x64
FLOAT = np.dtype(jnp.result_type(float))  # float32, or float64 under x64
INT_MIN, INT_MAX = int(np.iinfo(INT).min), int(np.iinfo(INT).max)
INT64_MAX = 2**63 - 1


def examples(n, *health_checks):
    """Deterministic settings for `n` examples, with no time limit per example."""
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, *health_checks],
    )


# ---------------------------------------------------------------------------
# Strategies.
# ---------------------------------------------------------------------------

# Learning-rate magnitudes stay in the normal range of the result dtype: XLA on CPU
# flushes subnormals to zero (see test_numerics.py), which is not a property of the
# schedule.
MAGNITUDES = {
    "python": (1e-30, 1e30),
    "float32": (1e-30, 1e30),
    "bfloat16": (1e-30, 1e30),
    "float16": (1e-4, 1e4),
}
SCALAR_TYPES = {
    "python": float,
    "float32": np.float32,
    "bfloat16": ml_dtypes.bfloat16,
    "float16": np.float16,
}


def magnitudes(low, high):
    nice = st.sampled_from([x for x in (1e-3, 0.01, 0.1, 0.5, 1.0, 3.0) if x >= low])
    spread = st.floats(math.log10(low), math.log10(high)).map(lambda e: 10.0**e)
    return nice | spread


def learning_rates(kind="python"):
    """Finite rates of either sign, and zero, exact in the scalar type `kind`."""
    low, high = MAGNITUDES[kind]
    signed = st.tuples(st.sampled_from([1.0, 1.0, -1.0]), magnitudes(low, high)).map(
        lambda pair: pair[0] * pair[1]
    )
    scalar = SCALAR_TYPES[kind]
    return (st.just(0.0) | signed).map(lambda x: float(scalar(x)))


decay_rates = st.one_of(
    st.sampled_from([0.5, 0.96, 0.9999, 1.0, 1.0001, 1.5, 2.0, 1e-3]),
    st.integers(1, 52).map(lambda k: 1.0 - 2.0**-k),
    st.integers(1, 52).map(lambda k: 1.0 + 2.0**-k),
    st.floats(math.log(1e-6), math.log(1e6)).map(math.exp),
)
decay_steps = st.one_of(
    st.sampled_from([1, 2, 1000, 2**31 - 1, 2**62, INT64_MAX]),
    st.integers(1, 100),
    st.integers(1, 10**6),
    st.integers(1, INT64_MAX),
)
transition_begins = st.one_of(
    st.just(0), st.integers(0, 10**6), st.integers(0, INT64_MAX)
)


@st.composite
def configs(draw, kind=None, staircase=None):
    """Keyword arguments of a valid schedule. `kind` picks the type of
    `initial_learning_rate` (Python float, or a NumPy float scalar whose dtype the
    result takes); `end_learning_rate` is a Python float exact in that type."""
    kind = draw(st.sampled_from(list(SCALAR_TYPES))) if kind is None else kind
    scalar = SCALAR_TYPES[kind]
    end = draw(st.none() | learning_rates(kind))
    return dict(
        initial_learning_rate=scalar(draw(learning_rates(kind))),
        decay_steps=draw(decay_steps),
        decay_rate=draw(decay_rates),
        staircase=draw(st.booleans()) if staircase is None else staircase,
        transition_begin=draw(transition_begins),
        end_learning_rate=end,
    )


STEPS = 256  # one shape for every example: eager JAX compiles once per shape


def int_steps(config, seed, count=STEPS):
    """`count` sorted steps of JAX's default int dtype: the extremes, stair edges
    transition_begin + k*decay_steps (and either side), the rest spread
    log-uniformly over the whole range and uniformly over the first stairs."""
    begin, period = config["transition_begin"], config["decay_steps"]
    steps = [INT_MIN, -1, 0, 1, 2, INT_MAX - 1, INT_MAX]
    for k in (0, 1, 2, 3, 10, 1000, 10**6, 10**12):
        steps += [begin + k * period + d for d in (-1, 0, 1)]
    rng = np.random.default_rng(seed)
    spread = (count - len(steps)) // 2
    exponents = rng.uniform(0, INT.itemsize * 8 - 1, spread)
    steps += [int(2.0**e) for e in exponents]
    span = min(50 * period, INT_MAX)
    uniform = rng.integers(0, span, count - len(steps), np.int64, endpoint=True)
    steps += [begin + int(x) for x in uniform]
    return np.sort(np.clip(np.asarray(steps, object), INT_MIN, INT_MAX).astype(INT))


def float_steps(config, seed, count=STEPS):
    """`count` sorted float steps: int steps, halfway between them, and +-inf."""
    steps = int_steps(config, seed, count // 2 - 1).astype(FLOAT)
    steps = np.concatenate([steps, steps + FLOAT.type(0.5), [-np.inf, np.inf]])
    return np.sort(steps.astype(FLOAT))


def all_steps(config, seed):
    return int_steps(config, seed), float_steps(config, seed)


def result_dtype(config):
    """The compute dtype, whatever the number type of the config's floats."""
    del config
    return FLOAT


def computed(value):
    """A float hyperparameter as the schedule takes it: in JAX's default float."""
    return float(FLOAT.type(value))


def limits(config):
    """The closed range every value lies in, from the documented semantics alone:
    values run from initial_learning_rate towards the limit of the decay (0 when
    decay_rate < 1, +-inf when > 1), and end_learning_rate is a floor when
    decay_rate < 1, a ceiling otherwise; all in the compute dtype. As exact values
    in the result dtype."""
    dtype = result_dtype(config)
    initial = computed(config["initial_learning_rate"])
    rate = computed(config["decay_rate"])
    if rate == 1 or initial == 0:
        limit = initial
    elif rate < 1:
        limit = 0.0
    else:
        limit = math.copysign(math.inf, initial)
    low, high = min(initial, limit), max(initial, limit)
    end = config["end_learning_rate"]
    if end is not None:
        end = computed(end)
        bound = max if rate < 1 else min
        low, high = bound(low, end), bound(high, end)
    return dtype.type(low), dtype.type(high)


def direction(config):
    """-1 for a non-increasing schedule, +1 for non-decreasing, 0 for constant."""
    initial = computed(config["initial_learning_rate"])
    rate = computed(config["decay_rate"])
    if rate == 1 or initial == 0:
        return 0
    return int(math.copysign(1, initial)) * (1 if rate > 1 else -1)


# ---------------------------------------------------------------------------
# Values: finite, never NaN, within bounds, monotone.
# ---------------------------------------------------------------------------

# Found by these tests; kept as explicit examples so that they always run.
# A zero learning rate growing (decay_rate > 1): float steps beyond the integer range
# (2**31 as float32, 2**63 as float64, inf) compute 0 * exp(huge) = 0 * inf = NaN.
ZERO_GROWING = dict(
    initial_learning_rate=0.0,
    decay_steps=1,
    decay_rate=1.0001,
    staircase=False,
    transition_begin=0,
    end_learning_rate=None,
)
# Under x64, steps 2**62 - 2 and 2**62 - 1 give 0x1.2ff33d0522052p-3, one ulp above
# the exactly rounded value, and step 2**62 gives it, 0x1.2ff33d0522051p-3: within
# 1 ulp each, but the growing schedule goes down by that ulp. Values within 1 ulp of
# a monotone function are monotone only up to 1 ulp (exact rounding would be
# monotone); test_monotone_in_step allows that one ulp and nothing more.
NEAR_A_TIE = dict(
    initial_learning_rate=0.001,
    decay_steps=2**62,
    decay_rate=math.exp(5.0),
    staircase=False,
    transition_begin=0,
    end_learning_rate=None,
)


@examples(40)
@example(config=ZERO_GROWING, seed=0)
@given(config=configs(), seed=st.integers(0, 2**32 - 1))
def test_never_nan_finite_and_within_bounds(config, seed):
    """Every value is between the initial learning rate and the limit of the decay
    (clipped by end_learning_rate), never NaN, and finite whenever both bounds are:
    always for decay_rate <= 1, and for decay_rate > 1 with a ceiling."""
    schedule = ExponentialDecay(**config)
    low, high = limits(config)
    for steps in all_steps(config, seed):
        values = np.asarray(schedule(steps))
        assert values.dtype == result_dtype(config)
        assert not np.isnan(values).any(), steps[np.isnan(values)]
        if np.isfinite(low) and np.isfinite(high):
            assert np.isfinite(values).all(), steps[~np.isfinite(values)]
        outside = (values < low) | (values > high)
        assert not outside.any(), (low, high, steps[outside], values[outside])


@examples(40)
@example(config=ZERO_GROWING, seed=0)
@example(config=NEAR_A_TIE, seed=0)
@given(config=configs(), seed=st.integers(0, 2**32 - 1))
def test_monotone_in_step(config, seed):
    """Over sorted steps (integer, and float with halves and +-inf) the values are
    non-increasing for decay_rate < 1 and non-decreasing above 1 (for a positive
    initial learning rate; the other way round for a negative one), up to the one
    ulp by which a value within 1 ulp of the exact one may step back (NEAR_A_TIE);
    and constant for decay_rate == 1."""
    schedule = ExponentialDecay(**config)
    sign = direction(config)
    for steps in all_steps(config, seed):
        values = np.asarray(schedule(steps))
        before, after = values[:-1], values[1:]  # compared, never subtracted (inf)
        if sign == 0:
            wrong = after != before
        elif sign < 0:
            wrong = (after > before) & (after != np.nextafter(before, np.inf))
        else:
            wrong = (after < before) & (after != np.nextafter(before, -np.inf))
        at = np.flatnonzero(wrong)
        assert not at.size, (steps[at], steps[at + 1], values[at], values[at + 1])


@st.composite
def stair_configs(draw):
    """Staircase configs with 8 stairs (0, 1 and six drawn) inside the range where
    the float dtype holds every step and half step, so that the same steps can be
    checked as integers and as floats."""
    config = draw(configs(staircase=True))
    config["decay_steps"] = draw(st.integers(1, 2**16))
    config["transition_begin"] = draw(st.integers(0, 2**20))
    exact = min(INT_MAX, 2 ** np.finfo(FLOAT).nmant)
    last = (exact - config["transition_begin"]) // config["decay_steps"] - 1
    drawn = draw(st.lists(st.integers(0, min(last, 10**6)), min_size=6, max_size=6))
    config["stairs"] = sorted([0, 1, *drawn])
    return config


@examples(40)
@given(config=stair_configs())
def test_staircase_is_constant_within_a_stair_and_continuous_at_its_start(config):
    """With staircase=True every step of stair k (from transition_begin +
    k*decay_steps to the next stair; integer, or float and half a step later) has
    the bits of the continuous schedule at the stair's first step."""
    stairs = config.pop("stairs")
    schedule = ExponentialDecay(**config)
    smooth = dataclasses.replace(schedule, staircase=False)
    begin, period = config["transition_begin"], config["decay_steps"]
    offsets = np.asarray([0, 1 % period, period // 2, period - 1], INT)
    starts = np.asarray([begin + k * period for k in stairs], INT)
    steps = starts[:, None] + offsets  # (8, 4): every step in its stair
    expected = np.asarray(smooth(starts))[:, None]
    values = np.asarray(schedule(steps))
    assert bits(values) == bits(np.broadcast_to(expected, steps.shape))
    steps = np.concatenate([steps, steps + 0.5], axis=1).astype(FLOAT)
    values = np.asarray(schedule(steps))
    assert bits(values) == bits(np.broadcast_to(expected, steps.shape))


# ---------------------------------------------------------------------------
# Parity with optax below 2**20.
# ---------------------------------------------------------------------------

OPTAX_LIMIT = 2**20


@st.composite
def optax_configs(draw):
    """Configs for which optax is an accurate reference below 2**20 (see the rtol
    fixture in conftest.py): |p * ln(decay_rate)| <= 10 for every exponent p, and
    every number exact in float32, which optax rounds them to."""
    period = draw(st.integers(1, 2**21))
    largest_log = 10 * period / OPTAX_LIMIT
    rate = float(np.float32(math.exp(draw(st.floats(-largest_log, largest_log)))))
    initial = float(np.float32(draw(magnitudes(1e-6, 1e3))))
    end = draw(st.none() | magnitudes(1e-6, 1e3).map(lambda x: float(np.float32(x))))
    return dict(
        initial_learning_rate=initial,
        decay_steps=period,
        decay_rate=rate,
        staircase=draw(st.booleans()),
        transition_begin=draw(st.integers(0, OPTAX_LIMIT // 2)),
        end_learning_rate=end,
    )


@examples(30, HealthCheck.function_scoped_fixture)  # rtol is a constant
@example(
    config=dict(
        initial_learning_rate=0.01,
        decay_steps=1,
        decay_rate=1.0,
        staircase=False,
        transition_begin=0,
        end_learning_rate=0.001,
    ),
    seed=0,
)
@given(config=optax_configs(), seed=st.integers(0, 2**32 - 1))
def test_matches_optax_below_2_20(config, seed, rtol):
    """Integer steps in [0, 2**20) give optax.exponential_decay's values within the
    rtol fixture's tolerance (optax's own error; jaxdecay is within 1 ulp)."""
    schedule = ExponentialDecay(**config)
    reference = optax.exponential_decay(**schedule.optax_kwargs())
    steps = int_steps(config, seed) % OPTAX_LIMIT  # [0, 2**20): optax is accurate
    actual = np.asarray(schedule(steps))
    expected = np.asarray(reference(steps))
    if (
        config["end_learning_rate"] is not None
        and FLOAT.type(config["decay_rate"]) == 1
    ):
        # At a rate of 1, optax applies end_value as a ceiling; jaxdecay holds the
        # initial rate, which neither decays nor grows (docs/numerics.md).
        expected = np.full_like(expected, computed(config["initial_learning_rate"]))
    assert actual.dtype == expected.dtype == FLOAT
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0)


# ---------------------------------------------------------------------------
# Transformations: jit equals eager, vmap equals a loop.
# ---------------------------------------------------------------------------


@examples(25)
@given(config=configs(), seed=st.integers(0, 2**32 - 1))
def test_jit_equals_eager(config, seed):
    """jax.jit(schedule) gives the eager schedule's bits, integer and float steps."""
    schedule = ExponentialDecay(**config)
    for array in all_steps(config, seed):
        assert bits(jax.jit(schedule)(array)) == bits(schedule(array))


@examples(25)
@given(config=configs(), seed=st.integers(0, 2**32 - 1))
def test_vmap_equals_a_loop(config, seed):
    """jax.vmap(schedule) over steps gives the bits of calling it on each step."""
    schedule = ExponentialDecay(**config)
    rng = np.random.default_rng(seed)
    steps = rng.choice(int_steps(config, seed), 6, replace=False)
    for array in (steps, (steps.astype(FLOAT) + FLOAT.type(0.5)).astype(FLOAT)):
        looped = np.stack([np.asarray(schedule(step)) for step in array])
        assert bits(jax.vmap(schedule)(array)) == bits(looped)


# ---------------------------------------------------------------------------
# Round trips: JSON and serialize keep every bit; pickle and copy too.
# ---------------------------------------------------------------------------

any_float = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def any_configs(draw):
    """Any valid arguments: every finite float (subnormals, -0.0, the largest),
    every valid integer, any name."""
    return dict(
        initial_learning_rate=draw(any_float),
        decay_steps=draw(decay_steps),
        decay_rate=draw(
            st.floats(min_value=0.0, exclude_min=True, allow_infinity=False)
        ),
        staircase=draw(st.booleans()),
        name=draw(st.none() | st.text()),
        transition_begin=draw(transition_begins),
        end_learning_rate=draw(st.none() | any_float),
    )


def same_fields(a, b):
    """Equal field by field, floats bit for bit (the sign of zero too)."""
    for field in dataclasses.fields(ExponentialDecay):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, (float, np.floating)):
            assert float(x).hex() == float(y).hex(), field.name
        else:
            assert x == y and type(x) is type(y), field.name


@examples(300)
@given(config=any_configs())
def test_serialize_round_trip_is_bit_exact(config):
    """deserialize(serialize(s)), from_json(to_json(s)) and the same through bytes
    and through json.dumps/loads of the dict give s back, every float bit for bit;
    the format is written exactly when the config uses jaxdecay's extensions."""
    schedule = ExponentialDecay(**config)
    data = jaxdecay.serialize(schedule)
    extended = (
        config["transition_begin"] != 0 or config["end_learning_rate"] is not None
    )
    assert ("jaxdecay_format" in data) == extended
    text = schedule.to_json()
    assert json.loads(text) == data
    for loaded in (
        jaxdecay.deserialize(data),
        jaxdecay.deserialize(json.loads(json.dumps(data))),
        jaxdecay.deserialize(text),
        ExponentialDecay.from_json(text),
        ExponentialDecay.from_json(text.encode()),
        ExponentialDecay.from_config(schedule.get_config()),
    ):
        assert loaded == schedule
        same_fields(loaded, schedule)


@examples(150)
@given(
    config=any_configs(),
    kind=st.sampled_from(["python", "float32", "bfloat16", "float16"]),
    protocol=st.integers(0, pickle.HIGHEST_PROTOCOL),
)
def test_pickle_and_copy_round_trip(config, kind, protocol):
    """pickle (every protocol), copy.copy and copy.deepcopy give an equal schedule
    with the same field values and types (NumPy float scalars keep their dtype)."""
    if kind != "python":
        scalar = SCALAR_TYPES[kind]
        low, high = MAGNITUDES[kind]
        value = config["initial_learning_rate"]
        config["initial_learning_rate"] = scalar(
            math.copysign(min(max(abs(value), low), high), value)
        )
    schedule = ExponentialDecay(**config)
    for twin in (
        pickle.loads(pickle.dumps(schedule, protocol=protocol)),
        copy.copy(schedule),
        copy.deepcopy(schedule),
    ):
        assert twin == schedule
        assert hash(twin) == hash(schedule)
        same_fields(twin, schedule)
