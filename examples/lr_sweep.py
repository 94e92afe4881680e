"""Sweep 16 initial learning rates in one compiled program; print the lowest losses.

`jaxdecay.ExponentialDecay` is a JAX pytree whose numbers are leaves: stack 16
configs with `jax.tree.map(jnp.stack, ...)` and `jax.vmap` the whole training run
over them. JAX traces and compiles once; with optax's closures every learning rate
would be a new program.

Run:
    python examples/lr_sweep.py
    python examples/lr_sweep.py --steps 300 --staircase

Needs jax, numpy and optax.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxdecay

TRACES = 0
# Final losses within this relative distance of the lowest one are reported as a tie:
# past a learning rate, every run reaches the noise floor of the data.
TIE_RTOL = 1e-4


def make_data(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A noisy linear regression problem from a fixed key."""
    key_x, key_w, key_noise = jax.random.split(key, 3)
    x = jax.random.normal(key_x, (512, 8))
    y = x @ jax.random.normal(key_w, (8, 1))
    return x, y + 0.1 * jax.random.normal(key_noise, y.shape)


def train(
    schedule: jaxdecay.ExponentialDecay, x: jax.Array, y: jax.Array, steps: int
) -> jax.Array:
    """The final loss of `steps` SGD steps with `schedule`, in one `lax.scan`."""
    global TRACES
    TRACES += 1  # runs once per trace, not per call
    optimizer = optax.sgd(learning_rate=schedule)

    def loss_fn(params: jax.Array) -> jax.Array:
        return jnp.mean((x @ params - y) ** 2)

    def step(carry: Any, _: None) -> tuple[Any, None]:
        params, state = carry
        updates, state = optimizer.update(jax.grad(loss_fn)(params), state, params)
        return (optax.apply_updates(params, updates), state), None

    params = jnp.zeros((x.shape[1], 1))
    (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, steps)
    return loss_fn(params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="SGD steps per run")
    parser.add_argument("--staircase", action="store_true", help="decay in stairs")
    args = parser.parse_args()

    x, y = make_data(jax.random.key(0))
    learning_rates = np.geomspace(1e-3, 0.3, 16)
    print(
        f"sweeping initial_learning_rate over {learning_rates.size} log-spaced values "
        f"from {learning_rates[0]:.4g} to {learning_rates[-1]:.4g}; decay_steps=50, "
        f"decay_rate=0.7, staircase={args.staircase}; {args.steps} SGD steps of a "
        "linear regression each\n"
    )
    configs = [
        jaxdecay.ExponentialDecay(
            float(rate), decay_steps=50, decay_rate=0.7, staircase=args.staircase
        )
        for rate in learning_rates
    ]
    # One config whose leaves are arrays of 16 values each.
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *configs)

    sweep = jax.jit(jax.vmap(train, in_axes=(0, None, None, None)), static_argnums=3)
    losses = np.asarray(sweep(stacked, x, y, args.steps))

    print(f"{'initial lr':>12} {'final loss':>12}")
    for rate, loss in zip(learning_rates, losses, strict=True):
        print(f"{rate:>12.4g} {loss:>12.6f}")
    best = int(np.nanargmin(losses))
    tied = learning_rates[np.isclose(losses, losses[best], rtol=TIE_RTOL, atol=0)]
    print(f"\nlowest final loss {losses[best]:.6f}", end="")
    if tied.size > 1:
        print(
            f", a tie of {tied.size} runs within {TIE_RTOL:.0e} relative: "
            f"initial_learning_rate {tied.min():.4g} to {tied.max():.4g}",
            end="",
        )
    else:
        print(f", at initial_learning_rate={learning_rates[best]:.4g}", end="")
    print(f" ({learning_rates.size} runs, {TRACES} trace)")

    # The lowest run, trained on its own with the config as a jit argument, gives
    # the same loss as its lane of the sweep.
    alone = float(jax.jit(train, static_argnums=3)(configs[best], x, y, args.steps))
    print(
        f"initial_learning_rate={learning_rates[best]:.4g} trained alone: final loss "
        f"{alone:.6f}"
    )


if __name__ == "__main__":
    main()
