"""The hold: a piece any family with a peak can have.

`transition_begin` steps at the family's peak (its value at its own step 0) before
its own steps start, as optax's `transition_begin` holds `init_value`: the family
is counted from there, as the warmup counts it from its end. After a warmup the
hold starts at `warmup_steps`, so that step `warmup_steps` is the first at the
peak and `warmup_steps + transition_begin` the family's step 0 (the peak too).

Every family holds its step-0 value at the steps before 0: the hold is the
family's steps moved by `transition_begin`, the held ones handed to the family as
before its start (neither in range nor far), so that the peak it returns there is
its own, with its own bits, and no derivative by the step. A config whose
`transition_begin` is known to be 0 does not use the piece and runs none of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdecay import _steps, _validation
from jaxdecay._config import Piece, lead
from jaxdecay._dw import unsigned_dtype
from jaxdecay._fields import Optax, field
from jaxdecay._program import Kernel
from jaxdecay._steps import Position

PART = "hold"  # the `part` of the hold's field
NAME = "transition_begin"  # optax's name for the same hold


def steps_field(optax_schedule: str | None = None, position: int = 4) -> Any:
    """The `transition_begin` field: the steps the peak holds before the family's
    own, an integer >= 0 (0: none); optax's `transition_begin` of
    `optax_schedule` (if any), at `position`. A jaxdecay extension key of format 2,
    as the warmup's fields are."""
    optax = () if optax_schedule is None else (Optax(NAME, position, optax_schedule),)
    return field(
        check=_validation.integer(minimum=0),
        leaf=True,
        keras=False,
        optax=optax,
        format=2,
        part=PART,
        default=0,
    )


class NoConstants(NamedTuple):
    """The hold prepares nothing: its length is read where it is used."""


def _prepare(
    numbers: Mapping[str, Any], *, peak: Any, start: Any = None, host: bool = False
) -> NoConstants:
    return NoConstants()


def _evaluate(
    inner: Callable[[Position], jax.Array],
    numbers: Mapping[str, Any],
    constants: NoConstants,
    position: Position,
    *,
    peak: jax.Array,
    start: jax.Array | None = None,
) -> jax.Array:
    """`inner` at the position moved by `transition_begin`; the held steps (whole
    steps below it, and every step when it is beyond the step type) are before
    the family's start, where each family gives its step-0 value."""
    compute = peak.dtype
    length, fits = _steps.unsigned(numbers[NAME], unsigned_dtype(compute))
    held = position.in_range & (~fits | (position.whole < length))
    in_range = position.in_range & ~held
    offset = _steps.as_float(numbers[NAME], compute)
    if position.offset is not None:  # after a piece before (the warmup)
        offset = position.offset + offset
    moved = position._replace(
        in_range=in_range,
        far=position.far & ~held,
        whole=jnp.where(in_range, position.whole - length, 0).astype(
            position.whole.dtype
        ),
        offset=offset,
    )
    return inner(moved)


def holds(config: Any) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Whether the schedule (each of a batch) holds: `transition_begin > 0`.

    Raises:
      TypeError: `transition_begin` is traced: whether it holds needs its value.
    """
    value = getattr(config, NAME, 0)
    if _validation.is_traced(value) or isinstance(value, _steps.Words):
        raise TypeError(
            f"{NAME} is traced: which optax schedule fits this one needs its "
            "value, outside jit"
        )
    return np.asarray(value) > 0


def _formula(config: Any, rest: str) -> str:
    # The hold is the last piece before the family's own steps: it ends at the lead.
    return f"hold to step {lead(config)}, then {rest}"


HOLD = Piece(
    PART,
    Kernel(_prepare, _evaluate),
    used=lambda values: not _steps.known_zero(values[NAME]),
    length=lambda config: int(getattr(config, NAME)),
    formula=_formula,
)
"""The hold piece: used by a config unless its `transition_begin` is known to be
0. Declared after the warmup in `Family.pieces`: the warmup, then the hold."""
