"""Errors for a mistake users make often: optax's argument names.

optax's `exponential_decay` calls three of the arguments otherwise than Keras (whose
names jaxdecay uses). Passed to jaxdecay, they would get Python's bare "unexpected
keyword argument"; `reject_optax_names` names the field to use instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

# optax's name -> jaxdecay's (Keras') name, for the arguments named differently.
OPTAX_NAMES = {
    "init_value": "initial_learning_rate",
    "transition_steps": "decay_steps",
    "end_value": "end_learning_rate",
}

_P = ParamSpec("_P")
_R = TypeVar("_R")


def reject_optax_names(function_name: str, kwargs: Mapping[str, Any]) -> None:
    """Raises a `TypeError` naming jaxdecay's field if `kwargs` uses optax's name.

    Args:
      function_name: the callable as the user wrote it, e.g. "ExponentialDecay".
      kwargs: the keyword arguments it was called with.

    Raises:
      TypeError: a key of `kwargs` is one of optax's names in `OPTAX_NAMES`.

    Examples:
      >>> reject_optax_names("exponential_decay", {"transition_steps": 1000})
      Traceback (most recent call last):
      ...
      TypeError: exponential_decay() got an unexpected keyword argument \
'transition_steps'; jaxdecay calls it 'decay_steps' (Keras' name for optax's \
transition_steps)
    """
    for name in kwargs:
        if name in OPTAX_NAMES:
            raise TypeError(
                f"{function_name}() got an unexpected keyword argument {name!r}; "
                f"jaxdecay calls it {OPTAX_NAMES[name]!r} (Keras' name for optax's "
                f"{name})"
            )


def rejects_optax_names(
    function_name: str,
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorates a function so that optax's names raise `reject_optax_names`' error.

    The wrapper keeps the function's name, docstring and signature
    (`inspect.signature` follows `__wrapped__`).
    """

    def decorate(function: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(function)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            if kwargs:
                reject_optax_names(function_name, kwargs)
            return function(*args, **kwargs)

        return wrapper

    return decorate
