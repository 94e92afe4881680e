"""The warmup: a piece any family can have.

A linear warmup from `warmup_init` at step 0 (and before) to the family's peak (its
initial learning rate) at `warmup_steps`, then the family's schedule counted from
there, as optax's `join_schedules` composes a warmup and a decay: each piece sees
its own step. The family declares the two fields with `steps_field` and
`init_field`; a config whose `warmup_steps` is known to be 0 does not use the piece
and runs none of it, on any path.

The line is ``start + (stop - start) * t / total`` for ``0 <= t < total``. Counted
from the end of smaller magnitude, ``near``, it is ``near + k * delta`` with ``k``
the steps from ``near`` and ``delta = (far - near) / total``: when the ends do not
have opposite signs the two terms have the same sign and do not cancel, and one
exact product and an exact sum make the result within 1 ulp.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxdecay import _steps, _validation
from jaxdecay._config import Piece
from jaxdecay._dw import (
    DW,
    binade,
    fast_two_sum,
    flush,
    format_for,
    opaque_scalars,
    power_of_two,
    scaled_div,
    split,
    steps_double_word,
    two_sum,
    unfused,
    unsigned_dtype,
)
from jaxdecay._fields import Optax, field
from jaxdecay._program import Kernel
from jaxdecay._steps import Position

PART = "warmup"  # the `part` of the warmup's fields


def steps_field(optax_schedule: str | None = None, position: int = 2) -> Any:
    """The `warmup_steps` field: the length of the linear warmup, an integer >= 0
    (0: none); optax's `warmup_steps` of `optax_schedule` (if any), at `position`."""
    check = _validation.integer(minimum=0)
    return _field(check, "warmup_steps", optax_schedule, position, default=0)


def init_field(optax_schedule: str | None = None, position: int = 0) -> Any:
    """The `warmup_init` field: the learning rate at step 0, where the warmup
    starts; finite. optax's `init_value` of `optax_schedule` (if any), at
    `position`."""
    check = _validation.real()
    return _field(check, "init_value", optax_schedule, position, default=0.0)


def _field(
    check: Any, optax_name: str, schedule: str | None, position: int, default: Any
) -> Any:
    """A field of the warmup: a leaf the piece reads, an extension key of format 2."""
    optax = () if schedule is None else (Optax(optax_name, position, schedule),)
    return field(
        check=check,
        leaf=True,
        keras=False,
        optax=optax,
        format=2,
        part=PART,
        default=default,
    )


def _prepare(
    numbers: Mapping[str, Any], *, peak: Any, start: Any = None, host: bool = False
) -> Ramp:
    start = numbers["warmup_init"] if start is None else start
    ramp = prepare_ramp(start, peak, numbers["warmup_steps"], peak.dtype, host=host)
    # The kernel works on bits: the derivatives come from `linear`.
    return ramp if host else lax.stop_gradient(ramp)


def _evaluate(
    inner: Callable[[Position], jax.Array],
    numbers: Mapping[str, Any],
    ramp: Ramp,
    position: Position,
    *,
    peak: jax.Array,
    start: jax.Array | None = None,
) -> jax.Array:
    """The line before `warmup_steps`, negative steps included (as optax's linear
    schedule holds its start there), and `inner` counted from there. It starts
    from `warmup_init`, or from the family's `start` where it names one."""
    compute = peak.dtype
    warm = (ramp.total_hi > 0) & ramp_reaches(ramp, position.clipped)
    # Past the warmup (a warmup beyond every step leaves nothing to decay).
    warmup_steps, fits = _steps.unsigned(
        numbers["warmup_steps"], unsigned_dtype(compute)
    )
    in_range = position.in_range & ~warm
    shifted = position._replace(
        in_range=in_range,
        far=position.far & ~warm,
        whole=jnp.where(in_range & fits, position.whole - warmup_steps, 0),
        offset=_steps.as_float(numbers["warmup_steps"], compute),
    )
    decay = inner(shifted)
    # Past the warmup the line is computed but not used: at step 0 there, so that
    # an infinite step does not make its derivatives NaN (0 * NaN is NaN).
    t = tuple(jnp.where(warm, word, 0) for word in position.clipped)
    start = numbers["warmup_init"] if start is None else start
    line = linear(ramp, start, peak, t)
    return jnp.where(warm, line, decay)


class Ramp(NamedTuple):
    """The constants of :func:`linear`, made by :func:`prepare_ramp`; scalars
    (with the batch dimension under ``vmap``).

    The ends are scaled by ``2**-E``, the binade of the larger one (``E`` in the
    normal range), so no product overflows. At ``k = 0`` the ramp is ``near``
    itself, which scaled may have underflowed; at every other ``k`` the term
    ``k * delta`` is at least ``|far - near| / total`` and ``near``'s error is far
    below an ulp of the result. An infinite ``far`` (a finite number beyond the
    compute dtype's range) makes the ramp ``far`` at every ``k > 0``.

    Eight numbers: stacked in one array, more would not fuse in XLA.

    Attributes:
        flags: ``1`` if ``near`` is ``start`` (``k = t``; else it is ``stop`` and
            ``k = total - t``), plus ``2`` if ``far`` is +inf, ``4`` if -inf.
        near: The end of smaller magnitude, unscaled.
        near_scaled: ``near * 2**-E``.
        delta_hi: ``(far - near) * 2**-E / total`` as a double word, high part.
        delta_lo: Its low part.
        unscale: ``2**E``.
        total_hi: The number of steps as a double word (exact below 2**48 for
            float32, 2**106 for float64), high part; 0 for no ramp.
        total_lo: Its low part.
    """

    flags: jax.Array
    near: jax.Array
    near_scaled: jax.Array
    delta_hi: jax.Array
    delta_lo: jax.Array
    unscale: jax.Array
    total_hi: jax.Array
    total_lo: jax.Array


def prepare_ramp(
    start: Any, stop: Any, steps: tuple[Any, Any], dtype: Any, *, host: bool = False
) -> Ramp:
    """Computes the constants of the ramp from ``start`` to ``stop`` over ``steps``.

    Args:
        start: A finite scalar, the value at ``t = 0``; converted to ``dtype``.
        stop: A finite scalar, the value at ``t = steps``; converted to ``dtype``.
        steps: ``(hi, lo)``, the int32 and uint32 words of an integer in
            ``[0, 2**63 - 1]``; 0 makes a ramp that :func:`linear` never reaches.
        dtype: The compute dtype, float32 or float64 (which needs x64).
        host: compute with NumPy, for known scalars: the same operations, the
            same bits, no program.
    """
    fmt = format_for(dtype)
    if host:
        fmt = fmt.on_host()
    ops = fmt.ops
    start, stop, hi, lo = opaque_scalars(start, stop, steps, fmt)
    # A subnormal end is 0, as arithmetic in a program on CPU reads it.
    start, stop = flush(start, fmt), flush(stop, fmt)
    from_start = ops.abs(start) <= ops.abs(stop)
    near, far = ops.where(from_start, start, stop), ops.where(from_start, stop, start)
    zero = ops.bitcast(
        (
            ops.bitcast(ops.abs(far), fmt.int_dtype)
            | hi.astype(fmt.int_dtype)
            | (lo >> 1).astype(fmt.int_dtype)
        )
        & np.iinfo(fmt.int_dtype).min,
        fmt.dtype,
    )
    total = steps_double_word(hi, lo, fmt)
    some = total[0] > 0
    exponent = binade(far, fmt)

    def scaled(x: Any) -> Any:  # x * 2**-E in two exact steps
        half = exponent >> 1
        return x * power_of_two(-half, fmt) * power_of_two(half - exponent, fmt)

    # Far below the other end, the near one is 0 (it may be subnormal, which a
    # program flushes to 0): the same on the host.
    near_scaled = flush(scaled(near), fmt)
    # far - near, exactly, then divided by the steps (by 1 for no ramp), scaled
    # so that no intermediate is subnormal (see `scaled_div`).
    difference = two_sum(scaled(far), -near_scaled)
    divisor = (ops.where(some, total[0], fmt.dtype.type(1)), total[1])
    delta, e = scaled_div(difference, divisor, zero, fmt)
    unit = power_of_two(-e, fmt)
    delta = (flush(delta[0] * unit, fmt), flush(delta[1] * unit, fmt))
    infinite = ops.isinf(far)
    flags = (
        from_start.astype(fmt.dtype)
        + ops.where(infinite & (far > 0), fmt.dtype.type(2), fmt.dtype.type(0))
        + ops.where(infinite & (far < 0), fmt.dtype.type(4), fmt.dtype.type(0))
    )
    return Ramp(
        flags=flags,
        near=near,
        near_scaled=near_scaled,
        delta_hi=delta[0],
        delta_lo=delta[1],
        unscale=power_of_two(exponent, fmt),
        total_hi=total[0],
        total_lo=total[1],
    )


def ramp_reaches(ramp: Ramp, t: DW) -> jax.Array:
    """Whether ``t < total``: the ramp is the value at ``t``. Exact for double
    words made by :func:`unsigned_double_word` or with a float and a zero."""
    below: jax.Array = (t[0] < ramp.total_hi) | (
        (t[0] == ramp.total_hi) & (t[1] < ramp.total_lo)
    )
    return below


def scaled_linear(ramp: Ramp, t: DW) -> jax.Array:
    """``start + (stop - start) * t / total`` elementwise, for ``0 <= t < total``;
    within 1 ulp when ``start`` and ``stop`` do not have opposite signs."""
    fmt = format_for(ramp.near.dtype)
    # The steps left, exactly (integers below 2**48, or a float step's own bits).
    high, low = two_sum(ramp.total_hi, -t[0])
    remaining = fast_two_sum(high, low + (ramp.total_lo - t[1]))
    flags = ramp.flags.astype(np.int32)
    from_start = (flags & 1) != 0
    k_hi = jnp.where(from_start, t[0], remaining[0])
    k_lo = jnp.where(from_start, t[1], remaining[1])
    # +-0.0 from the step's bits: the compiler cannot prove it zero.
    zero = lax.bitcast_convert_type(
        lax.bitcast_convert_type(k_hi, fmt.int_dtype) & np.iinfo(fmt.int_dtype).min,
        fmt.dtype,
    )
    # k * delta = p + e exactly for k_hi * delta_hi, plus the small cross terms.
    product = unfused(k_hi * ramp.delta_hi, zero)
    k_split = split(k_hi, fmt)
    d_split = split(ramp.delta_hi, fmt)
    error = (
        ((k_split[0] * d_split[0] - product) + k_split[0] * d_split[1])
        + k_split[1] * d_split[0]
    ) + k_split[1] * d_split[1]
    cross = unfused(k_hi * ramp.delta_lo, zero) + unfused(k_lo * ramp.delta_hi, zero)
    total, rest = two_sum(ramp.near_scaled, product)
    value = (total + (rest + (error + cross))) * ramp.unscale
    value = jnp.where((flags & 2) != 0, fmt.dtype.type(np.inf), value)
    value = jnp.where((flags & 4) != 0, fmt.dtype.type(-np.inf), value)
    at_near: jax.Array = jnp.where((k_hi == 0) & (k_lo == 0), ramp.near, value)
    return at_near


@jax.custom_jvp
def linear(ramp: Ramp, start: Any, stop: Any, t: DW) -> jax.Array:
    """:func:`scaled_linear` with the analytic derivatives, as the decay has them:
    ``d/dstart = 1 - t/total``, ``d/dstop = t/total`` and ``d/dt = (stop -
    start) / total``. ``ramp`` gets none (pass it through ``lax.stop_gradient``);
    the tangent of ``t`` is that of its high word."""
    del start, stop
    return scaled_linear(ramp, t)


def _linear_jvp(
    primals: tuple[Any, ...], tangents: tuple[Any, ...]
) -> tuple[jax.Array, jax.Array]:
    ramp, start, stop, t = primals
    start_dot, stop_dot, t_dot = tangents[1], tangents[2], tangents[3][0]
    value = scaled_linear(ramp, t)
    tangent = jnp.zeros_like(value)
    inverse = jnp.where(ramp.total_hi > 0, 1 / ramp.total_hi, 0)
    fraction = t[0] * inverse
    # 1 - t/total, without the cancellation near the end of the ramp.
    remaining = (ramp.total_hi - t[0]) + (ramp.total_lo - t[1])
    if not isinstance(start_dot, jax.custom_derivatives.SymbolicZero):
        tangent = tangent + remaining * inverse * start_dot
    if not isinstance(stop_dot, jax.custom_derivatives.SymbolicZero):
        tangent = tangent + fraction * stop_dot
    if not isinstance(t_dot, jax.custom_derivatives.SymbolicZero):
        slope = (jnp.asarray(stop) - jnp.asarray(start)) * inverse
        tangent = tangent + slope.astype(value.dtype) * t_dot
    return value, tangent


linear.defjvp(_linear_jvp, symbolic_zeros=True)


def _formula(config: Any, rest: str) -> str:
    peak = getattr(config, config.family.peak)
    start = getattr(config, config.family.start or "warmup_init")
    return (
        f"warmup {float(start):.6g} -> {float(peak):.6g} to step "
        f"{config.warmup_steps}, then {rest}"
    )


WARMUP = Piece(
    PART,
    Kernel(_prepare, _evaluate),
    used=lambda values: not _steps.known_zero(values["warmup_steps"]),
    length=lambda config: int(config.warmup_steps),
    formula=_formula,
)
"""The warmup piece: used by a config unless its `warmup_steps` is known to be 0."""
