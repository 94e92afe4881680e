"""The exponential decay schedule: argument validation and the pure `step -> lr` math.

Every entry point (the `exponential_decay` builder, `ExponentialDecay.__call__`, the
command line) goes through `exponential_decay`, so the math lives here only.
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers
import reprlib
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxdecay import _exact

Schedule = Callable[[jax.typing.ArrayLike], jax.Array]
"""A `step -> learning rate` function; accepted wherever optax takes a schedule."""

_INT64_MAX = 2**63 - 1


class _BoundedRepr(reprlib.Repr):
    """reprlib's repr, bounded in depth and length, with dicts in their own order
    and huge ints summarized (their repr is slow, and refused past 4300 digits)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxother = self.maxlong = 80
        self.maxdict = self.maxlist = self.maxtuple = 6
        self.maxset = self.maxfrozenset = 6

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 256:
            return f"<int of {x.bit_length()} bits>"
        return super().repr_int(x, level)

    def repr_bytes(self, x: bytes, level: int) -> str:
        return repr(x[: self.maxstring]) + ("..." if len(x) > self.maxstring else "")

    def repr_bytearray(self, x: bytearray, level: int) -> str:
        return f"bytearray({self.repr_bytes(bytes(x[: self.maxstring + 1]), level)})"

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        items = [
            f"{self.repr1(key, level - 1)}: {self.repr1(value, level - 1)}"
            for key, value in itertools.islice(x.items(), self.maxdict)
        ]
        if len(x) > self.maxdict:
            items.append("...")
        return "{" + ", ".join(items) + "}"


_BOUNDED_REPR = _BoundedRepr()


def preview(value: Any) -> str:
    """A repr short enough for an error message, whatever the data holds: bounded in
    time and length however large or deeply nested `value` is."""
    text = _BOUNDED_REPR.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------------
# Validation. Each checker returns the value in a normal form, so the builder and
# the dataclass (which stores what these return) agree on what a valid value is.
# Concrete values are checked; traced ones (inside jit, vmap, grad) can only have
# their dtype checked, and pass through so that tracing is never broken.
# ---------------------------------------------------------------------------


def is_traced(value: Any) -> bool:
    """Whether `value` is a JAX tracer: abstract inside a transformation."""
    return isinstance(value, jax.core.Tracer)


def _scalar(value: Any) -> Any:
    """Unwraps a concrete 0-d NumPy or JAX array into a NumPy scalar."""
    concrete = isinstance(value, (np.ndarray, jax.Array)) and not is_traced(value)
    return np.asarray(value)[()] if concrete and value.ndim == 0 else value


def _describe(value: Any) -> str:
    if isinstance(value, (np.ndarray, jax.Array)):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    return f"{preview(value)} of type {type(value).__name__}"


def _check_array(name: str, value: Any, kind: str) -> Any:
    """Checks the dtype of an array hyperparameter (a batch of configs, or traced)."""
    dtype = value.dtype
    if kind == "integer":
        ok = jnp.issubdtype(dtype, jnp.integer)
    else:
        ok = jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    if not ok or dtype == np.bool_:
        raise TypeError(f"{name} must be {kind}, got {_describe(value)}")
    return value


def _first_bad(values: np.ndarray[Any, Any], bad: np.ndarray[Any, Any]) -> Any:
    return values[np.unravel_index(np.argmax(bad), bad.shape)].item()


def check_integer(name: str, value: Any, *, minimum: int, maximum: int) -> Any:
    """Returns `value` as a Python int (or an integer array), or raises."""
    value = _scalar(value)
    if isinstance(value, (np.ndarray, jax.Array)):
        _check_array(name, value, "integer")
        if not is_traced(value):
            values = np.asarray(value)
            bad = (values < minimum) | (values > maximum)
            if bad.any():
                raise ValueError(
                    f"{name} must be integers in [{minimum}, {maximum}], "
                    f"got {_first_bad(values, bad)!r} in {_describe(value)}"
                )
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (numbers.Integral, np.integer)
    ):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    number = int(value)
    if not minimum <= number <= maximum:
        raise ValueError(
            f"{name} must be an integer in [{minimum}, {maximum}], "
            f"got {preview(number)}"
        )
    return number


def check_real(name: str, value: Any, *, positive: bool = False) -> Any:
    """Returns a finite real `value` as a Python float or a NumPy float scalar (or a
    float array).

    NumPy and JAX float scalars keep their dtype (it is the schedule's result dtype);
    Python and NumPy integers become Python floats.
    """
    value = _scalar(value)
    if isinstance(value, (np.ndarray, jax.Array)):
        _check_array(name, value, "real")
        if not is_traced(value):
            values = np.asarray(value).astype(np.float64)
            bad = ~np.isfinite(values) | ((values <= 0) if positive else False)
            if bad.any():
                need = "finite and > 0" if positive else "finite"
                raise ValueError(
                    f"{name} must be {need}, got {_first_bad(values, bad)!r} in "
                    f"{_describe(value)}"
                )
        return value
    if not is_float_scalar(value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (numbers.Real, np.integer)
        ):
            raise TypeError(f"{name} must be a real number, got {_describe(value)}")
        try:
            value = float(value)
        except OverflowError:
            raise ValueError(f"{name} must be finite, got {preview(value)}") from None
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def is_float_scalar(value: Any) -> bool:
    """Whether `value` is a NumPy float scalar (ml_dtypes such as bfloat16 too)."""
    return isinstance(value, np.generic) and jnp.issubdtype(value.dtype, jnp.floating)


def check_bool(name: str, value: Any) -> bool:
    """Returns `value` as a Python bool; refuses anything that is not a bool."""
    value = _scalar(value)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {_describe(value)}")
    return bool(value)


def check_name(value: Any) -> str | None:
    """Returns the schedule's name: a str, or None as TF 2 configs write it."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"name must be a str or None, got {_describe(value)}")
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


def _result_dtype(initial_learning_rate: Any) -> np.dtype[Any]:
    """The dtype of the learning rate: that of a NumPy/JAX float given as the initial
    learning rate, else JAX's default float. Read at trace time, so that
    `jax_enable_x64` is honoured as it stands when the schedule is called."""
    dtype = getattr(initial_learning_rate, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jnp.floating):
        return np.dtype(jax.dtypes.canonicalize_dtype(dtype))
    return np.dtype(jnp.result_type(float))


def _compute_dtype() -> np.dtype[Any]:
    """float32, or float64 under x64; every result dtype is rounded once from it.

    Under x64 steps are int64, which float32 arithmetic does not cover exactly, so a
    float32 (or 16-bit) learning rate is computed in float64 and rounded once: still
    within 1 ulp of the exact value.
    """
    return np.dtype(jnp.result_type(float))


def _cast(value: Any, dtype: np.dtype[Any]) -> Any:
    """`value` in `dtype`: a static number converted by NumPy (whatever its size,
    where JAX would refuse an int beyond int32 without x64), an array by JAX."""
    if is_static(value):
        return np.asarray(value, dtype)
    return jnp.asarray(value).astype(dtype)


def _integer_dtype(compute: np.dtype[Any]) -> np.dtype[Any]:
    """The integer type of the exact kernel for a compute dtype."""
    return np.dtype(np.int64 if compute == np.float64 else np.int32)


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
    return schedule_for(
        **check_arguments(
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase,
            transition_begin,
            end_learning_rate,
        )
    )


def is_static(*values: Any) -> bool:
    """Whether every value is a plain Python or NumPy scalar (or None).

    Such hyperparameters are known when the schedule is built, and their constants
    are prepared exactly on the host; any array (a batch of configs, or a traced
    value inside a transformation) takes the path that prepares them on the device.
    """
    return all(
        value is None or isinstance(value, (bool, int, float, np.generic))
        for value in values
    )


def schedule_for(
    initial_learning_rate: Any,
    decay_steps: Any,
    decay_rate: Any,
    staircase: bool,
    transition_begin: Any,
    end_learning_rate: Any,
) -> Schedule:
    """Returns the schedule for arguments that `check_arguments` has validated."""
    hyperparameters = _Hyperparameters(
        initial_learning_rate,
        decay_steps,
        decay_rate,
        transition_begin,
        end_learning_rate,
    )
    if not is_static(*hyperparameters):

        def array_schedule(step: jax.typing.ArrayLike) -> jax.Array:
            result: jax.Array = _evaluate_arrays(step, hyperparameters, staircase)
            return result

        return array_schedule

    key = (staircase, *map(_typed, hyperparameters))
    return _static_schedule(key, hyperparameters)


def _typed(value: Any) -> Any:
    """A hashable key that tells apart values that compare equal but compute
    differently: 1.0 and np.float32(1.0), 0.0 and -0.0."""
    if isinstance(value, float):
        return ("float", value.hex())
    if isinstance(value, np.generic):
        return (value.dtype.str, value.tobytes())
    return value


@functools.lru_cache(maxsize=256)
def _static_schedule(key: tuple[Any, ...], hyperparameters: Any) -> Schedule:
    """The schedule for static hyperparameters, shared by all equal configs so that
    they share its compiled programs."""
    staircase = key[0]
    initial_learning_rate, decay_steps, decay_rate, _, _ = hyperparameters

    @functools.cache
    def constants(compute: np.dtype[Any], per_stair: bool) -> _exact.Constants:
        # Prepared on the host once per compute dtype, at the first trace.
        steps_per_unit = 1 if per_stair else decay_steps
        return _exact.prepare(
            initial_learning_rate, decay_rate, steps_per_unit, compute
        )

    def static_schedule(step: jax.typing.ArrayLike) -> jax.Array:
        return _evaluate(step, hyperparameters, staircase, constants)

    # One compiled program per step shape and dtype: an eager call is a single
    # dispatch, and gives the same bits as the schedule inside a larger jit.
    compiled = jax.jit(static_schedule)

    def schedule(step: jax.typing.ArrayLike) -> jax.Array:
        if isinstance(step, np.signedinteger):
            # A Python int takes JAX's fastest dispatch, and the dtype of an
            # integer step changes neither the result nor its dtype.
            step = int(step)
        result: jax.Array = compiled(step)
        return result

    return schedule


class _Hyperparameters(NamedTuple):
    """The numeric hyperparameters: Python/NumPy scalars, or arrays (a batch of
    configs or traced values)."""

    initial_learning_rate: Any
    decay_steps: Any
    decay_rate: Any
    transition_begin: Any
    end_learning_rate: Any


@functools.partial(jax.jit, static_argnames="staircase")
def _evaluate_arrays(
    step: jax.typing.ArrayLike, hyperparameters: _Hyperparameters, staircase: bool
) -> jax.Array:
    """The schedule with hyperparameters that are arrays: their constants are
    prepared in the compiled program, so new values never recompile.

    Hyperparameters of any shape broadcast against the step, elementwise, as NumPy
    arrays do: each element is the schedule of its own config (under `jax.vmap`,
    which hands each config scalars, this is the scalar case).
    """
    step = jnp.asarray(step)
    shapes = [np.shape(value) for value in hyperparameters if value is not None]
    if not any(shapes):
        return _evaluate_scalars(step, hyperparameters, staircase)
    shape = jnp.broadcast_shapes(step.shape, *shapes)

    def flat(value: Any) -> Any:
        if value is None:
            return None
        return jnp.broadcast_to(jnp.asarray(value), shape).reshape(-1)

    values: jax.Array = jax.vmap(_evaluate_scalars, in_axes=(0, 0, None))(
        flat(step), _Hyperparameters(*map(flat, hyperparameters)), staircase
    )
    return values.reshape(shape)


def _evaluate_scalars(
    step: jax.Array, hyperparameters: _Hyperparameters, staircase: bool
) -> jax.Array:
    """The schedule for scalar (typically traced) hyperparameters."""
    initial_learning_rate, decay_steps, decay_rate, _, _ = hyperparameters

    def constants(compute: np.dtype[Any], per_stair: bool) -> _exact.TracedConstants:
        steps_per_unit = jnp.ones_like(decay_steps) if per_stair else decay_steps
        return _exact.prepare_traced(
            _cast(initial_learning_rate, compute),
            jnp.asarray(decay_rate).astype(compute),
            jnp.asarray(steps_per_unit).astype(_integer_dtype(compute)),
            compute,
        )

    return _evaluate(step, hyperparameters, staircase, constants)


def _evaluate(
    step: jax.typing.ArrayLike,
    hyperparameters: _Hyperparameters,
    staircase: bool,
    constants: Callable[[np.dtype[Any], bool], Any],
) -> jax.Array:
    """The learning rate at `step`: the one place where the schedule is computed.

    Hyperparameters are static scalars (whose `constants` were prepared on the host)
    or arrays (whose `constants` are prepared in the program); the code below treats
    both alike, with a Python branch where a static value allows a shortcut.
    """
    initial_learning_rate, _, decay_rate, _, end = hyperparameters
    dtype = _result_dtype(initial_learning_rate)
    compute = _compute_dtype()
    static = is_static(*hyperparameters)
    step = jnp.asarray(step)
    if jnp.issubdtype(step.dtype, jnp.integer):
        step = _integer_steps(step)
        started, value = _integer_value(step, hyperparameters, staircase, constants)
    elif jnp.issubdtype(step.dtype, jnp.floating):
        started, value = _float_value(step, hyperparameters, staircase, constants)
    else:
        raise TypeError(
            f"step must be an integer or float array, got dtype {step.dtype}"
        )
    init = _cast(initial_learning_rate, compute)
    value = jnp.where(started, value, init)
    if end is not None:
        end = _cast(end, compute)
        # A floor for decay, a ceiling for growth (as optax's end_value).
        if static:
            value = (jnp.maximum if float(decay_rate) < 1 else jnp.minimum)(value, end)
        else:
            decays = jnp.asarray(decay_rate) < 1
            value = jnp.where(decays, jnp.maximum(value, end), jnp.minimum(value, end))
    return value.astype(dtype)


def _integer_value(
    step: jax.Array,
    hyperparameters: _Hyperparameters,
    staircase: bool,
    constants: Callable[[np.dtype[Any], bool], Any],
) -> tuple[jax.Array, jax.Array]:
    _, decay_steps, _, transition_begin, _ = hyperparameters
    compute = _compute_dtype()
    largest = int(np.iinfo(step.dtype).max)
    if isinstance(transition_begin, int) and transition_begin > largest:
        # No step of this dtype reaches the start of the decay.
        return jnp.zeros(step.shape, bool), jnp.zeros(step.shape, compute)
    begin = _cast(transition_begin, step.dtype)
    # max() before the subtraction keeps it from overflowing for early steps.
    elapsed = jnp.maximum(step, begin) - begin
    if not staircase:
        return step > begin, _exact.scaled_pow(constants(compute, False), elapsed)
    if isinstance(decay_steps, int) and decay_steps > largest:
        stairs = jnp.zeros_like(elapsed)  # no step of this dtype reaches stair 1
    else:
        # The exact integer quotient: never a float division.
        stairs = elapsed // _cast(decay_steps, step.dtype)
    return step > begin, _exact.scaled_pow(constants(compute, True), stairs)


def _float_value(
    step: jax.Array,
    hyperparameters: _Hyperparameters,
    staircase: bool,
    constants: Callable[[np.dtype[Any], bool], Any],
) -> tuple[jax.Array, jax.Array]:
    initial_learning_rate, decay_steps, decay_rate, transition_begin, _ = (
        hyperparameters
    )
    compute = _compute_dtype()
    # The float step's own type, or float32 for a 16-bit step.
    if step.dtype != np.float64:
        step = step.astype(np.float32)
    elapsed = step - _cast(transition_begin, step.dtype)
    started = elapsed > 0
    # Zero the steps before the start so that their unused branch, and its
    # gradient, stay finite.
    elapsed = jnp.where(started, elapsed, 0)
    steps_per_stair = _cast(decay_steps, step.dtype)
    if staircase:
        # floor_divide rounds its quotient, so it stays exact at stair edges where
        # a compiled division by a constant (a multiply by its reciprocal) is not.
        units = jnp.floor_divide(elapsed, steps_per_stair)
        fraction = None
    else:
        units = jnp.floor(elapsed)
        fraction = elapsed - units  # exact
    # Whole steps (or stairs) take the exact integer path, so a float step equal to
    # an integer gives the integer step's bits.
    int_dtype = _integer_dtype(compute)
    in_range = units < step.dtype.type(2.0 ** (8 * int_dtype.itemsize - 1))
    whole = jnp.where(in_range, units, 0).astype(int_dtype)
    value = _exact.scaled_pow(constants(compute, staircase), whole)
    # The exponent per step (per stair) in float, for what the integer path leaves:
    # the fraction of a step, and steps beyond the integer range (infinity too).
    if is_static(*hyperparameters):
        log_rate = compute.type(math.log(float(decay_rate)))
        log_rate_per_step = compute.type(math.log(float(decay_rate)) / decay_steps)
    else:
        log_rate = jnp.log(jnp.asarray(decay_rate).astype(compute))
        log_rate_per_step = log_rate / _cast(decay_steps, compute)
    if fraction is not None:
        value = value * jnp.exp(fraction.astype(compute) * log_rate_per_step)
    # floor_divide(inf, ...) is NaN: an infinite step has made infinitely many
    # stairs. And no decay at all must not make inf * 0 a NaN.
    units = jnp.where(jnp.isinf(elapsed), elapsed, units).astype(compute)
    exponent = units * (log_rate if staircase else log_rate_per_step)
    init = _cast(initial_learning_rate, compute)
    # A NaN exponent (no decay) or a zero initial rate (0 * inf) keeps init.
    keep = (exponent != exponent) | (init == 0)
    beyond = jnp.where(keep, init, init * jnp.exp(exponent))
    return started, jnp.where(in_range, value, beyond)
