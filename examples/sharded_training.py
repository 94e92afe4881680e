"""Sharded training with a `jaxdecay.ExponentialDecay` learning rate on 8 CPU devices.

The script lays out 8 host (CPU) devices as a `jax.sharding.Mesh` with axes
('data', 'model'), shards each batch over 'data' and the MLP's weights over 'model'
(the first layer by columns, the second by rows), and trains with
`optax.sgd(schedule, momentum=0.9)` in a `jax.jit` step with explicit in/out
shardings. It then runs the same training on one device without any sharding and
checks that both runs used the same learning rates (bit for bit) and reached the same
parameters (to rtol 1e-5: the sharded run sums in another order). The schedule is
evaluated inside the step on the optimizer's step count, a replicated scalar, so the
learning rate comes out replicated too.

With `--processes N` the same 8 devices are spread over N processes, as the hosts
of a TPU pod are: the script starts N copies of itself on 127.0.0.1, each with
8 / N CPU devices. Each calls `jax.distributed.initialize` (the coordinator is
process 0, on a free port; CPU collectives go through gloo), builds one global mesh
over all 8 devices, loads only its own rows of each batch, and runs the same jitted
step. The processes check among themselves that they compiled the same program and
computed the same learning rates; the parent waits for them (at most --timeout
seconds, killing them all if one fails or time runs out), checks that their lines
agree and match a single-device run, and exits non-zero otherwise.

Every run ends with one line per process, for the last of the `--steps` updates:

    process=<i> step=<n> lr=<lr of update n> checksum=<weighted sum of the params>

`lr` is written in its own dtype's shortest round-trip form, so equal text means
equal bits; `checksum` is `math.fsum` of the parameters times fixed weights (one
rounding, in float64), so it changes whenever a parameter does. Before it, the
one-process mode prints the single-device run's values as
`single-device step=<n> lr=<lr> checksum=<checksum>`.

Run:
    python examples/sharded_training.py
    python examples/sharded_training.py --steps 50 --mesh 2x4
    python examples/sharded_training.py --processes 2

Needs jax, numpy and optax. It exits non-zero if the runs disagree.
"""

from __future__ import annotations

import os
import re

# Must be set before jax is imported: the CPU backend reads it when it starts. A child
# of --processes gets its share of the devices from its parent, in XLA_FLAGS.
_DEVICE_FLAG = "--xla_force_host_platform_device_count"
if _DEVICE_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        f"{os.environ.get('XLA_FLAGS', '')} {_DEVICE_FLAG}=8".strip()
    )

import argparse  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402
import math  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402
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

# The line each process prints at the end; the parent and tests parse it.
RESULT_LINE = re.compile(
    r"process=(?P<process>\d+) step=(?P<step>\d+) lr=(?P<lr>\S+) "
    r"checksum=(?P<checksum>\S+)"
)
# What process 0 writes on stderr when its coordinator cannot bind the port (someone
# took it after we picked it): then the launch is retried on another port.
_BIND_FAILURES = ("Failed to add port", "Address already in use")
_LAUNCH_ATTEMPTS = 3


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
    """Batches of a noisy linear-plus-sine target, in JAX's default float dtype.

    NumPy, not jax.random: every process makes the same data from the seed without
    compiling a program for each operation.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((NUM_BATCHES * BATCH_SIZE, NUM_FEATURES))
    w = rng.standard_normal((NUM_FEATURES, 1)) / np.sqrt(NUM_FEATURES)
    noise = 0.05 * rng.standard_normal((len(x), 1))
    y = x @ w + 0.3 * np.sin(x[:, :1]) + noise
    dtype = jnp.result_type(float)  # float32, or float64 under x64
    xs, ys = (
        np.split(x.astype(dtype), NUM_BATCHES),
        np.split(y.astype(dtype), NUM_BATCHES),
    )
    return list(zip(xs, ys, strict=True))


def init_params(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    dtype = jnp.result_type(float)
    params = {
        "w1": rng.standard_normal((NUM_FEATURES, HIDDEN)) / np.sqrt(NUM_FEATURES),
        "b1": np.zeros(HIDDEN),
        "w2": rng.standard_normal((HIDDEN, 1)) / np.sqrt(HIDDEN),
        "b2": np.zeros(1),
    }
    return {name: value.astype(dtype) for name, value in params.items()}


def loss_fn(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    prediction = hidden @ params["w2"] + params["b2"]
    return jnp.mean((prediction - y) ** 2)


def make_step(
    optimizer: optax.GradientTransformation,
    schedule: jaxdecay.ExponentialDecay,
    traces: list[int] | None = None,
) -> Callable[..., Any]:
    def step(
        params: Params, opt_state: optax.OptState, x: jax.Array, y: jax.Array
    ) -> tuple[Params, optax.OptState, jax.Array, jax.Array]:
        if traces is not None:
            traces.append(1)  # runs when jax traces the step, not when it runs
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


def to_host(tree: Any) -> Any:
    """Copies a tree of (possibly multi-process) arrays into NumPy on every process."""

    def one(value: jax.Array) -> np.ndarray:
        if value.is_fully_addressable or value.is_fully_replicated:
            return np.asarray(value)
        # Parts of it live on other hosts: gather them (a collective, outside the step).
        return np.asarray(multihost_utils.process_allgather(value, tiled=True))

    return jax.tree.map(one, tree)


def checksum(params: dict[str, np.ndarray]) -> float:
    """A weighted sum of all parameters: a changed or moved value changes it.

    `math.fsum` rounds once, so the result does not depend on a summation order.
    """
    terms = []
    for name in sorted(params):
        flat = np.asarray(params[name], np.float64).ravel()
        terms.extend(flat * (np.arange(1, flat.size + 1) / flat.size))
    return math.fsum(terms)


def summary(steps: int, learning_rate: Any, params: dict[str, np.ndarray]) -> str:
    """`step=<n> lr=<lr> checksum=<checksum>` after `steps` updates."""
    # str() of a NumPy scalar is the shortest text that reads back to the same bits
    # in its own dtype.
    lr_text = str(np.asarray(learning_rate)[()])
    return f"step={steps} lr={lr_text} checksum={checksum(params)!r}"


# -- the two layouts -----------------------------------------------------------------
# The sharded layout runs unchanged on one process or on several: every array is a
# global jax.Array made from what each process holds, so the jitted step is one SPMD
# program over the whole mesh, and the schedule inside it is computed on every device
# from the replicated step count.


def make_mesh(shape: tuple[int, int]) -> Mesh:
    # All devices of all processes, process 0's first: 'data' spans the processes
    # and 'model' stays within one, as on a pod whose hosts hold whole model shards.
    devices = jax.devices("cpu")
    check(
        len(devices) >= NUM_DEVICES,
        f"need {NUM_DEVICES} CPU devices, got {len(devices)}; XLA_FLAGS must ask for "
        f"them before jax is imported, and is {os.environ.get('XLA_FLAGS')!r}",
    )
    return Mesh(np.array(devices[:NUM_DEVICES]).reshape(shape), ("data", "model"))


def replicated_on_hosts(value: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from a value that every process holds in full (the initial
    params, made from the same seed everywhere); each device takes its slice."""
    return jax.make_array_from_callback(
        value.shape, sharding, lambda index: value[index]
    )


def process_rows(sharding: NamedSharding, shape: tuple[int, ...]) -> slice:
    """The rows of a batch that this process's devices hold: what its input pipeline
    would load on a pod."""
    indices = sharding.addressable_devices_indices_map(shape).values()
    blocks = sorted({index[0].indices(shape[0])[:2] for index in indices})
    for (_, stop), (start, _) in itertools.pairwise(blocks):
        check(stop == start, f"this process's rows are not contiguous: {blocks}")
    return slice(blocks[0][0], blocks[-1][1])


def process_local_batch(sharding: NamedSharding, batch: Batch) -> tuple[jax.Array, ...]:
    """A global batch from the rows this process holds."""
    arrays = []
    for value in batch:
        local = value[process_rows(sharding, value.shape)]
        arrays.append(
            jax.make_array_from_process_local_data(sharding, local, value.shape)
        )
    return tuple(arrays)


def run_sharded(
    mesh: Mesh,
    optimizer: optax.GradientTransformation,
    schedule: jaxdecay.ExponentialDecay,
    host_params: dict[str, np.ndarray],
    host_batches: list[Batch],
    steps: int,
    traces: list[int] | None = None,
) -> tuple[Params, list[jax.Array], list[jax.Array], str]:
    """The sharded training; also returns a fingerprint of the compiled step."""
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

    params = {
        name: replicated_on_hosts(value, param_shardings[name])
        for name, value in host_params.items()
    }
    opt_state = jax.jit(optimizer.init, out_shardings=state_shardings)(params)
    batches = [process_local_batch(batch_sharding, batch) for batch in host_batches]
    train_step = jax.jit(
        make_step(optimizer, schedule, traces),
        in_shardings=(param_shardings, state_shardings, batch_sharding, batch_sharding),
        # None: the compiler picks the loss's and the learning rate's shardings.
        out_shardings=(param_shardings, state_shardings, None, None),
        donate_argnums=(0, 1),
    )
    # The program every process compiles: equal text on every host means no host
    # specializes it (a host-dependent constant would show up here).
    program = train_step.lower(params, opt_state, *batches[0]).as_text()
    fingerprint = hashlib.sha256(program.encode()).hexdigest()
    params, learning_rates, losses = train(
        train_step, params, opt_state, batches, steps
    )
    return params, learning_rates, losses, fingerprint


def run_single_device(
    optimizer: optax.GradientTransformation,
    schedule: jaxdecay.ExponentialDecay,
    host_params: dict[str, np.ndarray],
    host_batches: list[Batch],
    steps: int,
) -> tuple[Params, list[jax.Array], list[jax.Array]]:
    device = jax.local_devices(backend="cpu")[0]
    params = jax.device_put(host_params, device)
    opt_state = jax.jit(optimizer.init)(params)
    batches = [jax.device_put(batch, device) for batch in host_batches]
    # No shardings: the computation follows its inputs, all on `device`.
    train_step = jax.jit(make_step(optimizer, schedule), donate_argnums=(0, 1))
    return train(train_step, params, opt_state, batches, steps)


def make_training() -> tuple[
    jaxdecay.ExponentialDecay,
    optax.GradientTransformation,
    dict[str, np.ndarray],
    list[Batch],
]:
    """The schedule, optimizer, initial params and data: the same in every process."""
    schedule = jaxdecay.ExponentialDecay(0.1, decay_steps=5, decay_rate=0.5)
    optimizer = optax.sgd(learning_rate=schedule, momentum=0.9)
    return schedule, optimizer, init_params(seed=0), make_batches(seed=0)


# -- one process: the sharded run against one device ---------------------------------


def run_one_process(args: argparse.Namespace) -> None:
    schedule, optimizer, host_params, host_batches = make_training()
    mesh = make_mesh(args.mesh)
    print(f"mesh: {mesh}")
    print(f"schedule: {schedule}\n")
    traces: list[int] = []
    params, learning_rates, losses, _ = run_sharded(
        mesh, optimizer, schedule, host_params, host_batches, args.steps, traces
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
    check(len(traces) == 1, f"the step was traced {len(traces)} times, not once")
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
    host_single = to_host(single_params)
    print(f"single-device {summary(args.steps, single_lrs[-1], host_single)}")
    print(f"process=0 {summary(args.steps, lrs[-1], to_host(params))}")
    print("OK")


# -- several processes: one of them ---------------------------------------------------


def run_in_process_group(args: argparse.Namespace) -> None:
    """One of --processes N: joins the others, trains its part of the global mesh."""
    # gloo carries the collectives between CPU processes (it is the default in recent
    # JAX; without it, a CPU computation cannot span processes).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=args.coordinator,
        num_processes=args.processes,
        process_id=args.process_id,
        # Listen on loopback only (the default is every interface), and never probe
        # for a cluster (SLURM, MPI, a TPU pod's metadata): everything is given.
        coordinator_bind_address=args.coordinator,
        cluster_detection_method="deactivate",
        initialization_timeout=60,
    )
    check(
        jax.process_count() == args.processes,
        f"{jax.process_count()} processes joined, not {args.processes}",
    )
    schedule, optimizer, host_params, host_batches = make_training()
    traces: list[int] = []
    params, learning_rates, losses, fingerprint = run_sharded(
        make_mesh(args.mesh),
        optimizer,
        schedule,
        host_params,
        host_batches,
        args.steps,
        traces,
    )
    check(len(traces) == 1, f"the step was traced {len(traces)} times, not once")
    for learning_rate in learning_rates:
        check(
            learning_rate.sharding.is_fully_replicated,
            f"lr is not replicated: {learning_rate.sharding}",
        )
    lrs = to_host(learning_rates)
    losses = to_host(losses)
    check(
        float(losses[-1]) < float(losses[0]),
        f"loss did not fall: {float(losses[0]):.5f} -> {float(losses[-1]):.5f}",
    )
    # Every process holds the same program and learning rates; assert_equal gathers
    # them and fails on every process if any differs.
    digest = np.frombuffer(bytes.fromhex(fingerprint), np.uint8)
    multihost_utils.assert_equal(digest, "processes compiled different train steps")
    multihost_utils.assert_equal(
        np.asarray(lrs), "processes computed different learning rates"
    )
    line = (
        f"process={jax.process_index()} {summary(args.steps, lrs[-1], to_host(params))}"
    )
    print(line, flush=True)  # one write: gloo's own messages share this stdout
    jax.distributed.shutdown()


# -- several processes: the parent that starts them -----------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now; see the retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def child_environment(devices_per_process: int) -> dict[str, str]:
    flags = re.sub(rf"{_DEVICE_FLAG}=\S+", "", os.environ.get("XLA_FLAGS", "")).split()
    flags.append(f"{_DEVICE_FLAG}={devices_per_process}")
    return {**os.environ, "XLA_FLAGS": " ".join(flags)}


def stop(children: Sequence[subprocess.Popen[bytes]]) -> None:
    """Kills the children that still run, and reaps them all."""
    for child in children:
        if child.poll() is None:
            child.kill()
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a stuck kernel
            print(f"process {child.pid} did not exit after SIGKILL", file=sys.stderr)


def launch_once(
    args: argparse.Namespace, address: str, deadline: float, logs: str
) -> tuple[list[int | None], list[str], list[str]]:
    """Starts the N processes; waits until all exit, one fails or the deadline passes.

    Returns each process's exit code (None if it was still running and killed), its
    stdout and its stderr. The processes are always killed and reaped before it
    returns.
    """
    environment = child_environment(NUM_DEVICES // args.processes)
    children: list[subprocess.Popen[bytes]] = []
    codes: list[int | None] = []
    try:
        for process_id in range(args.processes):
            command = [
                sys.executable,
                os.path.abspath(__file__),
                f"--steps={args.steps}",
                f"--mesh={args.mesh[0]}x{args.mesh[1]}",
                f"--processes={args.processes}",
                f"--process-id={process_id}",
                f"--coordinator={address}",
            ]
            # Files, not pipes: nobody reads while waiting, and a full pipe blocks.
            with (
                open(os.path.join(logs, f"{process_id}.out"), "wb") as stdout,
                open(os.path.join(logs, f"{process_id}.err"), "wb") as stderr,
            ):
                children.append(
                    subprocess.Popen(
                        command, stdout=stdout, stderr=stderr, env=environment
                    )
                )
        while time.monotonic() < deadline:
            codes = [child.poll() for child in children]
            if None not in codes or any(code not in (None, 0) for code in codes):
                break  # all done, or one failed: the others would wait for it
            time.sleep(0.05)
        codes = [child.poll() for child in children]
    finally:
        stop(children)

    def read(name: str) -> str:
        with open(os.path.join(logs, name), "rb") as file:
            return file.read().decode(errors="replace")

    stdouts = [read(f"{i}.out") for i in range(len(children))]
    stderrs = [read(f"{i}.err") for i in range(len(children))]
    return codes, stdouts, stderrs


def run_parent(args: argparse.Namespace) -> None:
    check(
        NUM_DEVICES % args.processes == 0,
        f"--processes must divide {NUM_DEVICES}, got {args.processes}",
    )
    # A parent stopped by SIGTERM (a CI timeout, say) still kills its children: the
    # exception runs launch_once's cleanup.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    deadline = time.monotonic() + args.timeout
    with tempfile.TemporaryDirectory(prefix="sharded_training_") as logs:
        for attempt in range(1, _LAUNCH_ATTEMPTS + 1):
            address = f"127.0.0.1:{free_port()}"
            print(f"starting {args.processes} processes, coordinator {address}")
            codes, stdouts, stderrs = launch_once(args, address, deadline, logs)
            bind_failed = codes[0] not in (0, None) and any(
                failure in stderrs[0] for failure in _BIND_FAILURES
            )
            if bind_failed and attempt < _LAUNCH_ATTEMPTS:
                print(f"the coordinator could not bind {address}; trying another port")
                continue
            break
    if codes != [0] * args.processes:
        why = (
            f"the --timeout of {args.timeout:g} s ran out"
            if time.monotonic() >= deadline
            else "another process failed"
        )
        for process_id, (code, err) in enumerate(zip(codes, stderrs, strict=True)):
            status = f"killed: {why}" if code is None else f"exit code {code}"
            tail = "\n    ".join(err.strip().splitlines()[-15:])
            print(f"process {process_id}: {status}\n    {tail}", file=sys.stderr)
        raise SystemExit(f"FAILED: the {args.processes} processes did not all finish")

    lines = []
    for process_id, out in enumerate(stdouts):
        found = [match for match in map(RESULT_LINE.search, out.splitlines()) if match]
        check(
            len(found) == 1, f"process {process_id} printed {len(found)} result lines"
        )
        check(
            int(found[0]["process"]) == process_id,
            f"process {process_id} calls itself {found[0]['process']}",
        )
        lines.append(found[0])
        print(found[0].group(0))
    fields = ("step", "lr", "checksum")
    values = {tuple(line[field] for field in fields) for line in lines}
    check(len(values) == 1, "the processes disagree")
    print(f"all {args.processes} processes agree")

    # The same training on one device, here: the lr must match bit for bit, the
    # params to the sharded run's tolerance (checked on their checksum).
    schedule, optimizer, host_params, host_batches = make_training()
    single_params, single_lrs, _ = run_single_device(
        optimizer, schedule, host_params, host_batches, args.steps
    )
    text = summary(args.steps, to_host(single_lrs[-1]), to_host(single_params))
    print(f"single-device {text}")
    reference = RESULT_LINE.search(f"process=0 {text}")
    assert reference is not None
    check(lines[0]["lr"] == reference["lr"], "the lr differs from one device's")
    relative = abs(float(lines[0]["checksum"]) / float(reference["checksum"]) - 1)
    check(relative <= RTOL, f"the params differ from one device's ({relative:.1e})")
    print(f"lr == single-device lr: bitwise; checksum within {relative:.1e}")
    print("OK")


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
    parser.add_argument(
        "--processes",
        type=int,
        help="spread the 8 devices over this many local processes",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120,
        help="with --processes: seconds before all processes are killed (120)",
    )
    # Set by the parent for each process it starts.
    parser.add_argument("--process-id", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--coordinator", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be positive")
    if args.processes is not None and args.processes < 1:
        parser.error("--processes must be positive")

    if args.processes is None:
        run_one_process(args)
    elif args.process_id is None:
        run_parent(args)
    else:
        run_in_process_group(args)


if __name__ == "__main__":
    main()
