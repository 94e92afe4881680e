"""Accuracy (ulp vs a 256-bit mpmath reference): jaxdecay vs optax vs Keras.

Prints two tables of max and mean ulp error over results in the normal range.

The first is `ExponentialDecay`'s over typical configs: `jaxdecay.exponential_decay`,
the same schedule with its config passed as a jit argument, optax's
``exponential_decay`` and Keras 3's ``ExponentialDecay`` (JAX backend). The warmup
row compares the linear warmup with optax's ``warmup_exponential_decay_schedule``
against the exact rational line; Keras has no warmup (n/a).

The second has a row per family and dtype over drawn configs (each family's
``_accuracy_<family>.py`` draws them over the whole range of every number, half of
them typical, and names the exact value and Keras' and optax's schedule of a
config), at random steps over the whole unsigned step type, its extremes and the
steps where the curve changes: jaxdecay eagerly, as a jit argument, optax (n/a
where it has no such schedule) and Keras.

The float64 rows need x64, so this script runs itself again in a subprocess with
``JAX_ENABLE_X64=1`` for those rows. Speed is `benchmarks/speed.py`'s.

The reference is the tests' own (`tests/_reference.py`).

Usage: ``python benchmarks/accuracy.py [--quick]``.
"""

from __future__ import annotations

import argparse
import fractions
import importlib
import json
import os
import pathlib
import subprocess
import sys
import warnings

os.environ.setdefault("KERAS_BACKEND", "jax")
# The reference the tests check jaxdecay against (tests/_reference.py).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))

import jax
import jax.numpy as jnp
import keras
import mpmath
import numpy as np
import optax
from _reference import PRECISION, reference, round_exact, ulp_distance

import jaxdecay

mpmath.mp.prec = 256

# (scale, rate, decay_steps): typical schedules plus slow and fast decays.  For
# the float32 rows scale and rate are first rounded to float32, as all three
# libraries take them: the table measures how each computes the power.
CONFIGS = [
    (0.1, 0.96, 1000),
    (1e-3, 0.9999, 1),
    (0.01, 0.5, 100_000),
    (0.3, 0.999, 7),
    (1.0, 0.9, 10_000_000),
    (0.05, 1.0001, 5000),
]


def ulp_errors(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """ulp distances over the results whose exact value is a normal float."""
    got = np.asarray(got).astype(expected.dtype)
    normal = np.isfinite(expected) & (np.abs(expected) >= np.finfo(expected.dtype).tiny)
    distance: np.ndarray = ulp_distance(got, expected)
    return distance[normal]


def _steps(
    rng: np.random.Generator, kind: str, config: tuple[float, float, int], count: int
) -> np.ndarray:
    decay_steps = config[2]
    if kind == "low":
        return rng.integers(0, 2**24, count)
    if kind == "high":
        return rng.integers(2**24, 2**31, count)
    if kind == "stairs":
        top = (2**31 - 1) // decay_steps
        k = rng.integers(1, top + 1, count // 2)
        return np.concatenate([k * decay_steps - 1, k * decay_steps])
    # float64: up to 2**53 (stairs: 2**62), where the result is not yet 0 or inf.
    top = min(2**53 if kind == "float64" else 2**62, _last_finite_step(*config))
    if kind == "float64":
        return rng.integers(0, top + 1, count)
    k = rng.integers(1, top // decay_steps + 1, count // 2)
    return np.concatenate([k * decay_steps - 1, k * decay_steps])


def _last_finite_step(scale: float, rate: float, decay_steps: int) -> int:
    """A step up to which `scale * rate**(step / decay_steps)` is a normal float64."""
    log2_rate = float(mpmath.log(rate, 2))
    if log2_rate == 0:
        return 2**63 - 1
    bound = -1021 if log2_rate < 0 else 1023
    room = bound - float(mpmath.log(abs(scale), 2))
    return int(room / log2_rate * decay_steps)


NAMES = ["jaxdecay", "jaxdecay (config as a jit argument)", "optax", "keras"]


@jax.jit
def as_argument(config: jaxdecay.ExponentialDecay, steps: jax.Array) -> jax.Array:
    return config(steps)


def accuracy_row(kind: str, count: int) -> dict[str, list[float]]:
    """Max and mean ulp errors of the three implementations for one row."""
    x64 = kind in ("float64", "stairs64")
    dtype = np.float64 if x64 else np.float32
    staircase = kind in ("stairs", "stairs64")
    rng = np.random.default_rng(2024)
    errors: dict[str, list[np.ndarray]] = {name: [] for name in NAMES}
    for scale, rate, decay_steps in CONFIGS:
        scale, rate = (float(dtype(scale)), float(dtype(rate)))
        steps = _steps(rng, kind, (scale, rate, decay_steps), count // len(CONFIGS))
        steps = steps.astype(np.int64 if x64 else np.int32)
        if staircase:  # the exact stair: integer division of Python ints
            stairs = [int(s) // decay_steps for s in steps]
            expected = reference(scale, rate, 1, stairs, dtype)
        else:
            expected = reference(scale, rate, decay_steps, steps, dtype)
        ours = jax.jit(
            jaxdecay.exponential_decay(scale, decay_steps, rate, staircase=staircase)
        )(jnp.asarray(steps))
        optax_schedule = optax.exponential_decay(
            scale, decay_steps, rate, staircase=staircase
        )
        keras_schedule = keras.optimizers.schedules.ExponentialDecay(
            scale, decay_steps, rate, staircase=staircase
        )
        config = jaxdecay.ExponentialDecay(scale, decay_steps, rate, staircase)
        results = {
            "jaxdecay": ours,
            "jaxdecay (config as a jit argument)": as_argument(
                config, jnp.asarray(steps)
            ),
            "optax": jax.jit(optax_schedule)(jnp.asarray(steps)),
            "keras": jax.jit(keras_schedule)(jnp.asarray(steps)),
        }
        for name, got in results.items():
            errors[name].append(ulp_errors(np.asarray(got), expected))
    return {
        name: [float(np.concatenate(e).max()), float(np.concatenate(e).mean())]
        for name, e in errors.items()
    }


# (warmup_init, initial_learning_rate, warmup_steps): ends of one sign, rising and
# falling, short and long warmups.
WARMUP_CONFIGS = [
    (0.0, 0.1, 1000),
    (1e-4, 0.01, 10_000),
    (0.0, 1e-3, 2**20),
    (0.05, 0.3, 7),
    (0.0, 1.0, 2**31 - 1),
    (0.5, 0.1, 500),
]


def _exact_line(start: float, stop: float, total: int, steps: np.ndarray) -> np.ndarray:
    """`start + (stop - start) * t / total`, exactly, rounded once to float32."""
    start_q, stop_q = fractions.Fraction(start), fractions.Fraction(stop)
    values = []
    with mpmath.workprec(PRECISION):
        for t in steps.tolist():
            line = start_q + (stop_q - start_q) * fractions.Fraction(t, total)
            exact = mpmath.mpf(line.numerator) / line.denominator
            values.append(round_exact(exact, np.float32))
    return np.asarray(values, np.float32)


def warmup_row(count: int) -> dict[str, list[float]]:
    """Max and mean ulp errors in the float32 warmup (steps in [0, warmup_steps))."""
    rng = np.random.default_rng(2024)
    names = NAMES[:3]  # Keras has no warmup
    errors: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start, stop, total in WARMUP_CONFIGS:
        start, stop = float(np.float32(start)), float(np.float32(stop))
        top = min(total, 2**31 - 1)
        steps = rng.integers(0, top, count // len(WARMUP_CONFIGS)).astype(np.int32)
        expected = _exact_line(start, stop, total, steps)
        config = jaxdecay.ExponentialDecay(
            stop, 1000, 0.5, warmup_steps=total, warmup_init=start
        )
        optax_schedule = optax.warmup_exponential_decay_schedule(
            start, stop, total, 1000, 0.5
        )
        results = {
            "jaxdecay": jax.jit(config)(jnp.asarray(steps)),
            "jaxdecay (config as a jit argument)": as_argument(
                config, jnp.asarray(steps)
            ),
            "optax": jax.jit(optax_schedule)(jnp.asarray(steps)),
        }
        for name, got in results.items():
            errors[name].append(ulp_errors(np.asarray(got), expected))
    return {
        name: [float(np.concatenate(e).max()), float(np.concatenate(e).mean())]
        for name, e in errors.items()
    }


# The families beside `ExponentialDecay`: a module each, in benchmarks/.
FAMILIES = (
    "_accuracy_inverse_time",
    "_accuracy_polynomial",
    "_accuracy_piecewise",
    "_accuracy_cosine",
)
STEPS_PER_CONFIG = 64


@jax.jit
def evaluate(config: jaxdecay.Schedule, steps: jax.Array) -> jax.Array:
    return config(steps)  # one program per family for every config


def family_row(module_name: str, configs: int) -> dict[str, list[float]]:
    """Max and mean ulp errors of one family in the compute dtype."""
    module = importlib.import_module(module_name)
    cls = getattr(jaxdecay, module.NAME)
    dtype = np.dtype(jnp.result_type(float))
    unsigned = np.dtype(np.uint64 if dtype == np.float64 else np.uint32)
    top = int(np.iinfo(unsigned).max)
    rng = np.random.default_rng(2024)
    errors: dict[str, list[np.ndarray]] = {name: [] for name in NAMES}
    failed: dict[str, int] = {}
    for _ in range(configs):
        kwargs = module.draw(rng, dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numbers that round to 0 warn
            config = cls(**kwargs)
        fixed = [0, 1, 2**24 + 1, 2**31 - 1, 2**31, 2**32 - 1, top - 1, top]
        chosen = [s for s in (*fixed, *module.edges(kwargs)) if 0 <= s <= top]
        chosen = chosen[: STEPS_PER_CONFIG // 2]
        drawn = rng.integers(0, top, STEPS_PER_CONFIG - len(chosen), unsigned, True)
        steps = np.asarray([*chosen, *drawn], unsigned)
        expected = np.asarray(
            [round_exact(module.exact(kwargs, int(n)), dtype) for n in steps], dtype
        )
        results = {
            "jaxdecay": config(steps),
            "jaxdecay (config as a jit argument)": evaluate(config, steps),
        }
        for name, make in (
            ("optax", module.optax_schedule),
            ("keras", module.keras_schedule),
        ):
            try:
                schedule = make(kwargs)
                if schedule is not None:
                    # Eagerly: a program per config would cost a compile each.
                    results[name] = schedule(jnp.asarray(steps))
            except (OverflowError, ValueError, TypeError):
                # A number it cannot take (an integer past its step type).
                failed[name] = failed.get(name, 0) + 1
        for name, got in results.items():
            errors[name].append(ulp_errors(np.asarray(got), expected))
    row = {
        name: [float(np.concatenate(e).max()), float(np.concatenate(e).mean())]
        for name, e in errors.items()
        if e and np.concatenate(e).size
    }
    return {**row, **{f"{name} failed": [float(n), 0.0] for name, n in failed.items()}}


def family_rows(configs: int, kind: str) -> dict[str, dict[str, list[float]]]:
    return {
        f"{importlib.import_module(m).NAME} {kind}": family_row(m, configs)
        for m in FAMILIES
    }


def _cell(largest: float, mean: float) -> str:
    """``max / mean``, compact (optax's inf for a finite result is ~1e15 ulp)."""
    if largest < 1e6:
        return f"{largest:.0f} / {mean:.3f}"
    return f"{largest:.2e} / {mean:.2e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small samples (seconds)")
    parser.add_argument("--float64-row", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    count = 600 if args.quick else 24_000
    configs = 4 if args.quick else 200

    if args.float64_row:  # child process, x64 enabled: print the rows as JSON
        keras.config.set_floatx("float64")
        rows64 = {
            "float64 (x64) steps < 2**53": accuracy_row("float64", count),
            "float64 (x64) stairs < 2**62": accuracy_row("stairs64", count),
        }
        families64 = family_rows(configs, "float64 (x64)")
        print(json.dumps([rows64, families64]))
        return

    rows = {
        "float32 steps < 2**24": accuracy_row("low", count),
        "float32 steps 2**24..2**31": accuracy_row("high", count),
        "float32 stair boundaries": accuracy_row("stairs", count),
        "float32 warmup": warmup_row(count),
    }
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            "--float64-row",
            *(["--quick"] if args.quick else []),
        ],
        env=dict(os.environ, JAX_ENABLE_X64="1"),
        capture_output=True,
        text=True,
        check=True,
    )
    rows64, families64 = json.loads(child.stdout.strip().splitlines()[-1])
    rows.update(rows64)
    families = family_rows(configs, "float32")
    families.update(families64)

    print(f"ExponentialDecay, samples per row: {count} (normal-range results only)")
    _table(rows)
    print()
    print(
        f"every family, drawn configs: {configs} per row, {STEPS_PER_CONFIG} steps "
        "each (normal-range results only)"
    )
    _table(families)
    for label, row in families.items():
        for name in NAMES:
            if f"{name} failed" in row:
                count = int(row[f"{name} failed"][0])
                print(f"  {label}: {name} raised for {count} of {configs} configs")


def _table(rows: dict[str, dict[str, list[float]]]) -> None:
    label_width = max(32, *(len(label) + 2 for label in rows))
    widths = {name: max(22, len(name) + 2) for name in NAMES}
    header = f"{'ulp error vs exact (max / mean)':<{label_width}}" + "".join(
        f"{name:>{widths[name]}}" for name in NAMES
    )
    print(header)
    print("-" * len(header))
    for label, row in rows.items():
        cells = "".join(
            f"{_cell(*row[n]) if n in row else 'n/a':>{widths[n]}}" for n in NAMES
        )
        print(f"{label:<{label_width}}{cells}")


if __name__ == "__main__":
    main()
