"""The `jaxdecay plot` figure: where to evaluate a schedule to draw it, and the drawing.

matplotlib is imported only to draw (the `plot` extra).
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxdecay import _config, _validation

_MAX_STAIRS = 10_000
_CURVE_POINTS = 4_000
_FIGURE_SIZE = (6.4, 4.0)  # inches; at --dpi 100, a 640 x 400 PNG
_TITLE_WIDTH = 80  # characters of a title's line, about the figure's width


@dataclasses.dataclass(frozen=True)
class Curve:
    """One schedule's learning rates at its steps, and its label."""

    steps: np.ndarray
    values: np.ndarray
    stepwise: bool  # flat between points
    label: str


def plot_grid(
    schedule: _config.Config, end: int, *, log_steps: bool = False
) -> tuple[np.ndarray, str | None]:
    """The steps at which to evaluate `schedule` to draw it from 0 (or 1) to `end`.

    A stepwise curve (a staircase) is drawn exactly from the steps on both sides
    of each edge, whatever `end` is: 10**8 steps of stairs of 1000 are 2 * 10**5
    points. Beyond 10**4 edges (more than a figure's pixels) they are sampled
    evenly, and the note says so. A continuous curve gets 4,000 points,
    log-spaced for a logarithmic step axis, plus the steps where its formula
    changes (where each piece ends: a warmup, a hold). The pieces before the
    family's own steps (a warmup's ramp) get 4,000 points (or every step) of
    their own in a stepwise curve, which is drawn flat between points.

    Returns:
      The sorted, unique int64 steps, and a note for the user or None.
    """
    start = 1 if log_steps else 0
    if end <= start:
        raise ValueError(f"the last step drawn must be > {start}, got {end}")
    view, lead = schedule.family.view, _config.lead(schedule)
    note = None
    bends = [lead + bend for bend in view.bends(schedule)]
    ends = _config.piece_ends(schedule)  # where a warmup and a hold end
    changes = [min(max(step, start), end) for step in (*bends, *ends, lead)]
    fixed = np.array([start, end, *changes], dtype=np.int64)
    if view.stepwise(schedule):
        edges, count = view.edges(schedule, end - lead, _MAX_STAIRS)
        edges = lead + edges
        if count > edges.size:
            note = (
                f"{count} stairs up to step {end}: drawing {edges.size} of them, "
                "evenly spaced"
            )
        ramp = (
            _spaced(start, min(lead, end), log_steps)
            if lead > start
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
            drawstyle="steps-post" if curve.stepwise else "default",
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
        # A long formula (a warmup and a hold said first) wraps within the figure.
        title = "\n".join(textwrap.wrap(curves[0].label, _TITLE_WIDTH))
        axes.set_title(title, fontsize="medium")
    return figure
