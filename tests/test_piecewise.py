"""`PiecewiseConstantDecay`: Keras' piecewise constant schedule, exact at any step.

Expected values come from the rule itself in exact Python arithmetic (a step, as
a `Fraction`, against integer boundaries) and from Keras; the same bits on every
path, no compile for a new config of the same count, one-hot gradients, the
count as pytree structure, validation that names the field, serialization both
ways with Keras, `jax.export` and the command line.
"""

import dataclasses
import json
import math
import warnings
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest

optax = pytest.importorskip("optax")
keras = pytest.importorskip("keras")
pytest.importorskip("hypothesis")

from _paths import AS_ARGUMENT, SWEPT, counting_compiles, optax_lr, paths, stack
from _reference import bits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxdecay
from jaxdecay import PiecewiseConstantDecay, _config, _program

FLOAT = np.dtype(jnp.result_type(float))  # float32, or float64 under x64
X64 = np.float64 == FLOAT
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
KerasPiecewise = keras.optimizers.schedules.PiecewiseConstantDecay


def expected(boundaries, values, steps):
    """The rule, exactly: the value after the boundaries below the step, as
    `Fraction`s (a NaN step gives NaN), in the compute dtype."""
    out = []
    for step in np.asarray(steps).ravel():
        if isinstance(step, np.floating) and math.isnan(step):
            out.append(FLOAT.type(np.nan))
            continue
        exact = Fraction(int(step)) if isinstance(step, np.integer) else None
        if exact is None:
            exact = Fraction(float(step)) if math.isfinite(step) else None
        if exact is None:  # an infinite step: past all, or none
            index = len(boundaries) if step > 0 else 0
        else:
            index = sum(exact > b for b in boundaries)
        out.append(FLOAT.type(values[index]))
    return np.asarray(out, FLOAT).reshape(np.shape(steps))


EDGES = [2**24, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53, INT64_MAX]


def edge_config():
    """Boundaries near 2**24, 2**31, 2**32, 2**53 and at 2**63 - 1, and negative
    ones: a value of its own after each."""
    boundaries = [INT64_MIN, -(2**40), -(2**31) - 1, -(2**31), -1, 0, *EDGES]
    values = [float(i) + 0.5 for i in range(len(boundaries) + 1)]
    return PiecewiseConstantDecay(boundaries, values)


def steps_near(boundaries, dtype):
    """b - 1, b, b + 1 for each boundary, those the dtype holds exactly."""
    info = np.iinfo(dtype)
    near = {s for b in boundaries for s in (b - 1, b, b + 1)}
    return np.asarray(sorted(s for s in near if info.min <= s <= info.max), dtype)


# ---------------------------------------------------------------------------
# Exact: the value given, past exactly the boundaries below the step.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype", [np.int32, np.uint32, np.int16, np.uint8, np.int64, np.uint64]
)
def test_integer_steps_at_every_edge(dtype):
    if np.dtype(dtype).itemsize == 8 and not X64:
        pytest.skip("64-bit steps need x64")
    config = edge_config()
    steps = steps_near(config.boundaries, dtype)
    if np.dtype(dtype).itemsize <= 4:  # and every step of the dtype's ends
        info = np.iinfo(dtype)
        steps = np.concatenate([steps, np.asarray([info.min, info.max], dtype)])
    got = np.asarray(config(jnp.asarray(steps)))
    assert bits(got) == bits(expected(config.boundaries, config.values, steps))


def test_the_edges_by_hand():
    """Hand-worked: 2**24 + 1 is past 2**24, 2**31 - 1 is not past 2**31 - 1."""
    config = PiecewiseConstantDecay([2**24, 2**31 - 1], [1.0, 2.0, 3.0])
    steps = jnp.asarray([2**24 - 1, 2**24, 2**24 + 1, 2**31 - 2, 2**31 - 1], jnp.int32)
    assert np.asarray(config(steps)).tolist() == [1.0, 1.0, 2.0, 2.0, 2.0]
    unsigned = jnp.asarray([2**31 - 1, 2**31, 2**32 - 1], jnp.uint32)
    assert np.asarray(config(unsigned)).tolist() == [2.0, 3.0, 3.0]
    # Boundaries beyond every step of a type hold the values before them.
    far = PiecewiseConstantDecay([2**32, 2**53, INT64_MAX], [1.0, 2.0, 3.0, 4.0])
    assert np.asarray(far(unsigned)).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_float_steps_are_compared_exactly(dtype):
    """A float step past its floor is past the boundary at its floor; a boundary
    is never rounded to the step's type (2**31 - 1 is not a float32)."""
    if dtype is np.float64 and not X64:
        pytest.skip("float64 steps need x64")
    config = edge_config()
    info = np.finfo(dtype)
    candidates = [
        float(s) + d
        for s in steps_near(config.boundaries, np.int64).tolist()
        for d in (-0.5, 0.0, 0.5)
    ]
    steps = np.asarray(
        [c for c in candidates if abs(c) <= float(info.max)]
        + [-np.inf, np.inf, float(info.max), -float(info.max), 0.25, -0.25],
        dtype,
    )
    got = np.asarray(config(jnp.asarray(steps)))
    assert bits(got) == bits(expected(config.boundaries, config.values, steps))
    assert np.isnan(config(jnp.asarray(np.nan, dtype)))


def test_a_fractional_step_is_past_its_floor():
    config = PiecewiseConstantDecay([10, 2**24, 2**31 - 1], [1.0, 2.0, 3.0, 4.0])
    steps = [10.0, 10.5, 11.0, 16777216.0, 2147483647.0]
    got = config(jnp.asarray(steps, jnp.float32))
    # float32(2**31 - 1) is 2**31, past 2**31 - 1 (Keras rounds the boundary to
    # 2**31 instead and holds 3.0 there).
    assert np.asarray(got).tolist() == [1.0, 2.0, 2.0, 2.0, 4.0]


@st.composite
def configs(draw):
    count = draw(st.integers(1, 20))
    wide = st.integers(INT64_MIN, INT64_MAX)
    near = st.sampled_from(EDGES).flatmap(lambda b: st.integers(b - 3, b + 3))
    small = st.integers(-100, 10**6)
    boundaries = sorted(
        set(draw(st.lists(wide | near | small, min_size=count, max_size=count)))
    )
    boundaries = [min(b, INT64_MAX) for b in boundaries]
    boundaries = sorted(set(boundaries))
    values = draw(
        st.lists(
            st.floats(-1e30, 1e30).map(lambda x: float(np.float32(x))),
            min_size=len(boundaries) + 1,
            max_size=len(boundaries) + 1,
        )
    )
    return PiecewiseConstantDecay(boundaries, values)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(config=configs(), seed=st.integers(0, 2**32 - 1))
def test_drawn_configs_at_their_edges_and_random_steps(config, seed):
    rng = np.random.default_rng(seed)
    signed = np.dtype(jnp.result_type(int))
    info = np.iinfo(signed)
    steps = np.concatenate(
        [
            steps_near(config.boundaries, signed),
            rng.integers(info.min, info.max, 32, dtype=signed, endpoint=True),
        ]
    )
    got = np.asarray(AS_ARGUMENT(config, jnp.asarray(steps)))
    assert bits(got) == bits(expected(config.boundaries, config.values, steps))
    floats = steps[np.abs(steps) < 2**23].astype(np.float32) + np.float32(0.5)
    got = np.asarray(config(jnp.asarray(floats)))
    assert bits(got) == bits(expected(config.boundaries, config.values, floats))


def test_values_are_the_numbers_given():
    """Bit for bit, -0.0 and tiny values included: selected, never computed."""
    values = [0.1, -0.0, 1e-30, -3e38, 0.3, 1.5e-38]
    config = PiecewiseConstantDecay([0, 1, 2, 3, 4], values)
    got = np.asarray(config(jnp.arange(0, 6, dtype=jnp.int32)))
    assert bits(got) == bits(np.asarray(values, FLOAT))


# ---------------------------------------------------------------------------
# Hyperparameters are data: one set of bits on every path, no compile.
# ---------------------------------------------------------------------------


def test_every_path_gives_the_same_bits():
    config = PiecewiseConstantDecay([100, 2**31 - 2, 2**40], [0.1, 0.05, 0.025, 0.01])
    others = [
        PiecewiseConstantDecay([1, 2, 3], [1.0, 2.0, 3.0, 4.0]),
        PiecewiseConstantDecay([-5, 10**6, INT64_MAX], [0.5, 0.25, 0.125, 1.0]),
    ]
    steps = np.asarray(
        [0, 99, 100, 101, 2**31 - 3, 2**31 - 2, 2**31 - 1, 5, 77, 10**6],
        np.int32,
    )
    got = paths(config, steps, others)
    want = expected(config.boundaries, config.values, steps)
    for name, values in got.items():
        assert bits(values) == bits(want[: len(values)]), name


def test_a_sweep_member_reproduces_its_single_run():
    configs = [
        PiecewiseConstantDecay([1000, 2000], [0.1, 0.05, 0.01]),
        PiecewiseConstantDecay([-3, 2**35], [1.0, 2.0, 3.0]),
        PiecewiseConstantDecay([7, 8], [-0.0, 1e-30, 3e38]),
    ]
    steps = jnp.arange(-10, 1_000_000, 37, dtype=jnp.int32)
    swept = jax.jit(jax.vmap(lambda c: c(steps)))(stack(configs))
    for row, config in zip(swept, configs, strict=True):
        assert bits(row) == bits(config(steps))


def test_the_count_is_structure():
    two = PiecewiseConstantDecay([10, 20], [1.0, 2.0, 3.0])
    other = PiecewiseConstantDecay([5, 2**40], [4.0, 5.0, 6.0], name="other")
    three = PiecewiseConstantDecay([10, 20, 30], [1.0, 2.0, 3.0, 4.0])
    assert jax.tree.structure(two) == jax.tree.structure(other)
    assert jax.tree.structure(two) != jax.tree.structure(three)
    leaves = jax.tree.leaves(two)
    assert [np.shape(x) for x in leaves[:3]] == [(2,), (2,), (3,)]
    with pytest.raises(ValueError, match="structure"):
        stack([two, three])
    rebuilt = jax.tree.map(lambda x: x, two)
    assert rebuilt.boundaries == (10, 20)
    assert bits(rebuilt(jnp.arange(40))) == bits(two(jnp.arange(40)))


def test_new_configs_of_the_same_count_never_compile():
    steps = jnp.arange(16, dtype=jnp.int32)
    floats = jnp.arange(16, dtype=jnp.float32) + 0.5

    def calls(i):
        boundaries = [3 + i, 2**33 + i]
        values = [0.1 * i, 0.05, 0.01 + i]
        jaxdecay.piecewise_constant_decay(boundaries, values)(3)
        config = PiecewiseConstantDecay(boundaries, values)
        config(steps)
        config(floats)
        config(np.int32(5))
        AS_ARGUMENT(config, steps)
        SWEPT(
            stack([config, dataclasses.replace(config, values=(1.0, 2.0, 3.0))]), steps
        )

    calls(1)  # the first call of each kind compiles
    with counting_compiles() as compiles:
        for i in range(2, 8):
            calls(i)
        assert compiles == []


def test_values_built_inside_vmap():
    rows = jnp.asarray([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], FLOAT)
    steps = jnp.asarray([0, 10, 11, 20, 21], jnp.int32)
    got = jax.jit(jax.vmap(lambda v: PiecewiseConstantDecay((10, 20), v)(steps)))(rows)
    assert np.asarray(got).tolist() == [[1, 1, 2, 2, 3], [4, 4, 5, 5, 6]]


# ---------------------------------------------------------------------------
# Gradients: one for the value in use, none for the others or the step.
# ---------------------------------------------------------------------------


def test_gradients_are_one_hot():
    config = PiecewiseConstantDecay([10, 20], [1.0, 2.0, 3.0])
    for step, hot in [(0, 0), (10, 0), (10.5, 1), (20, 1), (21, 2), (1e9, 2)]:
        step = FLOAT.type(step)
        grads = [
            jax.grad(lambda c, s=step: c(s), allow_int=True)(config),
            jax.jit(jax.grad(lambda c, s=step: c(s), allow_int=True))(config),
        ]
        for got in grads:
            assert np.asarray(got.values).tolist() == [
                float(i == hot) for i in range(3)
            ]
            assert got.boundaries.hi.dtype == jax.dtypes.float0
        assert jax.grad(config)(step) == 0
    swept = jax.jit(jax.vmap(jax.grad(lambda c: c(FLOAT.type(15)), allow_int=True)))(
        stack([config, config])
    )
    assert np.asarray(swept.values).tolist() == [[0.0, 1.0, 0.0]] * 2


def test_gradient_through_optax():
    def applied(values):
        return optax_lr(PiecewiseConstantDecay([10, 20], values), 15)

    got = jax.grad(applied)(jnp.asarray([1.0, 2.0, 3.0], FLOAT))
    assert np.asarray(got).tolist() == [0.0, 1.0, 0.0]


# ---------------------------------------------------------------------------
# Validation: the field and the value named.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"boundaries": [20, 10]},
            ValueError,
            "boundaries must be strictly increasing, got boundaries[0]=20 and "
            "boundaries[1]=10",
        ),
        (
            {"boundaries": [10, 10]},
            ValueError,
            "boundaries must be strictly increasing, got boundaries[0]=10 and "
            "boundaries[1]=10",
        ),
        (
            {"values": [1.0, 2.0]},
            ValueError,
            "values must have one more entry than boundaries: boundaries has 2, "
            "values has 2",
        ),
        (
            {"values": [1.0, 2.0, 3.0, 4.0]},
            ValueError,
            "values must have one more entry than boundaries: boundaries has 2, "
            "values has 4",
        ),
        (
            {"boundaries": [10.5, 20]},
            ValueError,
            "boundaries[0] must be an integer (a step count), got 10.5: Keras casts "
            "a boundary to the step's type, so a fractional one means different "
            "boundaries for integer and float steps",
        ),
        (
            {"boundaries": [10, 2**63]},
            ValueError,
            "boundaries[1] must be an integer in [-9223372036854775808, "
            "9223372036854775807], got 9223372036854775808",
        ),
        (
            {"boundaries": [10, 1e19]},
            ValueError,
            "boundaries[1] must be an integer in [-9223372036854775808, "
            "9223372036854775807], got 1e+19",
        ),
        (
            {"boundaries": [True, 20]},
            TypeError,
            "boundaries[0] must be an integer, got True of type bool",
        ),
        (
            {"boundaries": ["10", 20]},
            TypeError,
            "boundaries[0] must be an integer, got '10' of type str",
        ),
        (
            {"values": [1.0, math.nan, 3.0]},
            ValueError,
            "values[1] must be finite, got nan",
        ),
        (
            {"values": [1.0, 2.0, math.inf]},
            ValueError,
            "values[2] must be finite, got inf",
        ),
        (
            {"boundaries": [], "values": [1.0]},
            ValueError,
            "boundaries must have 1 to 10000 entries, got 0",
        ),
        (
            {"boundaries": 10, "values": [1.0, 2.0]},
            TypeError,
            "boundaries must be a list of numbers, got 10 of type int",
        ),
        (
            {"values": "abc"},
            TypeError,
            "values must be a list of numbers, got 'abc' of type str",
        ),
        (
            {"boundaries": list(range(10_001)), "values": [0.0] * 10_002},
            ValueError,
            "boundaries must have 1 to 10000 entries, got 10001",
        ),
    ],
)
def test_bad_arguments_are_refused_naming_the_field(kwargs, error, message):
    arguments = {"boundaries": [10, 20], "values": [1.0, 2.0, 3.0], **kwargs}
    for build in (PiecewiseConstantDecay, jaxdecay.piecewise_constant_decay):
        with pytest.raises(error) as raised:
            build(**arguments)
        assert str(raised.value) == message


def test_what_keras_computes_finitely_is_accepted():
    """Integral float boundaries (as that integer), negative boundaries, integer
    values, one boundary, and NumPy arrays."""
    config = PiecewiseConstantDecay([100.0, 200], [1, 2, 3])
    assert config.boundaries == (100, 200) and config.values == (1.0, 2.0, 3.0)
    negative = PiecewiseConstantDecay([-10, -5], [1.0, 2.0, 3.0])
    steps = jnp.asarray([-11, -10, -9, -5, -4, 0], jnp.int32)
    assert np.asarray(negative(steps)).tolist() == [1, 1, 2, 2, 3, 3]
    with jax.numpy_dtype_promotion("standard"):
        theirs = KerasPiecewise([-10, -5], [1.0, 2.0, 3.0])(steps)
    assert np.asarray(theirs).tolist() == [1, 1, 2, 2, 3, 3]
    array = PiecewiseConstantDecay(np.asarray([5, 6]), np.asarray([1.0, 2.0, 3.0]))
    assert array == PiecewiseConstantDecay([5, 6], [1.0, 2.0, 3.0])
    assert PiecewiseConstantDecay([0], [1.0, 2.0])(1) == 2.0


def test_equality_hashing_and_pickling():
    import pickle

    a = PiecewiseConstantDecay([10, 20], [1.0, 0.0, 3.0])
    assert a == PiecewiseConstantDecay((10, 20), (1, 0, 3))
    assert hash(a) == hash(PiecewiseConstantDecay((10, 20), (1, 0, 3)))
    assert a != PiecewiseConstantDecay([10, 20], [1.0, -0.0, 3.0])
    assert a != PiecewiseConstantDecay([10, 21], [1.0, 0.0, 3.0])
    assert pickle.loads(pickle.dumps(a)) == a


def test_optax_is_refused_with_the_reason():
    schedule = PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.25])
    for call in (schedule.to_optax, schedule.optax_kwargs):
        with pytest.raises(ValueError) as raised:
            call()
        message = str(raised.value)
        assert message.startswith("optax has no schedule like PiecewiseConstantDecay")
        assert "multiplies scales" in message and "b + 1" in message


def test_optax_agrees_where_a_mapping_exists_and_not_at_float_steps():
    """Halving values reproduce optax's scales bit for bit at integer steps, with
    optax's boundary at b + 1; at b + 0.5 optax has not jumped yet."""
    ours = PiecewiseConstantDecay([10, 20, 30], [0.1, 0.05, 0.025, 0.0125])
    theirs = optax.piecewise_constant_schedule(0.1, {11: 0.5, 21: 0.5, 31: 0.5})
    steps = jnp.arange(0, 40, dtype=jnp.int32)
    with jax.numpy_dtype_promotion("standard"):  # optax's own promotion
        assert bits(ours(steps)) == bits(np.asarray(theirs(steps), FLOAT))
        assert ours(10.5) == FLOAT.type(0.05) and theirs(10.5) == FLOAT.type(0.1)


# ---------------------------------------------------------------------------
# Keras: the signature, the values, and serialization both ways.
# ---------------------------------------------------------------------------


def test_constructor_signature_matches_keras():
    import inspect

    ours = inspect.signature(PiecewiseConstantDecay).parameters
    theirs = inspect.signature(KerasPiecewise).parameters
    assert list(ours) == list(theirs)
    for name, parameter in theirs.items():
        assert ours[name].default == parameter.default, name


KERAS_ARGS = [
    ([100000, 110000], [1.0, 0.5, 0.1]),
    ([0], [0.3, 0.2], "custom"),
    ([10, 20, 30, 40], [0.1, 0.01, 0.001, 1e-4, 1e-5], None),
    ([-5, 2**31 - 2], [1.5, 2.5, 3.5]),
]


@pytest.mark.parametrize("args", KERAS_ARGS)
def test_matches_keras_at_int32_steps(args):
    boundaries, values = args[:2]
    near = steps_near(boundaries, np.int32)
    steps = np.concatenate([near, np.arange(-3, 50), [2**31 - 1]]).astype(np.int32)
    with jax.numpy_dtype_promotion("standard"):
        theirs = np.asarray(KerasPiecewise(boundaries, values)(jnp.asarray(steps)))
    ours = np.asarray(PiecewiseConstantDecay(*args)(jnp.asarray(steps)))
    assert bits(ours) == bits(theirs.astype(FLOAT))


@pytest.mark.parametrize("args", KERAS_ARGS)
def test_keras_serialized_loads_in_jaxdecay(args):
    """Keras 3's shape (lists), as a dict and as JSON text, and TF 2's (whose
    default name was None)."""
    data = keras.optimizers.schedules.serialize(KerasPiecewise(*args))
    assert data["class_name"] == "PiecewiseConstantDecay"
    expected_config = PiecewiseConstantDecay(*args)
    tf2 = {"class_name": data["class_name"], "config": data["config"]}
    for shape in (data, json.dumps(data), tf2, json.dumps(tf2)):
        loaded = jaxdecay.deserialize(shape)
        assert type(loaded) is PiecewiseConstantDecay
        assert loaded == expected_config
    tf2_default = {**tf2, "config": {**tf2["config"], "name": None}}
    assert jaxdecay.deserialize(json.dumps(tf2_default)).name is None
    assert PiecewiseConstantDecay.from_json(json.dumps(data)) == expected_config
    bare = KerasPiecewise(*args[:2]).get_config()
    assert jaxdecay.deserialize(bare) == PiecewiseConstantDecay(*args[:2])


@pytest.mark.parametrize("args", KERAS_ARGS)
def test_jaxdecay_serialized_loads_in_keras(args):
    schedule = PiecewiseConstantDecay(*args)
    for data in (jaxdecay.serialize(schedule), json.loads(schedule.to_json())):
        assert "jaxdecay_format" not in data
        loaded = keras.optimizers.schedules.deserialize(data)
        assert type(loaded) is KerasPiecewise
        assert loaded.get_config() == schedule.get_config()
    assert PiecewiseConstantDecay.from_json(schedule.to_json()) == schedule


def test_floats_and_big_boundaries_read_back_bit_for_bit():
    schedule = PiecewiseConstantDecay(
        [INT64_MIN, 2**53 + 1, INT64_MAX], [0.1, 1e-30, -0.0, 3.4e38]
    )
    text = schedule.to_json()
    assert json.loads(text)["config"]["boundaries"][-1] == INT64_MAX
    assert jaxdecay.deserialize(text) == schedule


@pytest.mark.parametrize(
    ("boundaries", "error", "message"),
    [
        (
            [[10], 20],
            TypeError,
            "boundaries[0] must be a number, got [10] of type list",
        ),
        (
            {"a": 1},
            TypeError,
            "boundaries must be a list of numbers, got {'a': 1} of type dict",
        ),
        (
            "[10]",
            TypeError,
            "boundaries must be a list of numbers, got '[10]' of type str",
        ),
    ],
)
def test_the_loader_refuses_nested_and_wrong_containers(boundaries, error, message):
    data = {
        "class_name": "PiecewiseConstantDecay",
        "config": {"boundaries": boundaries, "values": [1.0, 2.0, 3.0]},
    }
    with pytest.raises(error) as raised:
        jaxdecay.deserialize(json.dumps(data))
    assert str(raised.value) == message


def test_a_batch_is_not_serialized():
    batch = stack(
        [
            PiecewiseConstantDecay([1, 2], [1.0, 2.0, 3.0]),
            PiecewiseConstantDecay([3, 4], [1.0, 2.0, 3.0]),
        ]
    )
    with pytest.raises(TypeError, match="cannot serialize boundaries"):
        batch.get_config()


def test_exported_programs_take_the_config():
    from jax import export

    config = PiecewiseConstantDecay([100, 2**40], [0.1, 0.05, 0.01])
    steps = jnp.arange(0, 5000, 50, dtype=jnp.int32)
    exported = export.export(jax.jit(lambda c, s: c(s)))(config, steps)
    restored = export.deserialize(exported.serialize())
    other = PiecewiseConstantDecay([7, 2000], [1.0, 2.0, 3.0])
    assert bits(restored.call(config, steps)) == bits(config(steps))
    assert bits(restored.call(other, steps)) == bits(other(steps))


# ---------------------------------------------------------------------------
# The command line reads the curve through the family's View.
# ---------------------------------------------------------------------------

PIECEWISE = {
    "class_name": "PiecewiseConstantDecay",
    "config": {
        "boundaries": [1000, 2000],
        "values": [0.1, 0.05, 0.01],
        "name": "PiecewiseConstant",
    },
}


def test_show_prints_the_curve(capsys):
    from jaxdecay import _cli

    assert _cli.main(["show", json.dumps(PIECEWISE), "--steps=1000,1001,2001"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [["1000", "0.1"], ["1001", "0.05"], ["2001", "0.01"]]
    assert _cli.main(["show", json.dumps(PIECEWISE)]) == 0
    steps = [int(line.split()[0]) for line in capsys.readouterr().out.splitlines()[1:]]
    assert steps[-1] == 4000  # the horizon: twice the last boundary


def test_plot_draws_the_steps(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from jaxdecay import _cli, _plot

    config = jaxdecay.deserialize(PIECEWISE)
    steps, note = _plot.plot_grid(config, 10_000)
    assert note is None
    assert {1000, 1001, 2000, 2001} <= set(steps.tolist())
    path = tmp_path / "lr.png"
    assert _cli.main(["plot", json.dumps(PIECEWISE), "-o", str(path)]) == 0
    assert path.stat().st_size > 1000
    assert (
        _config.formula(config)
        == "0.1 if step <= 1000 else 0.05 if step <= 2000 else 0.01"
    )


def test_convert_to_optax_is_refused_and_to_json_works(capsys):
    from jaxdecay import _cli

    assert _cli.main(["convert", json.dumps(PIECEWISE), "--to", "optax"]) == 2
    assert (
        "optax has no schedule like PiecewiseConstantDecay" in capsys.readouterr().err
    )


def test_registered_and_exported():
    assert jaxdecay.PiecewiseConstantDecay is PiecewiseConstantDecay
    assert {"PiecewiseConstantDecay", "piecewise_constant_decay"} <= set(
        jaxdecay.__all__
    )
    from jaxdecay import _registry

    assert _registry.FAMILIES["PiecewiseConstantDecay"] is PiecewiseConstantDecay
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert repr(jaxdecay.piecewise_constant_decay([1], [1.0, 2.0])).startswith(
            "piecewise_constant_decay("
        )


def test_the_host_prepares_the_programs_bits():
    config = PiecewiseConstantDecay(
        [INT64_MIN, -(2**31) - 1, -(2**31), -1, 0, 2**31 - 1, 2**31, 2**32, INT64_MAX],
        [float(i) for i in range(10)],
    )
    schedule = config._schedule
    floats, words = _program.pack(schedule._plan, schedule._arguments)
    host = _program._prepare_host(schedule._plan, floats, words)
    traced = _program._prepare_program(schedule._plan)(floats, words)
    for a, b in zip(host, traced, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert (a.dtype, a.shape, a.tobytes()) == (b.dtype, b.shape, b.tobytes())


def test_yaml_and_omegaconf_read_the_lists(tmp_path):
    pytest.importorskip("yaml")
    omegaconf = pytest.importorskip("omegaconf")
    expected_config = PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.25])
    path = tmp_path / "lr.yaml"
    path.write_text(
        "class_name: PiecewiseConstantDecay\n"
        "config:\n  boundaries: [10, 20]\n  values: [1.0, 0.5, 0.25]\n"
    )
    assert PiecewiseConstantDecay.load(path) == expected_config
    config = omegaconf.OmegaConf.create(
        {"boundaries": [10, 20], "values": [1, 0.5, 0.25]}
    )
    assert PiecewiseConstantDecay.from_config(config) == expected_config
    schema = jaxdecay._interop.SCHEMAS["PiecewiseConstantDecay"]
    structured = omegaconf.OmegaConf.structured(schema([10, 20], [1.0, 0.5, 0.25]))
    assert omegaconf.OmegaConf.to_object(structured).boundaries == [10, 20]
