"""Sharded training with a `jaxdecay.ExponentialDecay` learning rate on 8 CPU devices.

The script asks XLA for 8 host (CPU) devices, lays them out as a
`jax.sharding.Mesh` with axes ('data', 'model'), shards each batch over 'data' and
the MLP's weights over 'model' (the first layer by columns, the second by rows), and
trains with `optax.sgd(schedule, momentum=0.9)` in a `jax.jit` step with explicit
in/out shardings. It then runs the same training on one device without any sharding
and checks that both runs used the same learning rates (bit for bit) and reached
the same parameters (to rtol 1e-5: the sharded run sums in another order). The
schedule is evaluated inside the step on the optimizer's step count, a replicated
scalar, so the learning rate comes out replicated too.

Run:
    python examples/sharded_training.py
    python examples/sharded_training.py --steps 50 --mesh 2x4

Needs jax, numpy and optax. It exits non-zero if the two runs disagree.
"""

from __future__ import annotations

import os

# Must be set before jax is imported: the CPU backend reads it when it starts.
_DEVICE_FLAG = "--xla_force_host_platform_device_count"
if _DEVICE_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        f"{os.environ.get('XLA_FLAGS', '')} {_DEVICE_FLAG}=8".strip()
    )

import argparse  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import jaxdecay  # noqa: E402

Params = dict[str, jax.Array]
Batch = tuple[np.ndarray, np.ndarray]

NUM_DEVICES = 8
NUM_FEATURES = 16
HIDDEN = 32
BATCH_SIZE = 64
NUM_BATCHES = 4

# Where each parameter lives on the mesh: Megatron-style, the hidden units are split
# over 'model', so the second layer's matmul ends in a sum over 'model'.
PARAM_SPECS = {
    "w1": P(None, "model"),
    "b1": P("model"),
    "w2": P("model", None),
    "b2": P(),
}
BATCH_SPEC = P("data", None)
# The sharded run adds its partial sums in another order than one device does.
RTOL, ATOL = 1e-5, 1e-7


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SystemExit(f"FAILED: {message}")


def check_close(name: str, sharded: np.ndarray, single: np.ndarray) -> None:
    """Checks a sharded result against the single-device one; prints how close."""
    try:
        np.testing.assert_allclose(sharded, single, rtol=RTOL, atol=ATOL)
    except AssertionError as error:
        raise SystemExit(
            f"FAILED: {name} differs from the single-device run:{error}"
        ) from None
    equal = "bitwise equal" if np.array_equal(sharded, single) else "allclose"
    difference = float(np.max(np.abs(np.subtract(sharded, single))))
    print(f"{name} == single-device {name}: {equal} (max abs diff {difference:.2e})")


# -- data, model and the train step: the same for every layout ---------------------


def make_batches(seed: int) -> list[Batch]:
    """NumPy batches of a noisy linear-plus-sine target, from a fixed key."""
    key_x, key_w, key_noise = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(key_x, (NUM_BATCHES * BATCH_SIZE, NUM_FEATURES))
    w = jax.random.normal(key_w, (NUM_FEATURES, 1)) / np.sqrt(NUM_FEATURES)
    noise = 0.05 * jax.random.normal(key_noise, (len(x), 1))
    y = x @ w + 0.3 * jnp.sin(x[:, :1]) + noise
    xs, ys = np.split(np.asarray(x), NUM_BATCHES), np.split(np.asarray(y), NUM_BATCHES)
    return list(zip(xs, ys, strict=True))


def init_params(seed: int) -> dict[str, np.ndarray]:
    key_1, key_2 = jax.random.split(jax.random.key(seed + 1))
    params = {
        "w1": jax.random.normal(key_1, (NUM_FEATURES, HIDDEN)) / np.sqrt(NUM_FEATURES),
        "b1": jnp.zeros(HIDDEN),
        "w2": jax.random.normal(key_2, (HIDDEN, 1)) / np.sqrt(HIDDEN),
        "b2": jnp.zeros(1),
    }
    return {name: np.asarray(value) for name, value in params.items()}


def loss_fn(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    prediction = hidden @ params["w2"] + params["b2"]
    return jnp.mean((prediction - y) ** 2)


def make_step(
    optimizer: optax.GradientTransformation, schedule: jaxdecay.ExponentialDecay
) -> Callable[..., Any]:
    def step(
        params: Params, opt_state: optax.OptState, x: jax.Array, y: jax.Array
    ) -> tuple[Params, optax.OptState, jax.Array, jax.Array]:
        # The count before the update is the step optax evaluates the schedule at.
        learning_rate = schedule(optax.tree_utils.tree_get(opt_state, "count"))
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, learning_rate

    return step


def train(
    train_step: Callable[..., Any],
    params: Params,
    opt_state: optax.OptState,
    batches: Sequence[tuple[jax.Array, jax.Array]],
    steps: int,
) -> tuple[Params, list[jax.Array], list[jax.Array]]:
    """Runs `steps` steps; returns the final params and the per-step lr and loss."""
    learning_rates, losses = [], []
    for i in range(steps):
        x, y = batches[i % len(batches)]
        params, opt_state, loss, learning_rate = train_step(params, opt_state, x, y)
        learning_rates.append(learning_rate)
        losses.append(loss)
    return params, learning_rates, losses


# -- the two layouts -----------------------------------------------------------------
# A multi-process run (one mesh over the devices of several hosts) would change only
# this part: jax.distributed.initialize() first, each process building its share of
# every batch with jax.make_array_from_process_local_data, and the results gathered
# with jax.experimental.multihost_utils.process_allgather before the comparison.


def make_mesh(shape: tuple[int, int]) -> Mesh:
    devices = jax.devices("cpu")
    check(
        len(devices) >= NUM_DEVICES,
        f"need {NUM_DEVICES} CPU devices, got {len(devices)}; XLA_FLAGS must ask for "
        f"them before jax is imported, and is {os.environ.get('XLA_FLAGS')!r}",
    )
    return Mesh(np.array(devices[:NUM_DEVICES]).reshape(shape), ("data", "model"))


def run_sharded(
    mesh: Mesh,
    optimizer: optax.GradientTransformation,
    schedule: jaxdecay.ExponentialDecay,
    host_params: dict[str, np.ndarray],
    host_batches: list[Batch],
    steps: int,
) -> tuple[Params, list[jax.Array], list[jax.Array]]:
    param_shardings = {
        name: NamedSharding(mesh, spec) for name, spec in PARAM_SPECS.items()
    }
    batch_sharding = NamedSharding(mesh, BATCH_SPEC)
    replicated = NamedSharding(mesh, P())
    # The optimizer state mirrors the params (momentum) plus a step count, which is
    # replicated: every device computes the same learning rate from it.
    state_shapes = jax.eval_shape(optimizer.init, host_params)
    state_shardings = optax.tree_utils.tree_map_params(
        optimizer,
        lambda _, sharding: sharding,
        state_shapes,
        param_shardings,
        transform_non_params=lambda _: replicated,
    )

    params = jax.device_put(host_params, param_shardings)
    opt_state = jax.jit(optimizer.init, out_shardings=state_shardings)(params)
    batches = [jax.device_put(batch, batch_sharding) for batch in host_batches]
    train_step = jax.jit(
        make_step(optimizer, schedule),
        in_shardings=(param_shardings, state_shardings, batch_sharding, batch_sharding),
        # None: the compiler picks the loss's and the learning rate's shardings.
        out_shardings=(param_shardings, state_shardings, None, None),
        donate_argnums=(0, 1),
    )
    return train(train_step, params, opt_state, batches, steps)


def run_single_device(
    optimizer: optax.GradientTransformation,
    schedule: jaxdecay.ExponentialDecay,
    host_params: dict[str, np.ndarray],
    host_batches: list[Batch],
    steps: int,
) -> tuple[Params, list[jax.Array], list[jax.Array]]:
    device = jax.devices("cpu")[0]
    params = jax.device_put(host_params, device)
    opt_state = jax.jit(optimizer.init)(params)
    batches = [jax.device_put(batch, device) for batch in host_batches]
    # No shardings: the computation follows its inputs, all on `device`.
    train_step = jax.jit(make_step(optimizer, schedule), donate_argnums=(0, 1))
    return train(train_step, params, opt_state, batches, steps)


def parse_mesh(text: str) -> tuple[int, int]:
    data, _, model = text.partition("x")
    try:
        shape = (int(data), int(model))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--mesh must look like 4x2, got {text!r}"
        ) from None
    if shape[0] * shape[1] != NUM_DEVICES or HIDDEN % shape[1] or BATCH_SIZE % shape[0]:
        raise argparse.ArgumentTypeError(
            f"--mesh must use {NUM_DEVICES} devices and divide the batch "
            f"({BATCH_SIZE}) and hidden units ({HIDDEN}), got {text!r}"
        )
    return shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps")
    parser.add_argument(
        "--mesh",
        type=parse_mesh,
        default=(4, 2),
        help="DATAxMODEL devices (default 4x2)",
    )
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be positive")

    schedule = jaxdecay.ExponentialDecay(0.1, decay_steps=5, decay_rate=0.5)
    optimizer = optax.sgd(learning_rate=schedule, momentum=0.9)
    host_params = init_params(seed=0)
    host_batches = make_batches(seed=0)

    mesh = make_mesh(args.mesh)
    print(f"mesh: {mesh}")
    print(f"schedule: {schedule}\n")
    params, learning_rates, losses = run_sharded(
        mesh, optimizer, schedule, host_params, host_batches, args.steps
    )
    single_params, single_learning_rates, single_losses = run_single_device(
        optimizer, schedule, host_params, host_batches, args.steps
    )

    print(f"{'step':>5} {'loss':>10} {'lr':>10}")
    log_every = max(1, args.steps // 10)
    for i, (loss, learning_rate) in enumerate(zip(losses, learning_rates, strict=True)):
        if i % log_every == 0 or i == args.steps - 1:
            print(f"{i:>5} {float(loss):>10.5f} {float(learning_rate):>10.6f}")
    print()
    for name, value in params.items():
        shard_shape = value.sharding.shard_shape(value.shape)
        print(f"{name} {value.shape}: {value.sharding.spec}, per device {shard_shape}")
    lr_sharding = learning_rates[-1].sharding
    print(f"lr sharding: {lr_sharding}")
    check(lr_sharding.is_fully_replicated, f"lr is not replicated: {lr_sharding}")
    check(
        float(losses[-1]) < float(losses[0]),
        f"loss did not fall: {float(losses[0]):.5f} -> {float(losses[-1]):.5f}",
    )

    # Compare with the single-device run: the learning rates must match bit for bit
    # (the same integer count goes into the same schedule); the params may differ in
    # the last bits, since the sharded sums are added in a different order.
    lrs = np.asarray(jax.device_get(learning_rates))
    single_lrs = np.asarray(jax.device_get(single_learning_rates))
    check(np.array_equal(lrs, single_lrs), f"lr sequences differ:\n{lrs}\n{single_lrs}")
    print(f"\nlr == single-device lr: bitwise equal at all {len(lrs)} steps")
    check_close("loss", jax.device_get(losses), jax.device_get(single_losses))
    for name in params:
        check_close(name, np.asarray(params[name]), np.asarray(single_params[name]))
    print("OK")


if __name__ == "__main__":
    main()
