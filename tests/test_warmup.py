"""The linear warmup: optax's warmup schedule, within 1 ulp of the exact line.

With `warmup_steps=W > 0` the schedule is optax's `warmup_exponential_decay_schedule`:
a line from `warmup_init` (at step 0 and before) to `initial_learning_rate` (at step
W), then the decay counted from W. Expected values come from optax, from the exact
rational line `warmup_init + (initial - warmup_init) * t / W` of the numbers rounded to
the compute dtype (`fractions.Fraction`, rounded once by the shared mpmath helper),
from hand-worked numbers and from the hand-derived derivatives of the line.

The file runs with x64 off and on (CI runs the suite both ways); the tests read the
compute dtype from `jax.config.jax_enable_x64`.
"""

import dataclasses
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

chex = pytest.importorskip("chex")
mpmath = pytest.importorskip("mpmath")
optax = pytest.importorskip("optax")
pytest.importorskip("hypothesis")

from _reference import PRECISION, bits, builder_of, round_exact, ulp_distance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxdecay import ExponentialDecay, exponential_decay

INT64_MAX = 2**63 - 1


def compute_dtype():
    """float32, or float64 under x64: the dtype the schedule computes in."""
    return np.dtype(np.float64 if jax.config.jax_enable_x64 else np.float32)


def computed(value):
    """A float hyperparameter as the schedule takes it: in the compute dtype."""
    return float(compute_dtype().type(value))


def exact_line(start, stop, total, step):
    """The warmup's exact value at `step` (clipped to [0, total]), as a Fraction of
    the rounded ends."""
    start, stop = Fraction(computed(start)), Fraction(computed(stop))
    t = Fraction(step if isinstance(step, int) else float(step))
    t = min(max(t, 0), total)
    return start + (stop - start) * t / total


def rounded(value):
    """A Fraction rounded once (to nearest even) to the compute dtype."""
    with mpmath.workprec(PRECISION):
        exact = mpmath.mpf(value.numerator) / value.denominator
        return compute_dtype().type(round_exact(exact, compute_dtype()))


def ulps(got, expected):
    """ulp distances of `got` from the exactly rounded `expected`, where that is a
    normal float; XLA on CPU flushes subnormal results to 0, which counts as 0 ulp
    when the exact value is subnormal."""
    dtype = compute_dtype()
    got, expected = np.asarray(got, dtype).ravel(), np.asarray(expected, dtype).ravel()
    distance = ulp_distance(got, expected)
    subnormal = np.abs(expected) < np.finfo(dtype).tiny
    return np.where(subnormal & ((got == 0) | (distance <= 1)), 0.0, distance)


def optax_warmup(config):
    """optax's `warmup_exponential_decay_schedule` with `config`'s numbers."""
    return optax.warmup_exponential_decay_schedule(
        init_value=config.warmup_init,
        peak_value=config.initial_learning_rate,
        warmup_steps=config.warmup_steps,
        transition_steps=config.decay_steps,
        decay_rate=config.decay_rate,
        transition_begin=config.transition_begin,
        staircase=config.staircase,
        end_value=config.end_learning_rate,
    )


# ---------------------------------------------------------------------------
# Parity with optax.
# ---------------------------------------------------------------------------

PARITY = [
    ExponentialDecay(0.1, 1000, 0.5, warmup_steps=100),
    ExponentialDecay(0.1, 1000, 0.5, True, warmup_steps=100, warmup_init=0.01),
    ExponentialDecay(0.1, 1000, 0.5, end_learning_rate=0.02, warmup_steps=100),
    ExponentialDecay(0.1, 1000, 0.5, True, end_learning_rate=0.02, warmup_steps=100),
    ExponentialDecay(0.3, 7, 0.96, transition_begin=50, warmup_steps=1000),
    ExponentialDecay(
        0.3, 7, 0.96, True, transition_begin=50, warmup_steps=1000, warmup_init=0.003
    ),
    ExponentialDecay(
        0.01, 500, 1.5, end_learning_rate=0.05, warmup_steps=3, warmup_init=0.001
    ),
    ExponentialDecay(-0.2, 1000, 0.5, warmup_steps=250, warmup_init=-0.01),
]


def parity_steps(config, kind):
    """Steps before, in, at the end of and after the warmup, at the start of the
    decay and of its first stairs, and far after (12 decay_steps: conftest's rtol
    holds while |p * ln(decay_rate)| <= ~10); int or float."""
    w, begin, n = config.warmup_steps, config.transition_begin, config.decay_steps
    start = w + begin
    if kind == "int":
        steps = [-10, -1, 0, 1, w // 2, w - 1, w, w + 1, start, start + 1]
        steps += [start + n - 1, start + n, start + 3 * n + 1, start + 12 * n + 5]
        return jnp.asarray(steps, jnp.result_type(int))
    steps = [-2.5, -0.5, 0.0, 0.5, w / 2 + 0.25, w - 0.5, w, w + 0.5, start + 0.5]
    steps += [start + n - 0.5, start + n + 0.5, start + 12 * n + 5.75]
    return jnp.asarray(steps, jnp.result_type(float))


def assert_close_to_optax(got, expected, config, steps, rtol):
    """Inside the warmup (steps < W) an absolute tolerance: optax evaluates
    `(init - peak) * (1 - t / W) + peak` in the compute dtype, four roundings that
    are each within 2**-24 (float32) of `max(|init|, |peak|)`, and which cancel
    near an end that is 0 (its relative error there is unbounded); jaxdecay is
    within 1 ulp of the exact line. 8 eps of the larger end covers both. After
    the warmup, the decay's relative tolerance (`rtol` in conftest.py)."""
    eps = np.finfo(compute_dtype()).eps
    scale = max(
        abs(computed(config.warmup_init)), abs(computed(config.initial_learning_rate))
    )
    warm = np.asarray(steps) < config.warmup_steps
    got, expected = np.asarray(got), np.asarray(expected)
    chex.assert_trees_all_close(got[warm], expected[warm], rtol=0, atol=8 * eps * scale)
    chex.assert_trees_all_close(got[~warm], expected[~warm], rtol=rtol, atol=0)


@pytest.mark.parametrize("kind", ["int", "float"])
@pytest.mark.parametrize("config", PARITY, ids=range(len(PARITY)))
def test_same_as_optax_warmup_exponential_decay(variant, config, kind, rtol):
    steps = parity_steps(config, kind)
    expected = optax_warmup(config)(steps)
    for schedule in (config, builder_of(config)):
        got = variant(schedule)(steps)
        assert got.dtype == compute_dtype()
        assert_close_to_optax(got, expected, config, steps, rtol)


def test_optax_parity_checks_the_warmup_itself(rtol):
    """The parity check would catch a ramp one step late: the tolerance inside the
    warmup is far below one step of the line."""
    config = PARITY[0]
    late = dataclasses.replace(config, warmup_steps=config.warmup_steps + 1)
    steps = parity_steps(config, "int")
    with pytest.raises(AssertionError):
        assert_close_to_optax(
            late(steps), optax_warmup(config)(steps), config, steps, rtol
        )


def test_the_peak_holds_for_transition_begin_steps_after_the_warmup(variant):
    config = ExponentialDecay(0.1, 10, 0.5, transition_begin=5, warmup_steps=20)
    steps = jnp.asarray([20, 21, 25, 26, 35], jnp.result_type(int))
    peak = computed(0.1)
    got = np.asarray(variant(config)(steps))
    assert (got[:3] == compute_dtype().type(peak)).all()
    assert 0.0 < got[3] < peak
    assert got[4] == rounded(Fraction(peak) / 2)  # one decay_steps after the start


def test_no_warmup_holds_the_initial_rate_at_negative_steps(variant):
    """warmup_steps=0 is optax's exponential_decay: a negative step holds the initial
    rate. optax's warmup schedule with warmup_steps=0 gives its init_value there
    instead: a deliberate difference. At steps >= 0 the two optax schedules and
    jaxdecay agree."""
    config = ExponentialDecay(0.1, 10, 0.5, warmup_init=0.7)
    negative = jnp.asarray([-100, -1], jnp.result_type(int))
    got = variant(config)(negative)
    initial = compute_dtype().type(computed(0.1))
    assert (np.asarray(got) == initial).all()
    chex.assert_trees_all_close(got, optax.exponential_decay(0.1, 10, 0.5)(negative))
    # optax's warmup schedule: init_value at a negative step.
    np.testing.assert_allclose(optax_warmup(config)(negative), 0.7, rtol=1e-6)
    steps = jnp.asarray([0, 1, 5, 10, 11, 1000], jnp.result_type(int))
    expected = optax_warmup(config)(steps)
    chex.assert_trees_all_close(variant(config)(steps), expected, rtol=2e-6)
    chex.assert_trees_all_close(variant(builder_of(config))(steps), expected, rtol=2e-6)


# ---------------------------------------------------------------------------
# Within 1 ulp of the exact line.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "stop", "total", "step", "expected"),
    [
        (0.0, 0.1, 100, 50, 0.05),  # float(0.1) / 2 is float(0.05) exactly
        (0.0, 0.1, 100, 0, 0.0),
        (0.0, 0.1, 100, -7, 0.0),
        (0.0, 0.1, 100, 100, 0.1),
        (0.01, 0.1, 100, 0, 0.01),  # warmup_init exactly at step 0
        (0.01, 0.1, 100, -1, 0.01),
        (1.0, 4.0, 3, 1, 2.0),
        (1.0, 4.0, 3, 2, 3.0),
        (0.0, 1.0, 4, 1, 0.25),
        (-1.0, -3.0, 2, 1, -2.0),
        (0.5, 0.5, 7, 3, 0.5),  # a flat line
        (3.0, 1.0, 8, 6, 1.5),  # a warmup that goes down
        (0.0, 2.0**-20, INT64_MAX, 2**31 - 1, None),
    ],
)
def test_hand_worked_values(variant, start, stop, total, step, expected):
    if expected is None:  # 2**-20 * (2**31 - 1) / (2**63 - 1), exactly rounded
        expected = rounded(Fraction(2**31 - 1, 2**20 * INT64_MAX))
    config = ExponentialDecay(stop, 1000, 0.5, warmup_steps=total, warmup_init=start)
    for schedule in (config, builder_of(config)):
        got = variant(schedule)(step)
        assert bits(got) == bits(compute_dtype().type(computed(expected))), step


@st.composite
def warmups(draw):
    """Ends that do not have opposite signs (0 with either sign included), and a
    warmup length from 1 to 2**63 - 1."""
    magnitudes = (
        st.floats(2.0**-60, 2.0**60)
        | st.floats(0.5, 2.0)
        | st.sampled_from([0.0, 2.0**-126, 0.1, 1.0, 3.4028234663852886e38])
    )
    sign = draw(st.sampled_from([1.0, -1.0]))
    start, stop = sign * draw(magnitudes), sign * draw(magnitudes)
    total = draw(
        st.integers(1, 1000)
        | st.integers(1, INT64_MAX)
        | st.sampled_from([1, 2, 3, 2**24 + 1, 2**31 - 1, 2**32, 2**53 + 1, INT64_MAX])
    )
    return start, stop, total


def warmup_steps_of(total, rng, count):
    """Integer and float steps across [0, total), both ends included, as the step
    types reach: uint32 (x64 off) or int64 (x64 on), and the compute dtype."""
    dtype = compute_dtype()
    integer = np.uint32 if dtype == np.float32 else np.int64
    top = min(total - 1, np.iinfo(integer).max)
    picked = [int(x) for x in rng.integers(0, top, count - 2, endpoint=True)]
    integers = np.asarray([0, top, *picked], integer)
    last = dtype.type(total - 1)  # the largest float below total
    while int(last) >= total:
        last = np.nextafter(last, dtype.type(0))
    spread = rng.uniform(0, 1, count - 2) * float(total)
    floats = np.minimum(np.asarray([0, last, *spread], dtype), last)
    return integers, floats


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(ends=warmups(), seed=st.integers(0, 2**32 - 1))
def test_the_warmup_is_within_one_ulp_of_the_exact_line(ends, seed):
    start, stop, total = ends
    config = ExponentialDecay(stop, 1000, 0.5, warmup_steps=total, warmup_init=start)
    integers, floats = warmup_steps_of(total, np.random.default_rng(seed), 16)
    for steps in (integers, floats):
        got = np.asarray(config(steps))
        expected = [rounded(exact_line(start, stop, total, s)) for s in steps.tolist()]
        distance = ulps(got, expected)
        assert (distance <= 1).all(), (steps[distance > 1], got[distance > 1])
    assert config(integers[0]) == computed(start)  # step 0: warmup_init exactly


@pytest.mark.parametrize(
    ("start", "stop"),
    [
        (2.0**-126, 2.0),  # the least normal float32, and a larger end
        (2.0**-60, 3.4028234663852886e38),
        (-(2.0**-100), -(2.0**40)),
        (3.4028234663852886e38, 2.0**-60),  # a warmup that goes down
    ],
)
def test_step_zero_is_warmup_init_whatever_the_other_end(variant, start, stop):
    """At step 0 and before, warmup_init exactly, also far below the other end."""
    config = ExponentialDecay(stop, 1000, 0.5, warmup_steps=7, warmup_init=start)
    steps = jnp.asarray([-1, 0, 1, 6], jnp.result_type(int))
    got = np.asarray(variant(config)(steps))
    assert (got[:2] == computed(start)).all(), got
    expected = [rounded(exact_line(start, stop, 7, s)) for s in (1, 6)]
    assert (ulps(got[2:], expected) <= 1).all(), got


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize(
    ("start", "stop"), [(0.0, 1e300), (0.5, -1e300), (1e300, 0.1), (1e300, 1e300)]
)
def test_an_end_that_rounds_to_inf_gives_no_nan(start, stop):
    """1e300 is finite, so accepted, and inf in float32: the line is then infinite
    where that end has weight (warmup_init at step 0 and before), never NaN."""
    if jax.config.jax_enable_x64:
        pytest.skip("1e300 is finite in float64")
    config = ExponentialDecay(stop, 1000, 0.5, warmup_steps=100, warmup_init=start)
    got = np.asarray(config(np.asarray([-1, 0, 1, 50, 99], np.int32)))
    assert not np.isnan(got).any(), got
    assert (got[:2] == np.float32(start)).all(), got
    assert (
        got[2:] == np.float32(stop if math.isinf(np.float32(stop)) else start)
    ).all()


def test_the_ulp_check_can_fail():
    """The line one step late is more than 1 ulp off, for the check above."""
    config = ExponentialDecay(0.1, 1000, 0.5, warmup_steps=1000, warmup_init=0.05)
    steps = np.arange(1, 999, 97)
    late = [rounded(exact_line(0.05, 0.1, 1000, s - 1)) for s in steps.tolist()]
    assert (ulps(config(steps), late) > 1).all()


def around(value, count):
    """The `count` floats of the compute dtype on each side of `value` (a Fraction),
    and the nearest."""
    dtype = compute_dtype()
    nearest = dtype.type(float(value))
    below, above = [nearest], [nearest]
    for _ in range(count):
        below.append(np.nextafter(below[-1], dtype.type(-np.inf)))
        above.append(np.nextafter(above[-1], dtype.type(np.inf)))
    return [*below[::-1], *above[1:]]


@pytest.mark.parametrize("total", [3, 1000, 2**31 - 1, 2**40 + 3, INT64_MAX])
def test_opposite_signs_are_close_in_absolute_terms(total):
    """With ends of opposite signs the terms cancel near the zero crossing, so the
    relative error there is not bounded; the claim is absolute: within 1 ulp, or
    within 64 eps**2 (2**-40 in float32) of max(|start|, |stop|). Checked at the
    float steps around the crossing, where the value is smallest."""
    dtype = compute_dtype()
    bound = 64 * Fraction(float(np.finfo(dtype).eps)) ** 2
    rng = np.random.default_rng(total % 2**32)
    tiny = 0
    for _ in range(12):
        a, b = 10.0 ** rng.uniform(-3, 3, 2)
        start, stop = computed(-a), computed(b)
        if rng.integers(2):
            start, stop = -start, -stop
        crossing = Fraction(start) * total / (Fraction(start) - Fraction(stop))
        steps = [s for s in around(crossing, 3) if 0 <= Fraction(float(s)) < total]
        config = ExponentialDecay(
            stop, 1000, 0.5, warmup_steps=total, warmup_init=start
        )
        got = np.asarray(config(np.asarray(steps, dtype)))
        largest = max(abs(start), abs(stop))
        for step, value in zip(steps, got, strict=True):
            line = exact_line(start, stop, total, step)
            error = abs(Fraction(float(value)) - line)
            one_ulp = ulps(value, rounded(line))[0] <= 1
            assert one_ulp or error <= bound * Fraction(largest), (start, stop, step)
            # Where 1 ulp of the value is below the bound, the bound is the claim.
            tiny += abs(line) < bound * Fraction(largest) * 2 ** np.finfo(dtype).nmant
    assert tiny > 0


# ---------------------------------------------------------------------------
# Gradients: the line's hand-derived derivatives.
# ---------------------------------------------------------------------------

WARM_STEPS = [1.0, 100.0, 250.5, 399.0, 399.75]
W = 400


def line_derivatives(start, stop, step):
    """(d/d warmup_init, d/d initial, d/d step) of the line, in float64."""
    return 1 - step / W, step / W, (computed(stop) - computed(start)) / W


def close(got, expected):
    return math.isclose(float(got), expected, rel_tol=1e-5, abs_tol=1e-12)


def close_weights(got, expected):
    """For d/d warmup_init = 1 - t/W and d/d initial = t/W, in [0, 1]: computed
    as `t * (1/W)` in the compute dtype, within a few eps absolutely (1 - t/W
    cancels near the end of the warmup, so not relatively)."""
    eps = float(np.finfo(compute_dtype()).eps)
    return math.isclose(float(got), expected, rel_tol=1e-5, abs_tol=4 * eps)


def test_gradients_of_the_builder_inside_the_warmup():
    dtype = compute_dtype()

    def lr(warmup_init, initial, step):
        schedule = exponential_decay(
            initial, 1000, 0.5, warmup_steps=W, warmup_init=warmup_init
        )
        return schedule(step)

    grad = jax.jit(jax.grad(lr, argnums=(0, 1, 2)))
    for step in WARM_STEPS:
        got = grad(dtype.type(0.01), dtype.type(0.1), dtype.type(step))
        d_start, d_stop, d_step = line_derivatives(0.01, 0.1, step)
        assert close_weights(got[0], d_start) and close_weights(got[1], d_stop), step
        assert close(got[2], d_step), step


@pytest.mark.parametrize("as_argument", [False, True], ids=["eager", "argument"])
def test_gradients_of_a_config_inside_the_warmup(as_argument):
    """With respect to the config's float fields (`allow_int`: the integer leaves
    get float0) and to a float step."""
    dtype = compute_dtype()
    config = ExponentialDecay(0.1, 1000, 0.5, warmup_steps=W, warmup_init=0.01)
    wrap = jax.jit if as_argument else (lambda f: f)
    by_config = wrap(jax.grad(lambda c, s: c(s), argnums=(0, 1), allow_int=True))
    for step in WARM_STEPS if as_argument else WARM_STEPS[::2]:  # eager is slow
        d_start, d_stop, d_step = line_derivatives(0.01, 0.1, step)
        got, got_step = by_config(config, dtype.type(step))
        assert close_weights(got.warmup_init, d_start), step
        assert close_weights(got.initial_learning_rate, d_stop), step
        assert close(got_step, d_step), step
        assert float(got.decay_rate) == 0.0
        assert got.warmup_steps.hi.dtype == jax.dtypes.float0


def test_the_gradient_checks_can_fail():
    """A line with other ends has other derivatives than the ones checked."""
    config = ExponentialDecay(0.2, 1000, 0.5, warmup_steps=W, warmup_init=0.0)
    got = jax.grad(config)(compute_dtype().type(100.0))
    assert not close(got, line_derivatives(0.01, 0.1, 100.0)[2])


NAN_CHECK_STEPS = [-np.inf, -1e30, -3.0, 0.0, 0.5, 250.0, 499.5, 500.0, 500.5, 1e4]
NAN_CHECK_STEPS += [1e9, 1e20, 3e38, np.inf]


GRADIENTS = jax.jit(jax.grad(lambda c, s: c(s), argnums=(0, 1), allow_int=True))


def gradients_at(config, step):
    """The derivatives by the config's leaves and by a float step, the config a
    jit argument (one compile for every config and step)."""
    return GRADIENTS(config, compute_dtype().type(step))


@pytest.mark.parametrize("warmup_steps", [0, 500])
@pytest.mark.parametrize("staircase", [False, True], ids=["smooth", "staircase"])
def test_no_nan_gradient_at_any_step(staircase, warmup_steps):
    """A config with a warmup (or without: the line's derivatives are computed
    there too), a floor that binds far out, steps from far before to far past,
    infinity included: the derivatives by the line's numbers and by the step are
    numbers."""
    config = ExponentialDecay(
        0.1, 1000, 0.5, staircase, end_learning_rate=0.001, warmup_steps=warmup_steps
    )
    for step in NAN_CHECK_STEPS:
        got, got_step = gradients_at(config, step)
        for name in ("initial_learning_rate", "warmup_init", "end_learning_rate"):
            assert not np.isnan(getattr(got, name)), (name, step)
        assert not np.isnan(got_step), step


def test_no_nan_gradient_by_the_rate_at_an_infinite_step():
    config = ExponentialDecay(0.1, 1000, 0.5, end_learning_rate=0.001, warmup_steps=500)
    for step in NAN_CHECK_STEPS:
        got, _ = gradients_at(config, step)
        assert not np.isnan(got.decay_rate), step


# ---------------------------------------------------------------------------
# Validation: the same rules, and messages, for the builder and the dataclass.
# ---------------------------------------------------------------------------

INT_RANGE = f"[0, {INT64_MAX}]"
INVALID = [
    ("warmup_steps", -1, ValueError, f"must be an integer in {INT_RANGE}, got -1"),
    (
        "warmup_steps",
        2**63,
        ValueError,
        f"must be an integer in {INT_RANGE}, got {2**63}",
    ),
    ("warmup_steps", 1.5, TypeError, "must be an integer, got 1.5 of type float"),
    ("warmup_steps", 100.0, TypeError, "must be an integer, got 100.0 of type float"),
    ("warmup_steps", True, TypeError, "must be an integer, got True of type bool"),
    ("warmup_steps", "100", TypeError, "must be an integer, got '100' of type str"),
    ("warmup_steps", None, TypeError, "must be an integer, got None of type NoneType"),
    ("warmup_init", math.nan, ValueError, "must be finite, got nan"),
    ("warmup_init", math.inf, ValueError, "must be finite, got inf"),
    ("warmup_init", -math.inf, ValueError, "must be finite, got -inf"),
    ("warmup_init", 10**400, ValueError, "must be finite, got <int of 1329 bits>"),
    ("warmup_init", "0", TypeError, "must be a real number, got '0' of type str"),
    ("warmup_init", True, TypeError, "must be a real number, got True of type bool"),
    (
        "warmup_init",
        None,
        TypeError,
        "must be a real number, got None of type NoneType",
    ),
]
constructors = pytest.mark.parametrize(
    "construct", [exponential_decay, ExponentialDecay], ids=["function", "dataclass"]
)


@constructors
@pytest.mark.parametrize(
    ("field", "value", "error", "message"),
    INVALID,
    ids=[f"{field}={value!r}"[:40] for field, value, *_ in INVALID],
)
def test_invalid_warmup_argument(construct, field, value, error, message):
    with pytest.raises(error) as raised:
        construct(0.1, 1000, 0.5, **{field: value})
    assert str(raised.value) == f"{field} {message}"


@constructors
@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("warmup_steps", 0, 0),
        ("warmup_steps", INT64_MAX, INT64_MAX),
        ("warmup_steps", np.int64(5), 5),
        ("warmup_steps", np.uint32(7), 7),
        ("warmup_init", -1, -1.0),
        ("warmup_init", np.float32(0.5), 0.5),
    ],
)
def test_valid_warmup_edge_values(construct, field, value, stored):
    """Accepted, and stored in normal form (Python ints; Python floats, a NumPy
    float keeping its type)."""
    schedule = construct(0.1, 1000, 0.5, **{field: value})
    assert np.isfinite(schedule(0))
    if isinstance(schedule, ExponentialDecay):
        kept = getattr(schedule, field)
        assert kept == stored
        assert type(kept) is (
            type(value) if isinstance(value, np.floating) else type(stored)
        )


# ---------------------------------------------------------------------------
# praxis' LinearRampupExponentialDecay, as README maps it.
# ---------------------------------------------------------------------------


def praxis_linear_rampup_exponential_decay(
    step, warmup_steps, decay_start, decay_end, min_ratio, peak
):
    """praxis' schedule as its documentation states it, in float64: a line from 0
    to `peak` over `warmup_steps`, `peak` until `decay_start`, then an exponential
    from `peak` to `peak * min_ratio` at `decay_end`, and that value after it."""
    if step < warmup_steps:
        return peak * max(step, 0) / warmup_steps
    if step < decay_start:
        return peak
    elapsed = min(step, decay_end) - decay_start
    return peak * min_ratio ** (elapsed / (decay_end - decay_start))


def test_readme_mapping_of_praxis_linear_rampup_exponential_decay():
    """README's mapping of praxis' parameters gives praxis' schedule."""
    warmup_steps, decay_start, decay_end, min_ratio, peak = (
        500,
        2_000,
        50_000,
        0.01,
        3.0,
    )
    config = ExponentialDecay(
        peak,
        decay_end - decay_start,
        min_ratio,
        warmup_steps=warmup_steps,
        transition_begin=decay_start - warmup_steps,
        end_learning_rate=peak * min_ratio,
    )
    steps = [-5, 0, 1, 250, 499, 500, 1_000, 1_999, 2_000, 2_001, 26_000, 49_999]
    steps += [50_000, 50_001, 10**6]
    expected = [
        praxis_linear_rampup_exponential_decay(
            step, warmup_steps, decay_start, decay_end, min_ratio, peak
        )
        for step in steps
    ]
    got = config(np.asarray(steps, np.int32))
    chex.assert_trees_all_close(got, np.asarray(expected, got.dtype), rtol=2e-6)
