"""The `jaxdecay` command line: look at, plot, convert and solve for schedules.

Every command reads its configs through `_read_config` and computes learning rates
with the schedule itself (one jitted, vectorized call), so what it prints is what
training gets. Errors in the input end in one line on stderr and exit code 2; a
missing optional library (matplotlib, PyYAML) names its extra, with exit code 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import decimal
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jaxdecay
from jaxdecay import _config, _interop, _json, _plot, _validation

_PROG = "jaxdecay"
_MAX_CONFIG_BYTES = 1 << 20
# Beyond this many stairs a plot samples them evenly: a figure is ~600 pixels wide.
_SUFFIXES = {"k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9}


def console() -> int:
    """The `jaxdecay` script and `python -m jaxdecay`: `main`, in a process of its
    own, with JAX's persistent compilation cache (see `compilation_cache_dir`)."""
    folder = compilation_cache_dir(os.environ)
    if folder is not None:
        # The command owns its process: a later run reads the programs this one
        # compiled instead of compiling them again (they are most of its time).
        jax.config.update("jax_compilation_cache_dir", folder)  # type: ignore[no-untyped-call]
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)  # type: ignore[no-untyped-call]
    return main()


def compilation_cache_dir(environ: Mapping[str, str]) -> str | None:
    """The command line's compilation cache: `$JAXDECAY_CACHE_DIR`, else `jaxdecay`
    in `$XDG_CACHE_HOME` (`~/.cache`); None (no cache) when
    `JAXDECAY_NO_CACHE` is set to anything but "" or "0".

    Examples:
      >>> compilation_cache_dir({"JAXDECAY_CACHE_DIR": "/tmp/c"})
      '/tmp/c'
      >>> compilation_cache_dir({"XDG_CACHE_HOME": "/x", "JAXDECAY_NO_CACHE": "1"})
    """
    if environ.get("JAXDECAY_NO_CACHE", "") not in ("", "0"):
        return None
    if environ.get("JAXDECAY_CACHE_DIR"):
        return environ["JAXDECAY_CACHE_DIR"]
    home = environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return os.path.join(home, "jaxdecay")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code (0, 1, or 2 for bad input).

    Examples:
      >>> main(["solve", "--initial-learning-rate", "0.1",
      ...       "--final-learning-rate", "0.05", "--total-steps", "1000",
      ...       "--decay-steps", "1000", "--to", "optax"])
      {"init_value": 0.1, "transition_steps": 1000, "decay_rate": 0.5, \
"transition_begin": 0, "staircase": false, "end_value": null}
      0
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error (code 2)
        code = exit_.code
        return code if isinstance(code, int) else int(code is not None)
    try:
        return int(args.command(args))
    except ImportError as error:  # an optional library is missing: say which extra
        _print_error(error)
        return 1
    except (ValueError, TypeError, OverflowError, OSError) as error:
        # json.JSONDecodeError is a ValueError, and so are YAML errors once
        # _interop.load_yaml has made them one line.
        _print_error(error)
        return 2


def _print_error(error: BaseException) -> None:
    message = " ".join(str(error).split()) or type(error).__name__
    print(f"{_PROG}: error: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------
# Arguments.
# ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Look at, plot, convert and solve for Keras' learning-rate "
        "schedules (ExponentialDecay, InverseTimeDecay, CosineDecay).",
        epilog="CONFIG is a JSON or YAML file, '-' for standard input, or inline "
        "JSON. It may be Keras 3's or TF 2's serialized form, a bare get_config() "
        "dict, or the arguments of optax.exponential_decay or "
        "optax.warmup_exponential_decay_schedule. Example: "
        """jaxdecay show '{"initial_learning_rate": 0.1, "decay_steps": 1000, """
        """"decay_rate": 0.96}'""",
    )
    parser.add_argument(
        "--version", action="version", version=f"{_PROG} {jaxdecay.__version__}"
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    commands.required = True
    _add_show(commands)
    _add_plot(commands)
    _add_convert(commands)
    _add_solve(commands)
    return parser


def _add_show(commands: Any) -> None:
    show = commands.add_parser(
        "show",
        help="print a table of step -> learning rate",
        description="Print a table of step -> learning rate. By default the steps "
        "are 0, 10, 100, ... up to --end, and --end itself; with a warmup, also "
        "its middle and its end (warmup_steps), and with a hold its end "
        "(warmup_steps + transition_begin).",
    )
    show.add_argument("config", metavar="CONFIG", help="the schedule's config")
    which_steps = show.add_mutually_exclusive_group()
    which_steps.add_argument(
        "--steps",
        type=_step_list,
        metavar="S1,S2,...",
        help="the steps to show, comma-separated; a step may be written 1000000, "
        "1_000_000, 1e6 or 1M (suffixes k, M, G)",
    )
    which_steps.add_argument(
        "--end",
        type=_step,
        metavar="STEP",
        help="the last step of the default steps "
        "(default: warmup_steps + transition_begin + 10 * decay_steps)",
    )
    show.set_defaults(command=_show)


def _add_plot(commands: Any) -> None:
    plot = commands.add_parser(
        "plot",
        help="draw the learning rate against the step (needs jaxdecay[plot])",
        description="Draw the learning rate against the step into an image (PNG, "
        "or another format matplotlib knows from the file's suffix). Stairs are "
        "drawn as stairs, every stair edge kept up to 10,000 stairs.",
    )
    plot.add_argument("config", metavar="CONFIG", help="the schedule's config")
    plot.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="the image to write"
    )
    plot.add_argument(
        "--steps",
        type=_step,
        metavar="N",
        help="the last step drawn (default: warmup_steps + transition_begin + 10 * "
        "decay_steps, the larger of the two with --compare)",
    )
    plot.add_argument(
        "--log", action="store_true", help="a logarithmic learning-rate axis"
    )
    plot.add_argument(
        "--log-steps",
        action="store_true",
        help="a logarithmic step axis, from step 1 (points are log-spaced)",
    )
    plot.add_argument(
        "--compare", metavar="OTHER", help="a second config, drawn over the first"
    )
    plot.add_argument(
        "--dpi", type=int, default=100, help="pixels per inch (default: 100)"
    )
    plot.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="report each stage on stderr (default: when stderr is a terminal)",
    )
    plot.set_defaults(command=_plot_command)


def _add_convert(commands: Any) -> None:
    convert = commands.add_parser(
        "convert",
        help="write a config in another format",
        description="Write a config in another format: jaxdecay (to_json(): Keras "
        "3's shape, jaxdecay's extensions included), keras (Keras 3's shape, only "
        "what Keras' class of the same name accepts), tf2 ({class_name, config}, the "
        "same restriction), optax (the keyword arguments of optax.exponential_decay, "
        "or of optax.warmup_exponential_decay_schedule for a warmup) or yaml (the "
        "get_config() dict, as it sits in an experiment config).",
    )
    convert.add_argument("config", metavar="CONFIG", help="the schedule's config")
    _add_output_arguments(convert)
    convert.set_defaults(command=_convert)


def _add_solve(commands: Any) -> None:
    solve = commands.add_parser(
        "solve",
        help="find the decay rate that reaches a learning rate at a step",
        description="Print the config whose learning rate at --total-steps is "
        "--final-learning-rate: decay_rate = (final / initial) ** (decay_steps / "
        "t); with --staircase the exponent is 1 / (t // decay_steps). t = "
        "total_steps - warmup_steps - transition_begin: the decay starts after the "
        "warmup and transition_begin, total_steps counts from step 0.",
    )
    solve.add_argument(
        "--initial-learning-rate", type=float, required=True, metavar="LR"
    )
    solve.add_argument("--final-learning-rate", type=float, required=True, metavar="LR")
    solve.add_argument("--total-steps", type=_step, required=True, metavar="STEP")
    solve.add_argument("--decay-steps", type=_step, required=True, metavar="STEPS")
    solve.add_argument("--staircase", action="store_true", help="decay in stairs")
    solve.add_argument(
        "--transition-begin",
        type=_step,
        default=0,
        metavar="STEP",
        help="the step at which the decay starts, counted after the warmup "
        "(default: 0)",
    )
    solve.add_argument(
        "--warmup-steps",
        type=_step,
        default=0,
        metavar="STEPS",
        help="a linear warmup to the initial learning rate over the first STEPS "
        "steps (default: 0, none)",
    )
    solve.add_argument(
        "--warmup-init",
        type=float,
        default=0.0,
        metavar="LR",
        help="the learning rate the warmup starts from (default: 0.0)",
    )
    _add_output_arguments(solve)
    solve.set_defaults(command=_solve_command)


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--to",
        choices=_interop.FORMATS,
        default="jaxdecay",
        help="the output format (default: jaxdecay)",
    )
    parser.add_argument(
        "--indent", type=int, metavar="N", help="indent JSON output by N spaces"
    )


def _step(text: str) -> int:
    """An integer step: `1000`, `1_000`, `1e3`, or with a suffix, `1k`, `2.5M`, `1G`."""
    digits, multiplier = text.strip(), 1
    if digits[-1:] in _SUFFIXES:
        digits, multiplier = digits[:-1], _SUFFIXES[digits[-1]]
    try:
        number = decimal.Decimal(digits) * multiplier  # exact, unlike float
    except decimal.DecimalException:  # not a number, or an exponent out of range
        number = decimal.Decimal("NaN")
    if not number.is_finite() or number != number.to_integral_value():
        raise argparse.ArgumentTypeError(f"not an integer step: {text!r}")
    if abs(number) > _validation.INT64_MAX:
        raise argparse.ArgumentTypeError(f"step {text!r} is beyond int64")
    return int(number)


def _step_list(text: str) -> list[int]:
    return [_step(item.strip()) for item in text.split(",")]


# ---------------------------------------------------------------------------
# Reading configs.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Source:
    schedule: _config.Config
    label: str  # names the config in messages and legends


def _read_config(argument: str) -> _Source:
    """Reads CONFIG: a file, '-' for standard input, or inline JSON."""
    suffix = ""
    if argument == "-":
        label, text = "stdin", sys.stdin.read(_MAX_CONFIG_BYTES + 1)
    elif argument.lstrip().startswith("{"):
        label, text, suffix = "inline JSON", argument, ".json"
    else:
        label, suffix = os.path.basename(argument), os.path.splitext(argument)[1]
        try:
            with open(argument, "rb") as file:
                raw = file.read(_MAX_CONFIG_BYTES + 1)
        except OSError as error:
            raise OSError(
                f"cannot read config {argument!r}: {error.strerror or error}"
            ) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{argument}: not UTF-8 text") from None
    if len(text) > _MAX_CONFIG_BYTES:
        raise ValueError(f"{label}: a config is at most {_MAX_CONFIG_BYTES} bytes")
    if not text.strip():
        raise ValueError(f"{label}: the config is empty")
    json_text = suffix.lower() == ".json" or (
        suffix.lower() not in (".yaml", ".yml") and text.lstrip().startswith("{")
    )
    try:
        data = _json.parse_json(text) if json_text else _interop.load_yaml(text)
        schedule = _interop.schedule_from_data(data)
    except TypeError as error:
        raise TypeError(f"{label}: {error}") from None
    except ValueError as error:
        raise ValueError(f"{label}: {error}") from None
    return _Source(schedule, label)


# ---------------------------------------------------------------------------
# Evaluating.
# ---------------------------------------------------------------------------


def _evaluate(
    schedule: _config.Config, steps: Sequence[int] | np.ndarray
) -> np.ndarray:
    """The learning rates at `steps`, in one jitted call, as JAX's default int."""
    int_dtype = np.dtype(jnp.result_type(int))
    limits = np.iinfo(int_dtype)
    if len(steps):
        # Before any conversion: a Python int may not fit int64 either.
        for step in (min(steps), max(steps)):
            if not limits.min <= step <= limits.max:
                hint = (
                    "; set JAX_ENABLE_X64=1 for int64 steps"
                    if int_dtype == np.int32
                    else ""
                )
                raise ValueError(
                    f"step {step} does not fit JAX's step type {int_dtype}{hint}"
                )
    values = jax.jit(schedule)(jnp.asarray(np.asarray(steps, dtype=int_dtype)))
    return np.asarray(values)


def _format_value(value: np.floating[Any]) -> str:
    """The shortest text that reads back to `value` in its own dtype, laid out as
    Python's repr lays out a float: `0.0001`, `1e-05`, `0.06648327`."""
    magnitude = np.abs(value)
    if magnitude == 0 or value.dtype.type(1e-4) <= magnitude < value.dtype.type(1e16):
        return str(np.format_float_positional(value, unique=True, trim="0"))
    return str(np.format_float_scientific(value, unique=True, trim="-", exp_digits=2))


def _default_end(schedule: _config.Config) -> int:
    return _config.lead(schedule) + schedule.family.view.horizon(schedule)


def _default_steps(end: int, ends: Sequence[int] = ()) -> list[int]:
    """0, 10, 100, ... below `end`, then `end`; with pieces (a warmup, a hold),
    the middle of the first and where each ends (the peak, the decay's start),
    where they are below `end`."""
    steps = {0}
    decade = 10
    while decade < end:
        steps.add(decade)
        decade *= 10
    middle = (ends[0] // 2,) if ends else ()
    steps |= {step for step in (*middle, *ends) if 0 < step < end}
    if end > 0:
        steps.add(end)
    return sorted(steps)


# ---------------------------------------------------------------------------
# show
# ---------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    schedule = _read_config(args.config).schedule
    if args.steps is not None:
        steps = args.steps
    else:
        end = _default_end(schedule) if args.end is None else args.end
        if end < 0:
            raise ValueError(f"--end must be >= 0, got {end}")
        steps = _default_steps(end, _config.piece_ends(schedule))
    values = _evaluate(schedule, steps)
    print(_table(steps, values), end="")
    return 0


def _table(steps: Sequence[int], values: np.ndarray) -> str:
    header = ("step", f"learning_rate ({values.dtype})")
    rows = [
        (str(step), _format_value(value))
        for step, value in zip(steps, values, strict=True)
    ]
    width = max(len(cell) for cell, _ in [header, *rows])
    return "".join(f"{step:>{width}}  {lr}\n" for step, lr in [header, *rows])


# ---------------------------------------------------------------------------
# plot
# ---------------------------------------------------------------------------


def _plot_command(args: argparse.Namespace) -> int:
    progress = _Progress(
        sys.stderr.isatty() if args.progress is None else args.progress
    )
    _check_writable(args.output)  # before the work, not after it
    sources = [_read_config(args.config)]
    if args.compare is not None:
        sources.append(_read_config(args.compare))
    if args.steps is None:
        end = max(_default_end(source.schedule) for source in sources)
    else:
        end = args.steps
    if args.dpi < 1:
        raise ValueError(f"--dpi must be >= 1, got {args.dpi}")
    curves = []
    for source in sources:
        steps, note = _plot.plot_grid(source.schedule, end, log_steps=args.log_steps)
        if note is not None:
            print(f"{_PROG}: note: {source.label}: {note}", file=sys.stderr)
        progress(f"{source.label}: evaluating the schedule at {steps.size} steps")
        values = _evaluate(source.schedule, steps)
        label = _config.formula(source.schedule)
        if len(sources) > 1:
            label = f"{source.label}: {label}"
        stepwise = source.schedule.family.view.stepwise(source.schedule)
        curves.append(_plot.Curve(steps, values, stepwise, label))
    progress("drawing")
    figure = _plot.draw(curves, log=args.log, log_steps=args.log_steps, dpi=args.dpi)
    progress(f"writing {args.output}")
    figure.savefig(args.output)
    progress("done")
    print(f"wrote {args.output}")
    return 0


def _check_writable(path: str) -> None:
    """Fails if `path` cannot be written (a missing folder, no permission, a
    folder), leaving an existing file as it is and no new one behind."""
    existed = os.path.lexists(path)
    try:
        with open(path, "ab"):
            pass
    except OSError as error:
        raise OSError(f"cannot write {path!r}: {error.strerror or error}") from None
    if not existed:
        os.remove(path)


class _Progress:
    """Reports stages with the time since the start on stderr, when enabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.enabled:
            elapsed = time.perf_counter() - self.start
            print(f"{_PROG}: [{elapsed:6.2f} s] {message}", file=sys.stderr)


# ---------------------------------------------------------------------------
# convert and solve
# ---------------------------------------------------------------------------


def _convert(args: argparse.Namespace) -> int:
    schedule = _read_config(args.config).schedule
    print(_interop.format_config(schedule, args.to, indent=args.indent), end="")
    return 0


def _solve_command(args: argparse.Namespace) -> int:
    # The CLI goes through ExponentialDecay.from_endpoints, as Python code does.
    schedule = jaxdecay.ExponentialDecay.from_endpoints(
        args.initial_learning_rate,
        args.final_learning_rate,
        args.total_steps,
        args.decay_steps,
        args.staircase,
        transition_begin=args.transition_begin,
        warmup_steps=args.warmup_steps,
        warmup_init=args.warmup_init,
    )
    if args.final_learning_rate > args.initial_learning_rate:
        # Valid, but more often swapped arguments than a wish for growth.
        print(
            f"{_PROG}: warning: the final learning rate {args.final_learning_rate!r} "
            f"is above the initial one {args.initial_learning_rate!r}: the schedule "
            f"grows (decay_rate {schedule.decay_rate!r} > 1)",
            file=sys.stderr,
        )
    print(_interop.format_config(schedule, args.to, indent=args.indent), end="")
    return 0
