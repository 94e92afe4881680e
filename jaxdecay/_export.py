"""The schedule classes as arguments of programs serialized with `jax.export`.

An exported program records its arguments' pytree structure, and with it a config's
static fields and the pieces it uses, written as JSON. Reading them back parses
JSON and checks each value with the field's own validator; nothing in the data is
imported, evaluated or unpickled. The numbers and their prepared constants are the
program's array arguments, not stored.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import export

from jaxdecay._config import Config, Labels
from jaxdecay._fields import role
from jaxdecay._registry import FAMILIES
from jaxdecay._steps import Words
from jaxdecay._validation import MAX_COUNT, check_integer

# Names in serialized programs: changing one makes older programs unreadable.
_WORDS_NAME = "jaxdecay.Words"
_MAX_AUX_BYTES = 2**20  # the JSON limit of configs (a name makes it long)
_DTYPE, _PIECES = "dtype", "pieces"


def _keys(cls: type[Config]) -> tuple[str, ...]:
    counts = tuple(f"{name}.count" for name in cls.spec.sequences)
    return (*cls.spec.structure, *counts, *cls.spec.labels, _PIECES)


def _serialize_aux(cls: type[Config], aux: tuple[Any, ...]) -> bytes:
    *structure, pieces, labels = aux
    values = (*structure, *labels.values, list(pieces))
    return json.dumps(dict(zip(_keys(cls), values, strict=True))).encode("utf-8")


def _deserialize_aux(cls: type[Config], data: bytes) -> tuple[Any, ...]:
    name = f"jaxdecay.{cls.__name__}"
    if len(data) > _MAX_AUX_BYTES:
        raise ValueError(
            f"the serialized {name} fields are {len(data)} bytes long; "
            f"the limit is {_MAX_AUX_BYTES}"
        )
    fields = json.loads(bytes(data).decode("utf-8"))
    # Programs exported before the pieces were structure have no "pieces": every
    # piece of the family, which gives the same bits for any config. Those
    # exported when the result dtype was structure name it: it is checked, and the
    # program computes in it as it was compiled.
    keys = _keys(cls)
    if isinstance(fields, dict) and _PIECES not in fields:
        fields[_PIECES] = [piece.name for piece in cls.family.pieces]
    if isinstance(fields, dict) and _DTYPE in fields:
        dtype_name = fields.pop(_DTYPE)
        if dtype_name is not None:
            _float_dtype(dtype_name)
    if not isinstance(fields, dict) or sorted(fields) != sorted(keys):
        raise ValueError(
            f"the serialized {name} fields must be a JSON object with the keys "
            f"{list(keys)}, got {bytes(data)[:200]!r}"
        )
    spec = cls.spec
    structure = [role(spec.field(n)).check(n, fields[n]) for n in spec.structure]
    structure += [
        check_integer(f"{n}.count", fields[f"{n}.count"], minimum=1, maximum=MAX_COUNT)
        for n in spec.sequences
    ]
    labels = tuple(role(spec.field(n)).check(n, fields[n]) for n in spec.labels)
    return (*structure, _pieces(cls, fields[_PIECES]), Labels(labels))


def _pieces(cls: type[Config], names: Any) -> tuple[str, ...]:
    """The pieces a config uses, as the family declares them, in their order."""
    known = [piece.name for piece in cls.family.pieces]
    if not isinstance(names, list) or any(
        not isinstance(n, str) or n not in known for n in names
    ):
        raise TypeError(f"pieces must be a list of some of {known}, got {names!r}")
    return tuple(n for n in known if n in names)


def _float_dtype(name: Any) -> np.dtype[Any]:
    """The floating dtype of that name (bfloat16 included); nothing else."""
    try:
        dtype = np.dtype(jnp.dtype(name)) if isinstance(name, str) else None
    except TypeError:
        dtype = None
    if dtype is None or dtype.name != name or not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be the name of a float dtype, got {name!r}")
    return dtype


export.register_namedtuple_serialization(Words, serialized_name=_WORDS_NAME)
for _name, _cls in FAMILIES.items():
    export.register_pytree_node_serialization(
        _cls,
        serialized_name=f"jaxdecay.{_name}",
        serialize_auxdata=functools.partial(_serialize_aux, _cls),
        deserialize_auxdata=functools.partial(_deserialize_aux, _cls),
    )
