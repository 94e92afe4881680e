"""The short examples do what they print: the loss falls, configs round-trip, the
sweep compiles once, a Keras config needs no Keras and matches it.

Each example is loaded as a module and its functions are called here; the sharded
and resumed training are driven by test_multiprocess.py and test_resume.py.
"""

import importlib.util
import json
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("optax")

from _reference import bits

import jaxdecay

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("staircase", [False, True], ids=["smooth", "staircase"])
def test_train_sgd_trains_and_its_config_round_trips(staircase, tmp_path, capsys):
    example = load("train_sgd")
    schedule = jaxdecay.ExponentialDecay(0.2, 100, 0.5, staircase=staircase)
    initial_loss, final_loss = example.train(schedule, 400)
    assert final_loss < 0.1 * initial_loss
    reloaded = example.save_and_reload(schedule, 400, tmp_path)
    assert reloaded == schedule
    experiment = json.loads((tmp_path / "experiment.json").read_text())
    assert experiment["schedule"] == jaxdecay.serialize(schedule)
    probe_steps = jnp.array([0, 1, 99, 100, 250, 400])
    assert bits(reloaded(probe_steps)) == bits(schedule(probe_steps))


def test_lr_sweep_compiles_once_and_each_lane_is_its_config_alone():
    example = load("lr_sweep")
    x, y = example.make_data(jax.random.key(0))
    configs = [
        jaxdecay.ExponentialDecay(float(rate), decay_steps=50, decay_rate=0.7)
        for rate in np.geomspace(1e-3, 0.3, 16)
    ]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *configs)
    sweep = jax.jit(
        jax.vmap(example.train, in_axes=(0, None, None, None)), static_argnums=3
    )
    losses = np.asarray(sweep(stacked, x, y, 200))
    assert example.TRACES == 1
    best = int(np.nanargmin(losses))
    alone = float(jax.jit(example.train, static_argnums=3)(configs[best], x, y, 200))
    np.testing.assert_allclose(alone, losses[best], rtol=1e-5)


@pytest.mark.parametrize("name", ["KERAS_3_JSON", "TF_2_JSON"])
def test_keras_config_loads_trains_and_round_trips(name):
    example = load("keras_config")
    schedule = jaxdecay.deserialize(getattr(example, name))
    assert jaxdecay.deserialize(schedule.to_json()) == schedule
    initial_loss, final_loss = example.train_linear_model(schedule, 100)
    assert final_loss < 0.5 * initial_loss


def test_keras_config_runs_without_importing_keras():
    """In a new process (this one may hold Keras): load and train, no Keras."""
    code = (
        "import runpy, sys; sys.argv = ['keras_config.py', '--no-keras']; "
        f"runpy.run_path({str(EXAMPLES / 'keras_config.py')!r}, run_name='__main__'); "
        "assert 'keras' not in sys.modules, 'keras was imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "keras imported to load the schedules and train: False" in result.stdout


@pytest.mark.parametrize("name", ["KERAS_3_JSON", "TF_2_JSON"])
def test_keras_config_matches_keras(name):
    """Keras' own schedule from the same JSON: the same serialized dict, and learning
    rates within 1e-5 (Keras computes decay_rate ** (step / decay_steps) in float32,
    jaxdecay exp2 of a float32 exponent)."""
    keras = pytest.importorskip("keras")
    example = load("keras_config")
    data = json.loads(getattr(example, name))
    schedule = jaxdecay.deserialize(data)
    keras_schedule = keras.optimizers.schedules.deserialize(data)
    assert jaxdecay.serialize(schedule) == keras.optimizers.schedules.serialize(
        keras_schedule
    )
    keras_schedule.name = keras_schedule.name or "ExponentialDecay"
    steps = example.PROBE_STEPS
    # Keras' staircase mixes dtypes under x64: standard promotion for Keras only.
    with jax.numpy_dtype_promotion("standard"):
        keras_lrs = [float(keras_schedule(step)) for step in steps]
    np.testing.assert_allclose(schedule(np.array(steps)), keras_lrs, rtol=1e-5)
