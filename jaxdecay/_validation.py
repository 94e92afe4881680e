"""Argument checks, and the bounded repr their messages show values in.

Each checker returns the value in a normal form, so the builder and the dataclass
(which stores what these return) agree on what a valid value is. Concrete values are
checked; traced ones (inside jit, vmap, grad) can only have their dtype checked, and
pass through so that tracing is never broken.

optax calls some arguments otherwise than Keras (whose names jaxdecay uses). Passed
to jaxdecay, they would get Python's bare "unexpected keyword argument";
`reject_optax_names` names the field to use instead.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import math
import numbers
import reprlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

INT64_MAX = 2**63 - 1


class _BoundedRepr(reprlib.Repr):
    """reprlib's repr, bounded in depth and length, with dicts in their own order
    and huge ints summarized (their repr is slow, and refused past 4300 digits)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxother = self.maxlong = 80
        self.maxdict = self.maxlist = self.maxtuple = 6
        self.maxset = self.maxfrozenset = 6

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 256:
            return f"<int of {x.bit_length()} bits>"
        return super().repr_int(x, level)

    def repr_bytes(self, x: bytes, level: int) -> str:
        return repr(x[: self.maxstring]) + ("..." if len(x) > self.maxstring else "")

    def repr_bytearray(self, x: bytearray, level: int) -> str:
        return f"bytearray({self.repr_bytes(bytes(x[: self.maxstring + 1]), level)})"

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        items = [
            f"{self.repr1(key, level - 1)}: {self.repr1(value, level - 1)}"
            for key, value in itertools.islice(x.items(), self.maxdict)
        ]
        if len(x) > self.maxdict:
            items.append("...")
        return "{" + ", ".join(items) + "}"


_BOUNDED_REPR = _BoundedRepr()


def preview(value: Any) -> str:
    """A repr short enough for an error message, whatever the data holds: bounded in
    time and length however large or deeply nested `value` is."""
    text = _BOUNDED_REPR.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def key_list(keys: Iterable[Any]) -> str:
    """Keys for a message, as a sorted list of reprs; at most 10, each bounded."""
    keys = list(keys)
    strings = heapq.nsmallest(10, (key for key in keys if isinstance(key, str)))
    others = itertools.islice((key for key in keys if not isinstance(key, str)), 10)
    shown = ([preview(key) for key in strings] + sorted(map(preview, others)))[:10]
    return "[" + ", ".join(shown) + (", ..." if len(keys) > 10 else "") + "]"


def one_of(names: Iterable[str]) -> str:
    """The allowed names for a message: `'a'` for one, `one of ['a', 'b']` for more."""
    names = list(names)
    return repr(names[0]) if len(names) == 1 else f"one of {names}"


def field_name(key: Any) -> str:
    """A key as a field name in a message: bare if it looks like one."""
    if isinstance(key, str) and key.isidentifier() and len(key) <= 80:
        return key
    return preview(key)


def is_traced(value: Any) -> bool:
    """Whether `value` is a JAX tracer: abstract inside a transformation."""
    return isinstance(value, jax.core.Tracer)


def _scalar(value: Any) -> Any:
    """Unwraps a concrete 0-d NumPy or JAX array into a NumPy scalar."""
    concrete = isinstance(value, (np.ndarray, jax.Array)) and not is_traced(value)
    return np.asarray(value)[()] if concrete and value.ndim == 0 else value


def _describe(value: Any) -> str:
    if isinstance(value, (np.ndarray, jax.Array)):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    return f"{preview(value)} of type {type(value).__name__}"


def _check_array(name: str, value: Any, kind: str) -> Any:
    """Checks the dtype of an array hyperparameter (a batch of configs, or traced)."""
    dtype = value.dtype
    if kind == "integer":
        ok = jnp.issubdtype(dtype, jnp.integer)
    else:
        ok = jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)
    if not ok or dtype == np.bool_:
        raise TypeError(f"{name} must be {kind}, got {_describe(value)}")
    return value


def _first_bad(values: np.ndarray[Any, Any], bad: np.ndarray[Any, Any]) -> Any:
    return values[np.unravel_index(np.argmax(bad), bad.shape)].item()


def check_integer(name: str, value: Any, *, minimum: int, maximum: int) -> Any:
    """Returns `value` as a Python int (or an integer array), or raises."""
    value = _scalar(value)
    if isinstance(value, (np.ndarray, jax.Array)):
        _check_array(name, value, "integer")
        if not is_traced(value):
            values = np.asarray(value)
            bad = (values < minimum) | (values > maximum)
            if bad.any():
                raise ValueError(
                    f"{name} must be integers in [{minimum}, {maximum}], "
                    f"got {_first_bad(values, bad)!r} in {_describe(value)}"
                )
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (numbers.Integral, np.integer)
    ):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    number = int(value)
    if not minimum <= number <= maximum:
        raise ValueError(
            f"{name} must be an integer in [{minimum}, {maximum}], "
            f"got {preview(number)}"
        )
    return number


def check_real(name: str, value: Any, *, positive: bool = False) -> Any:
    """Returns a finite real `value` as a Python float or a NumPy float scalar (or a
    float array).

    NumPy and JAX float scalars keep their dtype (it is the schedule's result dtype);
    Python and NumPy integers become Python floats.
    """
    value = _scalar(value)
    if isinstance(value, (np.ndarray, jax.Array)):
        _check_array(name, value, "real")
        if not is_traced(value):
            values = np.asarray(value).astype(np.float64)
            bad = ~np.isfinite(values) | ((values <= 0) if positive else False)
            if bad.any():
                need = "finite and > 0" if positive else "finite"
                raise ValueError(
                    f"{name} must be {need}, got {_first_bad(values, bad)!r} in "
                    f"{_describe(value)}"
                )
        return value
    if not is_float_scalar(value):
        if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (numbers.Real, np.integer)
        ):
            raise TypeError(f"{name} must be a real number, got {_describe(value)}")
        try:
            value = float(value)
        except OverflowError:
            raise ValueError(f"{name} must be finite, got {preview(value)}") from None
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def is_float_scalar(value: Any) -> bool:
    """Whether `value` is a NumPy float scalar (ml_dtypes such as bfloat16 too)."""
    return isinstance(value, np.generic) and jnp.issubdtype(value.dtype, jnp.floating)


def check_bool(name: str, value: Any) -> bool:
    """Returns `value` as a Python bool; refuses anything that is not a bool."""
    value = _scalar(value)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {_describe(value)}")
    return bool(value)


def check_name(value: Any) -> str | None:
    """Returns the schedule's name: a str, or None as TF 2 configs write it."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"name must be a str or None, got {_describe(value)}")
    return value


Check = Callable[[str, Any], Any]
"""A field's validator: `(name, value) -> the value in normal form`, or raises."""


def real(*, positive: bool = False, optional: bool = False) -> Check:
    """The validator of a real field: finite (and > 0 if `positive`); None too if
    `optional`."""

    def check(name: str, value: Any) -> Any:
        if optional and value is None:
            return None
        return check_real(name, value, positive=positive)

    return check


def non_negative(reason: str) -> Check:
    """The validator of a real field that must be finite and >= 0: `reason` says
    what a negative value would make of the schedule."""

    def check(name: str, value: Any) -> Any:
        value = check_real(name, value)
        if is_traced(value):
            return value
        values = np.asarray(value, np.float64)
        if (values < 0).any():
            shown = value if values.ndim == 0 else float(values[values < 0][0])
            raise ValueError(f"{name} must be >= 0 ({reason}), got {shown!r}")
        return value

    return check


def integer(*, minimum: int, maximum: int = INT64_MAX) -> Check:
    """The validator of an integer field in [minimum, maximum]."""
    return functools.partial(check_integer, minimum=minimum, maximum=maximum)


MAX_COUNT = 10_000
"""The most numbers a sequence field holds: its count is structure (a program
per count), and each number costs every step a comparison."""


def sequence(element: Check, *, maximum: int = MAX_COUNT) -> Check:
    """The validator of a field that is a tuple of numbers: a list, tuple or 1-d
    array of 1 to `maximum` numbers, each checked by `element` (named
    `name[i]`), returned as a tuple; an array of 2 or more dimensions is a batch
    of configs (the last axis the numbers), checked by dtype, and a traced one
    passes."""

    def check(name: str, value: Any) -> Any:
        if isinstance(value, (np.ndarray, jax.Array)) and (
            value.ndim >= 2 or is_traced(value)
        ):
            if value.ndim == 0:
                raise TypeError(f"{name} must be a list of numbers, got a scalar")
            return element(name, value)  # the dtype (and a known batch's values)
        if isinstance(value, (np.ndarray, jax.Array)) and value.ndim == 1:
            value = list(np.asarray(value))
        # Any sequence but text (an OmegaConf ListConfig too).
        if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
            raise TypeError(f"{name} must be a list of numbers, got {_describe(value)}")
        if not 1 <= len(value) <= maximum:
            raise ValueError(
                f"{name} must have 1 to {maximum} entries, got {len(value)}"
            )
        return tuple(element(f"{name}[{i}]", x) for i, x in enumerate(list(value)))

    return check


def boolean(name: str, value: Any) -> bool:
    """The validator of a bool field."""
    return check_bool(name, value)


def label(name: str, value: Any) -> str | None:
    """The validator of the schedule's name: a str, or None as TF 2 writes it."""
    return check_name(value)


def check_keys(
    subject: str,
    keys: Iterable[Any],
    *,
    known: Sequence[str],
    required: Iterable[str],
    plural: bool = False,
    bounded: bool = False,
) -> None:
    """Refuses unknown keys, then missing ones, naming `subject` ("config").

    Args:
      subject: what holds the keys, as the message names it.
      keys: the keys given.
      known: the keys allowed, in the order the message lists them.
      required: the keys that must be given.
      plural: whether `subject` is plural ("optax arguments have ...").
      bounded: show the unknown keys as `key_list` does, for data of any size.

    Raises:
      ValueError: a key is unknown or missing.
    """
    keys = set(keys)
    has, is_ = ("have", "are") if plural else ("has", "is")
    unknown = keys - set(known)
    if unknown:
        shown = key_list(unknown) if bounded else str(sorted(map(str, unknown)))
        raise ValueError(
            f"{subject} {has} unknown keys {shown}; known keys are {list(known)}"
        )
    missing = set(required) - keys
    if missing:
        raise ValueError(f"{subject} {is_} missing the keys {sorted(missing)}")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def reject_optax_names(
    function_name: str, kwargs: Mapping[str, Any], renamed: Mapping[str, str]
) -> None:
    """Raises a `TypeError` naming jaxdecay's field if `kwargs` uses optax's name.

    Args:
      function_name: the callable as the user wrote it, e.g. "ExponentialDecay".
      kwargs: the keyword arguments it was called with.
      renamed: optax's name -> jaxdecay's (Keras') name, for the names that differ.

    Raises:
      TypeError: a key of `kwargs` is one of optax's names in `renamed`.

    Examples:
      >>> reject_optax_names(
      ...     "exponential_decay", {"transition_steps": 1000},
      ...     {"transition_steps": "decay_steps"})
      Traceback (most recent call last):
      ...
      TypeError: exponential_decay() got an unexpected keyword argument \
'transition_steps'; jaxdecay calls it 'decay_steps' (Keras' name for optax's \
transition_steps)
    """
    for name in kwargs:
        if name in renamed:
            raise TypeError(
                f"{function_name}() got an unexpected keyword argument {name!r}; "
                f"jaxdecay calls it {renamed[name]!r} (Keras' name for optax's "
                f"{name})"
            )


def rejects_optax_names(
    function_name: str, renamed: Mapping[str, str]
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorates a function so that optax's names raise `reject_optax_names`' error.

    The wrapper keeps the function's name, docstring and signature
    (`inspect.signature` follows `__wrapped__`).
    """

    def decorate(function: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(function)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            if kwargs:
                reject_optax_names(function_name, kwargs, renamed)
            return function(*args, **kwargs)

        return wrapper

    return decorate


def missing_extra(package: str, extra: str) -> ImportError:
    """The error for an optional library that is not installed: names the extra."""
    return ImportError(
        f"this needs {package}, which is not installed: pip install 'jaxdecay[{extra}]'"
    )
