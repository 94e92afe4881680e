"""`PiecewiseConstantDecay` for the accuracy table of `benchmarks/accuracy.py`.

The exact value at an integer step is `values[k]`, `k` the number of boundaries
below the step: the value itself (already in the compute dtype), so any error is
a wrong piece, or a value that is not the number given. Configs are drawn with 1
to 20 boundaries over int64 (near powers of two, negative ones too) and values
over many binades. optax has no equivalent (`optax_schedule` is None: its scales
multiply, and its boundary `b` applies from `b`, not after it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import mpmath
import numpy as np

import jaxdecay

NAME = "PiecewiseConstantDecay"

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_POWERS = (24, 31, 32, 53, 63)


def _boundary(rng: np.random.Generator) -> int:
    """A boundary anywhere in int64: near a power of two that steps cross, of any
    magnitude, or small."""
    kind = rng.integers(3)
    if kind == 0:
        power = int(rng.choice(_POWERS))
        value = 2**power + int(rng.integers(-2, 3))
    elif kind == 1:
        value = int(2 ** rng.uniform(0, 63))
    else:
        value = int(rng.integers(-100, 100_000))
    sign = -1 if rng.random() < 0.1 else 1
    return int(max(_INT64_MIN, min(_INT64_MAX, sign * value)))


def draw(rng: np.random.Generator, dtype: Any) -> dict[str, Any]:
    """Keyword arguments of one config: strictly increasing boundaries and one
    more value, each rounded to `dtype` (as the schedule takes it)."""
    count = int(rng.integers(1, 21))
    boundaries: set[int] = set()
    while len(boundaries) < count:
        boundaries.add(_boundary(rng))
    magnitudes = 10.0 ** rng.uniform(-30, 30, count + 1)
    signs = np.where(rng.random(count + 1) < 0.05, -1.0, 1.0)
    values = [float(np.dtype(dtype).type(v)) for v in signs * magnitudes]
    return {"boundaries": sorted(boundaries), "values": values}


def exact(kwargs: dict[str, Any], n: int) -> mpmath.mpf:
    """The value at the integer step `n`: after every boundary below it."""
    index = sum(n > b for b in kwargs["boundaries"])
    return mpmath.mpf(kwargs["values"][index])


def edges(kwargs: dict[str, Any]) -> list[int]:
    """b - 1, b and b + 1 for every boundary, those in int64."""
    near = {s for b in kwargs["boundaries"] for s in (b - 1, b, b + 1)}
    return sorted(s for s in near if _INT64_MIN <= s <= _INT64_MAX)


def keras_schedule(kwargs: dict[str, Any]) -> Callable[[Any], Any] | None:
    """Keras' schedule with the same arguments, run with standard promotion;
    None where Keras cannot build its boundaries in the step's integer type
    (beyond int32 without x64: it raises OverflowError)."""
    import keras

    x64 = bool(jax.config.jax_enable_x64)  # type: ignore[attr-defined]
    info = np.iinfo(np.int64 if x64 else np.int32)
    if not all(info.min <= b <= info.max for b in kwargs["boundaries"]):
        return None
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(**kwargs)

    def call(step: Any) -> Any:
        with jax.numpy_dtype_promotion("standard"):
            return schedule(step)

    return call


def optax_schedule(kwargs: dict[str, Any]) -> Callable[[Any], Any] | None:
    """None: jaxdecay refuses the mapping (see `PiecewiseConstantDecay.to_optax`)."""
    del kwargs
    return None


def schedule(kwargs: dict[str, Any]) -> Callable[[Any], Any]:
    """jaxdecay's schedule of the config."""
    return jaxdecay.PiecewiseConstantDecay(**kwargs)
