"""Load a learning-rate schedule saved by Keras into jaxdecay, without Keras.

A Keras `ExponentialDecay` saved with `keras.optimizers.schedules.serialize` is plain
JSON. `jaxdecay.deserialize` reads it (Keras 3's shape, and TF 2's older one) into a
`jaxdecay.ExponentialDecay` that optax takes as its learning rate; nothing in the data
is imported, and Keras need not be installed. The script prints the schedule and a few
learning rates and trains a tiny linear model; then, if Keras is installed, compares
with Keras' own schedule loaded from the same JSON.

Run:
    python examples/keras_config.py                 # the two configs embedded below
    python examples/keras_config.py schedule.json   # a file Keras wrote
    python examples/keras_config.py --no-keras      # skip the cross-check

Needs jax, numpy and optax; Keras is optional. Keras 3 writes such a file with
`json.dumps(keras.optimizers.schedules.serialize(schedule))`.
"""

import argparse
import json
import os
import pathlib
import sys
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxdecay

# What `keras.optimizers.schedules.serialize(ExponentialDecay(0.1, 50, 0.5))` returns
# in Keras 3, written with json.dumps.
KERAS_3_JSON = (
    '{"module": "keras.optimizers.schedules", "class_name": "ExponentialDecay", '
    '"config": {"initial_learning_rate": 0.1, "decay_steps": 50, "decay_rate": 0.5, '
    '"staircase": false, "name": "ExponentialDecay"}, "registered_name": null}'
)
# The shape TF 2's `tf.keras.optimizers.schedules.serialize` wrote: no module, and the
# schedule's name defaulted to None.
TF_2_JSON = (
    '{"class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.1, '
    '"decay_steps": 50, "decay_rate": 0.96, "staircase": true, "name": null}}'
)

PROBE_STEPS = (0, 1, 25, 50, 100, 200)


def train_linear_model(
    schedule: jaxdecay.ExponentialDecay, steps: int
) -> tuple[float, float]:
    """Fits y = x @ w with `optax.sgd(schedule)`; returns the loss before and after."""
    key_x, key_w = jax.random.split(jax.random.key(0))
    x = jax.random.normal(key_x, (128, 3))
    y = x @ jax.random.normal(key_w, (3,))
    optimizer = optax.sgd(learning_rate=schedule)

    def loss_fn(w: jax.Array) -> jax.Array:
        return jnp.mean((x @ w - y) ** 2)

    @jax.jit
    def train_step(
        w: jax.Array, opt_state: optax.OptState
    ) -> tuple[jax.Array, optax.OptState]:
        updates, opt_state = optimizer.update(jax.grad(loss_fn)(w), opt_state)
        return optax.apply_updates(w, updates), opt_state

    w = jnp.zeros(3)
    opt_state = optimizer.init(w)
    initial_loss = float(loss_fn(w))
    for _ in range(steps):
        w, opt_state = train_step(w, opt_state)
    final_loss = float(loss_fn(w))
    print(f"optax.sgd, {steps} steps: loss {initial_loss:.3g} -> {final_loss:.3g}")
    return initial_loss, final_loss


def cross_check_with_keras(
    data: dict[str, Any], schedule: jaxdecay.ExponentialDecay
) -> None:
    """Compares `schedule` with Keras' own schedule loaded from the same data."""
    os.environ["KERAS_BACKEND"] = "jax"  # read when keras is first imported
    try:
        import keras
    except ImportError as error:
        print(f"keras cross-check skipped: keras is not importable ({error})")
        return

    keras_schedule = keras.optimizers.schedules.deserialize(data)
    keras_data = keras.optimizers.schedules.serialize(keras_schedule)
    same = jaxdecay.serialize(schedule) == keras_data
    print(f"keras {keras.__version__}: serialize() writes the same dict: {same}")
    if keras_schedule.name is None:
        # Keras 3 cannot call a schedule named None (TF 2's default): it opens a name
        # scope with it. The name does not change the math.
        keras_schedule.name = "ExponentialDecay"
    keras_lrs = np.array([float(keras_schedule(step)) for step in PROBE_STEPS])
    jaxdecay_lrs = np.asarray(schedule(np.array(PROBE_STEPS)))
    relative = np.max(np.abs(jaxdecay_lrs - keras_lrs) / keras_lrs)
    print(f"keras learning rates: max relative difference {relative:.1e}")


def load_and_train(label: str, text: str, *, steps: int) -> jaxdecay.ExponentialDecay:
    print(f"== {label}\n{text.strip()}")
    schedule = jaxdecay.deserialize(text)
    print(f"-> {schedule}")
    learning_rates = schedule(jnp.array(PROBE_STEPS))
    for step, value in zip(PROBE_STEPS, learning_rates.tolist(), strict=True):
        print(f"  lr({step:>3}) = {value:.6g}")
    train_linear_model(schedule, steps)
    print()
    return schedule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "path",
        nargs="?",
        type=pathlib.Path,
        help="a JSON file Keras wrote (default: the configs embedded in this script)",
    )
    parser.add_argument("--steps", type=int, default=100, help="training steps")
    parser.add_argument(
        "--no-keras",
        dest="use_keras",
        action="store_false",
        help="skip the cross-check against Keras even when it is installed",
    )
    args = parser.parse_args()

    if args.path is not None:
        configs = [(str(args.path), args.path.read_text())]
    else:
        configs = [("Keras 3 config", KERAS_3_JSON), ("TF 2 config", TF_2_JSON)]
    schedules = [
        load_and_train(label, text, steps=args.steps) for label, text in configs
    ]
    print(f"keras imported to load the schedules and train: {'keras' in sys.modules}\n")

    if args.use_keras:
        for (label, text), schedule in zip(configs, schedules, strict=True):
            print(f"== {label} against Keras")
            cross_check_with_keras(json.loads(text), schedule)


if __name__ == "__main__":
    main()
