"""Accuracy of `InverseTimeDecay` (ulp vs a 256-bit mpmath reference).

Draws configs (initial rates of both signs and extreme magnitudes, rates from 0 to
the largest float, `decay_steps` up to 2**63 - 1, smooth and staircase) and steps
over the whole unsigned step type (uint32 for float32, uint64 under x64) with its
extremes and the stair edges, and prints the largest and the mean ulp distance of
jaxdecay's values from the exactly rounded ones, where those are normal floats,
and the share that is exactly rounded. The float64 row runs this script again in a
subprocess with ``JAX_ENABLE_X64=1``.

The reference is the tests' own (`tests/_reference.py`).

Usage:
``python benchmarks/inverse_time_accuracy.py [--configs N] [--seed S] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import warnings

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
from _reference import PRECISION, round_exact, ulp_distance

import jaxdecay


def exact(initial: float, decay_steps: int, rate: float, n: int, staircase: bool):
    with mpmath.workprec(PRECISION):
        units = mpmath.mpf(n // decay_steps if staircase else n) / (
            1 if staircase else decay_steps
        )
        if units == 0:
            return mpmath.mpf(initial)
        return mpmath.mpf(initial) / (1 + mpmath.mpf(rate) * units)


def draw(rng: np.random.Generator, dtype: np.dtype) -> tuple[float, int, float, bool]:
    big = np.log10(np.finfo(dtype).max)
    small = np.log10(np.finfo(dtype).tiny)
    initial = rng.choice(
        [
            rng.uniform(-10, 10),
            10 ** rng.uniform(small, big),
            -(10 ** rng.uniform(-9, 9)),
        ]
    )
    rate = rng.choice(
        [
            rng.uniform(0, 10),
            10 ** rng.uniform(small - 6, big),
            rng.uniform(0.999, 1.001),
            0.0,
        ]
    )
    decay_steps = int(
        rng.choice(
            [
                1,
                7,
                1000,
                2**31 - 1,
                2**32 + 1,
                2**63 - 1,
                int(rng.integers(1, 2**20)),
                int(rng.integers(1, 2**63 - 1)),
            ]
        )
    )
    # The numbers as the schedule takes them: in the compute dtype.
    with np.errstate(over="ignore", under="ignore"):
        initial, rate = float(dtype.type(initial)), float(dtype.type(rate))
    return initial, decay_steps, rate, bool(rng.integers(2))


def measure(configs: int, seed: int) -> dict[str, float]:
    dtype = np.dtype(jnp.result_type(float))
    unsigned = np.dtype(np.uint64 if dtype == np.float64 else np.uint32)
    top = int(np.iinfo(unsigned).max)
    rng = np.random.default_rng(seed)
    evaluate = jax.jit(lambda config, steps: config(steps))
    distances = []
    for _ in range(configs):
        initial, decay_steps, rate, staircase = draw(rng, dtype)
        if not np.isfinite(initial) or not np.isfinite(rate):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numbers that round to 0 warn
            config = jaxdecay.InverseTimeDecay(initial, decay_steps, rate, staircase)
        edges = [decay_steps * k + d for k in (1, 2, 3) for d in (-1, 0)]
        fixed = [0, 1, 2**24 + 1, 2**31 - 1, 2**32 - 1, top - 1, top]
        steps = [*rng.integers(0, top, 57, dtype=unsigned, endpoint=True)]
        steps += [s for s in (*fixed, *edges) if 0 <= s <= top]
        steps = np.asarray(steps[:64] + [0] * (64 - len(steps[:64])), unsigned)
        got = np.asarray(evaluate(config, jnp.asarray(steps)))
        expected = np.asarray(
            [
                round_exact(exact(initial, decay_steps, rate, int(n), staircase), dtype)
                for n in steps
            ],
            dtype,
        )
        normal = np.isfinite(expected) & (np.abs(expected) >= np.finfo(dtype).tiny)
        distances.append(ulp_distance(got[normal], expected[normal]))
    every = np.concatenate(distances)
    return {
        "dtype": dtype.name,
        "values": int(every.size),
        "max": float(every.max()),
        "mean": float(every.mean()),
        "exact": float((every == 0).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smoke run (40 configs)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    row = measure(40 if args.quick else args.configs, args.seed)
    if args.json:
        print(json.dumps(row))
        return
    rows = [row]
    if not jax.config.jax_enable_x64:
        env = {**os.environ, "JAX_ENABLE_X64": "1"}
        output = subprocess.run(
            [sys.executable, __file__, "--json", *sys.argv[1:]],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        rows.append(json.loads(output.splitlines()[-1]))
    header = ("dtype", "values", "max ulp", "mean ulp", "exactly rounded")
    print(
        f"{header[0]:<8} {header[1]:>7} {header[2]:>8} {header[3]:>9} {header[4]:>16}"
    )
    for r in rows:
        print(
            f"{r['dtype']:<8} {r['values']:>7} {r['max']:>8.0f} {r['mean']:>9.2e} "
            f"{r['exact']:>16.4%}"
        )


if __name__ == "__main__":
    main()
