"""Train a small MLP with `optax.sgd` and a `jaxdecay.ExponentialDecay` learning rate.

Shows the whole path: the schedule is a frozen dataclass that optax takes as its
learning rate, the jitted train step reports the learning rate it used (the schedule
called on the optimizer's step count), and the experiment's config, schedule included,
is written as JSON and read back with `jaxdecay.deserialize` into an equal schedule.

Run:
    python examples/train_sgd.py
    python examples/train_sgd.py --steps 300 --staircase --out-dir /tmp/run1

Needs jax, numpy and optax.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import tempfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxdecay

Params = dict[str, jax.Array]

NUM_SAMPLES = 256
NUM_FEATURES = 4
HIDDEN = 32


def make_data(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A smooth nonlinear regression target with a little noise, from a fixed key."""
    key_x, key_w, key_noise = jax.random.split(key, 3)
    x = jax.random.normal(key_x, (NUM_SAMPLES, NUM_FEATURES))
    w = jax.random.normal(key_w, (NUM_FEATURES, 1))
    noise = 0.05 * jax.random.normal(key_noise, (NUM_SAMPLES, 1))
    y = jnp.sin(x @ w) + 0.5 * x[:, :1] + noise
    return x, y


def init_params(key: jax.Array) -> Params:
    key_1, key_2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(key_1, (NUM_FEATURES, HIDDEN)) / np.sqrt(NUM_FEATURES),
        "b1": jnp.zeros(HIDDEN),
        "w2": jax.random.normal(key_2, (HIDDEN, 1)) / np.sqrt(HIDDEN),
        "b2": jnp.zeros(1),
    }


def loss_fn(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    prediction = hidden @ params["w2"] + params["b2"]
    return jnp.mean((prediction - y) ** 2)


def make_train_step(
    optimizer: optax.GradientTransformation, schedule: jaxdecay.ExponentialDecay
) -> Any:
    @jax.jit
    def train_step(
        params: Params, opt_state: optax.OptState, x: jax.Array, y: jax.Array
    ) -> tuple[Params, optax.OptState, jax.Array, jax.Array]:
        # The count before the update is the step optax evaluates the schedule at.
        learning_rate = schedule(optax.tree_utils.tree_get(opt_state, "count"))
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, learning_rate

    return train_step


def train(
    schedule: jaxdecay.ExponentialDecay, steps: int, log_every: int = 50
) -> tuple[float, float]:
    """Trains with `optax.sgd(schedule)`; returns the loss before and after."""
    optimizer = optax.sgd(learning_rate=schedule)
    key_data, key_params = jax.random.split(jax.random.key(0))
    x, y = make_data(key_data)
    params = init_params(key_params)
    opt_state = optimizer.init(params)
    train_step = make_train_step(optimizer, schedule)

    initial_loss = float(loss_fn(params, x, y))
    print(f"{'step':>6} {'loss':>10} {'lr':>10}")
    for step in range(steps):
        params, opt_state, loss, learning_rate = train_step(params, opt_state, x, y)
        if step % log_every == 0 or step == steps - 1:
            print(f"{step:>6} {float(loss):>10.5f} {float(learning_rate):>10.6f}")
    final_loss = float(loss_fn(params, x, y))
    print(f"\nloss: {initial_loss:.5f} -> {final_loss:.5f}")
    return initial_loss, final_loss


def save_and_reload(
    schedule: jaxdecay.ExponentialDecay, steps: int, out_dir: pathlib.Path
) -> jaxdecay.ExponentialDecay:
    """Writes the experiment's config, the schedule in Keras' format next to the
    rest, and reads the schedule back."""
    experiment = {
        "schedule": jaxdecay.serialize(schedule),
        "optimizer": "sgd",
        "steps": steps,
        "hidden_units": HIDDEN,
        "seed": 0,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / "experiment.json"
    config_path.write_text(json.dumps(experiment, indent=2) + "\n")
    print(f"wrote {config_path}:\n{config_path.read_text()}")
    return jaxdecay.deserialize(json.loads(config_path.read_text())["schedule"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps")
    parser.add_argument(
        "--staircase", action="store_true", help="decay in stairs of decay_steps steps"
    )
    parser.add_argument(
        "--out-dir",
        type=pathlib.Path,
        default=None,
        help="where experiment.json is written (default: a new temporary directory)",
    )
    args = parser.parse_args()

    schedule = jaxdecay.ExponentialDecay(
        initial_learning_rate=0.2,
        decay_steps=100,
        decay_rate=0.5,
        staircase=args.staircase,
    )
    print(f"schedule: {schedule}\n")
    train(schedule, args.steps)
    out_dir = args.out_dir or pathlib.Path(tempfile.mkdtemp(prefix="jaxdecay-"))
    reloaded = save_and_reload(schedule, args.steps, out_dir)
    print(f"reloaded schedule == original: {reloaded == schedule}")
    for step in (0, 1, 99, 100, 250, args.steps):
        print(f"  lr({step}) = {float(reloaded(step)):.6g}")


if __name__ == "__main__":
    main()
