"""The `jaxdecay` command line: show, plot, convert, solve, and its errors.

A few tests run the real process (`python -m jaxdecay` and the installed `jaxdecay`
script), to prove the exit codes, streams and files a shell sees; the rest call
`main([...])` in-process, which is the same code without a second of start-up each.
"""

import dataclasses
import io
import json
import math
import os
import pathlib
import re
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

keras = pytest.importorskip("keras")
mpmath = pytest.importorskip("mpmath")
optax = pytest.importorskip("optax")
yaml = pytest.importorskip("yaml")
pytest.importorskip("matplotlib")
pytest.importorskip("PIL")
pytest.importorskip("hypothesis")

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

import jaxdecay
from jaxdecay import _cli, _config, _interop, _plot
from jaxdecay._solve import decay_rate_for

# 0.1 * 0.5 ** k: every expected learning rate below is worked by hand from this.
STAIRS = {
    "initial_learning_rate": 0.1,
    "decay_steps": 1000,
    "decay_rate": 0.5,
    "staircase": True,
}
SMOOTH = {**STAIRS, "staircase": False}


def run(*args, stdin=None, executable=None, env=None):
    """Runs the command line in a new process; returns the CompletedProcess."""
    command = [executable] if executable else [sys.executable, "-m", "jaxdecay"]
    return subprocess.run(
        [*command, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


@pytest.fixture
def cli(capsys):
    """Calls `main` in-process; returns (exit code, stdout, stderr)."""

    def call(*args):
        code = _cli.main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return call


@pytest.fixture
def stairs_file(tmp_path):
    path = tmp_path / "stairs.json"
    path.write_text(json.dumps(STAIRS))
    return path


def table(text):
    """Parses a `show` table into (header, [(step, lr text)])."""
    header, *rows = text.splitlines()
    return header, [(int(row.split()[0]), row.split()[1]) for row in rows]


def ulps(a, b):
    """The distance between two floats of one dtype, in units in the last place."""
    a, b = np.asarray(a), np.asarray(b, a.dtype)
    view = np.int64 if a.dtype == np.float64 else np.int32
    return abs(int(a.view(view)) - int(b.view(view)))


def solve_tolerance(exponent, dtype):
    """How many ulp from the final rate the solved schedule may be at total_steps.

    The schedule's own error (1 ulp), plus the rounding of the decay rate to the
    compute dtype (half an ulp, relative 2**-p), which `rate ** exponent` multiplies
    by the exponent: up to `exponent` ulp of the result. In float32 the initial
    rate is rounded too: one more ulp.
    """
    return 1 + math.ceil(exponent) + (1 if dtype == np.float32 else 0)


def assert_one_line_error(result, *fragments):
    """Exit code 2, one `jaxdecay: error:` line naming the problem, no traceback."""
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("jaxdecay: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


# ---------------------------------------------------------------------------
# In a real process.
# ---------------------------------------------------------------------------


def test_module_show_prints_the_default_table(stairs_file, float_dtype):
    result = run("show", str(stairs_file))
    assert result.returncode == 0, result.stderr
    header, rows = table(result.stdout)
    assert header.split() == ["step", "learning_rate", f"({float_dtype})"]
    # 0, each decade, and the default end: transition_begin + 10 * decay_steps.
    expected = {0: 0.1, 10: 0.1, 100: 0.1, 1000: 0.05, 10_000: 0.1 * 0.5**10}
    assert [step for step, _ in rows] == list(expected)
    for step, text in rows:
        assert float_dtype.type(text) == float_dtype.type(expected[step])
    # Aligned: every step ends in the same column.
    lines = result.stdout.splitlines()
    assert (
        len({len(line) - len(line.lstrip()) + len(line.split()[0]) for line in lines})
        == 1
    )


def test_console_script_is_installed_and_reads_yaml(tmp_path):
    script = pathlib.Path(sys.executable).with_name("jaxdecay")
    assert script.is_file(), "pip install -e . installs the `jaxdecay` script"
    version = run("--version", executable=str(script))
    assert version.stdout.strip() == f"jaxdecay {jaxdecay.__version__}"
    config = tmp_path / "lr.yaml"
    # 1e-4 is a string to plain PyYAML (YAML 1.1); jaxdecay reads it as a float.
    config.write_text("initial_learning_rate: 1e-4\ndecay_steps: 10\ndecay_rate: 0.5\n")
    result = run("convert", str(config), "--to", "keras", executable=str(script))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["config"]["initial_learning_rate"] == 1e-4


def test_the_command_keeps_its_compiled_programs_unless_told_not_to(tmp_path):
    """A run writes its compiled programs into the cache folder, and a second run
    reads them and prints the same; with JAXDECAY_NO_CACHE=1 nothing is written."""
    config = json.dumps(SMOOTH)
    cached = {
        key: value for key, value in os.environ.items() if key != "JAXDECAY_NO_CACHE"
    }
    cached["JAXDECAY_CACHE_DIR"] = str(tmp_path / "cache")
    first = run("show", config, "--steps", "0,1000,2500", env=cached)
    assert first.returncode == 0, first.stderr
    written = sorted((tmp_path / "cache").iterdir())
    assert written
    second = run("show", config, "--steps", "0,1000,2500", env=cached)
    assert (second.returncode, second.stdout) == (0, first.stdout)
    assert sorted((tmp_path / "cache").iterdir()) == written
    off = {**cached, "JAXDECAY_CACHE_DIR": str(tmp_path / "off")}
    off["JAXDECAY_NO_CACHE"] = "1"
    third = run("show", config, "--steps", "0,1000,2500", env=off)
    assert (third.returncode, third.stdout) == (0, first.stdout)
    assert not (tmp_path / "off").exists()


def test_show_reads_standard_input_and_step_suffixes(float_dtype):
    text = "initial_learning_rate: 0.1\ndecay_steps: 1000\ndecay_rate: 0.5\n"
    result = run("show", "-", "--steps", "2k,0,1e3,2.5k", stdin=text)
    assert result.returncode == 0, result.stderr
    _, rows = table(result.stdout)
    assert [step for step, _ in rows] == [2000, 0, 1000, 2500]  # in the order given
    expected = [0.025, 0.1, 0.05, 0.1 * 0.5**2.5]
    for (_, text), value in zip(rows, expected, strict=True):
        assert ulps(float_dtype.type(text), value) <= 1


def test_plot_writes_a_png_that_is_not_blank(stairs_file, tmp_path):
    smooth = tmp_path / "smooth.yaml"
    smooth.write_text(yaml.safe_dump(SMOOTH))
    output = tmp_path / "lr.png"
    result = run(
        "plot", str(stairs_file), "--compare", str(smooth), "--log", "-o", str(output)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {output}\n"
    with Image.open(output) as image:
        assert image.format == "PNG"
        assert image.size == (640, 400)
        pixels = np.asarray(image.convert("RGB")).astype(int)
    not_white = (pixels < 250).any(axis=-1).mean()
    assert 0.01 < not_white < 0.5, not_white  # axes, labels and two curves
    # Both curves are drawn, in matplotlib's first two colors.
    for color in ((31, 119, 180), (255, 127, 14)):
        near = (abs(pixels - color).sum(axis=-1) < 40).sum()
        assert near > 200, (color, near)


def test_convert_to_keras_loads_in_keras(stairs_file):
    result = run("convert", str(stairs_file), "--to", "keras")
    assert result.returncode == 0, result.stderr
    schedule = keras.optimizers.schedules.deserialize(json.loads(result.stdout))
    assert type(schedule) is keras.optimizers.schedules.ExponentialDecay
    assert schedule.get_config() == {**STAIRS, "name": "ExponentialDecay"}


def test_solve_prints_a_config_that_reaches_the_final_rate(float_dtype):
    result = run(
        "solve",
        "--initial-learning-rate", "0.1",
        "--final-learning-rate", "1e-4",
        "--total-steps", "100k",
        "--decay-steps", "1000",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    schedule = jaxdecay.ExponentialDecay.from_json(result.stdout)
    # 0.001 ** (1 / 100), worked to 50 digits and rounded once.
    with mpmath.workdps(50):
        expected_rate = float(mpmath.mpf(0.001) ** (mpmath.mpf(1) / 100))
    assert schedule.decay_rate == pytest.approx(expected_rate, rel=1e-15)
    assert ulps(schedule(100_000), 1e-4) <= solve_tolerance(100, float_dtype)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["show", "no-such-file.json"], ["no-such-file.json", "No such file"]),
        (["show", '{"initial_learning_rate": 0.1,'], ["inline JSON", "not valid JSON"]),
        (
            ["convert", '{"initial_learning_rate": 0.1, "decay_steps": 0, '
             '"decay_rate": 0.5}'],
            ["decay_steps", "got 0"],
        ),
    ],
    ids=["missing-file", "malformed-json", "invalid-value"],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line(args, fragments):
    assert_one_line_error(run(*args), *fragments)


# ---------------------------------------------------------------------------
# show
# ---------------------------------------------------------------------------


def test_show_end_sets_the_last_default_step(cli, stairs_file):
    code, out, _ = cli("show", stairs_file, "--end", "1M")
    assert code == 0
    steps = [step for step, _ in table(out)[1]]
    assert steps == [0, 10, 100, 1000, 10_000, 100_000, 1_000_000]
    code, out, _ = cli("show", stairs_file, "--end", "2500")
    assert [step for step, _ in table(out)[1]] == [0, 10, 100, 1000, 2500]
    code, out, _ = cli("show", stairs_file, "--end", "0")
    assert [step for step, _ in table(out)[1]] == [0]


def test_show_default_end_counts_from_transition_begin(cli):
    config = {**SMOOTH, "transition_begin": 500}
    code, out, _ = cli("show", json.dumps(config))
    assert code == 0
    assert table(out)[1][-1][0] == 500 + 10 * 1000


def test_show_default_steps_cover_the_warmup(cli, float_dtype):
    """The middle and the end of the ramp are shown, and the default end counts
    the warmup: 500 + 10 * 1000."""
    config = {**STAIRS, "warmup_steps": 500, "warmup_init": 0.0}
    code, out, _ = cli("show", json.dumps(config))
    assert code == 0
    # By hand: 0.1 * step / 500 up to 500, then a stair of 0.5 every 1000 steps.
    expected = {0: 0.0, 10: 0.002, 100: 0.02, 250: 0.05, 500: 0.1, 1000: 0.1,
                10_000: 0.1 * 0.5**9, 10_500: 0.1 * 0.5**10}  # fmt: skip
    rows = table(out)[1]
    assert [step for step, _ in rows] == list(expected)
    for step, text in rows:
        assert ulps(float_dtype.type(text), float_dtype.type(expected[step])) <= 1
    # A warmup past --end shows none of its steps beyond it.
    code, out, _ = cli("show", json.dumps(config), "--end", "300")
    assert [step for step, _ in table(out)[1]] == [0, 10, 100, 250, 300]


def test_show_prints_values_that_read_back_exactly(cli, float_dtype):
    """Each printed value, read as the table's dtype, is the schedule's value."""
    config = {"initial_learning_rate": 0.3, "decay_steps": 7, "decay_rate": 0.91}
    steps = [0, 1, 3, 50, 1234, 99_999]
    code, out, _ = cli("show", json.dumps(config), "--steps", ",".join(map(str, steps)))
    assert code == 0
    schedule = jaxdecay.ExponentialDecay.from_config(config)
    for step, text in table(out)[1]:
        assert float_dtype.type(text) == schedule(step)


def test_show_formats_values_as_python_repr_would(cli, float_dtype):
    config = {"initial_learning_rate": 1e-4, "decay_steps": 1, "decay_rate": 0.1}
    _, out, _ = cli("show", json.dumps(config), "--steps", "0,1,400")
    assert [text for _, text in table(out)[1]] == ["0.0001", "1e-05", "0.0"]


def test_show_reads_every_config_shape(cli):
    schedule = jaxdecay.ExponentialDecay(0.1, 1000, 0.5, staircase=True)
    shapes = {
        "keras3": jaxdecay.serialize(schedule),
        "tf2": {"class_name": "ExponentialDecay", "config": schedule.get_config()},
        "bare": schedule.get_config(),
        "hydra": {"_target_": "jaxdecay.ExponentialDecay", **schedule.get_config()},
        "optax": schedule.optax_kwargs(),
    }
    outputs = {name: cli("show", json.dumps(data)) for name, data in shapes.items()}
    assert {code for code, _, _ in outputs.values()} == {0}
    assert len({out for _, out, _ in outputs.values()}) == 1


def test_show_steps_beyond_int32_need_x64(cli, int_dtype):
    code, out, err = cli("show", json.dumps(SMOOTH), "--steps", "0,3e9")
    if int_dtype == np.int32:
        assert code == 2
        assert "3000000000" in err
        assert "JAX_ENABLE_X64=1" in err
    else:
        assert code == 0
        assert table(out)[1][1][0] == 3_000_000_000


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["show"],
        ["show", "{}", "--steps", "1,x"],
        ["show", "{}", "--steps", "1.5"],
        ["show", "{}", "--steps", "1", "--end", "5"],
        ["convert", "{}", "--to", "toml"],
        ["solve", "--initial-learning-rate", "0.1"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(cli, argv):
    code, out, err = cli(*argv)
    assert code == 2
    assert out == ""
    assert "usage: jaxdecay" in err


def test_help_and_version_exit_0(cli):
    code, out, _ = cli("--help")
    assert code == 0
    for command in ("show", "plot", "convert", "solve"):
        assert command in out
    assert cli("--version")[:2] == (0, f"jaxdecay {jaxdecay.__version__}\n")


# ---------------------------------------------------------------------------
# Bad input, in-process: one line on stderr, exit code 2.
# ---------------------------------------------------------------------------


def in_process_error(cli, *args):
    code, out, err = cli(*args)
    assert (code, out) == (2, ""), err
    assert len(err.splitlines()) == 1
    assert err.startswith("jaxdecay: error: ")
    return err


BAD_CONFIGS = [
    ("bad.yaml", "a: [1, 2\n", ["bad.yaml", "not valid YAML", "line 2"]),
    ("twice.yml", "decay_rate: 0.5\ndecay_rate: 0.6\n", ["written twice"]),
    ("list.json", "[1, 2]", ["must be a mapping", "list"]),
    ("nan.json", '{"initial_learning_rate": NaN}', ["initial_learning_rate", "NaN"]),
    ("empty.yaml", "\n", ["empty.yaml", "empty"]),
    ("unknown.json", json.dumps({**STAIRS, "lr": 1}), ["unknown keys", "'lr'"]),
    ("missing.yaml", "decay_steps: 1\n", ["missing", "decay_rate"]),
    (
        "type.yaml",
        "initial_learning_rate: fast\ndecay_steps: 1\ndecay_rate: 0.5",
        ["initial_learning_rate", "'fast'"],
    ),
    (
        "class.json",
        json.dumps({"class_name": "CosineDecayRestarts", "config": STAIRS}),
        ["class_name", "CosineDecayRestarts"],
    ),
    ("target.yaml", "_target_: os.system\ndecay_steps: 1", ["_target_", "os.system"]),
    (
        "optax.json",
        json.dumps({"init_value": 0.1, "transition_steps": 0, "decay_rate": 0.5}),
        ["decay_steps", "got 0"],
    ),
    (
        "inf.yaml",
        "initial_learning_rate: .inf\ndecay_steps: 1\ndecay_rate: 0.5",
        ["initial_learning_rate must be finite"],
    ),
    ("deep.json", "[" * 100_000 + "]" * 100_000, ["nested"]),
]


@pytest.mark.parametrize(
    ("name", "content", "fragments"),
    BAD_CONFIGS,
    ids=[name for name, _, _ in BAD_CONFIGS],
)
def test_bad_config_files(cli, tmp_path, name, content, fragments):
    path = tmp_path / name
    path.write_text(content)
    err = in_process_error(cli, "show", path)
    for fragment in fragments:
        assert fragment in err


def test_bad_files_and_streams(cli, tmp_path, monkeypatch):
    assert "Is a directory" in in_process_error(cli, "show", tmp_path)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe{")
    assert "not UTF-8" in in_process_error(cli, "show", binary)
    huge = tmp_path / "huge.json"
    huge.write_text(" " * (1 << 20) + "{}")
    assert "at most" in in_process_error(cli, "show", huge)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert "stdin: the config is empty" in in_process_error(cli, "show", "-")


# ---------------------------------------------------------------------------
# plot
# ---------------------------------------------------------------------------


def test_staircase_grid_keeps_every_stair_edge():
    schedule = jaxdecay.ExponentialDecay(0.1, 1000, 0.5, True, transition_begin=250)
    steps, note = _plot.plot_grid(schedule, 10_000)
    assert note is None
    edges = [250 + k * 1000 for k in range(1, 10)]
    expected = sorted({0, 250, 10_000} | set(edges) | {edge - 1 for edge in edges})
    assert steps.tolist() == expected


def test_staircase_grid_samples_beyond_ten_thousand_stairs():
    schedule = jaxdecay.ExponentialDecay(0.1, 10, 0.999, staircase=True)
    steps, note = _plot.plot_grid(schedule, 10**8)
    assert "10000000 stairs" in note
    assert "drawing 10000" in note
    assert steps.size <= 2 * 10_000 + 3
    assert steps[0] == 0
    assert steps[-1] == 10**8
    # Each drawn stair keeps both sides of its edge.
    edges = steps[(steps % 10 == 0) & (steps > 0) & (steps < 10**8)]
    assert np.isin(edges - 1, steps).all()


def test_continuous_grid_is_linear_or_log_spaced():
    schedule = jaxdecay.ExponentialDecay(0.1, 1000, 0.5, transition_begin=777)
    linear, note = _plot.plot_grid(schedule, 10**8)
    assert note is None
    assert 3_990 <= linear.size <= 4_010
    assert {0, 777, 778, 10**8} <= set(linear.tolist())
    log, _ = _plot.plot_grid(schedule, 10**8, log_steps=True)
    assert log[0] == 1
    # Log-spaced: every step of the first decades, and as many points per decade
    # above them.
    assert set(range(1, 101)) <= set(log.tolist())
    per_decade = [((log >= 10**k) & (log < 10 ** (k + 1))).sum() for k in (4, 5, 6, 7)]
    assert max(per_decade) - min(per_decade) <= 2, per_decade
    short, _ = _plot.plot_grid(schedule, 100)
    assert short.tolist() == list(range(101))  # fewer steps than points: every step


def test_draw_uses_stairs_labels_and_log_scales():
    schedules = [
        jaxdecay.ExponentialDecay(0.1, 1000, 0.5, staircase=True),
        jaxdecay.ExponentialDecay(0.1, 1000, 0.5, end_learning_rate=0.01),
    ]
    curves = []
    for schedule in schedules:
        steps, _ = _plot.plot_grid(schedule, 10_000, log_steps=True)
        values = _cli._evaluate(schedule, steps)
        curves.append(_plot.Curve(steps, values, schedule.staircase, "x"))
    figure = _plot.draw(curves, log=True, log_steps=True)
    (axes,) = figure.axes
    stairs, smooth = axes.get_lines()
    assert stairs.get_drawstyle() == "steps-post"
    assert smooth.get_drawstyle() == "default"
    assert (axes.get_xscale(), axes.get_yscale()) == ("log", "log")
    assert (axes.get_xlabel(), axes.get_ylabel()) == ("step", "learning rate")
    assert axes.get_legend() is not None
    assert type(figure.canvas).__name__ == "FigureCanvasAgg"  # no display needed


def test_formula_names_the_schedule():
    assert _config.formula(jaxdecay.ExponentialDecay(0.1, 1000, 0.5, True)) == (
        "0.1 * 0.5 ** (step // 1000)"
    )
    schedule = jaxdecay.ExponentialDecay(
        0.1, 10, 0.5, transition_begin=5, end_learning_rate=0.01
    )
    assert _config.formula(schedule) == "max(0.01, 0.1 * 0.5 ** ((step - 5) / 10))"


def test_grid_samples_the_warmup_ramp():
    """A staircase is drawn flat between points: the ramp gets points of its own.
    The decay's stairs start at warmup_steps + transition_begin."""
    schedule = jaxdecay.ExponentialDecay(
        0.1, 1000, 0.5, True, transition_begin=250, warmup_steps=10_000
    )
    steps, note = _plot.plot_grid(schedule, 20_250)
    assert note is None
    ramp = steps[steps <= 10_000]
    assert ramp[0] == 0
    assert ramp[-1] == 10_000
    assert 3_990 <= ramp.size <= 4_010
    assert np.diff(ramp).max() <= 3  # no flat run a figure would show
    edges = [10_250 + k * 1000 for k in range(1, 11)]
    assert set(edges) | {edge - 1 for edge in edges} | {10_250} <= set(steps.tolist())
    assert steps[(steps > 10_000) & (steps < 10_250)].size == 0
    # A short ramp: every step of it.
    short = dataclasses.replace(schedule, warmup_steps=50)
    assert set(range(51)) <= set(_plot.plot_grid(short, 5_000)[0].tolist())
    # Continuous: the line needs its ends only, the kink at the peak among them.
    smooth = dataclasses.replace(schedule, staircase=False, warmup_steps=100)
    assert {0, 100, 350} <= set(_plot.plot_grid(smooth, 10**8)[0].tolist())


def test_formula_names_the_warmup():
    schedule = jaxdecay.ExponentialDecay(
        0.1, 1000, 0.5, True, transition_begin=250, warmup_steps=500,
        warmup_init=0.001,
    )  # fmt: skip
    assert _config.formula(schedule) == (
        "warmup 0.001 -> 0.1 to step 500, then 0.1 * 0.5 ** ((step - 750) // 1000)"
    )


def test_plot_draws_the_warmup(cli, tmp_path):
    config = {**STAIRS, "warmup_steps": 2000}
    path = tmp_path / "warm.png"
    assert cli("plot", json.dumps(config), "-o", path) == (0, f"wrote {path}\n", "")
    with Image.open(path) as image:
        assert image.size == (640, 400)


def test_plot_of_a_hundred_million_steps_takes_seconds(cli, tmp_path):
    config = {"initial_learning_rate": 0.1, "decay_steps": 1, "decay_rate": 0.9999999,
              "staircase": True}  # fmt: skip
    start = time.perf_counter()
    code, _, err = cli(
        "plot", json.dumps(config), "--steps", "1e8", "-o", tmp_path / "big.png"
    )
    elapsed = time.perf_counter() - start
    assert code == 0, err
    assert "100000000 stairs" in err  # the note says the stairs were sampled
    assert elapsed < 30, elapsed  # about 1 s here; a per-step loop would take hours
    with Image.open(tmp_path / "big.png") as image:
        assert image.size == (640, 400)


def test_plot_progress_is_reported_on_request(cli, stairs_file, tmp_path):
    output = tmp_path / "lr.png"
    code, _, err = cli("plot", stairs_file, "-o", output, "--progress")
    assert code == 0
    assert "evaluating the schedule at 21 steps" in err
    assert "drawing" in err
    assert "done" in err
    code, _, err = cli("plot", stairs_file, "-o", output, "--no-progress")
    assert (code, err) == (0, "")


def test_plot_options_and_output_errors(cli, stairs_file, tmp_path):
    code, _, _ = cli("plot", stairs_file, "-o", tmp_path / "a.png", "--dpi", "50")
    assert code == 0
    with Image.open(tmp_path / "a.png") as image:
        assert image.size == (320, 200)
    in_process_error(cli, "plot", stairs_file, "-o", tmp_path / "no" / "dir.png")
    assert "must be > 0" in in_process_error(
        cli, "plot", stairs_file, "-o", tmp_path / "b.png", "--steps", "0"
    )
    assert "must be > 1" in in_process_error(
        cli, "plot", stairs_file, "-o", tmp_path / "b.png", "--steps", "1",
        "--log-steps",
    )  # fmt: skip


@pytest.mark.parametrize("where", ["missing/lr.png", "folder"])
def test_plot_refuses_an_unwritable_output_before_the_work(
    cli, stairs_file, tmp_path, monkeypatch, where
):
    """A missing folder, or a folder, is one error line before any config is read."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    monkeypatch.setattr(_cli, "_read_config", lambda _: pytest.fail("work was done"))
    reason = {"folder": "Is a directory"}.get(where, "No such file or directory")
    err = in_process_error(cli, "plot", stairs_file, "-o", where)
    assert err == f"jaxdecay: error: cannot write {where!r}: {reason}\n"


def test_plot_output_check_leaves_no_file_and_keeps_an_old_one(
    cli, stairs_file, tmp_path
):
    """The check writes nothing: a failing plot leaves no new file, and an
    existing one unchanged."""
    new, old = tmp_path / "new.png", tmp_path / "old.png"
    old.write_bytes(b"old")
    for output in (new, old):
        in_process_error(cli, "plot", stairs_file, "-o", output, "--steps", "0")
    assert not new.exists()
    assert old.read_bytes() == b"old"


def test_missing_optional_libraries_name_the_extra(cli, stairs_file, monkeypatch):
    for module in ("matplotlib.figure", "matplotlib.backends.backend_agg", "yaml"):
        monkeypatch.setitem(sys.modules, module, None)
    code, _, err = cli("plot", stairs_file, "-o", "lr.png")
    assert code == 1
    assert "pip install 'jaxdecay[plot]'" in err
    code, _, err = cli("convert", stairs_file, "--to", "yaml")
    assert code == 1
    assert "pip install 'jaxdecay[yaml]'" in err
    # JSON needs no optional library.
    assert cli("convert", stairs_file, "--to", "optax")[0] == 0


# ---------------------------------------------------------------------------
# convert
# ---------------------------------------------------------------------------

EXTENDED = jaxdecay.ExponentialDecay(
    0.1, 1000, 0.5, True, transition_begin=100, end_learning_rate=1e-3
)


@pytest.mark.parametrize("to", ["jaxdecay", "keras", "tf2", "optax", "yaml"])
def test_convert_round_trips_through_every_format(cli, tmp_path, to):
    schedule = jaxdecay.ExponentialDecay(0.3, 7, 0.91, name=None)
    if to in ("jaxdecay", "optax", "yaml"):
        schedule = EXTENDED  # formats that keep jaxdecay's extensions
    code, out, err = cli("convert", schedule.to_json(), "--to", to)
    assert code == 0, err
    path = tmp_path / ("lr.yaml" if to == "yaml" else "lr.json")
    path.write_text(out)
    code, back, err = cli("convert", path, "--to", "jaxdecay")
    assert code == 0, err
    restored = jaxdecay.ExponentialDecay.from_json(back)
    if to == "optax":  # optax's arguments have no name: the default comes back
        schedule = dataclasses.replace(schedule, name="ExponentialDecay")
    assert restored == schedule


def test_convert_shapes(cli, stairs_file):
    outputs = {
        to: cli("convert", stairs_file, "--to", to)[1] for to in _interop.FORMATS
    }
    schedule = jaxdecay.ExponentialDecay.from_config(STAIRS)
    assert outputs["jaxdecay"] == schedule.to_json() + "\n"
    assert json.loads(outputs["keras"]) == jaxdecay.serialize(schedule)
    assert json.loads(outputs["tf2"]) == {
        "class_name": "ExponentialDecay",
        "config": {**STAIRS, "name": "ExponentialDecay"},
    }
    assert yaml.safe_load(outputs["yaml"]) == {**STAIRS, "name": "ExponentialDecay"}
    assert json.loads(outputs["optax"]) == {
        "init_value": 0.1,
        "transition_steps": 1000,
        "decay_rate": 0.5,
        "transition_begin": 0,
        "staircase": True,
        "end_value": None,
    }
    indented = cli("convert", stairs_file, "--to", "keras", "--indent", "2")[1]
    assert indented.startswith('{\n  "module"')


def test_convert_to_optax_builds_the_same_schedule(cli, rtol):
    _, out, _ = cli("convert", EXTENDED.to_json(), "--to", "optax")
    optax_schedule = optax.exponential_decay(**json.loads(out))
    steps = jax.numpy.array([0, 100, 1099, 1100, 5100, 20_000])
    np.testing.assert_allclose(
        EXTENDED(steps), optax_schedule(steps), rtol=rtol, atol=0
    )


@pytest.mark.parametrize("to", ["keras", "tf2"])
def test_convert_refuses_what_keras_cannot_load(cli, to):
    err = in_process_error(cli, "convert", EXTENDED.to_json(), "--to", to)
    assert "transition_begin or end_learning_rate" in err
    assert "--to jaxdecay" in err
    warmup = jaxdecay.ExponentialDecay(
        0.1, 1000, 0.5, transition_begin=100, warmup_steps=200, warmup_init=0.01
    )
    err = in_process_error(cli, "convert", warmup.to_json(), "--to", to)
    assert err == (
        "jaxdecay: error: Keras' ExponentialDecay has no transition_begin, "
        "warmup_steps or warmup_init; this schedule sets transition_begin=100, "
        "warmup_steps=200, warmup_init=0.01 (use --to jaxdecay)\n"
    )


WARMUP = jaxdecay.ExponentialDecay(
    0.1, 1000, 0.5, True, transition_begin=100, end_learning_rate=1e-3,
    warmup_steps=200, warmup_init=0.01,
)  # fmt: skip


def test_convert_a_warmup_to_optax_and_back(cli, tmp_path):
    """--to optax writes warmup_exponential_decay_schedule's arguments, which optax
    builds and the command line reads back."""
    code, out, err = cli("convert", WARMUP.to_json(), "--to", "optax")
    assert (code, err) == (0, "")
    kwargs = json.loads(out)
    assert kwargs == {
        "init_value": 0.01,
        "peak_value": 0.1,
        "warmup_steps": 200,
        "transition_steps": 1000,
        "decay_rate": 0.5,
        "transition_begin": 100,
        "staircase": True,
        "end_value": 1e-3,
    }
    steps = jax.numpy.array([0, 50, 199, 200, 1299, 1300, 20_000])
    np.testing.assert_allclose(
        WARMUP(steps),
        optax.warmup_exponential_decay_schedule(**kwargs)(steps),
        rtol=1e-5,
    )
    path = tmp_path / "optax.json"
    path.write_text(out)
    assert cli("show", path) == cli("show", WARMUP.to_json())
    code, back, _ = cli("convert", path)
    assert jaxdecay.ExponentialDecay.from_json(back) == dataclasses.replace(
        WARMUP, name="ExponentialDecay"
    )


# ---------------------------------------------------------------------------
# solve
# ---------------------------------------------------------------------------


def solve(cli, *args):
    code, out, err = cli("solve", *args)
    assert code == 0, err
    return jaxdecay.ExponentialDecay.from_json(out)


def test_solve_hand_worked_rates(cli):
    schedule = solve(
        cli, "--initial-learning-rate", "0.1", "--final-learning-rate", "0.05",
        "--total-steps", "1000", "--decay-steps", "1000",
    )  # fmt: skip
    assert schedule.decay_rate == 0.5
    # Staircase: 2500 // 1000 = 2 stairs, so the rate is sqrt(0.05 / 0.1).
    schedule = solve(
        cli, "--initial-learning-rate", "0.1", "--final-learning-rate", "0.05",
        "--total-steps", "2500", "--decay-steps", "1000", "--staircase",
    )  # fmt: skip
    assert schedule.decay_rate == math.sqrt(0.5)
    assert schedule.staircase is True


def test_solve_with_transition_begin_reaches_the_rate_at_total_steps(cli):
    schedule = solve(
        cli, "--initial-learning-rate", "0.1", "--final-learning-rate", "0.025",
        "--total-steps", "3000", "--decay-steps", "1000", "--transition-begin", "1000",
    )  # fmt: skip
    assert schedule.transition_begin == 1000
    assert schedule.decay_rate == 0.5
    assert float(schedule(3000)) == pytest.approx(0.025, rel=1e-7)


def test_solve_with_a_warmup_counts_total_steps_from_step_0(cli):
    # The decay starts at 500 + 1000: 0.1 -> 0.025 in the 2000 steps to 3500.
    schedule = solve(
        cli, "--initial-learning-rate", "0.1", "--final-learning-rate", "0.025",
        "--total-steps", "3500", "--decay-steps", "1000", "--transition-begin", "1000",
        "--warmup-steps", "500", "--warmup-init", "1e-3",
    )  # fmt: skip
    assert (schedule.warmup_steps, schedule.warmup_init) == (500, 1e-3)
    assert schedule.decay_rate == 0.5
    assert float(schedule(3500)) == pytest.approx(0.025, rel=1e-7)
    err = in_process_error(
        cli, "solve", "--initial-learning-rate", "0.1", "--final-learning-rate",
        "0.025", "--total-steps", "500", "--decay-steps", "1000",
        "--warmup-steps", "500",
    )  # fmt: skip
    assert "total_steps must be > warmup_steps + transition_begin" in err
    err = in_process_error(
        cli, "solve", "--initial-learning-rate", "0.1", "--final-learning-rate",
        "0.025", "--total-steps", "3500", "--decay-steps", "1000",
        "--warmup-init", "inf",
    )  # fmt: skip
    assert err == "jaxdecay: error: warmup_init must be finite, got inf\n"


def test_solve_growth_and_other_formats(cli):
    code, out, err = cli(
        "solve", "--initial-learning-rate", "1e-3", "--final-learning-rate", "4e-3",
        "--total-steps", "200", "--decay-steps", "100", "--to", "optax",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["decay_rate"] == 2.0
    # Growth is allowed, and said on stderr: the arguments may have been swapped.
    assert err == (
        "jaxdecay: warning: the final learning rate 0.004 is above the initial one "
        "0.001: the schedule grows (decay_rate 2.0 > 1)\n"
    )


def test_solve_warns_only_when_the_rate_grows(cli):
    for final in ("1e-4", "0.1"):
        code, _, err = cli(
            "solve", "--initial-learning-rate", "0.1", "--final-learning-rate",
            final, "--total-steps", "2000", "--decay-steps", "1000",
        )  # fmt: skip
        assert (code, err) == (0, "")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--initial-learning-rate", "0", "--final-learning-rate", "1e-4"],
         ["initial_learning_rate must be > 0", "0.0"]),
        (["--initial-learning-rate", "0.1", "--final-learning-rate", "-0.0001"],
         ["final_learning_rate must be > 0", "-0.0001"]),
        (["--initial-learning-rate", "nan", "--final-learning-rate", "1e-4"],
         ["initial_learning_rate must be finite"]),
        (["--initial-learning-rate", "0.1", "--final-learning-rate", "1e-4",
          "--staircase", "--decay-steps", "2000"],
         ["staircase", "is 0", "decay_steps=2000"]),
        (["--initial-learning-rate", "0.1", "--final-learning-rate", "1e-4",
          "--transition-begin", "1000"],
         ["total_steps must be > transition_begin"]),
        (["--initial-learning-rate", "0.1", "--final-learning-rate", "1e-300",
          "--total-steps", "1"],
         ["no finite float64 decay_rate"]),
    ],
)  # fmt: skip
def test_solve_refuses_bad_values(cli, args, fragments):
    defaults = {"--total-steps": "1000", "--decay-steps": "1000"}
    for flag, value in defaults.items():
        if flag not in args:
            args = [*args, flag, value]
    err = in_process_error(cli, "solve", *args)
    for fragment in fragments:
        assert fragment in err


# The solve as a library function (ExponentialDecay.from_endpoints calls it).


def mpmath_rate(initial, final, total_steps, decay_steps, staircase):
    """The exact rate in 100-digit arithmetic, rounded once to float64 (by Python's
    correctly rounded string conversion)."""
    with mpmath.workdps(100):
        ratio = mpmath.mpf(final) / mpmath.mpf(initial)
        exponent = (
            mpmath.mpf(1) / (total_steps // decay_steps)
            if staircase
            else mpmath.mpf(decay_steps) / total_steps
        )
        return float(mpmath.nstr(ratio**exponent, 60, strip_zeros=False))


learning_rates = st.floats(1e-8, 10.0)


@settings(max_examples=300, deadline=None)
@given(
    initial=learning_rates,
    final=learning_rates,
    total_steps=st.integers(1, 10**12),
    decay_steps=st.integers(1, 10**6),
    staircase=st.booleans(),
)
def test_decay_rate_is_the_correctly_rounded_exact_rate(
    initial, final, total_steps, decay_steps, staircase
):
    assume(not staircase or total_steps >= decay_steps)
    expected = mpmath_rate(initial, final, total_steps, decay_steps, staircase)
    assume(0 < expected < math.inf)
    rate = decay_rate_for(initial, final, total_steps, decay_steps, staircase)
    assert rate == expected


@settings(max_examples=25, deadline=None)
@given(
    initial=st.floats(1e-4, 1.0),
    final=st.floats(1e-7, 1.0),
    total_steps=st.integers(1, 2**31 - 1),
    decay_steps=st.integers(1, 10**5),
    staircase=st.booleans(),
)
def test_solved_schedule_is_at_the_final_rate_at_total_steps(
    initial, final, total_steps, decay_steps, staircase
):
    assume(not staircase or total_steps >= decay_steps)
    try:
        rate = decay_rate_for(initial, final, total_steps, decay_steps, staircase)
    except ValueError:  # the rate under- or overflows float64
        assume(False)
    # The schedule takes the rate in the compute dtype: it must be a normal number
    # there (2**128 is inf in float32, 2**-150 is 0).
    info = np.finfo(jax.numpy.result_type(float))
    assume(float(info.tiny) <= rate <= float(info.max))
    schedule = jaxdecay.ExponentialDecay(initial, decay_steps, rate, staircase)
    exponent = total_steps // decay_steps if staircase else total_steps / decay_steps
    value = schedule(total_steps)
    assert ulps(value, final) <= solve_tolerance(exponent, value.dtype)


def test_decay_rate_with_transition_begin_and_end_learning_rate():
    # 0.1 -> 0.025 in 2 units of 1000 steps after step 1000: 0.5 per unit.
    assert decay_rate_for(0.1, 0.025, 3000, 1000, transition_begin=1000) == 0.5
    expected = mpmath_rate(0.1, 0.025, 3000, 1000, staircase=False)
    assert decay_rate_for(0.1, 0.025, 3000, 1000, end_learning_rate=0.025) == expected
    with pytest.raises(ValueError, match=r"end_learning_rate=0\.03 is a floor above"):
        decay_rate_for(0.1, 0.025, 3000, 1000, end_learning_rate=0.03)
    with pytest.raises(ValueError, match=r"end_learning_rate=0\.3 is a ceiling below"):
        decay_rate_for(0.1, 0.4, 3000, 1000, end_learning_rate=0.3)


def test_decay_rate_counts_from_the_end_of_the_warmup():
    # The decay starts at warmup_steps + transition_begin = 1100: 0.1 -> 0.025 in
    # the 2000 steps to 3100 is 0.5 per 1000.
    rate = decay_rate_for(
        0.1, 0.025, 3100, 1000, transition_begin=1000, warmup_steps=100
    )
    assert rate == 0.5
    # Staircase: (2600 - 100) // 1000 = 2 stairs from 0.1 to 0.05: sqrt(0.5).
    rate = decay_rate_for(0.1, 0.05, 2600, 1000, staircase=True, warmup_steps=100)
    assert rate == math.sqrt(0.5)
    with pytest.raises(ValueError) as raised:
        decay_rate_for(0.1, 0.05, 2000, 1000, transition_begin=1000, warmup_steps=1000)
    assert str(raised.value) == (
        "total_steps must be > warmup_steps + transition_begin, got total_steps=2000 "
        "with warmup_steps=1000 and transition_begin=1000: the decay starts at "
        "warmup_steps + transition_begin"
    )
    with pytest.raises(ValueError) as raised:
        decay_rate_for(0.1, 0.05, 1500, 1000, staircase=True, warmup_steps=600)
    assert str(raised.value) == (
        "with staircase=True the learning rate first changes at step warmup_steps + "
        "transition_begin + decay_steps = 1600, after total_steps=1500: (total_steps "
        "- warmup_steps - transition_begin) // decay_steps is 0, got decay_steps=1000 "
        "with warmup_steps=600 and transition_begin=0"
    )


def test_from_endpoints_with_a_warmup():
    """The peak is the initial learning rate; the final rate is reached at
    total_steps, counted from step 0, and optax's warmup schedule agrees."""
    schedule = jaxdecay.ExponentialDecay.from_endpoints(
        0.1, 0.025, total_steps=3100, decay_steps=1000, transition_begin=1000,
        warmup_steps=100, warmup_init=0.01,
    )  # fmt: skip
    assert schedule.decay_rate == 0.5
    assert (schedule.warmup_steps, schedule.warmup_init) == (100, 0.01)
    reference = optax.warmup_exponential_decay_schedule(
        init_value=0.01, peak_value=0.1, warmup_steps=100, transition_steps=1000,
        decay_rate=0.5, transition_begin=1000,
    )  # fmt: skip
    steps = jax.numpy.array([0, 50, 100, 1100, 3100])
    np.testing.assert_allclose(schedule(steps), reference(steps), rtol=1e-5)
    np.testing.assert_allclose(schedule(3100), 0.025, rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"warmup_steps": "100"}, TypeError,
         "warmup_steps must be an integer, got '100' of type str"),
        ({"warmup_steps": 1.5}, TypeError,
         "warmup_steps must be an integer, got 1.5 of type float"),
        ({"warmup_steps": -1}, ValueError,
         "warmup_steps must be an integer in [0, 9223372036854775807], got -1"),
        ({"warmup_steps": np.array([1, 2])}, TypeError,
         "warmup_steps must be a number, got an array of shape (2,); solve for "
         "each schedule of a batch on its own"),
        ({"warmup_init": "0"}, TypeError,
         "warmup_init must be a real number, got '0' of type str"),
        ({"warmup_init": math.nan}, ValueError, "warmup_init must be finite, got nan"),
    ],
)  # fmt: skip
def test_from_endpoints_names_a_bad_warmup(kwargs, error, message):
    with pytest.raises(error) as raised:
        jaxdecay.ExponentialDecay.from_endpoints(
            0.1, 0.01, total_steps=1000, decay_steps=100, **kwargs
        )
    assert str(raised.value) == message


BAD_SOLVE_ARGUMENTS = [
    ({"initial_learning_rate": -0.1}, ValueError, "initial_learning_rate must be > 0"),
    ({"final_learning_rate": "0.1"}, TypeError, "final_learning_rate must be a real"),
    ({"total_steps": 10.0}, TypeError, "total_steps must be an integer"),
    ({"decay_steps": 0}, ValueError, "decay_steps must be an integer in [1, "),
    ({"staircase": 1}, TypeError, "staircase must be a bool"),
    ({"transition_begin": -1}, ValueError, "transition_begin must be an integer in"),
    ({"end_learning_rate": math.inf}, ValueError, "end_learning_rate must be finite"),
    (
        {"initial_learning_rate": np.array([0.1, 0.2])},
        TypeError,
        "initial_learning_rate must be a number, got an array of shape (2,)",
    ),
]


@pytest.mark.parametrize(("kwargs", "error", "message"), BAD_SOLVE_ARGUMENTS)
def test_decay_rate_for_names_the_bad_argument(kwargs, error, message):
    arguments = {
        "initial_learning_rate": 0.1,
        "final_learning_rate": 0.01,
        "total_steps": 1000,
        "decay_steps": 100,
        **kwargs,
    }
    with pytest.raises(error, match=re.escape(message)):
        decay_rate_for(**arguments)


def test_decay_rate_for_refuses_traced_values():
    with pytest.raises(TypeError, match="concrete number, got a traced value"):
        jax.jit(lambda final: decay_rate_for(0.1, final, 1000, 100))(0.01)


def test_evaluate_is_one_vectorized_call():
    """All steps go through one traced call of the schedule, however many."""
    schedule = jaxdecay.ExponentialDecay(0.1, 1000, 0.5, staircase=True)
    shapes = []

    def recording_schedule(step):
        shapes.append(step.shape)
        return schedule(step)

    steps, _ = _plot.plot_grid(schedule, 10**8)
    values = _cli._evaluate(recording_schedule, steps)
    assert shapes == [steps.shape]
    np.testing.assert_array_equal(values[:3], np.array([0.1, 0.1, 0.05], values.dtype))
