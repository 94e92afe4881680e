"""Checkpoint a sharded training run with orbax and resume it in a new process, exactly.

The state (params, optimizer state, and the schedule's config, a pytree) lives on 8
CPU devices. orbax saves its arrays, and the step and config as JSON, which a resumed
run reads first: they give the structure to restore the arrays into. With the
`checkpoint` extra:
    python examples/resume_training.py --steps 12 --save /tmp/ckpt
    python examples/resume_training.py --steps 20 --resume /tmp/ckpt
"""

import os

# Before jax is imported: the CPU backend reads it when it starts.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=8"

import argparse
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxdecay

FEATURES, HIDDEN, BATCH_SIZE, NUM_BATCHES = 8, 16, 32, 3
MESH = Mesh(np.array(jax.devices()[:8]).reshape(4, 2), ("data", "model"))
PARAM_SPECS = {"w1": P(None, "model"), "b1": P("model"), "w2": P("model"), "b2": P()}
make_optimizer = functools.partial(optax.sgd, momentum=0.9)  # schedule -> optimizer


def init(schedule: jaxdecay.ExponentialDecay) -> dict[str, Any]:
    """optax stops an int32 count at 2**31 - 1: under x64 the count is int64."""
    rng = np.random.default_rng(1)
    params = {
        "w1": rng.standard_normal((FEATURES, HIDDEN)) / np.sqrt(FEATURES),
        "b1": np.zeros(HIDDEN),
        "w2": rng.standard_normal((HIDDEN, 1)) / np.sqrt(HIDDEN),
        "b2": np.zeros(1),
    }
    params = {name: jnp.asarray(value, float) for name, value in params.items()}
    opt_state = make_optimizer(schedule).init(params)
    if jax.config.jax_enable_x64:
        opt_state = optax.tree_utils.tree_set(opt_state, count=jnp.zeros([], "int64"))
    return {"params": params, "opt_state": opt_state, "schedule": schedule}


def sharding(path: Any, leaf: Any) -> Any:
    """`leaf` (or its shape) on the mesh: params and momentum split, others not."""
    where = NamedSharding(MESH, PARAM_SPECS.get(getattr(path[-1], "key", ""), P()))
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=where)
    return jax.device_put(leaf, where)


def make_batches() -> list[tuple[jax.Array, jax.Array]]:
    """Step k trains on batch k % NUM_BATCHES, rows split over 'data'."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((NUM_BATCHES, BATCH_SIZE, FEATURES))
    y = np.sin(x[..., :1]) + 0.1 * x[..., 1:2]
    pairs = zip(jnp.asarray(x, float), jnp.asarray(y, float), strict=True)
    return [jax.device_put(pair, NamedSharding(MESH, P("data"))) for pair in pairs]


def loss_fn(params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] + params["b2"] - y) ** 2)


def checkpointer() -> ocp.Checkpointer:
    """orbax saves to a temporary folder, then renames it: a killed save is no save."""
    return ocp.Checkpointer(
        ocp.CompositeCheckpointHandler(
            state=ocp.StandardCheckpointHandler(), metadata=ocp.JsonCheckpointHandler()
        )
    )


def save(directory: str, step: int, schedule: Any, state: Any) -> None:
    meta = ocp.args.JsonSave({"step": step, "schedule": jaxdecay.serialize(schedule)})
    items = ocp.args.Composite(state=ocp.args.StandardSave(state), metadata=meta)
    with checkpointer() as saver:
        saver.save(os.path.abspath(directory), args=items, force=True)


def names(path: Any) -> tuple[str, ...]:
    """A path by its keys: orbax keeps tuples as lists, namedtuples as dicts."""
    keys = (getattr(k, "key", getattr(k, "idx", getattr(k, "name", k))) for k in path)
    return tuple(map(str, keys))


def restore(directory: str) -> tuple[int, jaxdecay.ExponentialDecay, Any]:
    """The step, the schedule and the state, on the shardings of a new run."""
    path, flatten = os.path.abspath(directory), jax.tree_util.tree_flatten_with_path
    with checkpointer() as restorer:
        read = ocp.args.Composite(metadata=ocp.args.JsonRestore())
        metadata = restorer.restore(path, args=read)["metadata"]
        schedule = jaxdecay.deserialize(metadata["schedule"])
        like = jax.eval_shape(lambda: init(schedule))
        stored = flatten(restorer.metadata(path).item_metadata["state"])[0]
        arrays = {names(key): (leaf.shape, leaf.dtype) for key, leaf in stored}
        for key, leaf in flatten(like)[0]:
            if (found := arrays.get(names(key), "missing")) != (leaf.shape, leaf.dtype):
                where = jax.tree_util.keystr(key)
                raise ValueError(f"{directory}: {where} is {found}, expected {leaf}")
        target = jax.tree_util.tree_map_with_path(sharding, like)
        read = ocp.args.Composite(state=ocp.args.StandardRestore(target))
        return metadata["step"], schedule, restorer.restore(path, args=read)["state"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="train until this step")
    parser.add_argument("--resume", metavar="DIR", help="start from a checkpoint")
    parser.add_argument("--save", metavar="DIR", help="save the end to DIR")
    args = parser.parse_args()
    if args.resume:
        start, schedule, state = restore(args.resume)
        print(f"resumed at step {start} from {args.resume}: {schedule}")
    else:
        start, schedule = 0, jaxdecay.ExponentialDecay(0.1, 5, decay_rate=0.6)
        state = jax.tree_util.tree_map_with_path(sharding, init(schedule))

    @jax.jit
    def train_step(state: Any, x: jax.Array, y: jax.Array) -> Any:
        schedule = state["schedule"]  # an argument: its numbers are data
        params, opt_state = state["params"], state["opt_state"]
        learning_rate = jaxdecay.current_learning_rate(schedule, opt_state)
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = make_optimizer(schedule).update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return dict(state, params=params, opt_state=opt_state), loss, learning_rate

    batches = make_batches()
    for k in range(start, args.steps):
        state, loss, learning_rate = train_step(state, *batches[k % NUM_BATCHES])
        print(f"step={k} lr={learning_rate!s} loss={loss!s}")  # text that reads back
    if args.save:
        save(args.save, end := max(start, args.steps), schedule, state)
        print(f"saved step {end} to {args.save}")


if __name__ == "__main__":
    main()
