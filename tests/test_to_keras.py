"""to_keras(): jaxdecay's schedules inside Keras 3 on the JAX backend.

Keras' own checks of its ExponentialDecay (the values at steps, the staircase, a
variable as the step, the config round trip, and the `fit` flow of
`TestFitLRSchedulesFlow`), with Keras' numbers, run against `to_keras()`; every
family's bits reach the optimizer inside `model.fit`; Keras saves and loads the
schedule, alone and in a model.
"""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from _reference import bits, builder_of

import jaxdecay
import jaxdecay.keras
from jaxdecay import _keras
from jaxdecay._registry import FAMILIES

assert keras.backend.backend() == "jax", "conftest.py sets KERAS_BACKEND=jax"

FLOAT = np.dtype(jnp.result_type(float))  # float32, or float64 under x64
# One schedule of each family, with a change within the 12 steps of the fits below.
SCHEDULES = {
    "ExponentialDecay": jaxdecay.ExponentialDecay(0.1, 3, 0.5, staircase=True),
    "InverseTimeDecay": jaxdecay.InverseTimeDecay(0.1, 2, 0.5),
    "PolynomialDecay": jaxdecay.PolynomialDecay(0.1, 4, 0.01, 2.0, cycle=True),
    "CosineDecay": jaxdecay.CosineDecay(
        0.05, 8, 0.1, warmup_target=0.1, warmup_steps=3
    ),
    "PiecewiseConstantDecay": jaxdecay.PiecewiseConstantDecay(
        [2, 5, 9], [0.1, 0.05, 0.02, 0.01]
    ),
}
# And one that uses jaxdecay's extension keys, which Keras' own class refuses.
EXTENDED = jaxdecay.ExponentialDecay(
    0.1, 3, 0.5, name=None, transition_begin=2, end_learning_rate=0.02, warmup_steps=2
)
# And warmup, hold, decay: the hold piece's `transition_begin`, an extension key too.
HOLD = jaxdecay.CosineDecay(
    0.05, 8, 0.1, warmup_target=0.1, warmup_steps=2, transition_begin=3
)
EVERY = {**SCHEDULES, "extended": EXTENDED, "hold": HOLD}


def test_every_family_has_a_schedule_here():
    """The tests below run for every family: a new one needs its schedule above."""
    assert {type(s).__name__ for s in SCHEDULES.values()} == set(FAMILIES)


# ---------------------------------------------------------------------------
# A Keras variable as the step: eagerly, in jit, and as Keras' jitted train step
# reads it (its value traced, through a StatelessScope).
# ---------------------------------------------------------------------------


def train_step_reader(schedule, variable):
    """`schedule(variable)` as Keras' jitted train step reads it: the variable's
    value traced, through a StatelessScope (one program for every value)."""

    @jax.jit
    def train_step(value):
        with keras.StatelessScope(state_mapping=[(variable, value)]):
            return schedule(variable)

    return lambda: train_step(variable.value)


READERS = {
    "eager": lambda schedule, variable: lambda: schedule(variable),
    "train-step": train_step_reader,
}


@pytest.fixture(params=list(READERS))
def reader(request):
    return READERS[request.param]


@pytest.mark.parametrize("name", list(EVERY))
@pytest.mark.parametrize("dtype", ["int32", "float32"])
def test_a_variable_step_has_the_bits_of_its_integer(reader, name, dtype):
    """Every schedule, its builder's function and its `to_keras()` take a Keras
    variable, such as an optimizer's `iterations`, as the step, with the bits
    of the same integer step."""
    schedule = EVERY[name]
    variable = keras.Variable(0, dtype=dtype, trainable=False)
    for form in (schedule, builder_of(schedule), schedule.to_keras()):
        read = reader(form, variable)
        for step in (0, 1, 2, 3, 5, 9, 100):
            variable.assign(step)
            assert bits(read()) == bits(schedule(step)), (form, step)


# ---------------------------------------------------------------------------
# Keras' ExponentialDecayTest, with its numbers, against to_keras().
# ---------------------------------------------------------------------------


def assert_keras_close(actual, expected):
    """Keras' tests' `assertAllClose` default: atol = rtol = 1e-6."""
    np.testing.assert_allclose(np.asarray(actual), expected, atol=1e-6, rtol=1e-6)


def test_keras_config_round_trip():
    """Keras' test_config: `from_config(get_config())` and Keras' generic
    serializer through JSON give the same config and attributes; the config is
    the one Keras' own ExponentialDecay has for the same arguments."""
    arguments = {
        "initial_learning_rate": 0.05,
        "decay_steps": 10,
        "decay_rate": 0.96,
        "staircase": True,
        "name": "my_ed",
    }
    instance = jaxdecay.ExponentialDecay(**arguments).to_keras()
    config = instance.get_config()
    assert (
        config == keras.optimizers.schedules.ExponentialDecay(**arguments).get_config()
    )
    revived = type(instance).from_config(config)
    assert json.dumps(revived.get_config()) == json.dumps(config)
    assert set(dir(revived)) == set(dir(instance))
    serialized = json.dumps(keras.saving.serialize_keras_object(instance))
    revived = keras.saving.deserialize_keras_object(json.loads(serialized))
    assert type(revived) is type(instance)
    assert json.dumps(revived.get_config()) == json.dumps(config)
    assert set(dir(revived)) == set(dir(instance))


def test_keras_continuous(variant):
    """Keras' test_continuous: step 5 of (0.05, 10, 0.96)."""
    schedule = jaxdecay.ExponentialDecay(0.05, 10, 0.96).to_keras()
    assert_keras_close(variant(schedule)(5), 0.05 * 0.96 ** (5.0 / 10.0))


def test_keras_staircase_and_variables(reader):
    """Keras' test_staircase and test_variables: a float variable as the step of
    (0.1, 3, 0.96, staircase=True), assigned 1, 2 and 100."""
    schedule = jaxdecay.ExponentialDecay(0.1, 3, 0.96, staircase=True).to_keras()
    step = keras.Variable(1.0)
    read = reader(schedule, step)
    assert_keras_close(read(), 0.1)
    for value, expected in ((1, 0.1), (2, 0.1), (100, 0.1 * 0.96 ** (100 // 3))):
        step.assign(value)
        assert_keras_close(read(), expected)


# ---------------------------------------------------------------------------
# model.fit.
# ---------------------------------------------------------------------------


class Recorder(keras.callbacks.Callback):
    """Keeps, for each batch, the optimizer's learning rate before it (read
    eagerly from its `iterations`) and the one its update applied (computed in
    the jitted train step, kept by `RecordingSGD`)."""

    def __init__(self):
        super().__init__()
        self.before, self.applied = [], []

    def on_train_batch_begin(self, batch, logs=None):
        optimizer = self.model.optimizer
        self.before.append((int(optimizer.iterations), optimizer.learning_rate))

    def on_train_batch_end(self, batch, logs=None):
        applied = getattr(self.model.optimizer, "applied", None)
        if applied is not None:
            self.applied.append(np.asarray(applied.value))


class RecordingSGD(keras.optimizers.SGD):
    """SGD that keeps the learning rate its last update applied."""

    def build(self, variables):
        super().build(variables)
        self.applied = self.add_variable((), dtype=FLOAT.name, name="applied")

    def update_step(self, gradient, variable, learning_rate):
        self.applied.assign(learning_rate)
        super().update_step(gradient, variable, learning_rate)


def fit(optimizer, epochs=3):
    """Keras' TestFitLRSchedulesFlow: Dense(2) from ones, 16 samples in batches
    of 4, not shuffled: 4 steps an epoch. Returns the losses, the recorder and
    the model."""
    model = keras.Sequential(
        [keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="ones")]
    )
    model.compile(optimizer=optimizer, loss="mse")
    x = np.arange(32, dtype=np.float32).reshape((16, 2))
    recorder = Recorder()
    history = model.fit(
        x,
        x,
        epochs=epochs,
        batch_size=4,
        shuffle=False,
        verbose=0,
        callbacks=[recorder],
    )
    return history.history["loss"], recorder, model


def test_keras_fit_flow():
    """Keras' TestFitLRSchedulesFlow with `to_keras()`: Adam and ExponentialDecay
    (0.05, 1, 0.9) give Keras' losses, and the optimizer's learning rate at each
    of the 12 steps has the schedule's bits."""
    schedule = jaxdecay.ExponentialDecay(0.05, decay_steps=1, decay_rate=0.9)
    optimizer = keras.optimizers.Adam(learning_rate=schedule.to_keras())
    assert len(optimizer.variables) == 1
    assert optimizer.variables[0] == 0
    losses, recorder, _ = fit(optimizer)
    assert optimizer.variables[0] == 4 * 3
    np.testing.assert_allclose(
        losses, [230.79457092285156, 128.30319213867188, 79.33648681640625], rtol=5e-5
    )
    assert [step for step, _ in recorder.before] == list(range(12))
    for step, learning_rate in recorder.before:
        assert bits(learning_rate) == bits(schedule(step)), step


@pytest.mark.parametrize("name", list(EVERY))
def test_fit_applies_the_schedules_bits(name):
    """In `model.fit`, the learning rate of each update, as the jitted train step
    computed it, and the optimizer's learning rate before it have the bits of
    the schedule at that iteration."""
    schedule = EVERY[name]
    _, recorder, _ = fit(RecordingSGD(learning_rate=schedule.to_keras()))
    expected = [bits(schedule(step)) for step in range(12)]
    assert [step for step, _ in recorder.before] == list(range(12))
    assert [bits(lr) for _, lr in recorder.before] == expected
    assert [bits(lr) for lr in recorder.applied] == expected


def test_fit_trains_as_with_keras_own_schedule():
    """The same training with Keras' own ExponentialDecay: learning rates within
    Keras' float32 accuracy (2e-6, see test_keras.py), and so losses and
    weights after 12 SGD steps within 1e-5."""
    arguments = (0.01, 3, 0.5)
    ours = fit(keras.optimizers.SGD(jaxdecay.ExponentialDecay(*arguments).to_keras()))
    keras_schedule = keras.optimizers.schedules.ExponentialDecay(*arguments)
    # Keras' own schedule breaks strict promotion under x64 (see test_keras.py).
    with jax.numpy_dtype_promotion("standard"):
        theirs = fit(keras.optimizers.SGD(keras_schedule))
    rates = [[float(lr) for _, lr in run[1].before] for run in (ours, theirs)]
    np.testing.assert_allclose(rates[0], rates[1], rtol=2e-6)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-5)
    for mine, keras_weight in zip(ours[2].weights, theirs[2].weights, strict=True):
        np.testing.assert_allclose(mine.value, keras_weight.value, rtol=1e-5)


# ---------------------------------------------------------------------------
# Keras' generic serializer, jaxdecay's loader and saved models.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EVERY))
def test_keras_serializer_round_trip(name):
    """`serialize_keras_object` of `to_keras()` names jaxdecay's class; Keras
    reads it back with no custom_objects, and jaxdecay.deserialize reads it as
    the schedule, as a dict and as JSON text."""
    schedule = EVERY[name]
    family = type(schedule).__name__
    data = keras.saving.serialize_keras_object(schedule.to_keras())
    assert data == {
        "module": "jaxdecay.keras",
        "class_name": family,
        "config": schedule.get_config(),
        "registered_name": f"jaxdecay>{family}",
    }
    text = json.dumps(data)
    loaded = keras.saving.deserialize_keras_object(json.loads(text))
    assert type(loaded) is getattr(jaxdecay.keras, family)
    assert loaded.schedule == schedule
    assert keras.optimizers.schedules.deserialize(data).schedule == schedule
    assert jaxdecay.deserialize(data) == schedule
    assert jaxdecay.deserialize(text) == schedule
    assert type(schedule).from_json(text) == schedule


# Keras' own Variable, converted by NumPy 2 as Keras saves a model's weights.
KERAS_NUMPY_WARNING = (
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


@pytest.mark.filterwarnings(KERAS_NUMPY_WARNING)
def test_saved_model_loads_with_the_schedule(tmp_path):
    """`model.save` and `keras.models.load_model`, with no custom_objects: the
    loaded optimizer's schedule is the schedule, and its learning rate has the
    schedule's bits at the saved iteration."""
    schedule = EVERY["extended"]
    _, _, model = fit(keras.optimizers.SGD(schedule.to_keras()), epochs=1)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert int(loaded.optimizer.iterations) == 4
    assert loaded.optimizer._learning_rate.schedule == schedule
    assert bits(loaded.optimizer.learning_rate) == bits(schedule(4))


LOAD_IN_A_NEW_PROCESS = """
import sys
import keras
import jaxdecay
try:
    keras.models.load_model(sys.argv[1])
except TypeError as error:
    print("without jaxdecay.keras:", "jaxdecay>ExponentialDecay" in str(error))
import jaxdecay.keras
optimizer = keras.models.load_model(sys.argv[1]).optimizer
print(optimizer._learning_rate.schedule == jaxdecay.deserialize(sys.argv[2]))
print(optimizer.learning_rate.item().hex())
"""


@pytest.mark.filterwarnings(KERAS_NUMPY_WARNING)
def test_a_new_process_loads_the_model_once_jaxdecay_keras_is_imported(tmp_path):
    """In a new process Keras finds the schedule's class once `jaxdecay.keras`
    is imported (and says which class it lacks before)."""
    schedule = jaxdecay.ExponentialDecay(0.1, 3, 0.5, staircase=True)
    _, _, model = fit(keras.optimizers.SGD(schedule.to_keras()), epochs=1)
    path = tmp_path / "model.keras"
    model.save(path)
    result = subprocess.run(
        [sys.executable, "-c", LOAD_IN_A_NEW_PROCESS, str(path), schedule.to_json()],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    expected = np.asarray(schedule(4)).item().hex()
    assert result.stdout.split("\n")[:3] == [
        "without jaxdecay.keras: True",
        "True",
        expected,
    ]


# ---------------------------------------------------------------------------
# The bridge's refusals, and what it imports.
# ---------------------------------------------------------------------------


def test_another_keras_backend_is_refused_by_name():
    """On Keras' NumPy backend, `to_keras()` and `import jaxdecay.keras` raise a
    RuntimeError naming the backend; `import jaxdecay` does not import Keras."""
    code = (
        "import sys, jaxdecay\n"
        "print('keras' in sys.modules)\n"
        "for make in (lambda: jaxdecay.ExponentialDecay(0.1, 3, 0.5).to_keras(),\n"
        "             lambda: __import__('jaxdecay.keras')):\n"
        "    try:\n"
        "        make()\n"
        "    except RuntimeError as error:\n"
        "        print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={**os.environ, "KERAS_BACKEND": "numpy"},
    )
    message = (
        "jaxdecay's Keras schedules need Keras' JAX backend, and Keras runs on "
        "'numpy': the schedules are JAX programs. Set KERAS_BACKEND=jax before "
        "Keras is imported"
    )
    assert result.stdout.split("\n")[:3] == ["False", message, message]


def test_without_keras_to_keras_names_the_extra(monkeypatch):
    monkeypatch.setattr(_keras, "_CLASSES", {})  # no class made yet
    monkeypatch.setitem(sys.modules, "keras", None)  # import keras raises
    with pytest.raises(ImportError, match=r"pip install 'jaxdecay\[keras\]'"):
        SCHEDULES["ExponentialDecay"].to_keras()


def test_one_class_per_family_registered_with_keras():
    """`jaxdecay.keras` holds one class per family, the one `to_keras()` makes,
    a Keras LearningRateSchedule registered as jaxdecay>Name."""
    assert jaxdecay.keras.__all__ == list(FAMILIES)
    for name, schedule in SCHEDULES.items():
        cls = getattr(jaxdecay.keras, name)
        assert type(schedule.to_keras()) is cls
        assert issubclass(cls, keras.optimizers.schedules.LearningRateSchedule)
        assert keras.saving.get_registered_object(f"jaxdecay>{name}") is cls
        assert (cls.__module__, cls.__name__) == ("jaxdecay.keras", name)
    with pytest.raises(AttributeError, match="PolynomialDecayX"):
        jaxdecay.keras.PolynomialDecayX  # noqa: B018


def test_a_keras_class_takes_the_familys_arguments():
    """As Keras' class of the same name: `jaxdecay.keras.ExponentialDecay(...)`."""
    made = jaxdecay.keras.ExponentialDecay(0.1, 3, 0.5, staircase=True)
    assert made.schedule == SCHEDULES["ExponentialDecay"]
    assert made(7) == SCHEDULES["ExponentialDecay"](7)
