"""Serialized schedules: Keras 3's and TF 2's shapes, the format version, files.

The readers here take the schedule classes they may build as an argument (the
registry hands them all; a class's own `from_json` only itself), and read plain
data only: a class name is looked up in that allow-list, and nothing named in the
data is ever imported or evaluated.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from jaxdecay import _json, _keras, _yaml
from jaxdecay._fields import Spec
from jaxdecay._validation import check_keys, field_name, key_list, one_of, preview

# Keras 3 writes "keras.optimizers.schedules" for its built-in schedules, and
# "jaxdecay.keras" for the classes of `to_keras()`; the others are names the same
# class has been serialized under. They are compared as strings.
KNOWN_MODULES = frozenset(
    {
        "keras.optimizers.schedules",
        "keras.src.optimizers.schedules.learning_rate_schedule",
        "jaxdecay",
        _keras.MODULE,
    }
)
# The format of a serialized config. Format 1 is Keras' format plus the extension
# keys `transition_begin` and `end_learning_rate`; format 2 adds `warmup_steps` and
# `warmup_init` (and the hold's `transition_begin` where a family has it as a
# piece). It is written, as a top-level key (which Keras ignores), only into
# configs that use the extension keys, and as the oldest format that has every key
# used: a config with Keras' keys only stays exactly what Keras writes, and one
# without a warmup stays readable by a jaxdecay that reads format 1. Absent, the
# config is Keras' or TF's (or jaxdecay 0.1's) and read as the newest format; a newer
# format is refused, never read without what it added.
FORMAT_KEY = "jaxdecay_format"
FORMAT = 2
_WRAPPER_KEYS = frozenset(
    {"module", "class_name", "config", "registered_name", FORMAT_KEY}
)
_PATH_SUFFIXES = (".json", ".yaml", ".yml")

Classes = Mapping[str, Any]  # Keras' class_name -> a schedule class (with `spec`)


def serialize(schedule: Any) -> dict[str, Any]:
    """`schedule` (an instance of a schedule class) as a dict in Keras 3's shape,
    with the oldest format that reads its config when it uses extension keys."""
    spec: Spec = type(schedule).spec
    config = schedule.get_config()
    data: dict[str, Any] = {
        "module": "keras.optimizers.schedules",
        "class_name": type(schedule).__name__,
        "config": config,
        "registered_name": None,
    }
    if not config.keys() <= set(spec.keras_keys):
        # The oldest format that reads the config: a config with Keras' keys only
        # stays exactly what Keras writes, readable by every Keras, TF and jaxdecay.
        data[FORMAT_KEY] = max(spec.formats[key] for key in config)
    return data


def to_json(schedule: Any, indent: int | None) -> str:
    """`serialize(schedule)` as JSON text that reads back bit for bit."""
    text = json.dumps(serialize(schedule), indent=indent, allow_nan=False)
    if len(text) > _json.MAX_LENGTH:
        raise ValueError(
            f"the JSON text of this schedule is {len(text)} characters long, "
            f"longer than from_json reads ({_json.MAX_LENGTH}); shorten its name"
        )
    return text


def deserialize(data: Any, classes: Classes) -> Any:
    """Reads a serialized schedule of one of `classes`: a dict, or JSON text of one
    (see `jaxdecay.deserialize`)."""
    if isinstance(data, (str, bytes, bytearray)):
        data = _parse(data, classes)
    if not isinstance(data, Mapping):
        raise TypeError(
            "a serialized schedule must be a dict with 'class_name' and 'config', got "
            f"{preview(data)} of type {type(data).__name__}"
        )
    if not {"class_name", "config"} & data.keys():
        bare = bare_class(data, classes)
        if bare is not None:  # a bare get_config() dict, which the command line reads
            _check_no_containers(data, bare.spec)
            return bare.from_config(data)
    # First: a newer format is refused as such, whatever else it holds.
    _check_format(data, classes)
    check_keys(
        "serialized schedule",
        data.keys(),
        known=sorted(_WRAPPER_KEYS),
        required={"class_name", "config"},
        bounded=True,
    )
    cls = _class_of(data, classes)
    config = data["config"]
    if isinstance(config, Mapping):
        _check_no_containers(config, cls.spec)
    return cls.from_config(config)


def _parse(text: str | bytes | bytearray, classes: Classes) -> Any:
    try:
        return _json.parse_json(text)
    except ValueError as error:
        if isinstance(text, str) and _looks_like_path(text):
            raise ValueError(
                f"{error}; {preview(text.strip())} looks like a file path: "
                f"deserialize and from_json read JSON text, {load_hint(classes)}"
            ) from None
        raise


def load_hint(classes: Classes) -> str:
    return f"{next(iter(classes))}.load(path) reads a file"


def bare_class(data: Mapping[Any, Any], classes: Classes) -> Any:
    """The class whose config keys a bare `get_config()` dict uses: of those that
    know them all, the one its `name` names (families that share their keys, such
    as Keras' ExponentialDecay and InverseTimeDecay, write their class name there
    by default), else the first; else the first that knows some or names them as
    optax does (to name the unknown or renamed ones)."""
    keys = set(data)
    fitting = [cls for cls in classes.values() if keys <= set(cls.spec.known_keys)]
    named = [cls for cls in fitting if cls.__name__ == data.get("name")]
    if fitting:
        return (named or fitting)[0]
    for cls in classes.values():
        if not keys.isdisjoint({*cls.spec.known_keys, *cls.spec.optax_names}):
            return cls
    return None


def _class_of(data: Mapping[Any, Any], classes: Classes) -> Any:
    """The class that `class_name` names, after checking `module` and
    `registered_name` as strings."""
    class_name = data["class_name"]
    if not isinstance(class_name, str) or class_name not in classes:
        raise ValueError(
            f"class_name must be {one_of(classes)}, got {preview(class_name)}"
        )
    module = data.get("module")
    if module is not None and (
        not isinstance(module, str) or module not in KNOWN_MODULES
    ):
        raise ValueError(
            f"module must be one of {sorted(KNOWN_MODULES)} or absent, got "
            f"{preview(module)}; modules named in data are never imported"
        )
    # None for Keras' built-in class; "jaxdecay>ExponentialDecay" for the class of
    # `to_keras()`, as Keras registers it.
    registered_names = (class_name, _keras.registered_name(class_name))
    registered_name = data.get("registered_name")
    if registered_name is not None and registered_name not in registered_names:
        raise ValueError(
            f"registered_name must be None, {registered_names[0]!r} or "
            f"{registered_names[1]!r}, got {preview(registered_name)}"
        )
    return classes[class_name]


_CONTAINERS = (Mapping, list, tuple, set, frozenset)


def _check_no_containers(config: Mapping[Any, Any], spec: Spec) -> None:
    """Refuses a container as a config value, but a list of numbers for a
    sequence field (whose own check bounds its length): refused here, a value of
    any size or depth never reaches a message that shows it whole."""
    for key, value in config.items():
        if key in spec.sequences and isinstance(value, (list, tuple)):
            for index, entry in enumerate(value):
                if isinstance(entry, _CONTAINERS):
                    raise TypeError(
                        f"{key}[{index}] must be a number, got {preview(entry)} of "
                        f"type {type(entry).__name__}"
                    )
        elif isinstance(value, _CONTAINERS):
            kinds = (
                "a list of numbers"
                if key in spec.sequences
                else ("a number, a bool, a string or null")
            )
            raise TypeError(
                f"{field_name(key)} must be {kinds}, got "
                f"{preview(value)} of type {type(value).__name__}"
            )


def _looks_like_path(text: str) -> bool:
    """Whether text that is not JSON looks like a file name given by mistake: one
    short line, not JSON's opening, with a path separator or a config's suffix."""
    text = text.strip()
    return (
        0 < len(text) <= 4096
        and "\n" not in text
        and not text.startswith(("{", "[", '"'))
        and ("/" in text or "\\" in text or text.lower().endswith(_PATH_SUFFIXES))
    )


def from_json(text: Any, classes: Classes) -> Any:
    """Reads JSON text (str or bytes, not a path) of one of `classes`."""
    if isinstance(text, os.PathLike):
        raise TypeError(
            f"text must be str or bytes, got the path {preview(text)}; "
            f"{load_hint(classes)}"
        )
    if not isinstance(text, (str, bytes, bytearray)):
        raise TypeError(
            f"text must be str or bytes, got {preview(text)} of type "
            f"{type(text).__name__}"
        )
    return deserialize(text, classes)


def load(path: str | os.PathLike[str], classes: Classes) -> Any:
    """Reads a config file of one of `classes`: YAML from a `.yaml` or `.yml` file
    (with the `yaml` extra, through the command line's reader), JSON from any other;
    errors are prefixed by the path."""
    with open(path, "rb") as file:
        text = file.read(_json.MAX_LENGTH + 1)
    where = os.fspath(path)
    if len(text) > _json.MAX_LENGTH:
        raise ValueError(
            f"{where}: the file is longer than {_json.MAX_LENGTH} bytes (1 MiB), "
            "the most a config may be"
        )
    yaml = where.lower().endswith(_YAML_SUFFIXES)
    try:
        data = _read_yaml(text) if yaml else _json.parse_json(text)
    except ValueError as error:
        what = "" if yaml else f"; {_LOAD_READS}"
        raise ValueError(f"{where}: {error}{what}") from None
    try:
        return deserialize(data, classes)
    except TypeError as error:
        raise TypeError(f"{where}: {error}") from None
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


_YAML_SUFFIXES = (".yaml", ".yml")
_LOAD_READS = "load reads YAML from a .yaml or .yml file, and JSON from any other"


def _read_yaml(text: bytes) -> Any:
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text: {error.reason}") from None
    return _yaml.load_yaml(decoded)


def _check_format(data: Mapping[Any, Any], classes: Classes) -> None:
    """Refuses a config whose `jaxdecay_format` this version cannot read."""
    if FORMAT_KEY not in data:
        return  # Keras', TF's, or jaxdecay's before formats were numbered
    version = data[FORMAT_KEY]
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(
            f"{FORMAT_KEY} must be an integer, got {preview(version)} of type "
            f"{type(version).__name__}"
        )
    if version > FORMAT:
        unknown = _unknown_fields(data, classes)
        raise ValueError(
            f"{FORMAT_KEY} is {preview(version)}, newer than {FORMAT}, the newest "
            "format this jaxdecay reads: the config is refused rather than read "
            "without what the newer format added; upgrade jaxdecay to load it"
            + (f" (fields unknown here: {key_list(unknown)})" if unknown else "")
        )
    if version < 1:
        raise ValueError(
            f"{FORMAT_KEY} must be a positive integer, got {preview(version)}"
        )


def _unknown_fields(data: Mapping[Any, Any], classes: Classes) -> list[Any]:
    """The keys of `data` and of its config that this version does not know (for
    the class it names, or for every class)."""
    unknown = [key for key in data if key not in _WRAPPER_KEYS]
    config = data.get("config")
    if isinstance(config, Mapping):
        name = data.get("class_name")
        named = classes.get(name) if isinstance(name, str) else None
        known = {
            key
            for cls in ([named] if named is not None else classes.values())
            for key in cls.spec.known_keys
        }
        unknown += [
            f"config.{key}" if isinstance(key, str) else key
            for key in config
            if key not in known
        ]
    return unknown
