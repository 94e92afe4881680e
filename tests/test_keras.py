"""Parity and config interop with Keras 3's ExponentialDecay (JAX backend)."""

import inspect
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

chex = pytest.importorskip("chex")
keras = pytest.importorskip("keras")

import jaxdecay
from jaxdecay import ExponentialDecay

assert keras.backend.backend() == "jax", "conftest.py sets KERAS_BACKEND=jax"

KerasExponentialDecay = keras.optimizers.schedules.ExponentialDecay

LIMIT = 2**20
# Keras-only arguments (no transition_begin/end_learning_rate). The rates are exact
# in float32 and |p * ln(decay_rate)| stays <= ~10 below 2**20, as for optax.
KERAS_CONFIGS = {
    "slow": (0.1, 1000, 1 - 2**-8),
    "growth": (1e-3, 1000, 1 + 2**-7),
    "halving": (0.1, 2**17, 0.5),
    "three-quarters": (0.1, 2**15, 0.75),
}


def keras_rtol(value):
    """Keras computes in the dtype of `initial_learning_rate` as it converts it:
    float32 normally (2e-6: its `decay_rate ** p` has the same |p ln r| * 2**-24
    error as optax's, see conftest.py), float64 under x64 (1e-13)."""
    return 2e-6 if np.asarray(value).dtype == np.float32 else 1e-13


def keras_values(schedule, steps):
    """Keras' values at `steps`. Keras 3 (3.15) breaks strict dtype promotion under
    x64 (its staircase `ops.floor` returns float32, then `ops.power` mixes that with
    float64), so the reference alone runs with standard promotion; jaxdecay stays
    strict. Keras also cannot *call* a schedule named None (its name_scope refuses
    it, though it loads one), so the reference is called under the default name."""
    if schedule.name is None:
        schedule = KerasExponentialDecay(
            **{**schedule.get_config(), "name": "ExponentialDecay"}
        )
    with jax.numpy_dtype_promotion("standard"):
        return schedule(jnp.asarray(steps))


def sample_steps():
    """4096 steps in [0, 2**20): stair edges k*decay_steps (and the step before) of
    the configs above, the rest at random; JAX's default int dtype."""
    rng = np.random.default_rng(3)
    edges = np.concatenate([np.arange(1, 9) * 2**15, np.arange(1, 200) * 1000])
    steps = np.concatenate([edges - 1, edges, [0, 1, LIMIT - 1]])
    steps = np.concatenate([steps, rng.integers(0, LIMIT, 4096 - steps.size)])
    return np.sort(steps).astype(jnp.result_type(int))


@pytest.mark.parametrize("name", list(KERAS_CONFIGS))
@pytest.mark.parametrize("staircase", [False, True], ids=["smooth", "staircase"])
def test_matches_keras(variant, name, staircase):
    """For steps >= 0 the schedule gives Keras' values for the same arguments."""
    args = (*KERAS_CONFIGS[name], staircase)
    steps = sample_steps()
    expected = keras_values(KerasExponentialDecay(*args), steps)
    actual = variant(ExponentialDecay(*args))(steps)
    assert actual.shape == expected.shape
    chex.assert_trees_all_close(actual, expected, rtol=keras_rtol(expected))


def test_constructor_signature_matches_keras():
    """Positional parameters and defaults are Keras' own, in Keras' order."""
    ours = inspect.signature(ExponentialDecay).parameters
    theirs = inspect.signature(KerasExponentialDecay).parameters
    positional = [
        name
        for name, parameter in ours.items()
        if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    assert positional == list(theirs)
    for name, parameter in theirs.items():
        assert ours[name].default == parameter.default, name


def test_get_config_matches_keras():
    """get_config equals Keras' get_config for the same arguments, keys in order."""
    args = (0.1, 1000, 0.96, True, "decay")
    ours = ExponentialDecay(*args).get_config()
    theirs = KerasExponentialDecay(*args).get_config()
    assert ours == theirs
    assert list(ours) == list(theirs)


@pytest.mark.parametrize(
    "args",
    [(0.1, 1000, 0.96), (0.25, 7, 1.5, True, "custom"), (1e-3, 1, 0.5, False, None)],
)
def test_keras_serialized_loads_in_jaxdecay(args):
    """keras.optimizers.schedules.serialize(...) loads with jaxdecay.deserialize,
    as a dict and as JSON text, into the equal ExponentialDecay."""
    data = keras.optimizers.schedules.serialize(KerasExponentialDecay(*args))
    expected = ExponentialDecay(*args)
    assert jaxdecay.deserialize(data) == expected
    assert jaxdecay.deserialize(json.dumps(data)) == expected
    assert ExponentialDecay.from_json(json.dumps(data)) == expected


@pytest.mark.parametrize(
    "schedule",
    [
        ExponentialDecay(0.1, 1000, 1 - 2**-8),
        ExponentialDecay(0.1, 2**15, 0.75, True, "stairs"),
        ExponentialDecay(1e-3, 1000, 1 + 2**-7, False, None),
    ],
)
def test_jaxdecay_serialized_loads_in_keras(variant, schedule):
    """keras.optimizers.schedules.deserialize(jaxdecay.serialize(s)) (and of
    json.loads(s.to_json())) is Keras' ExponentialDecay with the same config and
    the same values."""
    steps = sample_steps()
    for data in (jaxdecay.serialize(schedule), json.loads(schedule.to_json())):
        loaded = keras.optimizers.schedules.deserialize(data)
        assert type(loaded) is KerasExponentialDecay
        assert loaded.get_config() == schedule.get_config()
        expected = keras_values(loaded, steps)
        chex.assert_trees_all_close(
            variant(schedule)(steps), expected, rtol=keras_rtol(expected)
        )


def test_tf2_config_loads_in_both(variant):
    """A TF 2-shaped dict ({"class_name", "config"}, "name": None) loads into both,
    with the same config and the same values."""
    tf2 = {
        "class_name": "ExponentialDecay",
        "config": {
            "initial_learning_rate": 0.1,
            "decay_steps": 2**15,
            "decay_rate": 0.75,
            "staircase": True,
            "name": None,
        },
    }
    ours = jaxdecay.deserialize(tf2)
    theirs = keras.optimizers.schedules.deserialize(tf2)
    assert type(theirs) is KerasExponentialDecay
    assert ours == ExponentialDecay(0.1, 2**15, 0.75, True, None)
    assert ours.get_config() == theirs.get_config()
    steps = sample_steps()
    expected = keras_values(theirs, steps)
    chex.assert_trees_all_close(
        variant(ours)(steps), expected, rtol=keras_rtol(expected)
    )
