"""Keras' ExponentialDecay learning-rate schedule, exact and jit-able in JAX."""

# Imported for its effect: registers ExponentialDecay with jax.export.
from jaxdecay import _export as _export
from jaxdecay._config import ExponentialDecay as ExponentialDecay
from jaxdecay._config import deserialize as deserialize
from jaxdecay._config import serialize as serialize
from jaxdecay._interop import ExponentialDecayConfig as ExponentialDecayConfig
from jaxdecay._optax_state import current_learning_rate as current_learning_rate
from jaxdecay._schedule import Schedule as Schedule
from jaxdecay._schedule import exponential_decay as exponential_decay

__version__ = "0.1.0"

__all__ = [
    "ExponentialDecay",
    "ExponentialDecayConfig",
    "Schedule",
    "__version__",
    "current_learning_rate",
    "deserialize",
    "exponential_decay",
    "serialize",
]
