"""Multi-process training: `examples/sharded_training.py --processes 2` against the
same training in one process.

The example starts 2 processes on 127.0.0.1 (4 CPU devices each, joined by
`jax.distributed.initialize` into one 8-device mesh) and prints one line per process,
`process=<i> step=<n> lr=<lr> checksum=<params checksum>`. Its one-process mode runs
the same sharded training on 8 devices of one process and on one device. Each
example run is bounded in time and started in its own process group, which is
killed afterwards, so no process outlives a test.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sharded_training.py"
TIMEOUT = 120  # seconds per run; the 2-process run takes ~10 on 2 cores
STEPS = 6
LINE = r"step=(?P<step>\d+) lr=(?P<lr>\S+) checksum=(?P<checksum>\S+)$"
PROCESS_LINE = re.compile(rf"^process=(?P<process>\d+) {LINE}", re.MULTILINE)
SINGLE_DEVICE_LINE = re.compile(rf"^single-device {LINE}", re.MULTILINE)


def run_example(*arguments: str, timeout: float = TIMEOUT) -> tuple[int, str, str]:
    """Runs the example; returns its exit code, stdout and stderr."""
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE), *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Its own process group: the processes it starts join it, and all can be
        # killed together, whatever happened to the example.
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{arguments} took over {timeout} s:\n{stdout}\n{stderr}")
    finally:
        leftovers = kill_group(process.pid)
    assert not leftovers, "the example left processes running"
    return process.returncode, stdout, stderr


def kill_group(group: int) -> bool:
    """Kills what is left of a process group; returns whether anything was."""
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        return False
    return True


def fields(match: re.Match[str]) -> tuple[str, str, str]:
    return match["step"], match["lr"], match["checksum"]


def rtol(float_dtype: np.dtype) -> float:
    """Params of a sharded run may differ from one device's in the last bits: the
    partial sums over devices are added in another order (in one process by XLA's
    CPU all-reduce, across processes by gloo). The checksum, a weighted sum of all
    params, then differs by a few ulp of the params' dtype."""
    return 1e-12 if float_dtype == np.float64 else 1e-5


@pytest.fixture(scope="module")
def one_process():
    code, stdout, stderr = run_example(f"--steps={STEPS}")
    assert code == 0, f"{stdout}\n{stderr}"
    assert stdout.rstrip().endswith("OK")
    return stdout


@pytest.fixture(scope="module")
def two_processes():
    code, stdout, stderr = run_example(
        f"--steps={STEPS}", "--processes=2", f"--timeout={TIMEOUT - 20}"
    )
    assert code == 0, f"{stdout}\n{stderr}"
    assert stdout.rstrip().endswith("OK")
    return stdout


def test_each_process_prints_one_line(two_processes):
    lines = PROCESS_LINE.findall(two_processes)
    assert sorted(line[0] for line in lines) == ["0", "1"]


def test_the_processes_agree(two_processes):
    lines = list(PROCESS_LINE.finditer(two_processes))
    assert len({fields(line) for line in lines}) == 1
    assert lines[0]["step"] == str(STEPS)


def test_lr_is_bitwise_the_one_process_and_single_device_lr(one_process, two_processes):
    """The lr text is the shortest that reads back to its bits: equal text, equal
    bits."""
    (one,) = PROCESS_LINE.finditer(one_process)
    (single,) = SINGLE_DEVICE_LINE.finditer(one_process)
    for line in PROCESS_LINE.finditer(two_processes):
        assert line["lr"] == one["lr"] == single["lr"]


def test_params_equal_the_one_process_and_single_device_params(
    one_process, two_processes, float_dtype
):
    (one,) = PROCESS_LINE.finditer(one_process)
    (single,) = SINGLE_DEVICE_LINE.finditer(one_process)
    two = next(PROCESS_LINE.finditer(two_processes))
    tolerance = rtol(float_dtype)
    for reference in (one, single):
        np.testing.assert_allclose(
            float(two["checksum"]), float(reference["checksum"]), rtol=tolerance
        )


def test_a_timeout_kills_every_process():
    """The example stops its processes when its --timeout runs out, and fails."""
    code, stdout, stderr = run_example(
        "--steps=1", "--processes=2", "--timeout=1", timeout=60
    )
    assert code != 0
    assert "the --timeout of 1 s ran out" in stderr
    assert not PROCESS_LINE.search(stdout)
