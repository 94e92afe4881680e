"""Keras' `LearningRateSchedule` around any schedule class, made on first use.

Keras' optimizers pass the step only to their own `LearningRateSchedule`
subclasses, and Keras saves an object as its class's module and registered name.
`keras_class(cls)` makes, once per schedule class, a `LearningRateSchedule` named
as the class that calls the schedule and forwards its config, registered with
Keras as `jaxdecay>` + the name, in the module `jaxdecay.keras` (which makes one
for every family when imported, so that Keras finds them when it loads a model).

Keras is imported only here, and only when a class is made: the package depends on
jax and numpy alone. A schedule class is read by what it does (`__name__`,
`get_config`, `from_config`, and calling an instance), so this module imports none.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from jaxdecay import _validation

# What Keras writes for these classes, read back (as strings) by the loader.
MODULE = "jaxdecay.keras"
PACKAGE = "jaxdecay"


def registered_name(class_name: str) -> str:
    """The name Keras registers and writes for the class of `class_name`."""
    return f"{PACKAGE}>{class_name}"


class KerasSchedule:
    """A jaxdecay schedule as a Keras `LearningRateSchedule`: called with the
    optimizer's step, it returns the schedule's value, bit for bit; its config is
    the schedule's. Built with the family's arguments, as Keras' class of the same
    name, or around a schedule by `of` (what `to_keras()` returns).

    Attributes:
      schedule: the jaxdecay schedule.
    """

    schedule_class: ClassVar[Any]
    schedule: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.schedule = self.schedule_class(*args, **kwargs)

    @classmethod
    def of(cls, schedule: Any) -> Any:
        """The Keras schedule of `schedule`, an instance of `schedule_class`."""
        bridge = cls.__new__(cls)
        bridge.schedule = schedule
        return bridge

    def __call__(self, step: Any) -> Any:
        return self.schedule(step)

    def get_config(self) -> dict[str, Any]:
        return self.schedule.get_config()  # type: ignore[no-any-return]

    @classmethod
    def from_config(cls, config: Any) -> Any:
        return cls.of(cls.schedule_class.from_config(config))

    def __repr__(self) -> str:
        return f"{MODULE}.{type(self).__name__}.of({self.schedule!r})"


_CLASSES: dict[Any, type[Any]] = {}  # schedule class -> its Keras class
_LOCK = threading.Lock()  # one class per schedule class, whichever thread asks


def keras_class(schedule_class: Any) -> type[Any]:
    """The Keras class of a schedule class, made and registered with Keras once.

    Raises:
      ImportError: Keras is not installed.
      RuntimeError: Keras runs on a backend other than JAX.
    """
    with _LOCK:
        if schedule_class not in _CLASSES:
            _CLASSES[schedule_class] = _make(schedule_class)
        return _CLASSES[schedule_class]


def _make(schedule_class: Any) -> type[Any]:
    keras = _keras()
    name = schedule_class.__name__
    cls = type(
        name,
        (KerasSchedule, keras.optimizers.schedules.LearningRateSchedule),
        {
            "__module__": MODULE,
            "__qualname__": name,
            "__doc__": f"jaxdecay's {name} as a Keras `LearningRateSchedule`.",
            "schedule_class": schedule_class,
        },
    )
    registered: type[Any] = keras.saving.register_keras_serializable(PACKAGE)(cls)
    return registered


def _keras() -> Any:
    """Keras, on its JAX backend: the schedules are JAX programs, which Keras on
    TensorFlow or PyTorch cannot run inside its own."""
    try:
        import keras
    except ModuleNotFoundError as error:
        if error.name != "keras":
            raise  # Keras is there, a library its backend needs is not
        raise _validation.missing_extra("keras", "keras") from error
    backend = keras.backend.backend()
    if backend != "jax":
        raise RuntimeError(
            f"jaxdecay's Keras schedules need Keras' JAX backend, and Keras runs on "
            f"{backend!r}: the schedules are JAX programs. Set KERAS_BACKEND=jax "
            "before Keras is imported"
        )
    return keras
