"""Sharded training with a `jaxdecay.ExponentialDecay` learning rate on 8 CPU devices.

A ('data', 'model') mesh splits the batches over 'data' and the MLP's hidden units
over 'model'. The schedule runs in the jitted step on optax's replicated step count:
the learning rate is replicated, and bit for bit that of the same training on one
device; the params match it up to the order in which sharded sums are added.

On a pod every host runs this script. On one machine, two processes of 4 devices:
    XLA_FLAGS=--xla_force_host_platform_device_count=4 python examples/\
sharded_training.py --processes 2 --process-id 0 --coordinator 127.0.0.1:1234
and the same with --process-id 1, side by side.
"""

import os

# Before jax is imported: the CPU backend reads it when it starts.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count=8"

import argparse
import hashlib
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jaxdecay

FEATURES, HIDDEN, BATCH_SIZE, NUM_BATCHES = 16, 32, 64, 4
PARAM_SPECS = {"w1": P(None, "model"), "b1": P("model"), "w2": P("model"), "b2": P()}
schedule = jaxdecay.ExponentialDecay(0.1, decay_steps=5, decay_rate=0.5)
optimizer = optax.sgd(learning_rate=schedule, momentum=0.9)


def make_data() -> tuple[dict[str, np.ndarray], list[tuple[np.ndarray, ...]]]:
    """The initial params and the batches, from NumPy: the same in every process."""
    rng = np.random.default_rng(0)
    dtype = jnp.result_type(float)  # float32, or float64 under x64
    x = rng.standard_normal((NUM_BATCHES * BATCH_SIZE, FEATURES)).astype(dtype)
    y = x @ rng.standard_normal((FEATURES, 1)).astype(dtype) / 4 + np.sin(x[:, :1])
    params = {
        "w1": rng.standard_normal((FEATURES, HIDDEN)) / np.sqrt(FEATURES),
        "b1": np.zeros(HIDDEN),
        "w2": rng.standard_normal((HIDDEN, 1)) / np.sqrt(HIDDEN),
        "b2": np.zeros(1),
    }
    batches = zip(np.split(x, NUM_BATCHES), np.split(y, NUM_BATCHES), strict=True)
    return {k: v.astype(dtype) for k, v in params.items()}, list(batches)


def loss_fn(params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] + params["b2"] - y) ** 2)


def step(params: Any, opt_state: Any, x: jax.Array, y: jax.Array) -> Any:
    # The count before the update is the step optax evaluates the schedule at.
    learning_rate = schedule(optax.tree_utils.tree_get(opt_state, "count"))
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, learning_rate


def train(params: Any, opt_state: Any, batches: list[Any], steps: int) -> Any:
    """The final params, each step's lr and loss, and the program's fingerprint."""
    layout = jax.tree.map(lambda a: a.sharding, (params, opt_state))
    train_step = jax.jit(step, out_shardings=(*layout, None, None))  # stay put
    # The program every process compiles: the same text on every host.
    program = train_step.lower(params, opt_state, *batches[0]).as_text().encode()
    logs = []
    for x, y in (batches * steps)[:steps]:
        params, opt_state, *log = train_step(params, opt_state, x, y)
        logs.append(log)
    losses, learning_rates = zip(*logs, strict=True)
    return params, learning_rates, losses, hashlib.sha256(program).hexdigest()[:16]


def global_array(value: np.ndarray, sharding: NamedSharding) -> jax.Array:
    return jax.make_array_from_callback(value.shape, sharding, value.__getitem__)


def train_sharded(steps: int) -> Any:
    """Over the devices of all processes; each supplies what its devices hold."""
    mesh = Mesh(np.array(jax.devices()[:8]).reshape(4, 2), ("data", "model"))
    shardings = {name: NamedSharding(mesh, spec) for name, spec in PARAM_SPECS.items()}
    host_params, host_batches = make_data()
    params = jax.tree.map(global_array, host_params, shardings)
    rows = NamedSharding(mesh, P("data"))
    batches = jax.tree.map(lambda value: global_array(value, rows), host_batches)
    # The momentum is sharded as the params are; the step count is replicated.
    state_shardings = optax.tree_utils.tree_map_params(
        optimizer,
        lambda _, sharding: sharding,
        jax.eval_shape(optimizer.init, params),
        shardings,
        transform_non_params=lambda _: NamedSharding(mesh, P()),
    )
    opt_state = jax.jit(optimizer.init, out_shardings=state_shardings)(params)
    return train(params, opt_state, batches, steps)


def report(label: str, params: Any, learning_rates: Any, losses: Any) -> None:
    """Prints each step's lr and loss (shortest round-trip text), and a checksum."""
    lrs, losses, params = multihost_utils.process_allgather(
        (learning_rates, losses, params), tiled=True
    )
    for k, (lr, loss) in enumerate(zip(lrs, losses, strict=True)):
        print(f"{label} step={k} lr={lr[()]!s} loss={loss[()]!s}")
    # A weighted sum of all params, rounded once: it changes when any param does.
    flat = np.concatenate([np.ravel(params[k]) for k in sorted(params)]).astype(float)
    checksum = math.fsum(flat * np.arange(1, flat.size + 1) / flat.size)
    print(f"{label} step={len(lrs)} checksum={checksum!r}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--processes", type=int, help="processes sharing the mesh")
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--coordinator", help="process 0's host:port")
    args = parser.parse_args()
    if args.processes:  # gloo carries collectives between CPU processes
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        address, count, index = args.coordinator, args.processes, args.process_id
        jax.distributed.initialize(
            address, count, index, coordinator_bind_address=address
        )

    params, learning_rates, losses, program = train_sharded(args.steps)
    replicated = all(lr.sharding.is_fully_replicated for lr in learning_rates)
    print(f"process={jax.process_index()} program={program} replicated={replicated}")
    report(f"process={jax.process_index()}", params, learning_rates, losses)
    if args.processes:
        jax.distributed.shutdown()
    else:  # the same training on one device
        params, batches = jax.device_put(make_data(), jax.devices()[0])
        trained = train(params, optimizer.init(params), batches, args.steps)
        report("single-device", *trained[:3])


if __name__ == "__main__":
    main()
