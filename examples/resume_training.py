"""Checkpoint a training run and resume it in a new process, exactly.

The checkpoint is the params and the optimizer state (whose step count is where the
schedule resumes) in a NumPy `.npz` file, and the step and the schedule's JSON config
(`to_json()`) in `checkpoint.json`. A resumed run rebuilds the schedule and the
optimizer from that JSON and fills the optimizer's state structure with the arrays,
refusing any missing, extra or mis-shaped one. Under `JAX_ENABLE_X64=1` the step
count is int64, as a run past 2**31 - 1 steps needs.

Run:
    python examples/resume_training.py --steps 12 --save /tmp/ckpt
    python examples/resume_training.py --steps 20 --resume /tmp/ckpt
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxdecay

FEATURES, HIDDEN, BATCH_SIZE, NUM_BATCHES = 8, 16, 32, 3


def make_optimizer(schedule: jaxdecay.ExponentialDecay) -> Any:
    return optax.sgd(learning_rate=schedule, momentum=0.9)


def init(optimizer: Any) -> tuple[dict[str, jax.Array], Any]:
    """The initial params and state; optax stops its int32 count at 2**31 - 1, so
    under x64 the count is int64 (safe_increment keeps its dtype)."""
    rng = np.random.default_rng(1)
    params = {
        "w1": rng.standard_normal((FEATURES, HIDDEN)) / np.sqrt(FEATURES),
        "b1": np.zeros(HIDDEN),
        "w2": rng.standard_normal((HIDDEN, 1)) / np.sqrt(HIDDEN),
        "b2": np.zeros(1),
    }
    params = {name: jnp.asarray(value, float) for name, value in params.items()}
    state = optimizer.init(params)
    if jax.config.jax_enable_x64:
        state = optax.tree_utils.tree_set(state, count=jnp.zeros([], jnp.int64))
    return params, state


def make_batches() -> list[tuple[jax.Array, jax.Array]]:
    """Step k trains on batch k % NUM_BATCHES: a resumed run sees the same data."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((NUM_BATCHES, BATCH_SIZE, FEATURES))
    y = np.sin(x[..., :1]) + 0.1 * x[..., 1:2]
    return [
        (jnp.asarray(a, float), jnp.asarray(b, float))
        for a, b in zip(x, y, strict=True)
    ]


def loss_fn(params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] + params["b2"] - y) ** 2)


def flatten(tree: Any) -> dict[str, Any]:
    """Leaves by a readable key, e.g. `['opt_state'][0].trace['w1']`."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): leaf for path, leaf in leaves}


def save(directory: str, step: int, schedule: Any, params: Any, state: Any) -> None:
    """Writes next to `directory`, then renames into place: a run killed while
    saving leaves the previous checkpoint whole."""
    temporary = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(directory)))
    tree = {"params": params, "opt_state": state}
    arrays = {key: np.asarray(value) for key, value in flatten(tree).items()}
    np.savez(os.path.join(temporary, "arrays.npz"), **arrays)
    # to_json() writes floats that read back bit for bit.
    metadata = {"step": step, "schedule": json.loads(schedule.to_json())}
    with open(os.path.join(temporary, "checkpoint.json"), "w") as file:
        json.dump(metadata, file, indent=2)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(temporary, directory)


def restore(directory: str) -> tuple[int, jaxdecay.ExponentialDecay, Any, Any]:
    """The step, the schedule, the params and the optimizer state."""
    with open(os.path.join(directory, "checkpoint.json")) as file:
        metadata = json.load(file)
    schedule = jaxdecay.deserialize(metadata["schedule"])
    shapes = jax.eval_shape(lambda: init(make_optimizer(schedule)))
    like = {"params": shapes[0], "opt_state": shapes[1]}
    with np.load(os.path.join(directory, "arrays.npz"), allow_pickle=False) as file:
        stored = dict(file)
    leaves = []
    for key, leaf in flatten(like).items():
        value = stored.pop(key, None)
        if value is None or (value.shape, value.dtype) != (leaf.shape, leaf.dtype):
            found = "missing" if value is None else f"{value.dtype}{list(value.shape)}"
            raise ValueError(f"{directory}: {key} is {found}, expected {leaf}")
        leaves.append(jnp.asarray(value))
    if stored:
        raise ValueError(f"{directory}: unexpected arrays {sorted(stored)}")
    restored = jax.tree.unflatten(jax.tree.structure(like), leaves)
    return metadata["step"], schedule, restored["params"], restored["opt_state"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="train until this step")
    parser.add_argument("--resume", metavar="DIR", help="start from a checkpoint")
    parser.add_argument("--save", metavar="DIR", help="save the end to DIR")
    args = parser.parse_args()
    if args.resume:
        start, schedule, params, state = restore(args.resume)
        print(f"resumed at step {start} from {args.resume}: {schedule}")
    else:
        start, schedule = 0, jaxdecay.ExponentialDecay(0.1, 5, decay_rate=0.6)
        params, state = init(make_optimizer(schedule))
    optimizer = make_optimizer(schedule)

    @jax.jit
    def train_step(params: Any, state: Any, x: jax.Array, y: jax.Array) -> Any:
        # The count before the update is the step optax evaluates the schedule at.
        learning_rate = schedule(optax.tree_utils.tree_get(state, "count"))
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss, learning_rate

    batches = make_batches()
    for k in range(start, args.steps):
        x, y = batches[k % NUM_BATCHES]
        params, state, loss, learning_rate = train_step(params, state, x, y)
        print(f"step={k} lr={learning_rate!s} loss={loss!s}")  # text that reads back
    if args.save:
        save(args.save, max(start, args.steps), schedule, params, state)
        print(f"saved step {max(start, args.steps)} to {args.save}")


if __name__ == "__main__":
    main()
