"""The `jaxdecay plot` figure: where to evaluate a schedule to draw it, and the drawing.

matplotlib is imported only to draw (the `plot` extra).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

import jaxdecay
from jaxdecay import _validation

_MAX_STAIRS = 10_000
_CURVE_POINTS = 4_000
_FIGURE_SIZE = (6.4, 4.0)  # inches; at --dpi 100, a 640 x 400 PNG


@dataclasses.dataclass(frozen=True)
class Curve:
    """One schedule's learning rates at its steps, and its label."""

    steps: np.ndarray
    values: np.ndarray
    staircase: bool
    label: str


def plot_grid(
    schedule: jaxdecay.ExponentialDecay, end: int, *, log_steps: bool = False
) -> tuple[np.ndarray, str | None]:
    """The steps at which to evaluate `schedule` to draw it from 0 (or 1) to `end`.

    A staircase is drawn exactly from the steps on both sides of each stair edge,
    `start + k * decay_steps - 1` and `+ k * decay_steps` (the decay starts at
    `start = warmup_steps + transition_begin`), whatever `end` is: 10**8 steps of
    stairs of 1000 are 2 * 10**5 points. Beyond 10**4 stairs (more than a figure's
    pixels) they are sampled evenly, and the note says so. A continuous curve gets
    4,000 points, log-spaced for a logarithmic step axis, plus the steps where its
    formula changes. A warmup's ramp gets 4,000 points (or every step) of its own
    in a staircase, which is drawn flat between points.

    Returns:
      The sorted, unique int64 steps, and a note for the user or None.
    """
    start = 1 if log_steps else 0
    if end <= start:
        raise ValueError(f"the last step drawn must be > {start}, got {end}")
    warmup, decay_steps = schedule.warmup_steps, schedule.decay_steps
    begin = warmup + schedule.transition_begin
    note = None
    changes = [min(max(step, start), end) for step in (begin, warmup)]
    fixed = np.array([start, end, *changes], dtype=np.int64)
    if schedule.staircase:
        stairs = max(end - begin, 0) // decay_steps
        if stairs > _MAX_STAIRS:
            chosen = np.linspace(1, stairs, _MAX_STAIRS).round().astype(np.int64)
            stair_numbers = np.unique(chosen)
            note = (
                f"{stairs} stairs up to step {end}: drawing {stair_numbers.size} of "
                "them, evenly spaced"
            )
        else:
            stair_numbers = np.arange(1, stairs + 1, dtype=np.int64)
        # No stairs when the decay starts after `end` (possibly beyond int64).
        edges = min(begin, end) + stair_numbers * decay_steps
        ramp = (
            _spaced(start, min(warmup, end), log_steps)
            if warmup > start
            else np.empty(0, np.int64)
        )
        grid = np.concatenate([fixed, edges - 1, edges, ramp])
    else:
        spaced = _spaced(start, end, log_steps)
        grid = np.concatenate([fixed, fixed + 1, spaced])
    grid = grid[(grid >= start) & (grid <= end)]
    return np.unique(grid), note


def _spaced(first: int, last: int, log_steps: bool) -> np.ndarray:
    """4,000 steps from `first` to `last`, evenly or log-spaced (rounded: fewer
    where there are fewer steps)."""
    spaced = (
        np.geomspace(first, last, _CURVE_POINTS)
        if log_steps
        else np.linspace(first, last, _CURVE_POINTS)
    )
    return np.asarray(spaced.round().astype(np.int64))


def draw(curves: Sequence[Curve], *, log: bool, log_steps: bool, dpi: int = 100) -> Any:
    """Returns a matplotlib `Figure` of the curves (Agg canvas, no pyplot state)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import EngFormatter
    except ImportError as error:
        raise _validation.missing_extra("matplotlib", "plot") from error

    figure = Figure(figsize=_FIGURE_SIZE, dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for number, curve in enumerate(curves):
        axes.plot(
            curve.steps,
            curve.values,
            drawstyle="steps-post" if curve.staircase else "default",
            linestyle="-" if number == 0 else "--",
            linewidth=1.6,
            label=curve.label,
        )
    axes.set_xlabel("step")
    axes.set_ylabel("learning rate")
    if log:
        axes.set_yscale("log")
    if log_steps:
        axes.set_xscale("log")
    else:
        axes.xaxis.set_major_formatter(EngFormatter(sep=""))  # 100k, 1M
    low = min(int(curve.steps[0]) for curve in curves)
    high = max(int(curve.steps[-1]) for curve in curves)
    axes.set_xlim(low, high)
    axes.grid(True, which="major", alpha=0.3)
    if len(curves) > 1:
        axes.legend(fontsize="small")
    else:
        axes.set_title(curves[0].label, fontsize="medium")
    return figure


def formula(schedule: jaxdecay.ExponentialDecay) -> str:
    """The schedule as a Python expression of `step`, for titles and legends; a
    warmup is said before it."""
    begin = schedule.warmup_steps + schedule.transition_begin
    elapsed = "step" if begin == 0 else f"(step - {begin})"
    division = "//" if schedule.staircase else "/"
    text = (
        f"{float(schedule.initial_learning_rate):.6g} * "
        f"{float(schedule.decay_rate):.6g} ** ({elapsed} {division} "
        f"{schedule.decay_steps})"
    )
    if schedule.end_learning_rate is not None:
        bound = "max" if float(schedule.decay_rate) < 1 else "min"
        text = f"{bound}({float(schedule.end_learning_rate):.6g}, {text})"
    if schedule.warmup_steps > 0:
        text = (
            f"warmup {float(schedule.warmup_init):.6g} -> "
            f"{float(schedule.initial_learning_rate):.6g} to step "
            f"{schedule.warmup_steps}, then {text}"
        )
    return text
