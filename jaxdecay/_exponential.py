"""`ExponentialDecay`: Keras' exponential decay, as a family on the shared layers.

The family is its fields (each declared once, with its role), its kernel (`prepare`
and `evaluate`, the math) and its builder; validation, the pytree, serialization,
the programs and the warmup piece are shared.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_derivatives import SymbolicZero

from jaxdecay import _config, _divide, _exact, _solve, _steps, _validation, _warmup
from jaxdecay._dw import flush, format_for, unsigned_dtype
from jaxdecay._fields import Optax, field
from jaxdecay._program import Kernel
from jaxdecay._steps import ONE, Position

# The optax schedules a config maps onto: `exponential_decay`, and for a config with
# a warmup `warmup_exponential_decay_schedule`.
_OPTAX = "exponential_decay"
_WARMUP = "warmup_exponential_decay_schedule"


class _Constants(NamedTuple):
    """The constants of the exact power (per stair, or per `decay_steps` steps),
    and for a staircase those of the division by `decay_steps`."""

    power: _exact.Constants
    divisor: _divide.Divisor | None


def _as_read(numbers: Mapping[str, Any], host: bool = False) -> dict[str, Any]:
    """The float numbers as every path reads them: a subnormal one is a zero of its
    sign, as XLA on CPU reads it (where NumPy, GPUs and the exact kernel would
    not), so that the decay, its far branch and the host agree."""
    dtype = numbers["initial_learning_rate"].dtype
    fmt = format_for(dtype).on_host() if host else format_for(dtype)
    names = ("initial_learning_rate", "decay_rate", "end_learning_rate")
    return {**numbers, **{name: flush(numbers[name], fmt) for name in names}}


def _prepare(
    numbers: Mapping[str, Any], *, staircase: bool, host: bool = False
) -> _Constants:
    numbers = _as_read(numbers, host)
    initial = numbers["initial_learning_rate"]
    steps = ONE if staircase else numbers["decay_steps"]
    power = _exact.prepare(
        initial, numbers["decay_rate"], steps, initial.dtype, host=host
    )
    divisor = None
    if staircase:
        hi, lo = numbers["decay_steps"]
        unsigned = unsigned_dtype(initial.dtype)
        if host:
            divisor = _divide.prepare_divisor_host(hi, lo, unsigned)
        else:
            # At least 1, as for a traced value that validation could not see.
            lo = jnp.where((hi == 0) & (lo == 0), jnp.uint32(1), lo)
            divisor = _divide.prepare_divisor(hi, lo, unsigned)
    constants = _Constants(power, divisor)
    # The kernel works on bits: the derivatives come from `_bounded_decay`.
    return constants if host else lax.stop_gradient(constants)


def _evaluate(
    numbers: Mapping[str, Any],
    constants: _Constants,
    position: Position,
    *,
    staircase: bool,
) -> jax.Array:
    """The decay at `position`, counted from `transition_begin`, bounded by
    `end_learning_rate` (NaN: none)."""
    return _bounded_decay(_as_read(numbers), constants, position, staircase)


class _Decay(NamedTuple):
    """The decay at a position, and what its derivatives read."""

    value: jax.Array  # the learning rate
    unbounded: jax.Array  # before the bound: `initial` where not started
    started: jax.Array
    capped: jax.Array  # where the bound is the value
    far: jax.Array  # where computed in float arithmetic
    n: jax.Array  # the exact power's whole steps (or stairs), 0 before the start
    fraction: jax.Array | None  # and its fraction
    exponent: jax.Array  # of the rate: elapsed / decay_steps, or the stairs
    far_factor: jax.Array  # rate ** exponent, where far


def _decay(
    numbers: Mapping[str, Any],
    constants: _Constants,
    position: Position,
    staircase: bool,
) -> _Decay:
    initial, rate = numbers["initial_learning_rate"], numbers["decay_rate"]
    end = numbers["end_learning_rate"]
    compute = initial.dtype
    unsigned = unsigned_dtype(compute)
    begin, reachable = _steps.unsigned(numbers["transition_begin"], unsigned)
    fraction, whole = position.fraction, position.whole
    after = whole > begin
    if fraction is not None:
        after = after | ((whole == begin) & (fraction > 0))
    started = position.in_range & reachable & after
    elapsed = jnp.where(started, whole - begin, unsigned.type(0))
    if constants.divisor is not None:  # a staircase
        # The exact integer quotient, by a multiply and shifts: never a float
        # division, nor XLA's integer division, one scalar division per step.
        n = _divide.divide(elapsed, constants.divisor)
        fraction = None
        exponent = n.astype(compute)
    else:
        n = elapsed
        exponent = n.astype(compute)
        # The fraction of a float step enters the exact reduction (0 before the
        # start): within 1 ulp, and a whole float step has the integer's bits.
        if fraction is not None:
            fraction = jnp.where(started, fraction, 0).astype(compute)
            exponent = exponent + fraction
        exponent = exponent / _steps.as_float(numbers["decay_steps"], compute)
    value = _exact.scaled_pow(constants.power, n, fraction)
    far_factor = jnp.ones_like(value)
    if position.fraction is not None:
        far_started, far_value, far_exponent, far_factor = _far(
            numbers, position, staircase
        )
        started = jnp.where(position.far, far_started, started)
        value = jnp.where(position.far, far_value, value)
        exponent = jnp.where(position.far, far_exponent, exponent)
    value = jnp.where(started, value, initial)
    # A floor for decay, a ceiling for growth (as optax's end_value); NaN: none. A
    # rate of 1 neither decays nor grows: the value stays the initial one (optax
    # applies its ceiling there).
    decays = rate < 1
    bounded = jnp.where(decays, jnp.maximum(value, end), jnp.minimum(value, end))
    unbound = jnp.isnan(end) | (rate == 1)
    capped = ~unbound & jnp.where(decays, value < end, value > end)
    return _Decay(
        value=jnp.where(unbound, value, bounded),
        unbounded=value,
        started=started,
        capped=capped,
        far=position.far,
        n=n,
        fraction=fraction,
        exponent=exponent,
        far_factor=far_factor,
    )


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _bounded_decay(
    numbers: Mapping[str, Any],
    constants: _Constants,
    position: Position,
    staircase: bool,
) -> jax.Array:
    """The decay, with the analytic derivatives by its float numbers and by a
    float step: the exact power works on bits and has no useful one of its own."""
    return _decay(numbers, constants, position, staircase).value


def _bounded_decay_jvp(
    staircase: bool, primals: tuple[Any, ...], tangents: tuple[Any, ...]
) -> tuple[jax.Array, jax.Array]:
    """Each derivative is selected where its branch is the value (a double
    where): 0 by the capped numbers where the bound binds and 1 by the bound, 1
    by the initial rate before the start, so that an unused branch's derivative
    (inf where the unbounded value overflowed) never multiplies a cotangent of 0
    into a NaN."""
    numbers, constants, position = primals
    dots, step_dot = tangents[0], tangents[2].step
    decay = _decay(numbers, constants, position, staircase)
    value = decay.value
    initial, rate = numbers["initial_learning_rate"], numbers["decay_rate"]
    compute = value.dtype
    unbounded, live = decay.unbounded, decay.started & ~decay.capped
    # No derivative by the rate or the step where nothing is left of the decay
    # (0 * log(0) and 0 / 0 are not numbers).
    moving = live & (unbounded != 0)
    tangent = jnp.zeros_like(value)

    def given(name: str) -> Any:
        dot = dots[name]
        return None if isinstance(dot, SymbolicZero) else dot

    if (dot := given("initial_learning_rate")) is not None:
        steps = ONE if staircase else numbers["decay_steps"]
        unit = _exact.prepare(jnp.ones_like(initial), rate, steps, compute)
        power = _exact.scaled_pow(unit, decay.n, decay.fraction)
        power = jnp.where(decay.far, decay.far_factor, power)
        started = jnp.where(decay.started, power, 1)
        tangent = tangent + jnp.where(decay.capped, 0, started) * dot
    if (dot := given("decay_rate")) is not None:
        safe_rate = jnp.where(rate == 0, 1, rate)
        slope = unbounded * (decay.exponent / safe_rate)
        tangent = tangent + jnp.where(moving & (decay.exponent != 0), slope, 0) * dot
    if (dot := given("end_learning_rate")) is not None:
        tangent = tangent + jnp.where(decay.capped, 1, 0).astype(compute) * dot
    if not staircase and not isinstance(step_dot, SymbolicZero):
        decay_steps = _steps.as_float(numbers["decay_steps"], compute)
        slope = unbounded * (jnp.log(rate) / decay_steps)
        tangent = tangent + jnp.where(moving, slope, 0) * step_dot.astype(compute)
    return value, tangent


_bounded_decay.defjvp(_bounded_decay_jvp, symbolic_zeros=True)


def _far(
    numbers: Mapping[str, Any], position: Position, staircase: bool
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """The decay in float arithmetic, where `far`: for float steps beyond the
    integer range (infinity included) and past the warmup (if any). 0 or inf where
    the exact value is, never NaN. Also its exponent and `rate ** exponent`."""
    initial, rate = numbers["initial_learning_rate"], numbers["decay_rate"]
    step, far = position.step, position.far
    compute = initial.dtype
    begin = _steps.as_float(numbers["transition_begin"], compute)
    if position.offset is not None:  # the steps of a piece before, the warmup's
        begin = begin + position.offset
    # Zero where not far or before the start; at most the largest float, so that
    # an infinite step gives 0 or inf (not 0 * inf).
    largest = np.finfo(compute).max
    elapsed = jnp.maximum(step.astype(compute) - begin, 0)
    elapsed = jnp.where(far, jnp.minimum(elapsed, largest), 0)
    units = elapsed / _steps.as_float(numbers["decay_steps"], compute)
    if staircase:
        units = jnp.floor(units)
    log_rate = jnp.log(rate)
    # No decay at all (a rate of 1, or no whole stair yet) must not make inf * 0 a
    # NaN.
    exponent = jnp.where((log_rate == 0) | (units == 0), 0, units * log_rate)
    factor = jnp.exp(exponent)
    # Where the factor alone underflows or overflows, the product may not.
    magnitude = jnp.where(initial == 0, 1, jnp.abs(initial))
    extreme = jnp.sign(initial) * jnp.exp(jnp.log(magnitude) + exponent)
    product = jnp.where(jnp.isfinite(factor) & (factor != 0), initial * factor, extreme)
    # 0 and inf stay what they are, whatever the rate.
    keep = (initial == 0) | jnp.isinf(initial)
    return elapsed > 0, jnp.where(keep, initial, product), units, factor


def _edges(config: ExponentialDecay, last: int, limit: int) -> tuple[np.ndarray, int]:
    """The first step of each stair up to `last`: `transition_begin + k *
    decay_steps`."""
    begin, decay_steps = config.transition_begin, config.decay_steps
    stairs = max(last - begin, 0) // decay_steps
    # No stairs when the decay starts after `last` (possibly beyond int64).
    return min(begin, last) + _steps.evenly(stairs, limit) * decay_steps, stairs


def _formula(config: ExponentialDecay, lead: int) -> str:
    begin = lead + config.transition_begin
    elapsed = "step" if begin == 0 else f"(step - {begin})"
    division = "//" if config.staircase else "/"
    text = (
        f"{float(config.initial_learning_rate):.6g} * "
        f"{float(config.decay_rate):.6g} ** ({elapsed} {division} "
        f"{config.decay_steps})"
    )
    if config.end_learning_rate is not None:
        bound = "max" if float(config.decay_rate) < 1 else "min"
        text = f"{bound}({float(config.end_learning_rate):.6g}, {text})"
    return text


_VIEW = _config.View(
    horizon=lambda config: config.transition_begin + 10 * config.decay_steps,
    bends=lambda config: (config.transition_begin,),
    stepwise=lambda config: config.staircase,
    edges=_edges,
    formula=_formula,
)


@_config.schedule_class(
    _config.Family(
        builder="exponential_decay",
        kernel=Kernel(_prepare, _evaluate),
        peak="initial_learning_rate",
        view=_VIEW,
        pieces=(_warmup.WARMUP,),
        optax=(_OPTAX, _WARMUP),
        rate="decay_rate",
    )
)
@dataclasses.dataclass(frozen=True, eq=False)
class ExponentialDecay(_config.Config):
    """Keras' `ExponentialDecay` schedule as a frozen, serializable dataclass.

    The instance is itself the schedule: call it with a step, or pass it to an optax
    optimizer as the learning rate. It computes exactly what `exponential_decay` with
    the same arguments computes. Use `dataclasses.replace` for variants.

    It is a JAX pytree: the numeric hyperparameters are its leaves, as the schedule's
    program takes them (floats in the compute dtype; `decay_steps`,
    `transition_begin` and `warmup_steps` as two integer words each, so that they
    are exact without x64), and `staircase` and `name` are static. Passed as an
    argument to a jitted function, new values never recompile, and `jax.vmap` over a
    stack of configs
    (`jax.tree.map(lambda *leaves: jnp.stack(leaves), *configs)`) runs many
    schedules in one program, each with the bits of its own single run.

    Attributes:
      initial_learning_rate: the learning rate at steps up to `transition_begin`.
      decay_steps: the number of steps over which the rate is multiplied by
        `decay_rate`; an integer in [1, 2**63 - 1].
      decay_rate: the factor per `decay_steps` steps; finite and > 0.
      staircase: decay in whole stairs of `decay_steps` steps.
      name: a label kept for Keras configs; it does not change the math.
      transition_begin: the steps the decay waits after the warmup (keyword-only).
      end_learning_rate: a bound the learning rate does not pass (keyword-only).
      warmup_steps: the length of the linear warmup before the decay; an integer
        >= 0, 0 for none (keyword-only).
      warmup_init: the learning rate at step 0, where the warmup starts; finite
        (keyword-only).

    Examples:
      >>> import jaxdecay
      >>> schedule = jaxdecay.ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.5)
      >>> print(schedule(1000))
      0.05
      >>> schedule.get_config()
      {'initial_learning_rate': 0.1, 'decay_steps': 1000, 'decay_rate': 0.5, \
'staircase': False, 'name': 'ExponentialDecay'}
    """

    initial_learning_rate: float | np.generic = field(
        check=_validation.real(),
        leaf=True,
        keras=True,
        optax=(Optax("init_value", 0, _OPTAX), Optax("peak_value", 1, _WARMUP)),
    )
    decay_steps: int = field(
        check=_validation.integer(minimum=1),
        leaf=True,
        keras=True,
        optax=(
            Optax("transition_steps", 1, _OPTAX),
            Optax("transition_steps", 3, _WARMUP),
        ),
    )
    decay_rate: float | np.generic = field(
        check=_validation.real(positive=True),
        leaf=True,
        keras=True,
        optax=(Optax("decay_rate", 2, _OPTAX), Optax("decay_rate", 4, _WARMUP)),
    )
    staircase: bool = field(
        check=_validation.boolean,
        leaf=False,
        keras=True,
        optax=(Optax("staircase", 4, _OPTAX), Optax("staircase", 6, _WARMUP)),
        default=False,
    )
    name: str | None = field(
        check=_validation.label,
        leaf=False,
        keras=True,
        label=True,
        default="ExponentialDecay",
    )
    _: dataclasses.KW_ONLY
    transition_begin: int = field(
        check=_validation.integer(minimum=0),
        leaf=True,
        keras=False,
        optax=(
            Optax("transition_begin", 3, _OPTAX),
            Optax("transition_begin", 5, _WARMUP),
        ),
        default=0,
    )
    end_learning_rate: float | np.generic | None = field(
        check=_validation.real(optional=True),
        leaf=True,
        keras=False,
        optax=(Optax("end_value", 5, _OPTAX), Optax("end_value", 7, _WARMUP)),
        default=None,
    )
    warmup_steps: int = _warmup.steps_field(_WARMUP, 2)
    warmup_init: float | np.generic = _warmup.init_field(_WARMUP, 0)

    @classmethod
    def from_endpoints(
        cls,
        initial_learning_rate: float | np.generic,
        final_learning_rate: float | np.generic,
        total_steps: int,
        decay_steps: int,
        staircase: bool = False,
        **kwargs: Any,
    ) -> ExponentialDecay:
        """Builds the schedule whose learning rate at `total_steps` is the final one.

        The decay starts at `start = warmup_steps + transition_begin`, and
        `total_steps` counts from step 0, the warmup included: `decay_rate = (final
        / initial) ** (decay_steps / (total_steps - start))`, or with
        `staircase=True` `** (1 / ((total_steps - start) // decay_steps))`, computed
        in 40-digit decimal and rounded once to float64 (see `jaxdecay solve` for
        how close the schedule then is to `final_learning_rate` at `total_steps`).

        Args:
          initial_learning_rate: the learning rate at the start of the decay (the
            peak, after a warmup).
          final_learning_rate: the learning rate wanted at `total_steps`.
          total_steps: the step at which the final learning rate is reached.
          decay_steps: as in the constructor.
          staircase: as in the constructor.
          **kwargs: `name`, `transition_begin`, `end_learning_rate`,
            `warmup_steps`, `warmup_init`.

        Raises:
          TypeError: an argument has the wrong type (the message names it).
          ValueError: no decay rate reaches the target (the message says why).

        Examples:
          >>> import jaxdecay
          >>> schedule = jaxdecay.ExponentialDecay.from_endpoints(
          ...     0.1, 1e-4, total_steps=100_000, decay_steps=1000)
          >>> schedule.decay_rate
          0.933254300796991
          >>> round(float(schedule(100_000)), 10)
          0.0001
          >>> jaxdecay.ExponentialDecay.from_endpoints(
          ...     0.1, 0.025, total_steps=2500, decay_steps=1000, warmup_steps=500
          ... ).decay_rate
          0.5
        """
        decay_rate = _solve.decay_rate_for(
            initial_learning_rate,
            final_learning_rate,
            total_steps,
            decay_steps,
            staircase,
            transition_begin=kwargs.get("transition_begin", 0),
            end_learning_rate=kwargs.get("end_learning_rate"),
            warmup_steps=kwargs.get("warmup_steps", 0),
        )
        return cls(initial_learning_rate, decay_steps, decay_rate, staircase, **kwargs)


exponential_decay = _config.builder(
    ExponentialDecay,
    doc="""Builds Keras' `ExponentialDecay` as a pure, jit-able `step -> lr` function.

    For a step `t = step - transition_begin > 0` the learning rate is::

        initial_learning_rate * decay_rate ** (t / decay_steps)

    With `staircase=True` the exponent is the integer division `t // decay_steps`,
    in integer arithmetic. Steps at or before `transition_begin` (negative steps
    included) hold `initial_learning_rate`, as optax does; Keras instead
    extrapolates the curve to negative steps. `end_learning_rate` bounds the result
    as optax's `end_value` does: a floor when `decay_rate < 1`, a ceiling above 1;
    a rate of 1 (in the compute dtype) holds `initial_learning_rate`, where optax
    applies the ceiling.

    With `warmup_steps > 0` the schedule is optax's
    `warmup_exponential_decay_schedule`: the learning rate rises linearly from
    `warmup_init` at step 0 (and before) to `initial_learning_rate` at
    `warmup_steps`, and the decay above is counted from there: the stairs start
    at `warmup_steps`, and `transition_begin` holds the peak for that many more
    steps. The warmup is within 1 ulp of the exact line unless `warmup_init` and
    `initial_learning_rate` have opposite signs (see docs/numerics.md).

    The float hyperparameters are taken in the compute dtype (float32, or float64
    under x64), as the schedule's program receives them on every path; the result
    is within 1 ulp of the exact schedule of those values, in the compute dtype,
    whatever the type of the numbers given (Python, NumPy or JAX, 16-bit included).

    Args:
      initial_learning_rate: the learning rate at steps up to `transition_begin`.
      decay_steps: the number of steps over which the rate is multiplied by
        `decay_rate`; an integer in [1, 2**63 - 1].
      decay_rate: the factor per `decay_steps` steps; finite and > 0.
      staircase: decay in whole stairs of `decay_steps` steps.
      transition_begin: the steps the decay waits after the warmup; an integer >= 0.
      end_learning_rate: a bound the learning rate does not pass, or None.
      warmup_steps: the length of the linear warmup; an integer >= 0 (0: none).
      warmup_init: the learning rate at step 0, where the warmup starts; finite.

    Returns:
      A function from a step (a Python, NumPy or JAX integer or float, scalar or
      array) to the learning rate, elementwise. It is pure JAX: it works under
      `jax.jit` and `jax.vmap`, and `jax.grad` gives the analytic derivative with
      respect to a float step and the float hyperparameters.

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
      >>> warm = jaxdecay.exponential_decay(0.1, 1000, 0.5, warmup_steps=100)
      >>> print(warm(50), warm(100), warm(1100))
      0.05 0.1 0.05
    """,
)
