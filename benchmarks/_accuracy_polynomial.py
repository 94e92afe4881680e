"""`PolynomialDecay` for `benchmarks/accuracy.py`: drawn configs, the exact value
at an integer step (256-bit mpmath), the steps worth testing, and Keras' and
optax's own schedules of the same config.

The draws cover both ends' magnitudes and signs (never opposite ones: there the
value crosses 0 and no ulp bound holds), powers from 0 to 100 with 1 and small
integers often, `decay_steps` up to 2**63 - 1, and both values of `cycle`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")

NAME = "PolynomialDecay"
PRECISION = 256  # as tests/_reference.py


def _rounded(value: float, dtype: np.dtype) -> float:
    """`value` in `dtype`, a subnormal as 0 (as jaxdecay counts it, with a
    warning)."""
    with np.errstate(over="ignore", under="ignore"):
        rounded = float(np.dtype(dtype).type(value))
    return rounded if abs(rounded) >= np.finfo(dtype).tiny else 0.0


def draw(rng: np.random.Generator, dtype: np.dtype) -> dict[str, Any]:
    """`jaxdecay.PolynomialDecay` kwargs, the floats already rounded to `dtype`."""
    finfo = np.finfo(dtype)
    big, small = np.log10(finfo.max) - 1, np.log10(finfo.tiny) + 1
    magnitude = rng.choice(
        [rng.uniform(1e-4, 10), 10 ** rng.uniform(small, big), 10 ** rng.uniform(-9, 9)]
    )
    ratio = rng.choice([0.0, 1e-3, rng.uniform(0, 1), 10 ** rng.uniform(-30, 0)])
    initial, end = magnitude, magnitude * ratio
    if rng.random() < 0.3:  # a rising schedule
        initial, end = end, initial
    if rng.random() < 0.3:
        initial, end = -initial, -end
    power = rng.choice(
        [1.0, 1.0, 2.0, 0.5, 3.0, rng.uniform(0, 4), 10 ** rng.uniform(-3, 2)]
    )
    decay_steps = int(
        rng.choice(
            [
                rng.integers(1, 10_000),
                rng.integers(1, 2**31),
                int(2 ** rng.uniform(0, 63)),
                2**63 - 1,
                7,
            ]
        )
    )
    return {
        "initial_learning_rate": _rounded(initial, dtype),
        "decay_steps": max(decay_steps, 1),
        "end_learning_rate": _rounded(end, dtype),
        "power": _rounded(power, dtype),
        "cycle": bool(rng.random() < 0.5),
    }


def exact(kwargs: dict[str, Any], n: int) -> mpmath.mpf:
    """The exact value at an integer step `n >= 0`."""
    with mpmath.workprec(PRECISION):
        initial = mpmath.mpf(kwargs["initial_learning_rate"])
        end = mpmath.mpf(kwargs["end_learning_rate"])
        power = mpmath.mpf(kwargs["power"])
        steps = kwargs["decay_steps"]
        if n <= 0:
            return initial
        if kwargs.get("cycle", False):
            length = steps * max(1, -(-n // steps))
            rest = length - n
        else:
            length, rest = steps, max(steps - n, 0)
        if rest == 0:
            return initial if power == 0 else end
        r = mpmath.mpf(rest) / length
        return (initial - end) * r**power + end


def edges(kwargs: dict[str, Any]) -> list[int]:
    """0, 1, around `decay_steps` and its multiples, and the far steps."""
    d = kwargs["decay_steps"]
    steps = [0, 1, 2, d - 1, d, d + 1, 2 * d - 1, 2 * d, 2 * d + 1, 3 * d // 2]
    steps += [d // 2, d // 256, d // 256 + 1, 2**24 + 1, 2**31 - 1, 2**32 - 1]
    return sorted({s for s in steps if s >= 0})


def keras_schedule(kwargs: dict[str, Any]) -> Callable[[Any], Any] | None:
    """Keras' own `PolynomialDecay` of the same config (None with a warmup)."""
    if kwargs.get("warmup_steps", 0):
        return None
    import keras

    names = ("initial_learning_rate", "decay_steps", "end_learning_rate", "power")
    arguments = {name: kwargs[name] for name in names if name in kwargs}
    return keras.optimizers.schedules.PolynomialDecay(
        **arguments, cycle=kwargs.get("cycle", False)
    )


def optax_schedule(kwargs: dict[str, Any]) -> Callable[[Any], Any] | None:
    """`optax.polynomial_schedule` of the same config; None with `cycle` or a
    warmup, which optax's schedule has not."""
    if kwargs.get("cycle", False) or kwargs.get("warmup_steps", 0):
        return None
    import optax

    return optax.polynomial_schedule(  # type: ignore[no-any-return]
        init_value=kwargs["initial_learning_rate"],
        end_value=kwargs.get("end_learning_rate", 0.0001),
        power=kwargs.get("power", 1.0),
        transition_steps=kwargs["decay_steps"],
        transition_begin=0,
    )
