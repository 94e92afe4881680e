"""`CosineDecay` for the families table of `accuracy.py`: drawn configs, the exact
value, the steps worth a look, and Keras' and optax's schedules of a config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import keras
import mpmath
import numpy as np
import optax
from _reference import PRECISION

NAME = "CosineDecay"


def draw(rng: np.random.Generator, dtype: np.dtype) -> dict[str, Any]:
    """A config over the whole range of every number: initial rates of both signs
    and extreme magnitudes, alphas from 0 to huge and negative, `decay_steps` up to
    2**63 - 1, with and without a warmup; half of them typical."""
    big = np.log10(np.finfo(dtype).max)
    small = np.log10(np.finfo(dtype).tiny)
    target = None
    warmup_steps = 0
    if rng.integers(2):
        initial = 10 ** rng.uniform(-5, 0)
        alpha = rng.choice([0.0, rng.uniform(0, 1)])
        decay_steps = int(rng.integers(1, 10**6))
        if rng.integers(2):
            target, initial = initial, initial * rng.uniform(0, 1)
            warmup_steps = int(rng.integers(0, 10**5))
    else:
        initial = rng.choice(
            [
                rng.uniform(-10, 10),
                10 ** rng.uniform(small, big),
                -(10 ** rng.uniform(-9, 9)),
            ]
        )
        alpha = rng.choice(
            [10 ** rng.uniform(small, big), rng.uniform(0, 1), rng.uniform(1, 10), 0.0]
        )
        decay_steps = int(
            rng.choice(
                [1, 2, 7, 2**31 - 1, 2**32 + 1, 2**63 - 1, rng.integers(1, 2**63 - 1)]
            )
        )
    with np.errstate(over="ignore", under="ignore"):  # as the schedule takes them
        initial, alpha = float(dtype.type(initial)), float(dtype.type(alpha))
        if target is not None:
            target = float(dtype.type(target))
    return {
        "initial_learning_rate": initial,
        "decay_steps": decay_steps,
        "alpha": alpha,
        "warmup_target": target,
        "warmup_steps": warmup_steps,
    }


def exact(kwargs: dict[str, Any], n: int) -> Any:
    """Keras' formula at step `n >= 0`: the warmup's line toward `warmup_target`,
    then ``peak * ((1 - alpha) * 0.5 * (1 + cos(pi * min(t, D) / D)) + alpha)``."""
    decay_steps = kwargs["decay_steps"]
    with mpmath.workprec(PRECISION):
        initial = mpmath.mpf(kwargs["initial_learning_rate"])
        alpha = mpmath.mpf(kwargs["alpha"])
        peak, warmup = initial, 0
        if kwargs["warmup_target"] is not None:
            peak, warmup = mpmath.mpf(kwargs["warmup_target"]), kwargs["warmup_steps"]
        if n < warmup:
            return initial + (peak - initial) * mpmath.mpf(n) / warmup
        t = min(n - warmup, decay_steps)
        cosine = mpmath.mpf(1) / 2 * (1 + mpmath.cos(mpmath.pi * t / decay_steps))
        return peak * ((1 - alpha) * cosine + alpha)


def edges(kwargs: dict[str, Any]) -> list[int]:
    """The ends of the warmup and of the decay, the middle, and their neighbours."""
    warmup = kwargs["warmup_steps"] if kwargs["warmup_target"] is not None else 0
    decay_steps = kwargs["decay_steps"]
    points = [warmup, warmup + decay_steps, warmup + decay_steps // 2]
    return [p + d for p in points for d in (-1, 0, 1)]


def keras_schedule(kwargs: dict[str, Any]) -> Callable[[Any], Any] | None:
    schedule = keras.optimizers.schedules.CosineDecay(**kwargs)
    # Keras' warmup branches on a scalar step (`ops.cond`): one step at a time.
    return schedule if kwargs["warmup_target"] is None else jax.vmap(schedule)


def optax_schedule(kwargs: dict[str, Any]) -> Callable[[Any], Any] | None:
    if kwargs["warmup_target"] is not None:
        return None  # optax's warmup schedule is not Keras' (see docs/schedules.md)
    return optax.cosine_decay_schedule(
        kwargs["initial_learning_rate"], kwargs["decay_steps"], kwargs["alpha"]
    )
