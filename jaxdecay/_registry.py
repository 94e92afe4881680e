"""The schedule families by Keras' `class_name`: what serialization, the command
line, YAML, OmegaConf and `jax.export` read to know every family.

Adding a family is one entry in `FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jaxdecay import _serialize
from jaxdecay._config import Config
from jaxdecay._cosine import CosineDecay
from jaxdecay._exponential import ExponentialDecay
from jaxdecay._inverse_time import InverseTimeDecay
from jaxdecay._piecewise import PiecewiseConstantDecay
from jaxdecay._polynomial import PolynomialDecay
from jaxdecay._validation import preview

FAMILIES: Mapping[str, type[Config]] = {
    cls.__name__: cls
    for cls in (
        ExponentialDecay,
        InverseTimeDecay,
        PolynomialDecay,
        PiecewiseConstantDecay,
        CosineDecay,
    )
}


def serialize(schedule: Config) -> dict[str, Any]:
    """Returns `schedule` as a dict in Keras 3's serialized shape.

    `keras.optimizers.schedules.deserialize` loads the result as Keras' own class of
    the same name when the config has only Keras' keys (that is, when jaxdecay's
    extension keys, such as `transition_begin`, `end_learning_rate`, `warmup_steps`
    and `warmup_init`, are at their defaults). Otherwise the dict also has
    `"jaxdecay_format"`: the oldest format that reads those keys (1, or 2 for a
    warmup).

    Raises:
      TypeError: `schedule` is not a jaxdecay schedule class (a function returned
        by a builder such as `exponential_decay` holds no config to write).

    Examples:
      >>> import jaxdecay
      >>> jaxdecay.serialize(jaxdecay.ExponentialDecay(0.1, 1000, 0.5))["class_name"]
      'ExponentialDecay'
    """
    if type(schedule) not in FAMILIES.values():
        names = " or ".join(f"jaxdecay.{name}" for name in FAMILIES)
        raise TypeError(
            f"serialize takes a {names}, got {preview(schedule)} of type "
            f"{type(schedule).__name__}"
        )
    return _serialize.serialize(schedule)


def deserialize(data: Mapping[str, Any] | str | bytes) -> Any:
    """Reads a serialized schedule: a dict, or JSON text of one.

    Accepts Keras 3's shape (`module`, `class_name`, `config`, `registered_name`) and
    TF 2's (`class_name`, `config`; `"name": null` allowed). `class_name` must name a
    jaxdecay family (`ExponentialDecay`) and `module`, when given, one of the names
    Keras and jaxdecay write; they are compared as strings, never imported. A bare
    `get_config()` dict (no `class_name` or `config` key, some of the config's keys)
    is read as the family's `from_config` reads it.

    A `"jaxdecay_format"` newer than this version reads is refused, as are JSON text
    longer than 1 MiB (2**20 characters, or bytes) or nested deeper than 8 levels,
    integers of more than 100 digits, NaN and Infinity literals, and duplicate keys;
    all before anything is built.

    Raises:
      TypeError: the data or a value in it has the wrong type.
      ValueError: the text is not JSON or exceeds a limit, the format is newer, or
        a key or value is not allowed.

    Examples:
      >>> import jaxdecay
      >>> jaxdecay.deserialize('{"class_name": "ExponentialDecay", "config": '
      ...     '{"initial_learning_rate": 0.1, "decay_steps": 1000, "decay_rate": 0.5, '
      ...     '"staircase": false, "name": null}}')
      ExponentialDecay(initial_learning_rate=0.1, decay_steps=1000, decay_rate=0.5, \
staircase=False, name=None, transition_begin=0, end_learning_rate=None, \
warmup_steps=0, warmup_init=0.0)
    """
    return _serialize.deserialize(data, FAMILIES)
