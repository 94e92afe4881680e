"""Load a learning-rate schedule saved by Keras into jaxdecay, without Keras.

A Keras `ExponentialDecay` saved with `keras.optimizers.schedules.serialize` is plain
JSON. `jaxdecay.deserialize` reads it (Keras 3's shape, and TF 2's older one) into a
`jaxdecay.ExponentialDecay` that optax takes as its learning rate; nothing in the data
is imported, and Keras need not be installed. The script prints the schedule and a few
of its learning rates, trains a tiny linear model with it, checks that Keras was never
imported, and then, only if Keras is installed, checks the learning rates against
Keras' own schedule loaded from the same JSON.

Run:
    python examples/keras_config.py                 # the two configs embedded below
    python examples/keras_config.py schedule.json   # a file Keras wrote
    python examples/keras_config.py --no-keras      # skip the cross-check

A file to try can be written with Keras 3 (any backend), for example:
    KERAS_BACKEND=jax python -c "import json, keras; s = keras.optimizers.schedules; \
print(json.dumps(s.serialize(s.ExponentialDecay(0.01, 1000, 0.9))))" > schedule.json

Needs jax, numpy and optax; Keras is optional. It exits non-zero if a check fails.
"""

from __future__ import annotations

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
# Keras computes decay_rate ** (step / decay_steps) in float32, jaxdecay computes
# exp2 of a float32 exponent; over these few stairs they agree to a few ulps.
KERAS_RTOL = 1e-5


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"FAILED: {message}")


def train_linear_model(schedule: jaxdecay.ExponentialDecay, steps: int) -> None:
    """Fits y = x @ w with `optax.sgd(schedule)`; checks that the loss falls."""
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
    check(final_loss < 0.5 * initial_loss, "the loss did not fall by half")


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
    check(
        jaxdecay.serialize(schedule) == keras_data,
        f"jaxdecay writes {jaxdecay.serialize(schedule)}, keras {keras_data}",
    )
    print(f"keras {keras.__version__}: serialize() writes the same dict as jaxdecay")
    if keras_schedule.name is None:
        # Keras 3 cannot call a schedule named None (TF 2's default): it opens a name
        # scope with it. The name does not change the math.
        keras_schedule.name = "ExponentialDecay"
    steps = np.array(PROBE_STEPS)
    keras_lrs = np.array([float(keras_schedule(int(step))) for step in steps])
    jaxdecay_lrs = np.asarray(schedule(steps))
    try:
        np.testing.assert_allclose(jaxdecay_lrs, keras_lrs, rtol=KERAS_RTOL)
    except AssertionError as error:
        raise SystemExit(f"FAILED: jaxdecay and keras disagree:{error}") from None
    relative = np.max(np.abs(jaxdecay_lrs - keras_lrs) / keras_lrs)
    print(f"keras learning rates match: max relative difference {relative:.1e}")


def load_and_train(label: str, text: str, *, steps: int) -> jaxdecay.ExponentialDecay:
    print(f"== {label}\n{text.strip()}")
    try:
        schedule = jaxdecay.deserialize(text)
    except (TypeError, ValueError) as error:
        raise SystemExit(
            f"FAILED: {label} is not a schedule jaxdecay loads: {error}"
        ) from None
    print(f"-> {schedule}")
    learning_rates = schedule(jnp.array(PROBE_STEPS))
    for step, value in zip(PROBE_STEPS, learning_rates.tolist(), strict=True):
        print(f"  lr({step:>3}) = {value:.6g}")
    # The JSON written back is Keras 3's shape and reads back to an equal schedule.
    check(jaxdecay.deserialize(schedule.to_json()) == schedule, "JSON round trip")

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
    check("keras" not in sys.modules, "loading or training imported keras")
    print("keras was not imported to load the schedules or to train\n")

    if args.use_keras:
        for (label, text), schedule in zip(configs, schedules, strict=True):
            print(f"== {label} against Keras")
            cross_check_with_keras(json.loads(text), schedule)
    print("OK")


if __name__ == "__main__":
    main()
