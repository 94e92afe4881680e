"""Strict JSON reading: `json.loads` within limits, for configs from any source.

Configs are a few hundred bytes and nested two levels deep, so the limits are
checked before the text is parsed, and what JSON parsers disagree on (NaN and
Infinity literals, huge integers, duplicate keys) is refused rather than read.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from jaxdecay._validation import field_name, preview

MAX_LENGTH = 2**20  # characters of str, or bytes
MAX_DEPTH = 8
MAX_INT_DIGITS = 100  # int64 has 19

# Outside strings a backslash is invalid JSON (the parser stops there); inside, it
# escapes one character. With the escapes gone, a string is quote to quote.
_ESCAPE = re.compile(r"\\.", re.DOTALL)
_STRING = re.compile(r'"[^"]*"?')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = str.maketrans({"[": "\x01", "{": "\x01", "]": "\xff", "}": "\xff"})
# A longer run of digits anywhere in the text is needed for a refused integer.
_LONG_DIGITS = re.compile(f"[0-9]{{{MAX_INT_DIGITS + 1}}}")


class _Refused:
    """What json.loads returns for a number that is refused, so that the error can
    name the key it is under (the object's hook sees the key, the number's does not).
    """

    __slots__ = ("keyed", "unkeyed")

    def __init__(self, keyed: str, unkeyed: str) -> None:
        self.keyed = keyed  # follows the key: "decay_rate must be ..., got NaN"
        self.unkeyed = unkeyed  # the whole message, for a number in an array

    def __repr__(self) -> str:
        return "<refused number>"


def parse_json(text: str | bytes | bytearray) -> Any:
    """json.loads within the limits: length and depth are checked before parsing,
    and NaN, Infinity, huge integers and duplicate keys are refused."""
    text = _checked_text(text)
    refused: list[_Refused] = []
    try:
        data = json.loads(
            text,
            parse_constant=lambda literal: _refuse(refused, _non_finite(literal)),
            # int is faster, and as safe when no integer is that long.
            parse_int=(
                (lambda literal: _integer(refused, literal))
                if _LONG_DIGITS.search(text)
                else None
            ),
            object_pairs_hook=_to_dict,
        )
    except RecursionError:  # not reached below the depth limit; kept as a guard
        raise ValueError("JSON text is nested too deeply") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error}") from None
    if refused:  # in a nested array, or the whole text
        raise ValueError(refused[0].unkeyed)
    return data


def _checked_text(text: str | bytes | bytearray) -> str:
    """`text` as str, once its length, encoding and depth are within the limits."""
    if len(text) > MAX_LENGTH:
        unit = "characters" if isinstance(text, str) else "bytes"
        raise ValueError(
            f"JSON text is {len(text)} {unit} long; the limit is {MAX_LENGTH} (1 MiB)"
        )
    if not isinstance(text, str):
        encoding = json.detect_encoding(text)
        try:
            text = text.decode(encoding, "surrogatepass")
        except UnicodeDecodeError as error:
            raise ValueError(f"JSON text is not valid {encoding}: {error}") from None
    depth = nesting_depth(text)
    if depth > MAX_DEPTH:
        raise ValueError(
            f"JSON text is nested {depth} levels deep; the limit is {MAX_DEPTH}"
        )
    return text


def _refuse(refused: list[_Refused], number: _Refused) -> _Refused:
    refused.append(number)
    return number


def _non_finite(literal: str) -> _Refused:
    return _Refused(
        f"must be a finite number, got {literal}",
        f"JSON text has the non-finite number {literal}",
    )


def _integer(refused: list[_Refused], literal: str) -> int | _Refused:
    digits = len(literal.lstrip("-"))
    if digits <= MAX_INT_DIGITS:
        return int(literal)
    return _refuse(
        refused,
        _Refused(
            f"must have at most {MAX_INT_DIGITS} digits, got an integer "
            f"of {digits} digits",
            f"JSON text has an integer of {digits} digits; the limit is "
            f"{MAX_INT_DIGITS}",
        ),
    )


def _to_dict(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # Parsers differ on which one wins: neither is read.
            raise ValueError(
                f"JSON object has the key {preview(key)} twice; duplicate "
                "keys are refused"
            )
        if isinstance(value, _Refused):
            raise ValueError(f"{field_name(key)} {value.keyed}")
        if isinstance(value, list):  # a list of numbers names the entry
            for index, entry in enumerate(value):
                if isinstance(entry, _Refused):
                    raise ValueError(f"{field_name(key)}[{index}] {entry.keyed}")
        result[key] = value
    return result


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in `text`, at least as deep as json.loads
    would recurse on it (before any error), found without recursion or parsing."""
    opening = text.count("[") + text.count("{")
    if opening <= MAX_DEPTH:
        return opening
    outside_strings = _STRING.sub("", _ESCAPE.sub("", text))
    brackets = _NOT_BRACKET.sub("", outside_strings).translate(_STEP)
    steps = np.frombuffer(brackets.encode("latin-1"), np.int8)  # +1 or -1 each
    return int(np.maximum.reduce(np.cumsum(steps, dtype=np.int32), initial=0))
