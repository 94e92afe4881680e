"""References the tests (and `benchmarks/accuracy.py`) compare against.

- `reference`: the schedule's exact value, from a 256-bit mpmath computation, rounded
  once to the result's dtype.
- `reference_at`: the same at float steps, fractions included.
- `ulp_distance`: how many floats lie between two arrays, element by element.
- `bits`: an array's dtype, shape and raw bytes, for bit-for-bit comparisons.
- `builder_of`: the family builder's schedule of a config's fields, to compare
  with it.

mpmath is imported by the functions that use it, so that the bit helpers need NumPy
only; its precision is set for each computation, never for the whole session.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

PRECISION = 256  # bits of the mpmath computation: far beyond float64's 53

# The signed integer of each float's width: the view that orders its bit patterns.
INT_TYPE = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}
# (precision in bits, exponent of the least subnormal, overflow exponent)
FORMAT = {
    np.dtype(np.float32): (24, -149, 128),
    np.dtype(np.float64): (53, -1074, 1024),
}


def bits(array: Any) -> tuple[np.dtype[Any], tuple[int, ...], bytes]:
    """The dtype, shape and raw bytes of an array: equal iff bit-identical."""
    array = np.asarray(array)
    return array.dtype, array.shape, array.tobytes()


def round_exact(value: Any, dtype: Any) -> float:
    """The mpmath number `value` rounded to nearest-even in `dtype`, subnormals
    included; beyond the largest float, +-inf."""
    import mpmath

    if value == 0:
        return 0.0
    precision, least_exponent, overflow_exponent = FORMAT[np.dtype(dtype)]
    with mpmath.workprec(PRECISION):
        _, exponent = mpmath.frexp(value)  # value = m * 2**exponent, 1/2 <= |m| < 1
        quantum = max(exponent - precision, least_exponent)
        integer = int(mpmath.nint(mpmath.ldexp(value, -quantum)))  # ties to even
        if abs(integer) * mpmath.mpf(2) ** quantum >= (
            mpmath.mpf(2) ** overflow_exponent
        ):
            return float("inf") if integer > 0 else float("-inf")
        return float(mpmath.ldexp(integer, quantum))


def reference(scale: Any, rate: Any, decay_steps: int, ns: Any, dtype: Any) -> Any:
    """`scale * rate**(n / decay_steps)` for each integer `n`, exactly rounded to
    `dtype`. A stair's value is that of `n = stair * decay_steps` (or of `n = stair`
    with `decay_steps=1`)."""
    import mpmath

    dtype = np.dtype(dtype)
    with mpmath.workprec(PRECISION):
        exact_scale = mpmath.mpf(float(scale))
        log_rate = mpmath.log(mpmath.mpf(float(rate)))
        values = [
            round_exact(
                exact_scale * mpmath.exp(log_rate * int(n) / decay_steps), dtype
            )
            for n in np.asarray(ns).ravel()
        ]
    return np.array(values, dtype).reshape(np.shape(ns))


def reference_at(
    scale: Any, rate: Any, decay_steps: int, steps: Any, dtype: Any, begin: int = 0
) -> Any:
    """`scale * rate**((step - begin) / decay_steps)` for each float `step` (at
    its exact value; `scale` where `step <= begin`), exactly rounded to `dtype`."""
    import mpmath

    dtype = np.dtype(dtype)
    with mpmath.workprec(PRECISION):
        exact_scale = mpmath.mpf(float(scale))
        log_rate = mpmath.log(mpmath.mpf(float(rate)))
        values = []
        for step in np.asarray(steps).ravel():
            elapsed = mpmath.mpf(float(step)) - begin
            exponent = log_rate * elapsed / decay_steps if elapsed > 0 else 0
            values.append(round_exact(exact_scale * mpmath.exp(exponent), dtype))
    return np.array(values, dtype).reshape(np.shape(steps))


def ulp_distance(a: Any, b: Any) -> Any:
    """The number of representable floats between `a` and `b` (one float dtype),
    element by element, as float64."""
    a, b = np.asarray(a), np.asarray(b)
    int_type = INT_TYPE[a.dtype]

    def ordered(x: Any) -> Any:
        # Sign-magnitude bit patterns to a monotonic line, as exact Python ints.
        patterns = x.view(int_type).astype(np.int64)
        line = np.where(patterns < 0, np.iinfo(int_type).min - patterns, patterns)
        return line.astype(object)

    return np.abs(ordered(a) - ordered(b)).astype(np.float64)


def builder_of(config: Any) -> Any:
    """The family's builder (`exponential_decay` for an `ExponentialDecay`) with the
    arguments of `config`, every field but `name`: a field added to both is passed
    on without a change here."""
    import jaxdecay  # as mpmath: imported where used

    arguments = {
        item.name: getattr(config, item.name)
        for item in dataclasses.fields(config)
        if item.name != "name"
    }
    return getattr(jaxdecay, config.family.builder)(**arguments)
