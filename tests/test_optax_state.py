"""`current_learning_rate`: the learning rate the next update applies, from optax's
state, against the updates optax actually applies.

With unit gradients an SGD update is `-lr`: the update that follows a reading shows
the learning rate it applied. The schedule halves at every step from 0.5, so the
expected rates are exact binary numbers, and a count off by one is caught.
"""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

optax = pytest.importorskip("optax")

import jaxdecay

SCHEDULE = jaxdecay.ExponentialDecay(0.5, decay_steps=1, decay_rate=0.5)
HALVINGS = [0.5, 0.25, 0.125, 0.0625, 0.03125]  # 0.5 * 0.5**k, by hand
PARAMS = jnp.zeros(3)  # JAX's default float, as the schedule's


def readings_and_updates(optimizer, variant, steps, gradient=None, params=PARAMS):
    """Each step's reading before the update, and the update that follows it."""
    gradient = jnp.ones_like(params) if gradient is None else gradient

    @variant
    def step(state):
        learning_rate = jaxdecay.current_learning_rate(SCHEDULE, state)
        updates, state = optimizer.update(gradient, state, params)
        return learning_rate, updates, state

    state = optimizer.init(params)
    readings, updates = [], []
    for _ in range(steps):
        learning_rate, update, state = step(state)
        readings.append(learning_rate)
        updates.append(update)
    return readings, updates


def assert_applied(readings, updates):
    """Each update is -lr with the lr read before it, bit for bit."""
    for learning_rate, update in zip(readings, updates, strict=True):
        np.testing.assert_array_equal(update, jnp.full_like(update, -learning_rate))


@pytest.mark.parametrize(
    "optimizer",
    [
        optax.sgd(SCHEDULE),
        optax.chain(optax.clip(10.0), optax.sgd(SCHEDULE)),
        optax.named_chain(("clip", optax.clip(10.0)), ("sgd", optax.sgd(SCHEDULE))),
        optax.inject_hyperparams(optax.sgd)(learning_rate=SCHEDULE),
        optax.inject_hyperparams(optax.sgd, static_args="learning_rate")(
            learning_rate=SCHEDULE
        ),
    ],
    ids=["sgd", "chain", "named_chain", "inject", "inject_static"],
)
def test_sgd_applies_the_rate_read_before_the_update(optimizer, variant):
    readings, updates = readings_and_updates(optimizer, variant, len(HALVINGS))
    assert [float(lr) for lr in readings] == HALVINGS
    assert_applied(readings, updates)


@pytest.mark.parametrize(
    ("optimizer", "direction"),
    [
        (optax.adam(SCHEDULE), optax.scale_by_adam()),
        (
            optax.adamw(SCHEDULE, weight_decay=0.25),
            optax.chain(optax.scale_by_adam(), optax.add_decayed_weights(0.25)),
        ),
    ],
    ids=["adam", "adamw"],
)
def test_adam_update_is_the_direction_scaled_by_the_rate_read(
    optimizer, direction, variant
):
    """The update equals optax scaling Adam's direction (computed alongside, without
    a learning rate) by the rate read: a fresh `scale_by_learning_rate` with it."""
    params = jnp.linspace(-1.0, 1.0, 3)
    gradients = [jnp.asarray([0.5, -2.0, 3.0]) * (k + 1) for k in range(4)]

    @variant
    @jax.numpy_dtype_promotion("standard")
    def step(state, direction_state, gradient):
        learning_rate = jaxdecay.current_learning_rate(SCHEDULE, state)
        updates, state = optimizer.update(gradient, state, params)
        unscaled, direction_state = direction.update(gradient, direction_state, params)
        expected, _ = optax.scale_by_learning_rate(learning_rate).update(
            unscaled, optax.EmptyState()
        )
        return learning_rate, updates, expected, state, direction_state

    state, direction_state = optimizer.init(params), direction.init(params)
    readings = []
    for gradient in gradients:
        learning_rate, updates, expected, state, direction_state = step(
            state, direction_state, gradient
        )
        readings.append(float(learning_rate))
        np.testing.assert_array_equal(updates, expected)
    assert readings == HALVINGS[: len(gradients)]


def test_adam_first_update_by_hand(variant):
    """Adam's first update with gradient g is -lr * g / (|g| + eps): -lr * sign(g)
    up to eps. Here lr is 0.5."""
    with jax.numpy_dtype_promotion("standard"):
        readings, updates = readings_and_updates(
            optax.adam(SCHEDULE), variant, 1, gradient=jnp.asarray([2.0, -4.0, 8.0])
        )
    assert float(readings[0]) == 0.5
    # float32 bias corrections are off by a few ulp; half the rate is far off.
    np.testing.assert_allclose(updates[0], [-0.5, 0.5, -0.5], rtol=1e-5)


def test_a_number_injected_and_set_by_hand_is_what_is_read(variant):
    """With the learning rate injected as a number, the next update applies the
    number stored in the state; the schedule is not involved."""
    optimizer = optax.inject_hyperparams(optax.sgd)(learning_rate=0.3)
    state = optimizer.init(PARAMS)
    state.hyperparams["learning_rate"] = jnp.asarray(0.125, PARAMS.dtype)
    learning_rate = variant(jaxdecay.current_learning_rate)(SCHEDULE, state)
    update, _ = optimizer.update(jnp.ones_like(PARAMS), state, PARAMS)
    assert float(learning_rate) == 0.125
    assert_applied([learning_rate], [update])


@pytest.mark.parametrize("inner", ["plain", "inject"])
def test_multi_steps_counts_only_applied_updates(inner, variant):
    """With every_k_schedule=3, the rate advances every third mini-step, when the
    accumulated (mean, here unit) gradient is applied; the others apply zero."""
    every = 3
    if inner == "plain":
        sgd = optax.sgd(SCHEDULE)
    else:
        sgd = optax.inject_hyperparams(optax.sgd)(learning_rate=SCHEDULE)
    optimizer = optax.MultiSteps(sgd, every_k_schedule=every)
    with jax.numpy_dtype_promotion("standard"):
        readings, updates = readings_and_updates(optimizer, variant, 4 * every)
    expected = [lr for lr in HALVINGS[:4] for _ in range(every)]
    assert [float(lr) for lr in readings] == expected
    for k, (learning_rate, update) in enumerate(zip(readings, updates, strict=True)):
        if k % every == every - 1:
            assert_applied([learning_rate], [update])
        else:
            np.testing.assert_array_equal(update, jnp.zeros_like(update))


def test_a_state_without_a_schedule_count_is_refused():
    state = optax.adam(0.1).init(PARAMS)
    with pytest.raises(ValueError, match=r"no schedule count.*ScaleByScheduleState"):
        jaxdecay.current_learning_rate(SCHEDULE, state)


def test_a_state_with_two_schedule_counts_names_both():
    optimizer = optax.chain(optax.sgd(SCHEDULE), optax.sgd(SCHEDULE))
    state = optimizer.init(PARAMS)
    with pytest.raises(ValueError, match=r"2 schedule counts, at opt_state\[0\]\["):
        jaxdecay.current_learning_rate(SCHEDULE, state)
    # The part that belongs to one schedule is read.
    assert float(jaxdecay.current_learning_rate(SCHEDULE, state[1])) == 0.5


def test_a_schedule_that_is_not_callable_is_refused():
    state = optax.sgd(SCHEDULE).init(PARAMS)
    with pytest.raises(TypeError, match="schedule must be a step -> learning rate"):
        jaxdecay.current_learning_rate(0.1, state)


def test_a_stateful_schedule_without_a_count_is_refused():
    class Plateau(optax.schedules.StatefulSchedule):
        """A stateful schedule whose state is a learning rate, not a count."""

        def init(self):
            return {"rate": jnp.asarray(0.1)}

        def update(self, state, **extra_args):
            return state

        def __call__(self, state, **extra_args):
            return state["rate"]

    optimizer = optax.inject_hyperparams(optax.sgd)(learning_rate=Plateau())
    state = optimizer.init(PARAMS)
    with pytest.raises(TypeError, match="stateful schedule's dict"):
        jaxdecay.current_learning_rate(SCHEDULE, state)


def test_importing_jaxdecay_does_not_import_optax():
    code = "import sys, jaxdecay; print('optax' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
