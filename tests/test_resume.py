"""Checkpoint and resume: a run stopped at step N and resumed in a new process goes on
exactly as the uninterrupted run; and the optimizer's step counter near 2**31.

The runs are `examples/resume_training.py` processes, each on 8 CPU devices: an
uninterrupted run of STEPS steps and a run of STOP_AT steps side by side, then a new
process that resumes from the second one's orbax checkpoint. Each logs
`step=<k> lr=<lr> loss=<loss>` with values in their dtype's shortest round-trip text
(equal text, equal bits) and saves its final state, which this process reads back
with orbax as NumPy arrays.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

optax = pytest.importorskip("optax")

import jaxdecay

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "resume_training.py"
TIMEOUT = 120  # seconds per process; each takes ~3 on 2 cores
STEPS, STOP_AT = 20, 12
INT32_MAX = 2**31 - 1


def start(*arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(EXAMPLE), *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Waits at most TIMEOUT seconds; the process never outlives the test."""
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail(f"{process.args} took over {TIMEOUT} s")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stdout, stderr


def step_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("step=")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    pytest.importorskip("orbax.checkpoint")
    directory = tmp_path_factory.mktemp("resume")
    full = start(f"--steps={STEPS}", f"--save={directory / 'full'}")
    first = start(f"--steps={STOP_AT}", f"--save={directory / 'stopped'}")
    results = {}
    for name, process in [("full", full), ("first", first)]:
        code, stdout, stderr = finish(process)
        assert code == 0, stderr
        results[name] = step_lines(stdout)
    resumed = start(
        f"--steps={STEPS}",
        f"--resume={directory / 'stopped'}",
        f"--save={directory / 'resumed'}",
    )
    code, stdout, stderr = finish(resumed)
    assert code == 0, stderr
    assert f"resumed at step {STOP_AT}" in stdout
    results["resumed"] = step_lines(stdout)
    results["directory"] = directory
    return results


def checkpointer():
    import orbax.checkpoint as ocp

    handler = ocp.CompositeCheckpointHandler(
        state=ocp.StandardCheckpointHandler(), metadata=ocp.JsonCheckpointHandler()
    )
    return ocp, ocp.Checkpointer(handler)


def load_state(directory: Path) -> tuple[dict, dict]:
    """The step and config, and the state as NumPy arrays in orbax's nesting: tuples
    as lists, namedtuples and the config as dicts."""
    ocp, reader = checkpointer()
    with reader:
        read = ocp.args.Composite(metadata=ocp.args.JsonRestore())
        metadata = reader.restore(directory, args=read)["metadata"]
        stored = reader.metadata(directory).item_metadata["state"].tree
        like = jax.tree.map(lambda leaf: np.zeros(leaf.shape, leaf.dtype), stored)
        read = ocp.args.Composite(state=ocp.args.StandardRestore(like))
        return metadata, reader.restore(directory, args=read)["state"]


def load(directory: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The step and config, and the state's arrays by key, e.g.
    `['opt_state'][1]['count']`."""
    metadata, state = load_state(directory)
    leaves = jax.tree_util.tree_flatten_with_path(state)[0]
    return metadata, {jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves}


def test_the_runs_log_every_step(runs):
    assert [line.split()[0] for line in runs["full"]] == [
        f"step={k}" for k in range(STEPS)
    ]
    assert len(runs["first"]) == STOP_AT
    assert len(runs["resumed"]) == STEPS - STOP_AT


def test_the_lr_sequence_is_the_schedule(runs, float_dtype):
    """The logged lr of step k is the schedule at k (optax's count before update k),
    against an independent float64 formula of the numbers in the compute dtype."""
    lrs = [float(line.split()[1].removeprefix("lr=")) for line in runs["full"]]
    initial, rate = (float(np.dtype(float_dtype).type(x)) for x in (0.1, 0.6))
    expected = [initial * rate ** (k / 5) for k in range(STEPS)]
    np.testing.assert_allclose(
        lrs, expected, rtol=1e-7 if float_dtype == "float32" else 1e-15
    )


def test_resumed_run_continues_the_lr_and_loss_sequence_exactly(runs):
    assert runs["first"] == runs["full"][:STOP_AT]
    assert runs["resumed"] == runs["full"][STOP_AT:]


def test_resumed_run_ends_with_the_uninterrupted_arrays(runs):
    full_metadata, full = load(runs["directory"] / "full")
    resumed_metadata, resumed = load(runs["directory"] / "resumed")
    assert full_metadata == resumed_metadata
    assert full_metadata["step"] == STEPS
    assert sorted(full) == sorted(resumed)
    assert any(key.startswith("['params']") for key in full)
    assert any(key.startswith("['opt_state']") for key in full)
    for key, value in full.items():
        assert resumed[key].dtype == value.dtype, key
        np.testing.assert_array_equal(resumed[key], value, err_msg=key)


def test_the_checkpoint_holds_the_step_count_and_the_config(
    runs, int_dtype, float_dtype
):
    metadata, arrays = load(runs["directory"] / "stopped")
    assert metadata["step"] == STOP_AT
    (count_key,) = [key for key in arrays if key.endswith("['count']")]
    # optax's int32 count, or the int64 count the example uses under x64.
    assert arrays[count_key].dtype == int_dtype
    assert arrays[count_key] == STOP_AT
    schedule = jaxdecay.deserialize(metadata["schedule"])
    assert schedule == jaxdecay.ExponentialDecay(0.1, decay_steps=5, decay_rate=0.6)
    # The config's numbers are arrays of the state too, in the compute dtype.
    decay_rate = arrays["['schedule']['decay_rate']"]
    assert decay_rate.dtype == float_dtype
    assert decay_rate == np.asarray(0.6, float_dtype)


def test_the_state_was_saved_from_8_devices(runs):
    """orbax records each array's sharding: w1 and its momentum split over 'model'
    on the 4 x 2 mesh, the count and the config replicated."""
    _, reader = checkpointer()
    with reader:
        stored = reader.metadata(runs["directory"] / "full").item_metadata["state"]
    specs = {
        jax.tree_util.keystr(key): (
            tuple(leaf.sharding.shape),
            leaf.sharding.partition_spec,
        )
        for key, leaf in jax.tree_util.tree_flatten_with_path(stored.tree)[0]
        if getattr(leaf, "sharding", None) is not None
    }
    assert specs["['params']['w1']"] == ((4, 2), (None, "model"))
    assert specs["['opt_state'][0]['trace']['w1']"] == ((4, 2), (None, "model"))
    assert specs["['opt_state'][1]['count']"] == ((4, 2), ())
    assert specs["['schedule']['decay_rate']"] == ((4, 2), ())


def test_a_checkpoint_of_another_model_is_refused(runs, tmp_path):
    """A checkpoint whose arrays do not fit the optimizer's state is not loaded."""
    metadata, state = load_state(runs["directory"] / "stopped")
    state["params"]["w1"] = state["params"]["w1"][:, :3]
    broken = tmp_path / "broken"
    ocp, writer = checkpointer()
    with writer:
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state), metadata=ocp.args.JsonSave(metadata)
        )
        writer.save(broken, args=args)
    code, _, stderr = finish(start(f"--steps={STEPS}", f"--resume={broken}"))
    assert code != 0
    assert "['params']['w1'] is ((8, 3)" in stderr


# -- the step counter ----------------------------------------------------------------

# Stairs of 2**30 steps: lr = 0.1 up to step 2**30 - 1, 0.05 from 2**30 and 0.025
# from 2**31 = INT32_MAX + 1, a step that an int32 count never reaches.
LONG_SCHEDULE = jaxdecay.ExponentialDecay(
    0.1, decay_steps=2**30, decay_rate=0.5, staircase=True
)


def applied_learning_rates(count: jax.Array, updates: int) -> tuple[list, jax.Array]:
    """The lr of each of `updates` SGD updates from `count` on, and the final count:
    with gradient 1, each update is -lr."""
    optimizer = optax.sgd(LONG_SCHEDULE)
    params = jnp.zeros(1)
    state = optax.tree_utils.tree_set(optimizer.init(params), count=count)
    update = jax.jit(optimizer.update)
    lrs = []
    for _ in range(updates):
        delta, state = update(jnp.ones(1), state, params)
        lrs.append(-float(delta[0]))
    return lrs, optax.tree_utils.tree_get(state, "count")


def test_optax_int32_count_stops_at_int32_max():
    """optax.safe_increment stops the count at 2**31 - 1: every later update uses
    the lr of step 2**31 - 1, and the stair at 2**31 never comes."""
    lrs, count = applied_learning_rates(jnp.asarray(INT32_MAX - 1, jnp.int32), 4)
    assert count.dtype == jnp.int32
    assert int(count) == INT32_MAX
    np.testing.assert_allclose(lrs, [0.05] * 4, rtol=1e-7)
    assert len(set(lrs)) == 1


def test_an_int64_count_counts_past_int32_max_under_x64(int_dtype):
    if int_dtype != np.int64:
        pytest.skip("int64 needs JAX_ENABLE_X64=1")
    lrs, count = applied_learning_rates(jnp.asarray(INT32_MAX - 1, jnp.int64), 4)
    assert count.dtype == jnp.int64
    assert int(count) == INT32_MAX + 3
    # Updates at steps 2**31 - 2, 2**31 - 1, 2**31, 2**31 + 1: the stair is taken.
    assert lrs == [0.05, 0.05, 0.025, 0.025]
