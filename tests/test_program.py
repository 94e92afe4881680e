"""The shared program layer: where a part's constants lie is read from their shapes."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxdecay import ExponentialDecay, _program


def test_a_layout_not_yet_recorded_is_found_by_tracing_prepare():
    """`evaluate` reads the constants where `prepare` laid them; in a process where
    no `prepare` of the plan was traced yet, the layout comes from tracing it
    abstractly, and gives the same bits."""
    config = ExponentialDecay(0.1, 1000, 0.5, True, warmup_steps=10)
    steps = jnp.asarray([0, 5, 10, 999, 1010, 2**31 - 1], jnp.int32)
    expected = np.asarray(config(steps))
    schedule = config._schedule
    prepared, plan = schedule._known[1:], schedule._plan
    _program._LAYOUTS.clear()
    # Traced anew: the layout is not in the record any more.
    evaluate = jax.jit(functools.partial(_program._evaluate, plan=plan))
    got = np.asarray(evaluate(*prepared, steps))
    np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))
    assert len(_program._LAYOUTS) == len(plan.parts)
