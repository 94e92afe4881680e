"""`examples/sharded_training.py` on 8 CPU devices: in one process, and as 2 processes
of 4 devices joined by `jax.distributed` on 127.0.0.1, against one device.

Every run is this file run as a script: it loads the example, counts how often the
example's train step is traced and keeps the params each run reports, runs the
example's `main`, and ends the output with that as JSON. The example prints
`<who> step=<k> lr=<lr> loss=<loss>` for every step (values in their dtype's shortest
round-trip text: equal text, equal bits), `<who> step=<n> checksum=<c>` and
`<who> program=<fingerprint> replicated=<bool>`.

The 2-process launch is bounded in time; each process starts in its own process
group, which is killed afterwards, so no process outlives a test. If process 0
cannot bind the port picked for it (taken in between), the launch is retried.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("optax")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sharded_training.py"
TIMEOUT = 120  # seconds per run; the 2-process run takes ~10 on 2 cores
STEPS = 6
PROCESSES = 2
ATTEMPTS = 3
BIND_FAILURES = ("Failed to add port", "Address already in use")
STEP_LINE = re.compile(
    r"^(?P<who>\S+) step=(?P<step>\d+) lr=(?P<lr>\S+) loss=(?P<loss>\S+)$", re.M
)
CHECKSUM_LINE = re.compile(r"^(?P<who>\S+) step=(?P<step>\d+) checksum=(\S+)$", re.M)
PROGRAM_LINE = re.compile(r"^(?P<who>\S+) program=(\S+) replicated=(\S+)$", re.M)


# -- one run of the example (the subprocess) ------------------------------------------


def instrumented_run(argv: list[str]) -> None:
    import jax
    from jax.experimental import multihost_utils

    spec = importlib.util.spec_from_file_location("sharded_training", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    seen: dict = {"traces": {}, "params": {}}
    traces: list[int] = []
    step, report = example.step, example.report

    def counted_step(*args):
        traces.append(1)  # when jax traces the step, not when it runs
        return step(*args)

    def kept_report(who, params, learning_rates, losses):
        run = "single-device" if who == "single-device" else "sharded"
        seen["traces"][run], seen["processes"] = len(traces), jax.process_count()
        traces.clear()
        gathered = multihost_utils.process_allgather(params, tiled=True)
        seen["params"][run] = jax.tree.map(lambda a: np.asarray(a).tolist(), gathered)
        report(who, params, learning_rates, losses)

    example.step, example.report = counted_step, kept_report
    sys.argv = [str(EXAMPLE), *argv]
    example.main()
    print(json.dumps(seen), flush=True)


def parse(stdout: str) -> dict:
    """What a run printed: per run (`process=<i>` or `single-device`) the lr text
    and loss of each step, the checksum, the program and whether the lr was
    replicated; and the JSON of the instrumented run."""
    runs: dict = {}
    for line in STEP_LINE.finditer(stdout):
        run = runs.setdefault(line["who"], {"lrs": [], "losses": []})
        assert int(line["step"]) == len(run["lrs"])
        run["lrs"].append(line["lr"])
        run["losses"].append(float(line["loss"]))
    for who, step, checksum in CHECKSUM_LINE.findall(stdout):
        assert int(step) == len(runs[who]["lrs"])
        runs[who]["checksum"] = float(checksum)
    for who, program, replicated in PROGRAM_LINE.findall(stdout):
        runs[who].update(program=program, replicated=replicated == "True")
    return {"runs": runs, "seen": json.loads(stdout.strip().splitlines()[-1])}


# -- launching it ---------------------------------------------------------------------


def environment(devices: int) -> dict[str, str]:
    flags = re.sub(
        r"--xla_force_host_platform_device_count=\S+",
        "",
        os.environ.get("XLA_FLAGS", ""),
    )
    return {
        **os.environ,
        "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={devices}",
    }


def start(argv: list[str], devices: int, logs: Path, name: str) -> subprocess.Popen:
    # Files, not pipes: nobody reads while waiting, and a full pipe blocks.
    with (
        open(logs / f"{name}.out", "wb") as out,
        open(logs / f"{name}.err", "wb") as err,
    ):
        return subprocess.Popen(
            [sys.executable, __file__, *argv],
            stdout=out,
            stderr=err,
            env=environment(devices),
            # Its own process group: whatever it starts dies with it.
            start_new_session=True,
        )


def wait(processes: list[subprocess.Popen], deadline: float) -> list[int | None]:
    """Waits until all exit, one fails or the deadline passes; then kills what is
    left. Returns the exit codes (None: killed, still running at the end)."""
    try:
        while time.monotonic() < deadline:
            codes = [process.poll() for process in processes]
            if None not in codes or any(code not in (None, 0) for code in codes):
                break  # all done, or one failed: the others would wait for it
            time.sleep(0.05)
        return [process.poll() for process in processes]
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now (see the retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read(logs: Path, name: str) -> tuple[str, str]:
    return tuple(
        (logs / f"{name}.{kind}").read_bytes().decode(errors="replace")
        for kind in ("out", "err")
    )


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    logs = tmp_path_factory.mktemp("one_process")
    process = start([f"--steps={STEPS}"], 8, logs, "run")
    (code,) = wait([process], time.monotonic() + TIMEOUT)
    stdout, stderr = read(logs, "run")
    assert code == 0, f"exit code {code} (None: killed after {TIMEOUT} s)\n{stderr}"
    return parse(stdout)


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    logs = tmp_path_factory.mktemp("two_processes")
    deadline = time.monotonic() + TIMEOUT
    for attempt in range(1, ATTEMPTS + 1):
        address = f"127.0.0.1:{free_port()}"
        processes = [
            start(
                [f"--steps={STEPS}", f"--processes={PROCESSES}",
                 f"--process-id={i}", f"--coordinator={address}"],
                8 // PROCESSES,
                logs,
                str(i),
            )
            for i in range(PROCESSES)
        ]  # fmt: skip
        codes = wait(processes, deadline)
        outputs = [read(logs, str(i)) for i in range(PROCESSES)]
        bind_failed = codes[0] not in (0, None) and any(
            failure in outputs[0][1] for failure in BIND_FAILURES
        )
        if not (bind_failed and attempt < ATTEMPTS):
            break
    for i, (code, (_, stderr)) in enumerate(zip(codes, outputs, strict=True)):
        tail = "\n".join(stderr.splitlines()[-15:])
        assert code == 0, f"process {i}: exit code {code} (None: killed)\n{tail}"
    return [parse(stdout) for stdout, _ in outputs]


# -- the tests ------------------------------------------------------------------------


def tolerance(float_dtype) -> dict[str, float]:
    """Params and losses of a sharded run may differ from one device's in the last
    bits: partial sums over devices are added in another order (in one process by
    XLA's CPU all-reduce, across processes by gloo)."""
    return {"rtol": 1e-5, "atol": 1e-7}


def test_one_process_lr_is_bitwise_the_single_device_lr(one_process):
    runs = one_process["runs"]
    assert len(runs["process=0"]["lrs"]) == STEPS
    assert runs["process=0"]["lrs"] == runs["single-device"]["lrs"]


def test_one_process_losses_and_params_match_the_single_device_run(
    one_process, float_dtype
):
    runs, params = one_process["runs"], one_process["seen"]["params"]
    np.testing.assert_allclose(
        runs["process=0"]["losses"],
        runs["single-device"]["losses"],
        **tolerance(float_dtype),
    )
    assert sorted(params["sharded"]) == ["b1", "b2", "w1", "w2"]
    for name, value in params["sharded"].items():
        np.testing.assert_allclose(
            value, params["single-device"][name], err_msg=name, **tolerance(float_dtype)
        )


@pytest.mark.parametrize("run", ["one_process", "two_processes"])
def test_lr_is_replicated_the_step_traced_once_and_the_loss_falls(run, request):
    results = request.getfixturevalue(run)
    for result in results if isinstance(results, list) else [results]:
        assert result["seen"]["traces"]["sharded"] == 1
        for who, values in result["runs"].items():
            if who.startswith("process="):
                assert values["replicated"]
            assert values["losses"][-1] < values["losses"][0], who


def test_each_process_joins_and_prints_its_own_lines(two_processes):
    for i, result in enumerate(two_processes):
        assert result["seen"]["processes"] == PROCESSES
        assert list(result["runs"]) == [f"process={i}"]


def test_the_processes_compiled_one_program_and_agree(two_processes):
    """The same program text and the same lr, loss and checksum at every step."""
    first, *others = (next(iter(r["runs"].values())) for r in two_processes)
    for other in others:
        assert other == first


def test_two_processes_lr_is_bitwise_the_one_process_and_single_device_lr(
    one_process, two_processes
):
    for result in two_processes:
        (run,) = result["runs"].values()
        assert run["lrs"] == one_process["runs"]["process=0"]["lrs"]
        assert run["lrs"] == one_process["runs"]["single-device"]["lrs"]


def test_two_processes_params_equal_the_one_process_and_single_device_params(
    one_process, two_processes, float_dtype
):
    params = two_processes[0]["seen"]["params"]["sharded"]
    for reference in one_process["seen"]["params"].values():
        for name, value in params.items():
            np.testing.assert_allclose(
                value, reference[name], err_msg=name, **tolerance(float_dtype)
            )
    (run,) = two_processes[0]["runs"].values()
    for reference in one_process["runs"].values():
        np.testing.assert_allclose(run["checksum"], reference["checksum"], rtol=1e-5)


if __name__ == "__main__":
    instrumented_run(sys.argv[1:])
