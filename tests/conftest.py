"""Shared test setup: Keras on the JAX backend, strict dtype promotion, jit/eager."""

import os

# Before anything imports keras: Keras 3 reads its backend once, at import time.
os.environ.setdefault("KERAS_BACKEND", "jax")
# The `jaxdecay` commands the tests run compile afresh and write no cache into the
# home folder; test_cli.py checks the cache in a folder of its own.
os.environ.setdefault("JAXDECAY_NO_CACHE", "1")

import jax
import jax.numpy as jnp
import numpy as np
import pytest

# Strict promotion for the whole session: jaxdecay and optax run under it. Two
# places where a *reference* library breaks it are handled locally, never by
# loosening it for jaxdecay: Keras' staircase under x64 (test_keras.py runs only the
# Keras reference under standard promotion), and optax's SGD update, which mixes a
# float64 learning rate with float32 params (test_optax.py keeps params in JAX's
# default float dtype).
jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture(params=["jit", "eager"])
def variant(request):
    """Wraps a function in `jax.jit`, or leaves it to run eagerly."""
    if request.param == "jit":
        return jax.jit
    return lambda fn: fn


@pytest.fixture
def float_dtype():
    """JAX's default float: float32, or float64 under `JAX_ENABLE_X64=1`."""
    return np.dtype(jnp.result_type(float))


@pytest.fixture
def int_dtype():
    """JAX's default integer: int32, or int64 under `JAX_ENABLE_X64=1`."""
    return np.dtype(jnp.result_type(int))


@pytest.fixture
def rtol(float_dtype):
    """Relative tolerance against an independent float reference of the same dtype.

    float32: 2e-6, about 16 ulp. The reference (optax / Keras) computes
    `decay_rate ** p` in float32 with `p` rounded to float32, so its relative error
    is about |p * ln(decay_rate)| * 2**-24 plus a few ulp, while jaxdecay is within
    1 ulp of the exact value (test_numerics.py). The parity configs keep
    |p * ln(decay_rate)| below ~10 over the tested steps, so the reference is within
    ~1e-6 of the truth.
    float64: 1e-13, the same argument with 2**-53 (~450 ulp of headroom).
    """
    return 2e-6 if float_dtype == np.float32 else 1e-13
