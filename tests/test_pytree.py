"""ExponentialDecay as a pytree: hyperparameters as data, sweeps in one compile."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

chex = pytest.importorskip("chex")
optax = pytest.importorskip("optax")
pytest.importorskip("mpmath")

from _reference import reference, ulp_distance

from jaxdecay import ExponentialDecay, exponential_decay
from jaxdecay._program import compute_dtype

RATES = np.geomspace(1e-3, 0.3, 16)


def stack(configs):
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *configs)


def test_leaves_are_the_numbers_and_the_rest_is_static():
    """The numeric hyperparameters are leaves, the floats in the compute dtype and
    the integers as their high and low words (exact without x64), then the two
    arrays of constants prepared from them; staircase and name are not."""
    config = ExponentialDecay(0.1, 2**40 + 1000, 0.5, True, "lr", transition_begin=7)
    leaves, treedef = jax.tree.flatten(config)
    # end_learning_rate=None has no leaf.
    compute = compute_dtype()
    numbers = [compute.type(0.1), 2**8, 1000, compute.type(0.5), 0, 7, 0, 0, 0.0]
    assert leaves[: len(numbers)] == numbers
    assert [np.asarray(leaves[i]).dtype for i in (0, 3, 8)] == [compute] * 3
    # Two arrays of constants per part: the decay's, and the unused warmup's zeros.
    constants = config._schedule.prepared()
    assert len(leaves) == len(numbers) + 4
    for leaf, array in zip(leaves[len(numbers) :], constants, strict=False):
        np.testing.assert_array_equal(leaf, array)
    assert [np.size(leaf) for leaf in leaves[-2:]] == [1, 1]
    assert [np.asarray(leaf).dtype for leaf in leaves[1:3]] == [np.int32, np.uint32]
    # Arrays, not NumPy scalars, which orbax's StandardSave (before 0.12) refuses.
    words = leaves[1:3] + leaves[4:8]
    assert all(type(leaf) is np.ndarray for leaf in words)
    # Rebuilt, the config holds its floats as the compute dtype holds them.
    rebuilt = jax.tree.unflatten(treedef, leaves)
    as_computed = dataclasses.replace(
        config,
        initial_learning_rate=compute.type(0.1),
        decay_rate=compute.type(0.5),
        warmup_init=compute.type(0.0),
    )
    assert rebuilt == as_computed
    assert rebuilt(2.0**41).tobytes() == config(2.0**41).tobytes()
    other = jax.tree.structure(dataclasses.replace(config, staircase=False))
    assert other != treedef
    paths = [
        jax.tree_util.keystr(path)
        for path, _ in jax.tree_util.tree_leaves_with_path(config)
    ]
    assert paths == [
        ".initial_learning_rate",
        ".decay_steps.hi",
        ".decay_steps.lo",
        ".decay_rate",
        ".transition_begin.hi",
        ".transition_begin.lo",
        ".warmup_steps.hi",
        ".warmup_steps.lo",
        ".warmup_init",
        *(f"._constants{i}" for i in range(4)),
    ]


def test_new_values_never_retrace():
    """A jitted function of the config traces once for 16 learning rates."""

    @jax.jit
    @chex.assert_max_traces(n=1)
    def learning_rate(config, step):
        return config(step)

    for rate in RATES:
        config = ExponentialDecay(float(rate), 1000, 0.5, transition_begin=10)
        # Hand-worked: 2000 steps after the start is two halvings.
        chex.assert_trees_all_close(
            learning_rate(config, 2010), jnp.asarray(rate / 4), rtol=1e-6
        )


@pytest.mark.parametrize("staircase", [False, True], ids=["smooth", "staircase"])
def test_traced_hyperparameters_within_one_ulp(staircase):
    """With the config as a jit argument the values stay within 1 ulp of a 256-bit
    mpmath reference (the numbers are exact in float32, so traced float32 leaves
    carry them unrounded)."""
    steps = [0, 1, 999, 1000, 1001, 12_345, 10**6, 10**7 + 1, 2**31 - 1]
    config = ExponentialDecay(0.125, 1000, 0.75, staircase)
    got = np.asarray(jax.jit(lambda c, s: c(s))(config, jnp.asarray(steps)))
    if staircase:
        expected = reference(0.125, 0.75, 1, [s // 1000 for s in steps], got.dtype)
    else:
        expected = reference(0.125, 0.75, 1000, steps, got.dtype)
    normal = expected >= np.finfo(got.dtype).tiny
    assert ulp_distance(got, expected)[normal].max() <= 1
    assert (got[~normal] <= np.finfo(got.dtype).tiny).all()


def test_vmap_over_stacked_configs_equals_a_loop():
    """vmap over 16 stacked configs gives each config's own jitted values, bit for
    bit, and traces once."""
    configs = [ExponentialDecay(float(rate), 100, 0.9) for rate in RATES]
    steps = jnp.arange(0, 5000, 37)
    traces = []

    def learning_rates(config, steps):
        traces.append(1)
        return config(steps)

    batched = jax.jit(jax.vmap(learning_rates, in_axes=(0, None)))(
        stack(configs), steps
    )
    assert len(traces) == 1
    alone = jax.jit(learning_rates)
    for row, config in zip(np.asarray(batched), configs, strict=True):
        np.testing.assert_array_equal(row, np.asarray(alone(config, steps)))


def test_sweep_inside_optax_sgd_compiles_once():
    """A vmapped SGD run over 16 configs traces once and matches hand-computed SGD.

    Loss (p - 3)**2 / 2 has gradient p - 3; with lr_k = lr * 0.5**k (decay_steps=1),
    p_{k+1} = p_k - lr_k * (p_k - 3), from p_0 = 0.
    """
    traces = []

    def train(config):
        traces.append(1)
        optimizer = optax.sgd(config)
        params = jnp.zeros(())
        state = optimizer.init(params)
        for _ in range(3):
            grads = params - 3.0
            updates, state = optimizer.update(grads, state, params)
            params = optax.apply_updates(params, updates)
        return params

    rates = np.asarray([0.1, 0.2, 0.4, 0.8])
    configs = [ExponentialDecay(float(rate), 1, 0.5) for rate in rates]
    final = jax.jit(jax.vmap(train))(stack(configs))
    assert len(traces) == 1
    for rate, got in zip(rates, np.asarray(final), strict=True):
        p = 0.0
        for k in range(3):
            p = p - rate * 0.5**k * (p - 3.0)
        assert math.isclose(float(got), p, rel_tol=1e-6)


def test_inject_hyperparams_with_a_traced_config():
    """optax.inject_hyperparams records the schedule's value at each count."""

    @jax.jit
    def lr_after_two_updates(config):
        optimizer = optax.inject_hyperparams(optax.sgd)(learning_rate=config)
        params = jnp.ones(())
        state = optimizer.init(params)
        for _ in range(2):
            _, state = optimizer.update(jnp.ones(()), state, params)
        return state.hyperparams["learning_rate"]

    # After two updates the recorded rate is lr(1) = 0.2 * 0.5.
    got = lr_after_two_updates(ExponentialDecay(0.2, 1, 0.5))
    chex.assert_trees_all_close(got, jnp.asarray(0.1), rtol=1e-6)


def test_constructing_inside_jit_with_a_traced_value():
    """Traced values are not validated and do not break tracing; dtypes are."""

    @jax.jit
    def at_step_ten(initial_learning_rate, decay_steps):
        return ExponentialDecay(initial_learning_rate, decay_steps, 0.5)(10)

    chex.assert_trees_all_close(at_step_ten(0.4, 5), jnp.asarray(0.1), rtol=1e-6)
    chex.assert_trees_all_close(
        jax.jit(lambda lr: exponential_decay(lr, 5, 0.5)(10))(0.4),
        jnp.asarray(0.1),
        rtol=1e-6,
    )
    with pytest.raises(TypeError, match="decay_steps must be integer"):
        jax.jit(lambda d: ExponentialDecay(0.1, d, 0.5))(5.0)


def test_concrete_arrays_are_validated_elementwise():
    """A batch of values is checked element by element, naming the bad one."""
    config = ExponentialDecay(jnp.asarray([0.1, 0.2]), 1000, 0.5)
    chex.assert_trees_all_close(config(1000), jnp.asarray([0.05, 0.1]), rtol=1e-6)
    with pytest.raises(
        ValueError, match=r"decay_rate must be finite and > 0, got -0\.5"
    ):
        ExponentialDecay(0.1, 1000, jnp.asarray([0.5, -0.5]))
    with pytest.raises(ValueError, match=r"decay_steps must be integers .* got 0"):
        ExponentialDecay(0.1, np.asarray([10, 0]), 0.5)
    with pytest.raises(TypeError, match="decay_steps must be integer"):
        ExponentialDecay(0.1, np.asarray([10.0, 20.0]), 0.5)


def test_serializing_arrays_is_refused_clearly():
    """A batch is never written as an array's repr; a 0-d array is a number."""
    batch = stack([ExponentialDecay(0.1, 10, 0.5), ExponentialDecay(0.2, 10, 0.5)])
    with pytest.raises(TypeError, match=r"cannot serialize initial_learning_rate"):
        batch.to_json()
    single = jax.tree.map(jnp.asarray, ExponentialDecay(0.1, 10, 0.5))
    assert single.get_config()["initial_learning_rate"] == float(jnp.asarray(0.1))
    assert single.get_config()["decay_steps"] == 10


def test_batched_configs_compare_by_value():
    """Equality and hashing see array values, not identities."""
    a = stack([ExponentialDecay(0.1, 10, 0.5), ExponentialDecay(0.2, 10, 0.5)])
    b = stack([ExponentialDecay(0.1, 10, 0.5), ExponentialDecay(0.2, 10, 0.5)])
    c = stack([ExponentialDecay(0.1, 10, 0.5), ExponentialDecay(0.3, 10, 0.5)])
    assert a == b and hash(a) == hash(b)
    assert a != c
