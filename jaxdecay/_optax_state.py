"""The learning rate an optax optimizer's next update applies, read from its state.

optax is imported when `current_learning_rate` is first called, never when jaxdecay
is: the core depends on jax and numpy only.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxdecay._program import Schedule

_LEARNING_RATE = "learning_rate"  # the argument name of every optax optimizer


def current_learning_rate(schedule: Schedule, opt_state: Any) -> jax.Array:
    """Returns the learning rate that the next update of `opt_state` applies.

    It reads the step count at which optax evaluates the learning rate next, and
    calls `schedule` there, so it is the value optax will use, jitted or not:

    - `optax.sgd`, `optax.adam`, `optax.adamw` and chains built with
      `learning_rate=schedule` keep the count in an `optax.ScaleByScheduleState`;
      the next update applies `schedule(count)`.
    - `optax.inject_hyperparams(...)(learning_rate=schedule)`: the next update
      applies the schedule at the count of its wrapped schedule. When the learning
      rate was injected as a number, no schedule is involved: the state's
      `hyperparams["learning_rate"]` (which may have been set by hand) is what the
      next update applies, and that value is returned; `schedule` is not called.
    - `optax.MultiSteps`: the inner optimizer's count, which advances only when an
      update is applied (every k mini-steps); the value is the learning rate of the
      next applied update.

    The state must hold exactly one of these; for a state with several (say, two
    schedules in one chain), pass the part that belongs to `schedule`.

    Args:
      schedule: the `step -> learning rate` function the optimizer was built with.
      opt_state: the optimizer's state, or the part of it that holds the count.

    Returns:
      The learning rate, as `schedule` returns it (or the injected number).

    Raises:
      TypeError: `schedule` is not callable, or the learning rate is a stateful
        schedule whose state holds no `count`.
      ValueError: the state holds no schedule count, or more than one.

    Examples:
      >>> import jax.numpy as jnp
      >>> import optax
      >>> import jaxdecay
      >>> schedule = jaxdecay.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
      >>> optimizer = optax.sgd(learning_rate=schedule)
      >>> state = optimizer.init(jnp.zeros(3))
      >>> print(jaxdecay.current_learning_rate(schedule, state))
      0.1
      >>> _, state = optimizer.update(jnp.ones(3), state)
      >>> print(jaxdecay.current_learning_rate(schedule, state))
      0.05
    """
    if not callable(schedule):
        raise TypeError(
            f"schedule must be a step -> learning rate function, got {schedule!r} "
            f"of type {type(schedule).__name__}"
        )
    import optax  # only here: importing jaxdecay never imports optax

    def holds_a_rate(node: Any) -> bool:
        return isinstance(
            node, (optax.ScaleByScheduleState, optax.InjectStatefulHyperparamsState)
        )

    found = []
    pending = [((), opt_state)]
    while pending:
        prefix, tree = pending.pop()
        leaves = jax.tree_util.tree_flatten_with_path(tree, is_leaf=holds_a_rate)[0]
        for path, node in leaves:
            if not holds_a_rate(node):
                continue
            if isinstance(node, optax.ScaleByScheduleState) or (
                _LEARNING_RATE in node.hyperparams
            ):
                found.append((prefix + path, node))
            else:  # learning_rate is a static argument of the inner optimizer
                inner = (*prefix, *path, jax.tree_util.GetAttrKey("inner_state"))
                pending.append((inner, node.inner_state))
    if not found:
        raise ValueError(
            "opt_state holds no schedule count: no optax.ScaleByScheduleState (as "
            "an optimizer built with learning_rate=schedule has) and no "
            f"inject_hyperparams state with a {_LEARNING_RATE!r} hyperparameter; "
            f"got a state of type {type(opt_state).__name__}"
        )
    if len(found) > 1:
        where = ", ".join(f"opt_state{jax.tree_util.keystr(p)}" for p, _ in found)
        raise ValueError(
            f"opt_state holds {len(found)} schedule counts, at {where}; pass the "
            "part of the state that belongs to this schedule"
        )
    ((path, node),) = found
    if isinstance(node, optax.ScaleByScheduleState):
        return schedule(node.count)
    schedule_state = node.hyperparams_states.get(_LEARNING_RATE)
    if schedule_state is None:  # injected as a number: optax applies it as stored
        return jnp.asarray(node.hyperparams[_LEARNING_RATE])
    if not hasattr(schedule_state, "count"):
        raise TypeError(
            f"opt_state{jax.tree_util.keystr(path)}.hyperparams_states"
            f"[{_LEARNING_RATE!r}] is a stateful schedule's "
            f"{type(schedule_state).__name__}, which holds no count to call "
            "the schedule at"
        )
    # optax calls a schedule given to inject_hyperparams at this count.
    return schedule(schedule_state.count)
