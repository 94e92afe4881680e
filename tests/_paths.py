"""Every path of a schedule, for the tests that compare them bit for bit.

The paths: an eager call on an array of steps and on scalar steps, `jax.jit` of the
schedule, the config as a jit argument, one row of `jax.vmap` over stacked configs,
the family's builder, and the learning rate `optax.sgd` applies. Any family runs
them: one with an `initial_learning_rate` and a second float field (`decay_rate`,
or `end_learning_rate`) alone, others given two configs to stack with it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _reference import builder_of

FLOAT = np.dtype(jnp.result_type(float))  # float32, or float64 under x64


def stack(configs: list[Any]) -> Any:
    """Configs stacked leaf by leaf, for `jax.vmap`."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *configs)


def optax_lr(schedule: Any, step: Any) -> jax.Array:
    """The learning rate that `optax.sgd(schedule)` applies at `step`: for a unit
    gradient the update is exactly `-lr`."""
    optimizer = optax.sgd(schedule)
    state = optimizer.init(jnp.zeros((), FLOAT))
    state = optax.tree_utils.tree_set(state, count=jnp.asarray(step, jnp.int32))
    updates, _ = optimizer.update(jnp.ones((), FLOAT), state)
    return -updates


def _second_float(config: Any) -> str:
    """The family's first float number after `initial_learning_rate` that is set
    (`decay_rate`, or `CosineDecay`'s `alpha`)."""
    spec = config.spec
    return next(
        name
        for name in spec.leaves
        if name not in spec.integer_leaves
        and name != "initial_learning_rate"
        and getattr(config, name) is not None
    )


AS_ARGUMENT = jax.jit(lambda c, s: c(s))
SWEPT = jax.jit(jax.vmap(lambda c, s: c(s), in_axes=(0, None)))
IN_OPTAX = jax.jit(jax.vmap(lambda c, s: optax_lr(c, s), in_axes=(None, 0)))


def paths(config: Any, steps: Any, others: list[Any] | None = None) -> dict[str, Any]:
    """The learning rate at `steps` (int32) by every path, as arrays; `others` are
    two configs stacked around it for the vmapped row (by default, variants of its
    `initial_learning_rate` and of its second float number)."""
    if others is None:
        others = [
            dataclasses.replace(config, initial_learning_rate=0.5),
            dataclasses.replace(config, **{_second_float(config): 0.25}),
        ]
    rows = SWEPT(stack([others[0], config, others[1]]), steps)
    scalars = [config(int(step)) for step in steps[:4]]
    scalars += [config(np.int32(step)) for step in steps[4:8]]
    return {
        "eager": config(steps),
        "scalar": np.concatenate([np.reshape(x, 1) for x in scalars]),
        "jit": jax.jit(config)(steps),
        "argument": AS_ARGUMENT(config, steps),
        "vmap": rows[1],
        "builder": builder_of(config)(steps),
        "optax": IN_OPTAX(config, steps),
    }


_PROBES = itertools.count(2)  # a constant per probe: a program no cache holds


@contextlib.contextmanager
def counting_compiles() -> Iterator[list[str]]:
    """Yields the list of backend compiles made inside the block; checks that the
    listener hears a new program, so that an empty list means something."""
    compiles: list[str] = []

    def listener(event: str, duration: float, **kwargs: Any) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield compiles
        heard, probe = len(compiles), next(_PROBES)
        jax.jit(lambda x: x * probe + 1)(jnp.arange(16, dtype=jnp.int32))
        assert len(compiles) > heard
    finally:
        jax.monitoring.clear_event_listeners()
