"""Warmup, hold, decay (the warmup-stable-decay recipe) in every family.

Each family's recipe, as docs/schedules.md ("Warmup, hold, decay") states it: a
line from the warmup's start at step 0 to the peak at step W, the peak from W to
W + H (both included), then the family's own curve counted from W + H, whose step
0 is the peak too. The expected values are that piecewise formula, written here
from the page with mpmath (256 bits) on the numbers rounded to the compute dtype,
and rounded once; the schedules are within 1 ulp of it, at the first and last step
of each phase and the steps either side, at integer and float steps, eagerly,
under jit, with the config as a jit argument (and on the other paths of
`_paths.paths`, bit for bit). The file runs with x64 off and on.

The hold is a piece (`transition_begin`): the tests after the recipe check what
every piece keeps, a config without a hold unchanged, a hold length that is data
(no compile, traced, swept), its gradients, serialization, optax and the command
line.
"""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

mpmath = pytest.importorskip("mpmath")
optax = pytest.importorskip("optax")

from _paths import AS_ARGUMENT, counting_compiles, paths, stack
from _reference import PRECISION, bits, round_exact, ulp_distance

import jaxdecay
from jaxdecay import _cli, _config

X64 = bool(jax.config.jax_enable_x64)
FLOAT = np.dtype(np.float64 if X64 else np.float32)  # the compute dtype
INT = np.dtype(np.int64 if X64 else np.int32)

W, H, D = 100, 250, 1000  # warmup, hold, decay steps
START, PEAK = 0.001, 0.1  # where the warmup starts, the peak


def rounded(x):
    """A float hyperparameter as the schedule takes it: in the compute dtype."""
    return mpmath.mpf(float(FLOAT.type(x)))


# ---------------------------------------------------------------------------
# The recipe of each family, and its formula after the hold, from the page.
# ---------------------------------------------------------------------------


def exponential(t):
    return rounded(PEAK) * rounded(0.5) ** (t / D)


def inverse_time(t):
    return rounded(PEAK) / (1 + rounded(2.0) * t / D)


def polynomial(t):
    end = rounded(1e-4)
    return (rounded(PEAK) - end) * (1 - min(t, D) / mpmath.mpf(D)) ** 2 + end


def cosine(t):
    alpha = rounded(0.1)
    x = min(t, D) / mpmath.mpf(D)
    return rounded(PEAK) * ((1 - alpha) * (1 + mpmath.cos(mpmath.pi * x)) / 2 + alpha)


RECIPES = {
    "ExponentialDecay": (
        jaxdecay.ExponentialDecay(
            PEAK, D, 0.5, warmup_steps=W, warmup_init=START, transition_begin=H
        ),
        exponential,
    ),
    "InverseTimeDecay": (
        jaxdecay.InverseTimeDecay(
            PEAK, D, 2.0, warmup_steps=W, warmup_init=START, transition_begin=H
        ),
        inverse_time,
    ),
    "PolynomialDecay": (
        jaxdecay.PolynomialDecay(
            PEAK,
            D,
            1e-4,
            power=2.0,
            warmup_steps=W,
            warmup_init=START,
            transition_begin=H,
        ),
        polynomial,
    ),
    "CosineDecay": (
        # Keras' warmup starts from initial_learning_rate and rises to the target.
        jaxdecay.CosineDecay(
            START, D, 0.1, warmup_target=PEAK, warmup_steps=W, transition_begin=H
        ),
        cosine,
    ),
}

# PiecewiseConstantDecay: its boundaries are the recipe. A low value up to step
# W - 1, the peak from W to W + H (a boundary is the last step of its value), then
# the decay's stairs.
PIECES = ([W - 1, W + H, W + H + D], [START, PEAK, PEAK / 10, PEAK / 100])
PIECEWISE = jaxdecay.PiecewiseConstantDecay(*PIECES)


def recipe(step, family):
    """The documented recipe at `step` (an exact number): the line, the peak, then
    the family's own curve at `step - W - H`."""
    s = mpmath.mpf(step)
    if s < W:
        start, peak = rounded(START), rounded(PEAK)
        return start + (peak - start) * max(s, 0) / W
    if s <= W + H:
        return rounded(PEAK)
    return family(s - W - H)


def piecewise(step):
    """`values[i]` for `boundaries[i-1] < step <= boundaries[i]`."""
    boundaries, values = PIECES
    index = sum(1 for b in boundaries if step > b)
    return rounded(values[index])


# The first and last step of each phase and the steps either side: the warmup
# (0 .. W - 1), the hold (W .. W + H - 1), the decay (W + H .. W + H + D), after.
EDGES = [0, W - 1, W, W + H - 1, W + H, W + H + D - 1, W + H + D]
INT_STEPS = sorted({-1, *(e + d for e in EDGES for d in (-1, 0, 1)), W + H + 3 * D})
FLOAT_STEPS = [-0.5, 0.5, W - 0.5, W + 0.5, W + H - 0.5, W + H + 0.5]
FLOAT_STEPS += [W + H + D - 0.5, W + H + D + 0.5, W + H + 3 * D + 0.25]


def expected(steps, at):
    with mpmath.workprec(PRECISION):
        values = [round_exact(at(float(step)), FLOAT) for step in steps]
    return np.array(values, FLOAT)


def assert_within_one_ulp(got, want, steps, path):
    got = np.asarray(got)
    assert got.dtype == FLOAT, path
    far = ulp_distance(got, want) > 1
    wrong = list(zip(np.asarray(steps)[far], got[far], want[far], strict=True))
    assert not wrong, (path, wrong)


def compute_paths(schedule, steps):
    """Eagerly, under jit, and with the config as a jit argument."""
    return {
        "eager": schedule(steps),
        "jit": jax.jit(schedule)(steps),
        "argument": AS_ARGUMENT(schedule, steps),
    }


@pytest.mark.parametrize("kind", ["int", "float"])
@pytest.mark.parametrize("name", [*RECIPES, "PiecewiseConstantDecay"])
def test_the_recipe_at_its_phase_boundaries(name, kind):
    steps = np.asarray(INT_STEPS, INT) if kind == "int" else np.asarray(FLOAT_STEPS)
    steps = steps.astype(FLOAT) if kind == "float" else steps
    if name == "PiecewiseConstantDecay":
        schedule, at = PIECEWISE, piecewise
    else:
        schedule, family = RECIPES[name]
        at = lambda step: recipe(step, family)  # noqa: E731
    want = expected(steps, at)
    for path, got in compute_paths(schedule, jnp.asarray(steps)).items():
        assert_within_one_ulp(got, want, steps, path)


@pytest.mark.parametrize("name", [*RECIPES, "PiecewiseConstantDecay"])
def test_the_peak_is_exact_from_the_warmup_end_to_the_decay_start(name):
    """Step W is the first at the peak, W + H the decay's first step, at the peak
    too, W + H + 1 below it: exactly, not within an ulp."""
    schedule = PIECEWISE if name == "PiecewiseConstantDecay" else RECIPES[name][0]
    steps = jnp.asarray([W - 1, W, W + H - 1, W + H, W + H + 1], INT)
    got = np.asarray(schedule(steps))
    peak = FLOAT.type(PEAK)
    assert got[0] < peak
    assert (got[1:4] == peak).all()
    assert got[4] < peak


@pytest.mark.parametrize("name", ["InverseTimeDecay", "CosineDecay"])
def test_every_path_gives_the_same_bits(name):
    """Eager, scalar calls, jit, a jit argument, a vmapped row, the builder and
    optax: one set of bits. (The hold is the same piece in every family; the
    recipe's test runs PolynomialDecay's eager, jit and argument paths.)"""
    schedule = RECIPES[name][0]
    steps = jnp.asarray(INT_STEPS, jnp.int32)
    got = paths(schedule, steps)
    for path, values in got.items():
        # The scalar calls are of the first steps only.
        assert bits(values) == bits(got["eager"][: len(values)]), path


def test_exponential_decay_has_the_recipe_in_optax_too():
    """ExponentialDecay's own `transition_begin` is optax's: the same recipe as
    `optax.warmup_exponential_decay_schedule` (optax's own rounding)."""
    schedule = RECIPES["ExponentialDecay"][0]
    ours = schedule.to_optax()
    theirs = optax.warmup_exponential_decay_schedule(
        START, PEAK, W, D, 0.5, transition_begin=H
    )
    steps = jnp.asarray(INT_STEPS, INT)
    np.testing.assert_allclose(ours(steps), theirs(steps), rtol=4e-6, atol=1e-9)
    np.testing.assert_allclose(schedule(steps), theirs(steps), rtol=4e-6, atol=1e-9)


def test_the_reference_can_fail():
    """A hold one step short, or the decay one step early, is caught."""
    steps = np.asarray(INT_STEPS, INT)
    want = expected(steps, lambda step: recipe(step, polynomial))
    for moved in (
        dataclasses.replace(RECIPES["PolynomialDecay"][0], transition_begin=H - 1),
        dataclasses.replace(RECIPES["PolynomialDecay"][0], warmup_steps=W + 1),
    ):
        assert (ulp_distance(np.asarray(moved(steps)), want) > 1).any()


# ---------------------------------------------------------------------------
# The hold is a piece: a config without one is unchanged and runs none of it.
# ---------------------------------------------------------------------------

HOLDING = ["InverseTimeDecay", "PolynomialDecay", "CosineDecay"]


@pytest.mark.parametrize("name", HOLDING)
def test_no_hold_uses_no_piece(name):
    schedule = RECIPES[name][0]
    none = dataclasses.replace(schedule, transition_begin=0)
    assert "hold" in schedule.__dict__["_pieces"]
    assert "hold" not in none.__dict__["_pieces"]
    assert none == type(none)(**{**none.get_config(), "transition_begin": 0})
    assert "transition_begin" not in none.get_config()
    structure = jax.tree.structure
    assert structure(none) != structure(schedule)
    unnamed = {
        k: v for k, v in schedule.get_config().items() if k != "transition_begin"
    }
    assert structure(none) == structure(type(schedule)(**unnamed))
    # The family's own steps, counted from the warmup's end, with no hold.
    steps = np.asarray([W, W + 1, W + H], INT)
    moved = np.where(steps > W, steps + H, steps).astype(INT)
    assert bits(none(jnp.asarray(steps))) == bits(schedule(jnp.asarray(moved)))


@pytest.mark.parametrize("name", HOLDING)
def test_a_new_hold_length_compiles_nothing(name):
    schedule = RECIPES[name][0]
    steps = jnp.asarray(INT_STEPS, INT)
    AS_ARGUMENT(schedule, steps), schedule(steps)  # the programs, compiled once
    other = dataclasses.replace(schedule, transition_begin=7 * H + 3)
    with counting_compiles() as compiles:
        values = AS_ARGUMENT(other, steps)
        eager = other(steps)
        assert compiles == []  # inside: the block's end compiles a probe
    assert bits(values) == bits(eager)


@pytest.mark.parametrize("name", HOLDING)
def test_a_traced_hold_length_and_a_sweep_of_them(name):
    """A `transition_begin` traced when the config is built (a vmapped sweep over
    lengths, inside jit) gives each length's eager bits, and 0 those of no hold;
    a stack of configs with holds sweeps too."""
    schedule = RECIPES[name][0]
    steps = jnp.asarray(INT_STEPS, INT)

    def at(length):
        return dataclasses.replace(schedule, transition_begin=length)(steps)

    lengths = [0, 1, H, 3 * D]
    eager = [dataclasses.replace(schedule, transition_begin=n)(steps) for n in lengths]
    assert "hold" not in dataclasses.replace(schedule, transition_begin=0)._pieces
    rows = jax.jit(jax.vmap(at))(jnp.asarray(lengths, INT))
    for row, want in zip(rows, eager, strict=True):
        assert bits(row) == bits(want)
    stacked = stack([dataclasses.replace(schedule, transition_begin=n) for n in (1, H)])
    swept = jax.jit(jax.vmap(lambda c: c(steps)))(stacked)
    assert bits(swept[1]) == bits(eager[2])


@pytest.mark.parametrize("name", HOLDING)
def test_a_hold_beyond_every_step_holds_the_peak(name):
    """A hold longer than the step type reaches (2**63 - 1 without x64) holds the
    peak at every step after the warmup, float steps beyond 2**32 too."""
    schedule = dataclasses.replace(RECIPES[name][0], transition_begin=2**63 - 1)
    peak = FLOAT.type(PEAK)
    assert (np.asarray(schedule(jnp.asarray([W, 2**31 - 1], INT))) == peak).all()
    assert (np.asarray(schedule(jnp.asarray([1e12, 1e18], FLOAT))) == peak).all()


# ---------------------------------------------------------------------------
# Gradients: none by the step in the hold, the peak's own there, the family's after.
# ---------------------------------------------------------------------------


def slopes(schedule, field, steps):
    """(d/dstep, d/d`field`) at each float step, in one program."""

    def value(peak, step):
        return dataclasses.replace(schedule, **{field: peak})(step)

    grad = jax.vmap(jax.grad(value, argnums=(1, 0)), in_axes=(None, 0))
    by_step, by_peak = jax.jit(grad)(FLOAT.type(PEAK), jnp.asarray(steps, FLOAT))
    return np.asarray(by_step), np.asarray(by_peak)


def test_gradients_through_the_hold():
    """By hand: in the hold d/dstep = 0 and d/dpeak = 1; after it, with power 1,
    d/dstep = -(peak - end) / D; for the inverse time decay at t, -peak * (r / D)
    / (1 + r t / D)**2; for the cosine, -peak (1 - alpha) (pi / 2D) sin(pi t / D)."""
    held, t = W + H / 2 + 0.5, D / 2 + 0.5
    steps = [held, W + H + t]
    line = jaxdecay.PolynomialDecay(PEAK, D, 0.0, warmup_steps=W, transition_begin=H)
    inverse, cos = RECIPES["InverseTimeDecay"][0], RECIPES["CosineDecay"][0]
    hand = {
        "line": -PEAK / D,
        "inverse": -PEAK * (2.0 / D) / (1 + 2.0 * t / D) ** 2,
        "cos": -PEAK * 0.9 * (math.pi / (2 * D)) * math.sin(math.pi * t / D),
    }
    for name, schedule, field in (
        ("line", line, "initial_learning_rate"),
        ("inverse", inverse, "initial_learning_rate"),
        ("cos", cos, "warmup_target"),
    ):
        by_step, by_peak = slopes(schedule, field, steps)
        assert by_step[0] == 0 and by_peak[0] == 1, name
        np.testing.assert_allclose(by_step[1], hand[name], rtol=1e-5)


# ---------------------------------------------------------------------------
# Serialization, optax, Keras' names, the command line.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOLDING)
def test_the_hold_reads_back_as_format_2(name):
    schedule = RECIPES[name][0]
    data = jaxdecay.serialize(schedule)
    assert data["jaxdecay_format"] == 2 and data["config"]["transition_begin"] == H
    assert jaxdecay.deserialize(json.dumps(data)) == schedule
    assert type(schedule).from_json(schedule.to_json()) == schedule


def test_polynomial_hold_is_optax_transition_begin():
    """Without a warmup, optax's polynomial_schedule has the same hold."""
    schedule = jaxdecay.PolynomialDecay(PEAK, D, 1e-4, 2.0, transition_begin=H)
    kwargs = schedule.optax_kwargs()
    assert kwargs["transition_begin"] == H
    theirs = optax.polynomial_schedule(PEAK, 1e-4, 2.0, D, transition_begin=H)
    steps = jnp.asarray(INT_STEPS, INT)
    np.testing.assert_allclose(schedule(steps), theirs(steps), rtol=4e-6)
    np.testing.assert_allclose(schedule.to_optax()(steps), theirs(steps), rtol=4e-6)


def test_cosine_with_a_hold_is_refused_by_optax_naming_it():
    schedule = jaxdecay.CosineDecay(PEAK, D, 0.1, transition_begin=H)
    with pytest.raises(ValueError, match=rf"has no hold.*transition_begin={H}:"):
        schedule.to_optax()
    assert "transition_begin" not in jaxdecay.CosineDecay(PEAK, D).optax_kwargs()


def test_the_command_line_shows_and_names_the_phases(capsys, tmp_path):
    config = RECIPES["CosineDecay"][0].to_json()
    assert _cli.main(["show", config]) == 0
    shown = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert {str(W), str(W + H)} <= set(shown)
    assert _config.formula(RECIPES["CosineDecay"][0]).startswith(
        f"warmup 0.001 -> 0.1 to step {W}, then hold to step {W + H}, then 0.1 * "
    )
    assert _cli.main(["convert", config, "--to", "keras"]) == 2
    assert "has no transition_begin" in capsys.readouterr().err
    assert _cli.main(["plot", config, "-o", str(tmp_path / "lr.png")]) == 0
    assert (tmp_path / "lr.png").stat().st_size > 0


def test_the_plot_grid_has_each_phase_boundary():
    from jaxdecay import _plot

    steps, _ = _plot.plot_grid(RECIPES["PolynomialDecay"][0], 10**7)
    assert {W, W + 1, W + H, W + H + 1} <= set(steps.tolist())


def test_a_config_with_a_hold_exports_and_reads_back():
    """`jax.export` writes the pieces in use by name, and the program read back
    gives the config's bits."""
    from jax import export

    schedule = RECIPES["CosineDecay"][0]
    steps = jnp.asarray(INT_STEPS, INT)
    exported = export.export(AS_ARGUMENT)(schedule, steps)
    data = exported.serialize()
    assert b'"pieces": ["warmup", "hold"]' in data
    read = export.deserialize(data)
    assert bits(read.call(schedule, steps)) == bits(schedule(steps))
