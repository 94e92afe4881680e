"""Known numbers are prepared on the host, by NumPy, with the operations of the
prepare program: the two give the same constants, bit for bit, for every config
(the program prepares traced numbers, such as configs built inside `vmap`)."""

import dataclasses
import functools

import jax
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from jaxdecay import _divide, _exact, _program, _warmup
from jaxdecay._dw import format_for
from jaxdecay._program import compute_dtype

UNSIGNED = np.uint64 if jax.config.jax_enable_x64 else np.uint32


def floats(**kwargs):
    """Any float of the compute dtype the kernels take, subnormals and the
    extremes included."""
    width = 64 if compute_dtype() == np.float64 else 32
    return st.floats(width=width, allow_nan=False, **kwargs)


def integers():
    """An integer of [1, 2**63 - 1], small ones and powers of two often."""
    return st.one_of(
        st.integers(1, 2**12),
        st.integers(0, 62).map(lambda k: 2**k),
        st.integers(1, 2**63 - 1),
    )


def words(value):
    return np.int32(value >> 32), np.uint32(value & 0xFFFFFFFF)


def assert_same_bits(host, traced):
    leaves, treedef = jax.tree.flatten(host)
    other, other_treedef = jax.tree.flatten(traced)
    assert treedef == other_treedef
    for name, a, b in zip(range(len(leaves)), leaves, other, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert (a.dtype, a.shape) == (b.dtype, b.shape), name
        assert a.tobytes() == b.tobytes(), (name, a, b)


@functools.cache
def _power_program():
    dtype = compute_dtype()
    return jax.jit(lambda s, r, hi, lo: _exact.prepare(s, r, (hi, lo), dtype))


@settings(max_examples=300, deadline=None)
@given(
    scale=floats(),
    rate=floats(min_value=0),
    steps=integers(),
)
@example(scale=0.1, rate=np.nextafter(np.float32(1), np.float32(0)), steps=2**62 + 1)
@example(scale=1e-40, rate=1 + 2**-23, steps=2**61 - 3)
@example(scale=np.inf, rate=np.inf, steps=1)
@example(scale=-0.0, rate=0.0, steps=7)
def test_the_power_is_prepared_alike(scale, rate, steps):
    """Rates near 1 over 2**62 steps make the quotient's low-order parts subnormal
    in an unscaled division: the preparation keeps them normal on both sides."""
    dtype = compute_dtype()
    scale, rate = dtype.type(scale), dtype.type(rate)
    with np.errstate(all="ignore"):
        host = _exact.prepare(scale, rate, words(steps), dtype, host=True)
    assert_same_bits(host, _power_program()(scale, rate, *words(steps)))


@functools.cache
def _ramp_program():
    dtype = compute_dtype()
    return jax.jit(lambda a, b, hi, lo: _warmup.prepare_ramp(a, b, (hi, lo), dtype))


@settings(max_examples=300, deadline=None)
@given(
    start=floats(allow_infinity=False),
    stop=floats(allow_infinity=False),
    steps=st.one_of(st.just(0), integers()),
)
@example(start=1e-30, stop=1e10, steps=3)
@example(start=0.1, stop=np.nextafter(np.float32(0.1), np.float32(1)), steps=2**62)
def test_the_warmup_line_is_prepared_alike(start, stop, steps):
    """An end far below the other (a scaled value that would be subnormal) is 0
    on both sides, and so are the low-order parts of a tiny slope."""
    dtype = compute_dtype()
    start, stop = dtype.type(start), dtype.type(stop)
    with np.errstate(all="ignore"):
        host = _warmup.prepare_ramp(start, stop, words(steps), dtype, host=True)
    assert_same_bits(host, _ramp_program()(start, stop, *words(steps)))


@functools.cache
def _divisor_program():
    return jax.jit(lambda hi, lo: _divide.prepare_divisor(hi, lo, UNSIGNED))


@settings(max_examples=300, deadline=None)
@given(divisor=integers())
@example(divisor=1)
@example(divisor=2**32 - 1)
@example(divisor=2**32)
@example(divisor=2**32 + 1)
def test_the_staircase_divisor_is_prepared_alike(divisor):
    host = _divide.prepare_divisor_host(*words(divisor), UNSIGNED)
    assert_same_bits(host, _divisor_program()(*words(divisor)))


TINY = float(np.finfo(compute_dtype()).smallest_normal)


@pytest.mark.parametrize(
    "arguments",
    [
        dict(initial_learning_rate=-0.3, decay_rate=1.5, end_learning_rate=-50.0),
        # Subnormal numbers count as zeros of their sign, on both sides.
        dict(initial_learning_rate=-TINY / 3, decay_rate=1.5),
        dict(
            initial_learning_rate=0.3, decay_rate=TINY / 5, end_learning_rate=TINY / 2
        ),
    ],
)
def test_a_config_prepared_on_the_host_and_in_a_program_gives_the_same_arrays(
    arguments,
):
    """The whole preparation of a config with every part, on the host and in the
    prepare program."""
    import jaxdecay

    config = jaxdecay.ExponentialDecay(
        decay_steps=2**40 + 7, staircase=True, warmup_steps=3, **arguments
    )
    schedule = config._schedule
    floats_, words_ = _program.pack(schedule._plan, schedule._arguments)
    host = _program._prepare_host(schedule._plan, floats_, words_)
    traced = _program._prepare_program(schedule._plan)(floats_, words_)
    assert len(host) == 2 * len(schedule._plan.parts)
    assert_same_bits(host, traced)
    assert format_for(compute_dtype()).on_host() == format_for(compute_dtype())
    # The constants of the zeros themselves (a rate cannot be 0: test_paths.py
    # checks that a subnormal one gives the values of 0).
    zeros = {
        k: 0.0 * v if abs(v) < TINY and k != "decay_rate" else v
        for k, v in arguments.items()
    }
    plain = dataclasses.replace(config, **zeros)._schedule
    assert_same_bits(
        host,
        _program._prepare_host(
            plain._plan, *_program.pack(plain._plan, plain._arguments)
        ),
    )
