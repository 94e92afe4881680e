"""Working backwards: the decay rate that takes a schedule to a given learning rate.

`ExponentialDecay.from_endpoints` and the `jaxdecay solve` command both go through
`decay_rate_for`, so the math lives here only.
"""

from __future__ import annotations

import decimal
import math
from typing import Any

import jax
import numpy as np

from jaxdecay import _validation

# Decimal digits for the host computation: float64 needs 17, the margin keeps the
# final rounding to float64 correct in all but astronomically rare cases.
_DIGITS = 40


def decay_rate_for(
    initial_learning_rate: Any,
    final_learning_rate: Any,
    total_steps: Any,
    decay_steps: Any,
    staircase: Any = False,
    *,
    transition_begin: Any = 0,
    end_learning_rate: Any = None,
    warmup_steps: Any = 0,
) -> float:
    """Returns the `decay_rate` that reaches `final_learning_rate` at `total_steps`.

    The decay starts at `warmup_steps + transition_begin` (`total_steps` counts
    from step 0, the warmup included). With `t = total_steps - warmup_steps -
    transition_begin`, the rate is::

        (final_learning_rate / initial_learning_rate) ** (decay_steps / t)

    or, with `staircase=True`, `(final / initial) ** (1 / (t // decay_steps))`. It is
    computed in 40-digit decimal arithmetic and rounded once to the nearest float64.
    The schedule takes its numbers in the compute dtype, and the rounding of the
    rate to it, amplified by the exponent `n = t / decay_steps`, puts the learning
    rate at `total_steps` within about `n + 2` ulp of `final_learning_rate` in
    float32 (`n + 1` in float64, where the initial rate is exact).

    A final rate above the initial one gives a rate above 1 (growth).

    Args:
      initial_learning_rate: the learning rate at the start of the decay (the peak,
        after a warmup); finite and > 0.
      final_learning_rate: the learning rate wanted at `total_steps`; finite and > 0.
      total_steps: the step at which the schedule is at `final_learning_rate`; an
        integer > `warmup_steps + transition_begin`.
      decay_steps: the schedule's `decay_steps`; an integer >= 1.
      staircase: whether the schedule decays in whole stairs of `decay_steps`.
      transition_begin: the schedule's `transition_begin`; an integer >= 0.
      end_learning_rate: the schedule's bound, or None; it must not cut the schedule
        off before `final_learning_rate`.
      warmup_steps: the schedule's `warmup_steps`; an integer >= 0.

    Returns:
      The decay rate, a finite float64 > 0.

    Raises:
      TypeError: an argument has the wrong type (the message names it).
      ValueError: an argument is out of range, or no finite positive float64 rate
        reaches `final_learning_rate` (the message names the values).

    Examples:
      >>> from jaxdecay._solve import decay_rate_for
      >>> decay_rate_for(0.1, 0.001, total_steps=100_000, decay_steps=1000)
      0.954992586021436
      >>> decay_rate_for(0.1, 0.05, total_steps=2500, decay_steps=1000, staircase=True)
      0.7071067811865476
      >>> decay_rate_for(0.1, 0.025, total_steps=2500, decay_steps=1000,
      ...     warmup_steps=500)
      0.5
    """
    _check_scalars(
        initial_learning_rate=initial_learning_rate,
        final_learning_rate=final_learning_rate,
        total_steps=total_steps,
        decay_steps=decay_steps,
        transition_begin=transition_begin,
        end_learning_rate=end_learning_rate,
        warmup_steps=warmup_steps,
    )
    initial = _validation.check_real(
        "initial_learning_rate", initial_learning_rate, positive=True
    )
    final = _validation.check_real(
        "final_learning_rate", final_learning_rate, positive=True
    )
    total = _validation.check_integer(
        "total_steps", total_steps, minimum=0, maximum=_validation.INT64_MAX
    )
    steps_per_decay = _validation.check_integer(
        "decay_steps", decay_steps, minimum=1, maximum=_validation.INT64_MAX
    )
    stairs = _validation.check_bool("staircase", staircase)
    begin = _validation.check_integer(
        "transition_begin", transition_begin, minimum=0, maximum=_validation.INT64_MAX
    )
    bound = (
        None
        if end_learning_rate is None
        else _validation.check_real("end_learning_rate", end_learning_rate)
    )
    warmup = _validation.check_integer(
        "warmup_steps", warmup_steps, minimum=0, maximum=_validation.INT64_MAX
    )
    _check_change_by(total, begin, warmup, steps_per_decay, stairs)

    exact_rate = _exact_rate(
        initial, final, total, warmup + begin, steps_per_decay, stairs
    )
    rate = float(exact_rate)  # correctly rounded
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(
            f"no finite float64 decay_rate > 0 takes initial_learning_rate="
            f"{float(initial)!r} to final_learning_rate={float(final)!r} at "
            f"total_steps={total!r} with decay_steps={steps_per_decay!r}: the exact "
            f"rate is {exact_rate:.6e}"
        )
    if bound is not None:
        _check_bound(rate, bound, final)
    return rate


def _check_change_by(
    total: int, begin: int, warmup: int, steps_per_decay: int, stairs: bool
) -> None:
    """Refuses a `total_steps` by which the decay has not changed the rate yet."""
    start = "warmup_steps + transition_begin" if warmup else "transition_begin"
    elapsed = (
        "total_steps - warmup_steps - transition_begin"
        if warmup
        else ("total_steps - transition_begin")
    )
    given = f"warmup_steps={warmup!r} and " if warmup else ""
    given += f"transition_begin={begin!r}"
    if total <= warmup + begin:
        raise ValueError(
            f"total_steps must be > {start}, got total_steps={total!r} with {given}: "
            f"the decay starts at {start}"
        )
    if stairs and (total - warmup - begin) // steps_per_decay == 0:
        raise ValueError(
            "with staircase=True the learning rate first changes at step "
            f"{start} + decay_steps = {warmup + begin + steps_per_decay}, after "
            f"total_steps={total!r}: ({elapsed}) // decay_steps is 0, got "
            f"decay_steps={steps_per_decay!r} with {given}"
        )


def _exact_rate(
    initial: Any, final: Any, total: int, start: int, steps_per_decay: int, stairs: bool
) -> decimal.Decimal:
    """The exact decay rate, in 40-digit decimal arithmetic; the decay starts at
    step `start` (warmup_steps + transition_begin)."""
    elapsed = total - start
    with decimal.localcontext() as context:
        context.prec = _DIGITS
        # Decimal(float) is exact, ln and exp are correctly rounded.
        log_ratio = (
            decimal.Decimal(float(final)) / decimal.Decimal(float(initial))
        ).ln()
        if stairs:
            exact_rate = (log_ratio / (elapsed // steps_per_decay)).exp()
        else:
            exact_rate = (log_ratio * steps_per_decay / elapsed).exp()
    return exact_rate


def _check_bound(rate: float, bound: Any, final: Any) -> None:
    """Refuses an end_learning_rate that stops the schedule before the final rate."""
    # The schedule clips at end_learning_rate: a floor when the rate is < 1, a
    # ceiling otherwise; past it, the final learning rate is never reached.
    if rate < 1 and bound > final:
        raise ValueError(
            f"end_learning_rate={float(bound)!r} is a floor above "
            f"final_learning_rate={float(final)!r}: the schedule would stop there"
        )
    if rate >= 1 and bound < final:
        raise ValueError(
            f"end_learning_rate={float(bound)!r} is a ceiling below "
            f"final_learning_rate={float(final)!r}: the schedule would stop there"
        )


def _check_scalars(**values: Any) -> None:
    """The solve runs on the host, in decimal: one concrete number per argument."""
    for name, value in values.items():
        if _validation.is_traced(value):
            raise TypeError(
                f"{name} must be a concrete number, got a traced value: the decay "
                "rate is solved on the host, outside jit"
            )
        if isinstance(value, (np.ndarray, jax.Array)) and value.ndim != 0:
            raise TypeError(
                f"{name} must be a number, got an array of shape {value.shape}; "
                "solve for each schedule of a batch on its own"
            )
