"""`InverseTimeDecay` for the families table of `accuracy.py`: drawn configs, the
exact value, the steps worth a look, and Keras' and optax's schedules of a config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import mpmath
import numpy as np
from _reference import PRECISION

NAME = "InverseTimeDecay"


def draw(rng: np.random.Generator, dtype: np.dtype) -> dict[str, Any]:
    """A config over the whole range of every number: initial rates of both signs
    and extreme magnitudes, rates from 0 to the largest float, `decay_steps` up to
    2**63 - 1, smooth and staircase; half of them typical."""
    big = np.log10(np.finfo(dtype).max)
    small = np.log10(np.finfo(dtype).tiny)
    if rng.integers(2):
        initial = 10 ** rng.uniform(-5, 0)
        rate = rng.uniform(0, 10)
        decay_steps = int(rng.integers(1, 10**6))
    else:
        initial = rng.choice(
            [
                rng.uniform(-10, 10),
                10 ** rng.uniform(small, big),
                -(10 ** rng.uniform(-9, 9)),
            ]
        )
        rate = rng.choice(
            [10 ** rng.uniform(small - 6, big), rng.uniform(0.999, 1.001), 0.0]
        )
        decay_steps = int(
            rng.choice(
                [1, 7, 2**31 - 1, 2**32 + 1, 2**63 - 1, rng.integers(1, 2**63 - 1)]
            )
        )
    with np.errstate(over="ignore", under="ignore"):  # as the schedule takes them
        initial, rate = float(dtype.type(initial)), float(dtype.type(rate))
    return {
        "initial_learning_rate": initial,
        "decay_steps": decay_steps,
        "decay_rate": rate,
        "staircase": bool(rng.integers(2)),
    }


def exact(kwargs: dict[str, Any], n: int) -> Any:
    """`initial / (1 + rate * units)` at step `n >= 0`, with `units = n /
    decay_steps` (the whole stairs for a staircase)."""
    decay_steps = kwargs["decay_steps"]
    with mpmath.workprec(PRECISION):
        if kwargs["staircase"]:
            units = mpmath.mpf(n // decay_steps)
        else:
            units = mpmath.mpf(n) / decay_steps
        initial = mpmath.mpf(kwargs["initial_learning_rate"])
        return initial / (1 + mpmath.mpf(kwargs["decay_rate"]) * units)


def edges(kwargs: dict[str, Any]) -> list[int]:
    """The first steps of the first stairs, and the steps before them."""
    decay_steps = kwargs["decay_steps"]
    return [decay_steps * k + d for k in (1, 2, 3) for d in (-1, 0)]


def keras_schedule(kwargs: dict[str, Any]) -> Callable[[Any], Any] | None:
    return keras.optimizers.schedules.InverseTimeDecay(**kwargs)


def optax_schedule(kwargs: dict[str, Any]) -> Callable[[Any], Any] | None:
    return None  # optax has no inverse time schedule
