"""`ExponentialDecay` as an argument of programs serialized with `jax.export`.

An exported program records its arguments' pytree structure, and with it the
config's static fields: `staircase`, `name` and the result dtype, written as JSON.
Reading them back parses JSON and checks each value; nothing in the data is imported,
evaluated or unpickled. The numbers are the program's array arguments, not stored.
"""

from __future__ import annotations

import json
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import export

from jaxdecay._config import ExponentialDecay
from jaxdecay._schedule import Words

# Names in serialized programs: changing one makes older programs unreadable.
_CONFIG_NAME = "jaxdecay.ExponentialDecay"
_WORDS_NAME = "jaxdecay.Words"
_AUX_KEYS = ("staircase", "name", "dtype")
_MAX_AUX_BYTES = 2**20  # the JSON limit of configs (a name makes it long)


def _serialize_aux(aux: tuple[Any, ...]) -> bytes:
    staircase, name, dtype = aux
    dtype_name = None if dtype is None else np.dtype(dtype).name
    fields = dict(zip(_AUX_KEYS, (staircase, name, dtype_name), strict=True))
    return json.dumps(fields).encode("utf-8")


def _deserialize_aux(data: bytes) -> tuple[Any, ...]:
    if len(data) > _MAX_AUX_BYTES:
        raise ValueError(
            f"the serialized {_CONFIG_NAME} fields are {len(data)} bytes long; "
            f"the limit is {_MAX_AUX_BYTES}"
        )
    fields = json.loads(bytes(data).decode("utf-8"))
    if not isinstance(fields, dict) or sorted(fields) != sorted(_AUX_KEYS):
        raise ValueError(
            f"the serialized {_CONFIG_NAME} fields must be a JSON object with the "
            f"keys {list(_AUX_KEYS)}, got {bytes(data)[:200]!r}"
        )
    staircase, name, dtype_name = (fields[key] for key in _AUX_KEYS)
    if not isinstance(staircase, bool):
        raise TypeError(f"staircase must be a bool, got {staircase!r}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a string or None, got {name!r}")
    return staircase, name, None if dtype_name is None else _float_dtype(dtype_name)


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
export.register_pytree_node_serialization(
    ExponentialDecay,
    serialized_name=_CONFIG_NAME,
    serialize_auxdata=_serialize_aux,
    deserialize_auxdata=_deserialize_aux,
)
