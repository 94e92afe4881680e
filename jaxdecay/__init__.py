"""Keras' learning-rate schedules, exact and jit-able in JAX."""

# Imported for its effect: registers the schedule classes with jax.export.
from jaxdecay import _export as _export
from jaxdecay._cosine import CosineDecay as CosineDecay
from jaxdecay._cosine import cosine_decay as cosine_decay
from jaxdecay._exponential import ExponentialDecay as ExponentialDecay
from jaxdecay._exponential import exponential_decay as exponential_decay
from jaxdecay._interop import ExponentialDecayConfig as ExponentialDecayConfig
from jaxdecay._inverse_time import InverseTimeDecay as InverseTimeDecay
from jaxdecay._inverse_time import inverse_time_decay as inverse_time_decay
from jaxdecay._optax_state import current_learning_rate as current_learning_rate
from jaxdecay._piecewise import PiecewiseConstantDecay as PiecewiseConstantDecay
from jaxdecay._piecewise import piecewise_constant_decay as piecewise_constant_decay
from jaxdecay._polynomial import PolynomialDecay as PolynomialDecay
from jaxdecay._polynomial import polynomial_decay as polynomial_decay
from jaxdecay._program import Schedule as Schedule
from jaxdecay._registry import deserialize as deserialize
from jaxdecay._registry import serialize as serialize

__version__ = "0.1.0"

__all__ = [
    "CosineDecay",
    "ExponentialDecay",
    "ExponentialDecayConfig",
    "InverseTimeDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "Schedule",
    "__version__",
    "cosine_decay",
    "current_learning_rate",
    "deserialize",
    "exponential_decay",
    "inverse_time_decay",
    "piecewise_constant_decay",
    "polynomial_decay",
    "serialize",
]
