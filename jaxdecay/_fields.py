"""A schedule's fields, each declared once with its role.

A field of a schedule dataclass is declared with `field(...)`, which puts its
`Role` on it (as flax's `struct.field(pytree_node=False)` does). Everything the
config layer needs about the fields (the pytree leaves and static fields, the
Keras keys and jaxdecay's extension keys, the required keys, the validators,
optax's names and the plain types of a schema) is read from the roles by `Spec`,
never listed a second time.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import typing
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from jaxdecay._validation import Check


class Optax(NamedTuple):
    """A field as an argument of an optax schedule: its name there, its place in
    that schedule's signature (optax orders its arguments otherwise than Keras), and
    the schedule."""

    name: str
    position: int
    schedule: str


@dataclasses.dataclass(frozen=True)
class Role:
    """What a field of a schedule is, said once on the field.

    Attributes:
      check: the validator: `(name, value) -> value in normal form`, or raises.
      leaf: a number the schedule's program reads (an integer as two words);
        static otherwise.
      keras: a Keras key, always written by `get_config`; an extension key is
        written only when it differs from its default.
      optax: the field's argument in each optax schedule that has one.
      format: the serialized format that introduced the key.
      part: the piece that reads the field (such as "warmup"), or None for the
        family itself.
      label: a static field that does not change the math (the schedule's name).
      sequence: a leaf that is a tuple of numbers, not one: the numbers are one
        leaf (an array along its last axis) and their count is structure.
    """

    check: Check
    leaf: bool
    keras: bool
    optax: tuple[Optax, ...] = ()
    format: int = 1
    part: str | None = None
    label: bool = False
    sequence: bool = False


_ROLE = "jaxdecay"  # the key of a field's role in its dataclass metadata


def field(
    *,
    check: Check,
    leaf: bool,
    keras: bool,
    optax: Optax | tuple[Optax, ...] = (),
    format: int = 1,
    part: str | None = None,
    label: bool = False,
    sequence: bool = False,
    default: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with its `Role`; `optax` is one argument or one per optax
    schedule."""
    arguments = (optax,) if isinstance(optax, Optax) else optax
    role = Role(check, leaf, keras, tuple(arguments), format, part, label, sequence)
    return dataclasses.field(default=default, metadata={_ROLE: role})


def role(item: dataclasses.Field[Any]) -> Role:
    """The role declared on a field."""
    declared: Role = item.metadata[_ROLE]
    return declared


@dataclasses.dataclass(frozen=True)
class Spec:
    """What the fields of one schedule class declare, derived once per class."""

    cls: type
    fields: tuple[dataclasses.Field[Any], ...]

    @classmethod
    def of(cls, schedule_class: type) -> Spec:
        return cls(schedule_class, dataclasses.fields(schedule_class))

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.fields)

    @functools.cached_property
    def leaves(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.fields if role(item).leaf)

    @functools.cached_property
    def static(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.fields if not role(item).leaf)

    @functools.cached_property
    def labels(self) -> tuple[str, ...]:
        """The static fields that do not change the math (the name)."""
        return tuple(n for n in self.static if role(self.field(n)).label)

    @functools.cached_property
    def structure(self) -> tuple[str, ...]:
        """The static fields that change the math (`staircase`, not `name`)."""
        return tuple(n for n in self.static if not role(self.field(n)).label)

    @functools.cached_property
    def math(self) -> tuple[str, ...]:
        """The fields the math reads: all but the labels."""
        return tuple(item.name for item in self.fields if not role(item).label)

    @functools.cached_property
    def sequences(self) -> tuple[str, ...]:
        """The leaves that are tuples of numbers (their counts are structure)."""
        return tuple(n for n in self.leaves if role(self.field(n)).sequence)

    @functools.cached_property
    def integer_leaves(self) -> frozenset[str]:
        return frozenset(n for n in self.leaves if self.number_type(n) is int)

    @functools.cached_property
    def keras_keys(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.fields if role(item).keras)

    @functools.cached_property
    def extension_keys(self) -> tuple[str, ...]:
        return tuple(item.name for item in self.fields if not role(item).keras)

    @property
    def known_keys(self) -> tuple[str, ...]:
        return self.keras_keys + self.extension_keys

    @functools.cached_property
    def required_keys(self) -> frozenset[str]:
        return frozenset(
            item.name
            for item in self.fields
            if item.default is dataclasses.MISSING
            and item.default_factory is dataclasses.MISSING
        )

    @functools.cached_property
    def formats(self) -> Mapping[str, int]:
        return {item.name: role(item).format for item in self.fields}

    def field(self, name: str) -> dataclasses.Field[Any]:
        return self.fields[self.names.index(name)]

    def part_leaves(self, part: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The float and the integer leaves that `part` reads (None: the family)."""
        leaves = [n for n in self.leaves if role(self.field(n)).part == part]
        floats = tuple(n for n in leaves if n not in self.integer_leaves)
        return floats, tuple(n for n in leaves if n in self.integer_leaves)

    def check(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The values validated by each field's check, in normal form, by name."""
        return {
            name: role(self.field(name)).check(name, value)
            for name, value in values.items()
        }

    def optax_arguments(self, schedule: str) -> tuple[tuple[str, str], ...]:
        """(optax's name, the field's name) of optax's `schedule`, in optax's order."""
        arguments = sorted(
            (optax.position, optax.name, item.name)
            for item in self.fields
            for optax in role(item).optax
            if optax.schedule == schedule
        )
        return tuple((optax_name, name) for _, optax_name, name in arguments)

    @functools.cached_property
    def optax_names(self) -> Mapping[str, str]:
        """optax's name -> the field's, for every optax name that differs; the
        first schedule's meaning wins (`init_value` is `exponential_decay`'s)."""
        names: dict[str, str] = {}
        schedules = dict.fromkeys(
            optax.schedule for item in self.fields for optax in role(item).optax
        )
        for schedule in schedules:
            for optax_name, name in self.optax_arguments(schedule):
                if optax_name != name:
                    names.setdefault(optax_name, name)
        return names

    def plain_type(self, name: str) -> Any:
        """A field's type as plain Python types (NumPy scalars dropped), as OmegaConf
        and JSON know them: `float`, `float | None`, `int`, `bool`, `str | None`,
        and `list[int]` or `list[float]` for a sequence."""
        hint = typing.get_type_hints(self.cls)[name]
        if typing.get_origin(hint) is tuple:  # a sequence: tuple[int, ...]
            element = self._plain(typing.get_args(hint)[0])
            return list[element]  # type: ignore[valid-type]
        return self._plain(hint)

    @staticmethod
    def _plain(hint: Any) -> Any:
        kept = [t for t in typing.get_args(hint) or (hint,) if t is not np.generic]
        return functools.reduce(operator.or_, kept)

    def number_type(self, name: str) -> type[int] | type[float]:
        """`int` or `float`: the number a leaf field holds."""
        plain = self.plain_type(name)
        if typing.get_origin(plain) is list:
            plain = typing.get_args(plain)[0]
        kind: type[int] | type[float] = next(
            t for t in typing.get_args(plain) or (plain,) if t in (int, float)
        )
        return kind
