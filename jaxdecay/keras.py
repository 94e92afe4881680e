"""jaxdecay's schedules as Keras 3 `LearningRateSchedule`s (JAX backend).

Importing this module makes and registers with Keras a class for every schedule
family, named as the family (`jaxdecay.keras.ExponentialDecay`), so that Keras loads
what it saved of `schedule.to_keras()`: import it before `keras.models.load_model`
or `keras.saving.deserialize_keras_object`. A class takes the family's arguments,
as Keras' class of the same name does.

Raises (on import):
  ImportError: Keras is not installed.
  RuntimeError: Keras runs on a backend other than JAX.
"""

from __future__ import annotations

from typing import Any

from jaxdecay import _keras, _registry

CLASSES: dict[str, type[Any]] = {
    name: _keras.keras_class(cls) for name, cls in _registry.FAMILIES.items()
}

__all__ = list(CLASSES)


def __getattr__(name: str) -> type[Any]:
    if name in CLASSES:
        return CLASSES[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *CLASSES])
