"""Stop a training run, resume it in a new process: it continues exactly.

A run trains a small MLP with `optax.sgd(schedule, momentum=0.9)` and a
`jaxdecay.ExponentialDecay` schedule for some steps and saves a
checkpoint: the parameters and the optimizer state (whose step count is where the
schedule resumes) as a NumPy `.npz` file, and the step and the schedule's JSON
config (`to_json()`) in `checkpoint.json`. A new process rebuilds the schedule and
the optimizer from that JSON, restores the arrays into the optimizer's state
structure (refusing any missing, extra or mis-shaped array) and continues.

Under `JAX_ENABLE_X64=1` the optimizer's step count is int64 instead of optax's
int32, as a run longer than 2**31 - 1 steps needs; the checkpoint keeps its dtype.

By default the script shows the whole story in three processes: an uninterrupted
run of --steps steps, a run stopped after --stop-at steps, and a new process that
resumes from its checkpoint; it checks that the resumed run logs the same learning
rates and losses and ends with the same arrays, bit for bit, and exits non-zero
otherwise.

Run:
    python examples/resume_training.py
    python examples/resume_training.py --steps 30 --stop-at 17
    python examples/resume_training.py train --steps 12 --save /tmp/ckpt
    python examples/resume_training.py train --steps 20 --resume /tmp/ckpt

Needs jax, numpy and optax.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxdecay

NUM_FEATURES = 8
HIDDEN = 16
BATCH_SIZE = 32
NUM_BATCHES = 3
CHECKPOINT_FORMAT = 1
# Every process of the demonstration must finish within this many seconds.
TIMEOUT = 120

Params = dict[str, jax.Array]


# -- the training ----------------------------------------------------------------------


def make_schedule() -> jaxdecay.ExponentialDecay:
    """The schedule of a new run; a resumed run reads it from its checkpoint."""
    return jaxdecay.ExponentialDecay(0.1, decay_steps=5, decay_rate=0.6)


def make_optimizer(schedule: jaxdecay.ExponentialDecay) -> optax.GradientTransformation:
    return optax.sgd(learning_rate=schedule, momentum=0.9)


def float_dtype() -> np.dtype[Any]:
    return np.dtype(jnp.result_type(float))  # float32, or float64 under x64


def init_params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    params = {
        "w1": rng.standard_normal((NUM_FEATURES, HIDDEN)) / np.sqrt(NUM_FEATURES),
        "b1": np.zeros(HIDDEN),
        "w2": rng.standard_normal((HIDDEN, 1)) / np.sqrt(HIDDEN),
        "b2": np.zeros(1),
    }
    return {name: value.astype(float_dtype()) for name, value in params.items()}


def make_batches() -> list[tuple[np.ndarray, np.ndarray]]:
    """Fixed batches: the batch of step k is batches[k % NUM_BATCHES], so a resumed
    run sees the data that the uninterrupted run sees at the same step."""
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(NUM_BATCHES):
        x = rng.standard_normal((BATCH_SIZE, NUM_FEATURES))
        y = np.sin(x[:, :1]) + 0.1 * x[:, 1:2]
        batches.append((x.astype(float_dtype()), y.astype(float_dtype())))
    return batches


def init_state(optimizer: optax.GradientTransformation, params: Any) -> optax.OptState:
    """optax's state, with an int64 step count when x64 is on.

    optax keeps its count in int32 and stops it at 2**31 - 1 (optax.safe_increment);
    from there on the schedule would see the same step forever. An int64 count
    counts on: safe_increment keeps the dtype it is given.
    """
    state = optimizer.init(params)
    if jax.dtypes.canonicalize_dtype(np.int64) == np.int64:  # x64 is on
        state = optax.tree_utils.tree_set(state, count=jnp.zeros([], jnp.int64))
    return state


def loss_fn(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] + params["b2"] - y) ** 2)


def make_step(optimizer: optax.GradientTransformation, schedule: Any) -> Any:
    @jax.jit
    def step(
        params: Params, opt_state: optax.OptState, x: jax.Array, y: jax.Array
    ) -> tuple[Params, optax.OptState, jax.Array, jax.Array]:
        # The count before the update is the step optax evaluates the schedule at.
        learning_rate = schedule(optax.tree_utils.tree_get(opt_state, "count"))
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, learning_rate

    return step


def text(value: Any) -> str:
    """The shortest text that reads back to the same bits in the value's dtype."""
    return str(np.asarray(value)[()])


# -- the checkpoint ------------------------------------------------------------------


def flatten(prefix: str, tree: Any) -> dict[str, Any]:
    """The leaves of a pytree by a readable key, e.g. `opt_state/[0].trace['w1']`."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {prefix + jax.tree_util.keystr(path): leaf for path, leaf in leaves}


def save(
    directory: str,
    step: int,
    schedule: jaxdecay.ExponentialDecay,
    params: Any,
    opt_state: Any,
) -> None:
    """Writes the checkpoint next to `directory`, then renames it into place, so that
    a run killed while saving leaves the previous checkpoint whole."""
    parent = os.path.dirname(os.path.abspath(directory))
    temporary = tempfile.mkdtemp(prefix=".checkpoint-", dir=parent)
    arrays = {
        **flatten("params", params),
        **flatten("opt_state", opt_state),
    }
    # np.asarray copies each array to the host exactly; .npz keeps dtype and shape.
    np.savez(
        os.path.join(temporary, "arrays.npz"),
        **{key: np.asarray(value) for key, value in arrays.items()},
    )
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "step": step,
        # to_json() writes floats that read back bit for bit; Keras reads it too.
        "schedule": json.loads(schedule.to_json()),
    }
    with open(os.path.join(temporary, "checkpoint.json"), "w") as file:
        json.dump(metadata, file, indent=2)
    if os.path.exists(directory):
        shutil.rmtree(directory)
    os.replace(temporary, directory)


def restore(directory: str) -> tuple[int, jaxdecay.ExponentialDecay, Any, Any]:
    """Reads a checkpoint: the step, the schedule, the params and optimizer state.

    The arrays fill the structure that the schedule's optimizer builds, so a
    checkpoint of another model or optimizer is refused, never half-loaded.
    """
    with open(os.path.join(directory, "checkpoint.json")) as file:
        metadata = json.load(file)
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{directory}: unknown checkpoint format {metadata['format']}")
    schedule = jaxdecay.deserialize(metadata["schedule"])
    step = metadata["step"]
    params_like = init_params()
    optimizer = make_optimizer(schedule)
    state_like = jax.eval_shape(lambda p: init_state(optimizer, p), params_like)
    with np.load(os.path.join(directory, "arrays.npz"), allow_pickle=False) as arrays:
        stored = dict(arrays)
    params = fill("params", params_like, stored, directory)
    opt_state = fill("opt_state", state_like, stored, directory)
    if stored:
        raise ValueError(f"{directory}: unexpected arrays {sorted(stored)}")
    count = int(optax.tree_utils.tree_get(opt_state, "count"))
    if count != step:
        raise ValueError(f"{directory}: step {step}, but the optimizer counts {count}")
    return step, schedule, params, opt_state


def fill(prefix: str, like: Any, stored: dict[str, np.ndarray], source: str) -> Any:
    """`like`'s structure with its leaves taken (and removed) from `stored`."""
    leaves = []
    for key, leaf in flatten(prefix, like).items():
        if key not in stored:
            raise ValueError(f"{source}: no array {key}")
        value = stored.pop(key)
        if value.shape != leaf.shape or value.dtype != leaf.dtype:
            raise ValueError(
                f"{source}: {key} is {value.dtype}{list(value.shape)}, "
                f"expected {leaf.dtype}{list(leaf.shape)}"
            )
        leaves.append(jnp.asarray(value))
    return jax.tree.unflatten(jax.tree.structure(like), leaves)


# -- one run: train (or resume) until a step -----------------------------------------


def train(args: argparse.Namespace) -> None:
    if args.resume:
        start, schedule, params, opt_state = restore(args.resume)
        print(f"resumed at step {start} from {args.resume}: {schedule}")
    else:
        start, schedule = 0, make_schedule()
        params = jax.tree.map(jnp.asarray, init_params())
        opt_state = init_state(make_optimizer(schedule), params)
    if not start <= args.steps:
        raise SystemExit(
            f"the checkpoint is at step {start}, past --steps {args.steps}"
        )
    step = make_step(make_optimizer(schedule), schedule)
    batches = make_batches()
    for k in range(start, args.steps):
        x, y = batches[k % NUM_BATCHES]
        params, opt_state, loss, learning_rate = step(params, opt_state, x, y)
        print(f"step={k} lr={text(learning_rate)} loss={text(loss)}", flush=True)
    if args.save:
        save(args.save, args.steps, schedule, params, opt_state)
        print(f"saved step {args.steps} to {args.save}")


# -- the demonstration: three processes ------------------------------------------------


def run_script(*arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "train", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str], name: str) -> list[str]:
    """Waits for a run; returns its `step=` lines, or exits if it failed."""
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise SystemExit(f"FAILED: the {name} run took over {TIMEOUT} s") from None
    if process.returncode != 0:
        raise SystemExit(
            f"FAILED: the {name} run exited {process.returncode}:\n{stderr}"
        )
    return [line for line in stdout.splitlines() if line.startswith("step=")]


def demonstrate(args: argparse.Namespace) -> None:
    if not 0 < args.stop_at < args.steps:
        raise SystemExit("--stop-at must be between 0 and --steps")
    with tempfile.TemporaryDirectory(prefix="resume_training_") as directory:
        full_dir = os.path.join(directory, "uninterrupted")
        stop_dir = os.path.join(directory, "stopped")
        resumed_dir = os.path.join(directory, "resumed")
        # The uninterrupted run and the first part of the interrupted one are
        # independent: they run side by side.
        full = run_script(f"--steps={args.steps}", f"--save={full_dir}")
        first = run_script(f"--steps={args.stop_at}", f"--save={stop_dir}")
        try:
            full_log = finish(full, "uninterrupted")
            first_log = finish(first, "first")
        finally:
            for process in (full, first):
                if process.poll() is None:
                    process.kill()
                    process.wait()
        resumed = run_script(
            f"--steps={args.steps}", f"--resume={stop_dir}", f"--save={resumed_dir}"
        )
        resumed_log = finish(resumed, "resumed")

        print(f"{'uninterrupted':<48} stopped at {args.stop_at}, then resumed")
        for k, (a, b) in enumerate(zip(full_log, first_log + resumed_log, strict=True)):
            mark = "" if a == b else "  <-- differs"
            resumed_mark = " (new process)" if k >= args.stop_at else ""
            print(f"{a:<48} {b}{resumed_mark}{mark}")
        if full_log != first_log + resumed_log:
            raise SystemExit("FAILED: the resumed run's log differs")

        with (
            np.load(os.path.join(full_dir, "arrays.npz")) as full_arrays,
            np.load(os.path.join(resumed_dir, "arrays.npz")) as resumed_arrays,
        ):
            if sorted(full_arrays) != sorted(resumed_arrays):
                raise SystemExit("FAILED: the checkpoints hold different arrays")
            for key in full_arrays:
                a, b = full_arrays[key], resumed_arrays[key]
                if a.dtype != b.dtype or not np.array_equal(a, b):
                    raise SystemExit(f"FAILED: {key} differs after resuming")
            num_arrays = len(full_arrays.files)
        for name in ("uninterrupted", "resumed"):
            with open(os.path.join(directory, name, "checkpoint.json")) as file:
                print(f"{name} checkpoint: {json.load(file)['step']} steps")
    print(
        f"\nresumed == uninterrupted: lr and loss at all {args.steps} steps, and "
        f"all {num_arrays} arrays of the final checkpoint, bitwise"
    )
    print("OK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps in all (20)")
    parser.add_argument(
        "--stop-at", type=int, default=12, help="the step to stop and resume at (12)"
    )
    parser.set_defaults(command=demonstrate)
    commands = parser.add_subparsers(title="commands")
    train_parser = commands.add_parser(
        "train", help="one run: train (or resume) until --steps, and save"
    )
    train_parser.add_argument(
        "--steps", type=int, required=True, help="train until this step"
    )
    train_parser.add_argument("--resume", metavar="DIR", help="start from DIR")
    train_parser.add_argument("--save", metavar="DIR", help="save the end to DIR")
    train_parser.set_defaults(command=train)
    args = parser.parse_args()
    args.command(args)


if __name__ == "__main__":
    main()
