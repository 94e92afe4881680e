"""The exponential decay schedule: argument validation and the pure `step -> lr` math.

Every entry point (the `exponential_decay` builder, `ExponentialDecay.__call__`, the
command line) goes through `exponential_decay`, so the math lives here only.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxdecay import _exact

Schedule = Callable[[jax.typing.ArrayLike], jax.Array]
"""A `step -> learning rate` function; accepted wherever optax takes a schedule."""

_INT64_MAX = 2**63 - 1

# ---------------------------------------------------------------------------
# Validation. Each checker returns the value in a normal form, so the builder and
# the dataclass (which stores what these return) agree on what a valid value is.
# ---------------------------------------------------------------------------


def _scalar(value: Any) -> Any:
    """Unwraps a 0-d NumPy or JAX array into a NumPy scalar; leaves the rest alone."""
    if isinstance(value, (np.ndarray, jax.Array)) and not isinstance(
        value, jax.core.Tracer
    ):
        if value.ndim != 0:
            return value  # rejected by the caller with the shape in the message
        return np.asarray(value)[()]
    return value


def check_integer(name: str, value: Any, *, minimum: int, maximum: int) -> int:
    """Returns `value` as a Python int, or raises if it is not an integer in range."""
    value = _scalar(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (numbers.Integral, np.integer)
    ):
        raise TypeError(
            f"{name} must be an integer, got {value!r} of type {type(value).__name__}"
        )
    number = int(value)
    if not minimum <= number <= maximum:
        raise ValueError(
            f"{name} must be an integer in [{minimum}, {maximum}], got {number!r}"
        )
    return number


def check_real(name: str, value: Any, *, positive: bool = False) -> float | np.generic:
    """Returns a finite real `value` as a Python float or a NumPy float scalar.

    NumPy and JAX float scalars keep their dtype (it is the schedule's result dtype);
    Python and NumPy integers become Python floats.
    """
    value = _scalar(value)
    if not is_float_scalar(value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (numbers.Real, np.integer)
        ):
            raise TypeError(
                f"{name} must be a real number, got {value!r} "
                f"of type {type(value).__name__}"
            )
        try:
            value = float(value)
        except OverflowError:
            raise ValueError(f"{name} must be finite, got {value!r}") from None
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value  # type: ignore[no-any-return]


def is_float_scalar(value: Any) -> bool:
    """Whether `value` is a NumPy float scalar (ml_dtypes such as bfloat16 too)."""
    return isinstance(value, np.generic) and jnp.issubdtype(value.dtype, jnp.floating)


def check_bool(name: str, value: Any) -> bool:
    """Returns `value` as a Python bool; refuses anything that is not a bool."""
    value = _scalar(value)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{name} must be a bool, got {value!r} of type {type(value).__name__}"
        )
    return bool(value)


def check_name(value: Any) -> str | None:
    """Returns the schedule's name: a str, or None as TF 2 configs write it."""
    if value is not None and not isinstance(value, str):
        raise TypeError(
            f"name must be a str or None, got {value!r} of type {type(value).__name__}"
        )
    return value


def check_arguments(
    initial_learning_rate: Any,
    decay_steps: Any,
    decay_rate: Any,
    staircase: Any,
    transition_begin: Any,
    end_learning_rate: Any,
) -> dict[str, Any]:
    """Validates the schedule's arguments; returns them in normal form, by name."""
    return {
        "initial_learning_rate": check_real(
            "initial_learning_rate", initial_learning_rate
        ),
        "decay_steps": check_integer(
            "decay_steps", decay_steps, minimum=1, maximum=_INT64_MAX
        ),
        "decay_rate": check_real("decay_rate", decay_rate, positive=True),
        "staircase": check_bool("staircase", staircase),
        "transition_begin": check_integer(
            "transition_begin", transition_begin, minimum=0, maximum=_INT64_MAX
        ),
        "end_learning_rate": None
        if end_learning_rate is None
        else check_real("end_learning_rate", end_learning_rate),
    }


# ---------------------------------------------------------------------------
# Dtypes.
# ---------------------------------------------------------------------------


def _result_dtype(initial_learning_rate: float | np.generic) -> np.dtype[Any]:
    """The dtype of the learning rate: that of a NumPy/JAX float scalar given as the
    initial learning rate, else JAX's default float. Read at trace time, so that
    `jax_enable_x64` is honoured as it stands when the schedule is called."""
    if is_float_scalar(initial_learning_rate):
        assert isinstance(initial_learning_rate, np.generic)
        return np.dtype(jax.dtypes.canonicalize_dtype(initial_learning_rate.dtype))
    return np.dtype(jnp.result_type(float))


def _compute_dtype() -> np.dtype[Any]:
    """float32, or float64 under x64; every result dtype is rounded once from it.

    Under x64 steps are int64, which float32 arithmetic does not cover exactly, so a
    float32 (or 16-bit) learning rate is computed in float64 and rounded once: still
    within 1 ulp of the exact value.
    """
    return np.dtype(jnp.result_type(float))


def _integer_steps(step: jax.Array) -> jax.Array:
    """Casts an integer step to a signed type that holds every value it can have."""
    dtype = step.dtype
    if jnp.issubdtype(dtype, jnp.signedinteger):
        return step if dtype.itemsize >= 4 else step.astype(jnp.int32)
    # Unsigned steps: widen to a signed type that holds every value.
    if dtype.itemsize < 4:
        return step.astype(jnp.int32)
    if dtype.itemsize == 4 and jax.dtypes.canonicalize_dtype(np.int64) == np.int64:
        return step.astype(jnp.int64)
    raise TypeError(
        f"step must be a signed integer or float array, got dtype {dtype}: "
        "its values do not all fit a signed integer type"
    )


# ---------------------------------------------------------------------------
# The builder.
# ---------------------------------------------------------------------------


def exponential_decay(
    initial_learning_rate: jax.typing.ArrayLike,
    decay_steps: int,
    decay_rate: jax.typing.ArrayLike,
    staircase: bool = False,
    *,
    transition_begin: int = 0,
    end_learning_rate: jax.typing.ArrayLike | None = None,
) -> Schedule:
    """Builds Keras' `ExponentialDecay` as a pure, jit-able `step -> lr` function.

    For a step `t = step - transition_begin > 0` the learning rate is::

        initial_learning_rate * decay_rate ** (t / decay_steps)

    With `staircase=True` the exponent is the integer division `t // decay_steps`,
    computed in integer arithmetic for integer steps. Steps at or before
    `transition_begin` (negative steps included) hold `initial_learning_rate`, as
    optax does; Keras instead extrapolates the curve to negative steps.
    `end_learning_rate` bounds the result as optax's `end_value` does: a floor when
    `decay_rate < 1`, a ceiling when it is above 1.

    The result has the dtype of `initial_learning_rate` when that is a NumPy or JAX
    float scalar (float16 and bfloat16 are computed in float32 and rounded once), and
    JAX's default float otherwise (float32, or float64 with `jax_enable_x64`).

    Args:
      initial_learning_rate: the learning rate at steps up to `transition_begin`.
      decay_steps: the number of steps over which the rate is multiplied by
        `decay_rate`; an integer in [1, 2**63 - 1].
      decay_rate: the factor per `decay_steps` steps; finite and > 0.
      staircase: decay in whole stairs of `decay_steps` steps.
      transition_begin: the step at which the decay starts; an integer >= 0.
      end_learning_rate: a bound the learning rate does not pass, or None.

    Returns:
      A function from a step (a Python, NumPy or JAX integer or float, scalar or
      array) to the learning rate, elementwise. It is pure JAX: it works under
      `jax.jit`, `jax.vmap` and, for float steps, `jax.grad`.

    Raises:
      TypeError: an argument has the wrong type (the message names it).
      ValueError: an argument is out of range (the message names it).

    Examples:
      >>> import jaxdecay
      >>> schedule = jaxdecay.exponential_decay(0.1, decay_steps=1000, decay_rate=0.5)
      >>> print(schedule(2000))
      0.025
      >>> stairs = jaxdecay.exponential_decay(0.1, 1000, 0.5, staircase=True)
      >>> print(stairs(1999))
      0.05
    """
    return _build(
        **check_arguments(
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase,
            transition_begin,
            end_learning_rate,
        )
    )


def _build(
    initial_learning_rate: float | np.generic,
    decay_steps: int,
    decay_rate: float | np.generic,
    staircase: bool,
    transition_begin: int,
    end_learning_rate: float | np.generic | None,
) -> Schedule:
    """Returns the schedule for arguments that `check_arguments` has validated."""
    clip = jnp.maximum if float(decay_rate) < 1 else jnp.minimum
    # For float steps: the exponent of a fraction of a step, and of steps beyond
    # the integer range.
    log_rate_per_stair = math.log(float(decay_rate))
    log_rate_per_step = log_rate_per_stair / decay_steps

    @functools.cache
    def constants(compute: np.dtype[Any], per_stair: bool) -> _exact.Constants:
        # Prepared on the host once per compute dtype, at the first trace.
        steps_per_unit = 1 if per_stair else decay_steps
        return _exact.prepare(
            initial_learning_rate, decay_rate, steps_per_unit, compute
        )

    def schedule(step: jax.typing.ArrayLike) -> jax.Array:
        dtype = _result_dtype(initial_learning_rate)
        compute = _compute_dtype()
        step = jnp.asarray(step)
        if jnp.issubdtype(step.dtype, jnp.integer):
            started, value = _integer_value(_integer_steps(step), compute)
        elif jnp.issubdtype(step.dtype, jnp.floating):
            started, value = _float_value(step, compute)
        else:
            raise TypeError(
                f"step must be an integer or float array, got dtype {step.dtype}"
            )
        init = jnp.asarray(initial_learning_rate, compute)
        value = jnp.where(started, value, init)
        if end_learning_rate is not None:
            value = clip(value, jnp.asarray(end_learning_rate, compute))
        return value.astype(dtype)

    def _integer_value(
        step: jax.Array, compute: np.dtype[Any]
    ) -> tuple[jax.Array, jax.Array]:
        largest = int(np.iinfo(step.dtype).max)
        if transition_begin > largest:
            # No step of this dtype reaches the start of the decay.
            return jnp.zeros(step.shape, bool), jnp.zeros(step.shape, compute)
        begin = np.asarray(transition_begin, step.dtype)
        # max() before the subtraction keeps it from overflowing for early steps.
        elapsed = jnp.maximum(step, begin) - begin
        if not staircase:
            return step > begin, _exact.scaled_pow(constants(compute, False), elapsed)
        if decay_steps > largest:
            stairs = jnp.zeros_like(elapsed)  # no step of this dtype reaches stair 1
        else:
            # The exact integer quotient: never a float division.
            stairs = elapsed // np.asarray(decay_steps, step.dtype)
        return step > begin, _exact.scaled_pow(constants(compute, True), stairs)

    def _float_value(
        step: jax.Array, compute: np.dtype[Any]
    ) -> tuple[jax.Array, jax.Array]:
        # The float step's own type, or the compute type if that is wider.
        if step.dtype != np.float64:
            step = step.astype(np.float32)
        elapsed = step - step.dtype.type(transition_begin)
        started = elapsed > 0
        # Zero the steps before the start so that their unused branch, and its
        # gradient, stay finite.
        elapsed = jnp.where(started, elapsed, 0)
        if staircase:
            # floor_divide rounds its quotient, so it stays exact at stair edges
            # where a compiled division by a constant (a multiply by its
            # reciprocal) is not.
            units = jnp.floor_divide(elapsed, step.dtype.type(decay_steps))
            fraction = None
        else:
            units = jnp.floor(elapsed)
            fraction = elapsed - units  # exact
        # Whole steps (or stairs) take the exact integer path, so a float step
        # equal to an integer gives the integer step's bits.
        int_dtype = np.dtype(np.int64 if compute == np.float64 else np.int32)
        in_range = units < step.dtype.type(2.0 ** (8 * int_dtype.itemsize - 1))
        whole = jnp.where(in_range, units, 0).astype(int_dtype)
        value = _exact.scaled_pow(constants(compute, staircase), whole)
        if fraction is not None:
            value = value * jnp.exp(
                fraction.astype(compute) * compute.type(log_rate_per_step)
            )
        # Beyond the integer range (infinity included), the formula in float.
        log_rate_per_unit = log_rate_per_stair if staircase else log_rate_per_step
        init = jnp.asarray(initial_learning_rate, compute)
        if log_rate_per_unit == 0:  # no decay: inf * 0 would be NaN
            return started, jnp.where(in_range, value, init)
        # floor_divide(inf, ...) is NaN; an infinite step has made infinitely
        # many stairs.
        units = jnp.where(jnp.isinf(elapsed), elapsed, units)
        beyond = init * jnp.exp(units.astype(compute) * compute.type(log_rate_per_unit))
        return started, jnp.where(in_range, value, beyond)

    return schedule
