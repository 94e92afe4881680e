"""ExponentialDecay as an optax learning rate, checked against hand-computed SGD.

decay_rate=0.5 with decay_steps=1 makes the rates exact: lr_k = 0.1 * 0.5**k =
0.1, 0.05, 0.025, 0.0125 at update k = 0, 1, 2, 3. Params are in JAX's default float
dtype because optax's SGD multiplies the learning rate into the gradient without a
cast, which strict promotion refuses for a float64 rate and float32 params.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

chex = pytest.importorskip("chex")
optax = pytest.importorskip("optax")

from jaxdecay import ExponentialDecay, exponential_decay

# Linear loss c . p, gradient c: after k updates p = p0 - (lr_0 + ... + lr_{k-1}) c.
C = [3.0, -1.0]
P0 = [1.0, -2.0]
LINEAR_EXPECTED = [
    [1.0, -2.0],
    [1.0 - 0.1 * 3, -2.0 + 0.1],  # [0.7, -1.9]
    [0.7 - 0.05 * 3, -1.9 + 0.05],  # [0.55, -1.85]
    [0.55 - 0.025 * 3, -1.85 + 0.025],  # [0.475, -1.825]
    [0.475 - 0.0125 * 3, -1.825 + 0.0125],  # [0.4375, -1.8125]
]
# Quadratic loss |p|^2 / 2, gradient p: each update multiplies p by (1 - lr_k).
Q0 = [2.0, -4.0]
QUADRATIC_EXPECTED = [
    [2.0, -4.0],
    [2.0 * 0.9, -4.0 * 0.9],
    [2.0 * 0.9 * 0.95, -4.0 * 0.9 * 0.95],
    [2.0 * 0.9 * 0.95 * 0.975, -4.0 * 0.9 * 0.95 * 0.975],
    [2.0 * 0.9 * 0.95 * 0.975 * 0.9875, -4.0 * 0.9 * 0.95 * 0.975 * 0.9875],
]
RTOL = 1e-6  # four float32 updates of O(1) numbers: a few ulp of rounding


def make_step(optimizer, loss):
    def step(params, state):
        grads = jax.grad(loss)(params)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step


def linear_loss(params):
    return jnp.vdot(jnp.asarray(C, params.dtype), params)


def quadratic_loss(params):
    return 0.5 * jnp.vdot(params, params)


@pytest.mark.parametrize(
    ("loss", "start", "expected"),
    [(linear_loss, P0, LINEAR_EXPECTED), (quadratic_loss, Q0, QUADRATIC_EXPECTED)],
    ids=["linear", "quadratic"],
)
@pytest.mark.parametrize(
    "schedule",
    [ExponentialDecay(0.1, 1, 0.5), exponential_decay(0.1, 1, 0.5)],
    ids=["dataclass", "function"],
)
def test_sgd_follows_hand_computed_path(
    variant, schedule, loss, start, expected, float_dtype
):
    """optax.sgd(learning_rate=schedule): four updates give the hand-computed params."""
    optimizer = optax.sgd(learning_rate=schedule)
    step = variant(make_step(optimizer, loss))
    params = jnp.asarray(start, float_dtype)
    state = optimizer.init(params)
    for k in range(1, 5):
        params, state = step(params, state)
        assert params.dtype == float_dtype
        np.testing.assert_allclose(
            params, expected[k], rtol=RTOL, err_msg=f"update {k}"
        )


def test_jitted_update_compiles_once(float_dtype):
    """The jitted update step traces once across the four updates."""
    optimizer = optax.sgd(learning_rate=ExponentialDecay(0.1, 1, 0.5))
    step = jax.jit(chex.assert_max_traces(make_step(optimizer, linear_loss), n=1))
    params = jnp.asarray(P0, float_dtype)
    state = optimizer.init(params)
    for _ in range(4):
        params, state = step(params, state)
    np.testing.assert_allclose(params, LINEAR_EXPECTED[4], rtol=RTOL)


def test_inject_hyperparams_reports_the_rate(variant, float_dtype):
    """inject_hyperparams(optax.sgd)(learning_rate=schedule) updates like sgd, and its
    state's hyperparams['learning_rate'] is the rate of the last update (optax
    evaluates the schedule at the count before the update; lr(0) after init)."""
    optimizer = optax.inject_hyperparams(optax.sgd)(
        learning_rate=ExponentialDecay(0.1, 1, 0.5)
    )
    step = variant(make_step(optimizer, linear_loss))
    params = jnp.asarray(P0, float_dtype)
    state = optimizer.init(params)
    rates = [0.1, 0.1, 0.05, 0.025, 0.0125]  # after init, then after updates 1..4
    np.testing.assert_allclose(state.hyperparams["learning_rate"], rates[0], rtol=RTOL)
    for k in range(1, 5):
        params, state = step(params, state)
        rate = state.hyperparams["learning_rate"]
        assert rate.dtype == float_dtype
        np.testing.assert_allclose(rate, rates[k], rtol=RTOL, err_msg=f"update {k}")
        np.testing.assert_allclose(params, LINEAR_EXPECTED[k], rtol=RTOL)


def test_staircase_with_transition_begin_in_sgd(variant, float_dtype):
    """staircase=True, transition_begin=1, decay_steps=2: rates 0.1, 0.1, 0.1, 0.05
    for updates 0..3 (the decay starts after step 1; a stair is two steps)."""
    schedule = ExponentialDecay(0.1, 2, 0.5, staircase=True, transition_begin=1)
    optimizer = optax.sgd(learning_rate=schedule)
    step = variant(make_step(optimizer, linear_loss))
    params = jnp.asarray(P0, float_dtype)
    state = optimizer.init(params)
    for _ in range(4):
        params, state = step(params, state)
    total = 0.1 + 0.1 + 0.1 + 0.05
    np.testing.assert_allclose(params, [1.0 - total * 3, -2.0 + total], rtol=RTOL)


OPTAX_UNDER_JIT = {
    # README's comparison: what optax's schedules take as traced values.
    "decay_rate": (
        lambda r: optax.exponential_decay(0.1, 1000, r)(5),
        lambda r: ExponentialDecay(0.1, 1000, r)(5),
        0.5,
    ),
    "transition_steps": (
        lambda n: optax.exponential_decay(0.1, n, 0.5)(5),
        lambda n: ExponentialDecay(0.1, n, 0.5)(5),
        1000,
    ),
    "warmup_steps": (
        lambda w: optax.warmup_exponential_decay_schedule(0.0, 0.1, w, 1000, 0.5)(5),
        lambda w: ExponentialDecay(0.1, 1000, 0.5, warmup_steps=w)(5),
        10,
    ),
}


@pytest.mark.parametrize("field", OPTAX_UNDER_JIT)
def test_optax_fails_on_a_traced_rate_length_or_warmup_and_jaxdecay_does_not(field):
    """optax compiles a sweep over init_value built inside the traced function, but
    a traced decay_rate, transition_steps or warmup length fails in its Python
    checks; jaxdecay takes each as data and gives its value's bits."""
    optax_schedule, jaxdecay_schedule, value = OPTAX_UNDER_JIT[field]
    with pytest.raises(jax.errors.TracerBoolConversionError):
        jax.jit(optax_schedule)(value)
    traced = jax.jit(jaxdecay_schedule)(value)
    assert (
        np.asarray(traced).tobytes() == np.asarray(jaxdecay_schedule(value)).tobytes()
    )
    init = jax.jit(lambda i: optax.exponential_decay(i, 1000, 0.5)(5))(0.1)
    np.testing.assert_allclose(init, 0.1 * 0.5 ** (5 / 1000), rtol=1e-6)
