"""The schedule in sharded training on 8 CPU devices: the single-device result, a
replicated learning rate, and no collective of its own.

The main pytest process keeps its one device, so the training runs once, in a
subprocess that runs this file as a script with
`XLA_FLAGS=--xla_force_host_platform_device_count=8` in its own environment. It
trains a small MLP with `optax.sgd(schedule, momentum=0.9)` four ways (one device;
params sharded over a ('data', 'model') mesh; `shard_map`; the config passed as a
replicated pytree argument), compiles the learning-rate computation on the mesh, and
prints what it saw as JSON. The tests below check that JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

optax = pytest.importorskip("optax")
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxdecay import ExponentialDecay

NUM_DEVICES = 8
TIMEOUT = 120  # seconds; the subprocess takes ~10 on 2 cores
STEPS = 8
# decay_steps=3 puts fractional exponents on most steps; staircase is elsewhere.
SCHEDULE = ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5)
# Another config of the same shape, for the config-as-argument run.
OTHER_SCHEDULE = ExponentialDecay(0.05, decay_steps=2, decay_rate=0.8, staircase=False)
PARAM_SPECS = {
    "w1": P(None, "model"),
    "b1": P("model"),
    "w2": P("model", None),
    "b2": P(),
}
BATCH_SIZE, FEATURES, HIDDEN = 32, 8, 16
# Op names of XLA's cross-device collectives, as they appear before "(" in HLO text
# (async pairs as "all-reduce-start(" etc.).
COLLECTIVE = re.compile(
    r"\b(all-reduce|all-gather|collective-permute|reduce-scatter|all-to-all"
    r"|ragged-all-to-all|collective-broadcast)(?:-start)?\("
)


# -- the 8-device run (the subprocess) -----------------------------------------------


def make_data(dtype: Any) -> tuple[dict[str, np.ndarray], list[tuple[np.ndarray, ...]]]:
    rng = np.random.default_rng(0)
    params = {
        "w1": rng.standard_normal((FEATURES, HIDDEN)) / np.sqrt(FEATURES),
        "b1": np.zeros(HIDDEN),
        "w2": rng.standard_normal((HIDDEN, 1)) / np.sqrt(HIDDEN),
        "b2": np.zeros(1),
    }
    batches = []
    for _ in range(2):
        x = rng.standard_normal((BATCH_SIZE, FEATURES))
        y = np.sin(x[:, :1]) + 0.1 * x[:, 1:2]
        batches.append((x.astype(dtype), y.astype(dtype)))
    return {name: value.astype(dtype) for name, value in params.items()}, batches


def loss_fn(params: dict[str, jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] + params["b2"] - y) ** 2)


def make_step(
    learning_rate: Any, traces: list[int], reduce_axes: tuple[str, ...] = ()
) -> Callable[..., Any]:
    """The train step; `learning_rate` is a schedule, or None to take the schedule as
    a fifth argument. `reduce_axes` are averaged over (for shard_map)."""

    def step(params, opt_state, x, y, config=None):
        traces.append(1)  # at trace time only
        schedule = config if learning_rate is None else learning_rate
        optimizer = optax.sgd(schedule, momentum=0.9)
        count = optax.tree_utils.tree_get(opt_state, "count")
        lr = jnp.asarray(schedule(count))
        if reduce_axes:
            # Each device differentiates its own loss; the mean is taken explicitly.
            loss, grads = jax.value_and_grad(loss_fn)(
                varying(params, reduce_axes), x, y
            )
            loss, grads = jax.lax.pmean((loss, grads), reduce_axes)
        else:
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, lr

    return step


def varying(tree: Any, axes: tuple[str, ...]) -> Any:
    """Marks replicated values as varying over `axes` inside shard_map, so that their
    gradient stays per device. Newer JAX (check_vma) would otherwise sum the gradient
    of a replicated input over the mesh by itself; older JAX has no such types."""
    if hasattr(jax.lax, "pcast"):
        return jax.lax.pcast(tree, axes, to="varying")
    if hasattr(jax.lax, "pvary"):
        return jax.lax.pvary(tree, axes)
    return tree


def run(step, params, opt_state, batches, *extra) -> dict[str, Any]:
    """Trains STEPS steps; returns the lr at each step, how it was sharded, and the
    final params."""
    lrs, shardings = [], []
    for i in range(STEPS):
        params, opt_state, lr = step(params, opt_state, *batches[i % 2], *extra)
        lrs.append(lr)
        shardings.append(lr.sharding)
    return {
        "lrs": [float(lr) for lr in lrs],
        "lr_dtype": str(lrs[0].dtype),
        "lr_replicated": all(s.is_fully_replicated for s in shardings),
        "lr_specs": sorted({str(getattr(s, "spec", s)) for s in shardings}),
        "params": {k: np.asarray(v).tolist() for k, v in params.items()},
    }


def collectives(compiled_text: str) -> list[str]:
    return sorted(match.group(0)[:-1] for match in COLLECTIVE.finditer(compiled_text))


def shard_map(f: Callable[..., Any], **kwargs: Any) -> Callable[..., Any]:
    if hasattr(jax, "shard_map"):
        return jax.shard_map(f, **kwargs)
    from jax.experimental.shard_map import shard_map as experimental_shard_map

    return experimental_shard_map(f, **kwargs)


def eight_device_run() -> dict[str, Any]:
    """Everything the tests check, computed on 8 devices."""
    assert jax.device_count() == NUM_DEVICES, jax.devices()
    jax.config.update("jax_numpy_dtype_promotion", "strict")  # as conftest.py
    dtype = np.dtype(jnp.result_type(float))
    host_params, host_batches = make_data(dtype)
    mesh = Mesh(np.array(jax.devices()).reshape(4, 2), ("data", "model"))
    replicated = NamedSharding(mesh, P())
    batch_sharding = NamedSharding(mesh, P("data", None))
    param_shardings = {k: NamedSharding(mesh, spec) for k, spec in PARAM_SPECS.items()}
    # The state has the step count whatever the schedule: sgd's for SCHEDULE serves
    # every run.
    init = optax.sgd(SCHEDULE, momentum=0.9).init
    state_shardings = optax.tree_utils.tree_map_params(
        init,
        lambda _, sharding: sharding,
        jax.eval_shape(init, host_params),
        param_shardings,
        transform_non_params=lambda _: replicated,
    )
    sharded_batches = [jax.device_put(b, batch_sharding) for b in host_batches]
    results: dict[str, Any] = {"devices": jax.device_count(), "traces": {}}

    def sharded_params() -> tuple[Any, Any]:
        params = jax.device_put(host_params, param_shardings)
        return params, jax.jit(init, out_shardings=state_shardings)(params)

    def sharded_jit(step: Callable[..., Any], *extra_shardings: Any) -> Any:
        return jax.jit(
            step,
            in_shardings=(
                param_shardings,
                state_shardings,
                batch_sharding,
                batch_sharding,
                *extra_shardings,
            ),
            out_shardings=(param_shardings, state_shardings, None),
        )

    # One device, no sharding: the reference.
    traces: list[int] = []
    device = jax.devices()[0]
    params = jax.device_put(host_params, device)
    results["single"] = run(
        jax.jit(make_step(SCHEDULE, traces)),
        params,
        init(params),
        [jax.device_put(b, device) for b in host_batches],
    )
    results["traces"]["single"] = len(traces)

    # Params sharded over ('data', 'model'), the batch over 'data'.
    traces = []
    sharded_step = sharded_jit(make_step(SCHEDULE, traces))
    results["sharded"] = run(sharded_step, *sharded_params(), sharded_batches)
    results["traces"]["sharded"] = len(traces)

    # shard_map: each device runs the step on its eighth of the batch; the params
    # and the step count are replicated. out_specs P() for the lr makes JAX check
    # that it does not vary over the mesh.
    traces = []
    data_parallel = P(("data", "model"))
    mapped = shard_map(
        make_step(SCHEDULE, traces, reduce_axes=("data", "model")),
        mesh=mesh,
        in_specs=(P(), P(), data_parallel, data_parallel),
        out_specs=(P(), P(), P()),
    )
    shard_map_batches = [
        jax.device_put(b, NamedSharding(mesh, data_parallel)) for b in host_batches
    ]
    replicated_params = jax.device_put(host_params, replicated)
    replicated_state = jax.jit(init, out_shardings=replicated)(replicated_params)
    results["shard_map"] = run(
        jax.jit(mapped), replicated_params, replicated_state, shard_map_batches
    )
    results["traces"]["shard_map"] = len(traces)

    # The config as a replicated pytree argument: its numbers are traced, so a new
    # config of the same dtypes reuses the compiled step. Its numbers are arrays of
    # JAX's default dtypes; the reference is the static schedule of the same numbers
    # (NumPy scalars of those dtypes: float32(0.1) is not 0.1).
    def as_scalars(config: ExponentialDecay) -> ExponentialDecay:
        # The integers are leaves as int32/uint32 words already.
        leaves = [
            leaf
            if np.issubdtype(np.asarray(leaf).dtype, np.integer)
            else dtype.type(leaf)
            for leaf in jax.tree.leaves(config)
        ]
        return jax.tree.unflatten(jax.tree.structure(config), leaves)

    def as_arrays(config: ExponentialDecay) -> ExponentialDecay:
        return jax.device_put(jax.tree.map(np.asarray, as_scalars(config)), replicated)

    traces = []
    config_step = sharded_jit(make_step(None, traces), replicated)
    for name, config in [("config", SCHEDULE), ("other_config", OTHER_SCHEDULE)]:
        results[name] = run(
            config_step, *sharded_params(), sharded_batches, as_arrays(config)
        )
        static = ExponentialDecay(**dataclasses.asdict(as_scalars(config)))
        single_params = jax.device_put(host_params, device)
        results[f"{name}_single"] = run(
            jax.jit(make_step(static, [])),
            single_params,
            init(single_params),
            [jax.device_put(b, device) for b in host_batches],
        )
    results["traces"]["config"] = len(traces)

    # Collectives in the compiled programs.
    count = jax.device_put(np.asarray(7, np.int32), replicated)
    found = {}
    found["schedule"] = (
        jax.jit(
            lambda step: SCHEDULE(step),
            in_shardings=replicated,
            out_shardings=replicated,
        )
        .lower(count)
        .compile()
        .as_text()
    )
    found["config_argument"] = (
        jax.jit(lambda config, step: config(step), out_shardings=replicated)
        .lower(as_arrays(SCHEDULE), count)
        .compile()
        .as_text()
    )
    params, opt_state = sharded_params()
    constant = optax.constant_schedule(0.1)  # the same optimizer state, no decay
    for name, learning_rate in [("step", SCHEDULE), ("step_constant", constant)]:
        found[name] = (
            sharded_jit(make_step(learning_rate, []))
            .lower(params, opt_state, *sharded_batches[0])
            .compile()
            .as_text()
        )
    for name, learning_rate in [
        ("shard_map", SCHEDULE),
        ("shard_map_constant", constant),
    ]:
        found[name] = (
            jax.jit(
                shard_map(
                    make_step(learning_rate, [], reduce_axes=("data", "model")),
                    mesh=mesh,
                    in_specs=(P(), P(), data_parallel, data_parallel),
                    out_specs=(P(), P(), P()),
                )
            )
            .lower(replicated_params, replicated_state, *shard_map_batches[0])
            .compile()
            .as_text()
        )
    results["collectives"] = {name: collectives(text) for name, text in found.items()}
    return results


# -- the tests (in the main process) ---------------------------------------------------


@pytest.fixture(scope="module")
def eight_devices() -> dict[str, Any]:
    flags = re.sub(
        r"--xla_force_host_platform_device_count=\S+",
        "",
        os.environ.get("XLA_FLAGS", ""),
    )
    environment = {
        **os.environ,
        "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={NUM_DEVICES}",
    }
    try:
        completed = subprocess.run(
            [sys.executable, __file__],
            capture_output=True,
            text=True,
            env=environment,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the 8-device run took over {TIMEOUT} s:\n{error.stderr}")
    assert completed.returncode == 0, completed.stderr
    results: dict[str, Any] = json.loads(completed.stdout.splitlines()[-1])
    return results


def tolerance(results: dict[str, Any]) -> dict[str, float]:
    """Params: a sharded run sums its partial sums (over 'data' for the gradient,
    over 'model' for the second layer) in another order than one device, so its
    params may differ in the last bits; STEPS updates of O(1) values stay within a
    few dozen ulp."""
    if results["single"]["lr_dtype"] == "float64":
        return {"rtol": 1e-13, "atol": 1e-15}
    return {"rtol": 1e-5, "atol": 1e-6}


def test_the_subprocess_has_8_devices_and_this_process_one(eight_devices):
    assert eight_devices["devices"] == NUM_DEVICES
    assert jax.device_count() == 1  # XLA_FLAGS was set for the subprocess only


def test_the_single_device_run_is_the_schedule(eight_devices, float_dtype):
    """The reference run applied SCHEDULE(0), SCHEDULE(1), ... (optax's count)."""
    single = eight_devices["single"]
    assert single["lr_dtype"] == str(float_dtype)
    assert single["lrs"] == [float(SCHEDULE(step)) for step in range(STEPS)]
    # An independent reference: optax's own exponential decay, to its tolerance.
    optax_schedule = optax.exponential_decay(0.1, transition_steps=3, decay_rate=0.5)
    expected = [float(optax_schedule(step)) for step in range(STEPS)]
    np.testing.assert_allclose(single["lrs"], expected, rtol=2e-6)


# Each multi-device layout and the single-device run it must match.
LAYOUTS = [
    ("sharded", "single"),
    ("shard_map", "single"),
    ("config", "config_single"),
    ("other_config", "other_config_single"),
]


@pytest.mark.parametrize(("layout", "reference"), LAYOUTS)
def test_lr_is_bitwise_the_single_device_lr(eight_devices, layout, reference):
    assert eight_devices[layout]["lr_dtype"] == eight_devices[reference]["lr_dtype"]
    # JSON floats round-trip exactly: equal lists mean equal bits.
    assert eight_devices[layout]["lrs"] == eight_devices[reference]["lrs"]


@pytest.mark.parametrize(("layout", "reference"), LAYOUTS)
def test_params_equal_the_single_device_params(eight_devices, layout, reference):
    single = eight_devices[reference]["params"]
    for name, value in eight_devices[layout]["params"].items():
        np.testing.assert_allclose(
            value, single[name], err_msg=name, **tolerance(eight_devices)
        )


@pytest.mark.parametrize("layout", ["sharded", "shard_map", "config", "other_config"])
def test_lr_is_replicated(eight_devices, layout):
    assert eight_devices[layout]["lr_replicated"]
    assert eight_devices[layout]["lr_specs"] == [str(P())]


def test_the_lr_computation_has_no_collective(eight_devices):
    """Compiled for the 8-device mesh, with the step and the config replicated."""
    found = eight_devices["collectives"]
    assert found["schedule"] == []
    assert found["config_argument"] == []


@pytest.mark.parametrize(
    ("with_schedule", "constant"),
    [("step", "step_constant"), ("shard_map", "shard_map_constant")],
)
def test_the_schedule_adds_no_collective_to_the_step(
    eight_devices, with_schedule, constant
):
    """The train step has the gradients' collectives, and the schedule adds none:
    the same ones as with a constant learning rate."""
    found = eight_devices["collectives"]
    assert found[constant], "the step should sum its gradients across devices"
    assert found[with_schedule] == found[constant]


def test_each_step_is_traced_once(eight_devices):
    """Steps, and a second config passed as an argument, never retrace."""
    assert eight_devices["traces"] == {
        "single": 1,
        "sharded": 1,
        "shard_map": 1,
        "config": 1,
    }


def test_a_config_argument_computes_its_own_schedule(eight_devices, float_dtype):
    """One compiled step, given SCHEDULE's and then OTHER_SCHEDULE's numbers as
    arrays, computes each schedule: the static schedule of the same numbers, bit for
    bit, and the schedule of the Python floats to the float32 rounding of its
    hyperparameters (the same bits under x64)."""
    for config, layout in [(SCHEDULE, "config"), (OTHER_SCHEDULE, "other_config")]:
        lrs = eight_devices[layout]["lrs"]
        expected = [float(config(step)) for step in range(STEPS)]
        if float_dtype == np.float64:
            assert lrs == expected
        else:
            np.testing.assert_allclose(lrs, expected, rtol=1e-6)
    assert eight_devices["config"]["lrs"] != eight_devices["other_config"]["lrs"]


if __name__ == "__main__":
    print(json.dumps(eight_device_run()))
