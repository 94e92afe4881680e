"""Fuzzing `deserialize` and `from_json`, the readers of configs from files.

Hypothesis generates JSON trees, mutations of valid serialized configs (keys dropped,
added or renamed, values swapped for other JSON types, huge integers, deep nesting,
module names) and raw text and bytes. For every input: only a plain ValueError or
TypeError escapes, with a short message; nothing is imported; each call is quick;
a dict and its JSON text are read alike; whatever loads is a valid schedule.

The example counts are fixed and derandomized, so that CI runs in bounded time;
`JAXDECAY_FUZZ_EXAMPLES=100000 python -m pytest tests/test_fuzz.py` fuzzes longer.
The explicit tests at the end measure the limits on time and memory.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import importlib
import json
import math
import os
import subprocess
import sys
import time
import tracemalloc

import pytest

pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxdecay
from jaxdecay import ExponentialDecay
from jaxdecay._registry import FAMILIES

FUZZ_EXAMPLES = int(os.environ.get("JAXDECAY_FUZZ_EXAMPLES", "400"))
fuzz_settings = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,  # timed per call below, outside hypothesis' own machinery
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SECONDS_PER_CALL = 1.0  # generous: a generated input takes a few milliseconds
MESSAGE_LIMIT = 1000  # characters: a message shows values in bounded previews
NEVER_IMPORTED = "jaxdecay_test_never_imported"

VALID = {
    "extended": jaxdecay.serialize(
        ExponentialDecay(
            0.1, 1000, 0.96, True, "fuzz", transition_begin=5, end_learning_rate=0.01
        )
    ),
    "keras": jaxdecay.serialize(ExponentialDecay(0.1, 1000, 0.96)),
    "tf2": {
        "class_name": "ExponentialDecay",
        "config": {
            "initial_learning_rate": 0.1,
            "decay_steps": 1000,
            "decay_rate": 0.96,
            "staircase": False,
            "name": None,
        },
    },
    # The other families, in Keras 3's shape: the mutations mix their keys in.
    "inverse_time": jaxdecay.serialize(jaxdecay.InverseTimeDecay(0.1, 1000, 0.5)),
    "polynomial": jaxdecay.serialize(jaxdecay.PolynomialDecay(0.1, 1000, cycle=True)),
    "piecewise": jaxdecay.serialize(
        jaxdecay.PiecewiseConstantDecay([1000, 2000], [0.1, 0.05, 0.01])
    ),
    # What Keras' generic serializer writes for `to_keras()` (tests/test_to_keras.py
    # checks that it does), so that the mutations reach its names.
    "to_keras": {
        "module": "jaxdecay.keras",
        "class_name": "InverseTimeDecay",
        "config": jaxdecay.InverseTimeDecay(0.1, 1000, 0.5, True).get_config(),
        "registered_name": "jaxdecay>InverseTimeDecay",
    },
    "cosine": jaxdecay.serialize(
        jaxdecay.CosineDecay(0.0, 1000, 0.1, warmup_target=0.1, warmup_steps=100)
    ),
    # Warmup, hold, decay: the hold piece's key among the mutations.
    "wsd": jaxdecay.serialize(
        jaxdecay.CosineDecay(
            0.0, 1000, 0.1, warmup_target=0.1, warmup_steps=100, transition_begin=400
        )
    ),
    "cosine_tf2": {
        "class_name": "CosineDecay",
        "config": {
            "initial_learning_rate": 0.1,
            "decay_steps": 1000,
            "alpha": 0.0,
            "name": None,
        },
    },
}
# What a loaded config may be: any family's class.
SCHEDULES = tuple(FAMILIES.values())

# ---------------------------------------------------------------------------
# Strategies.
# ---------------------------------------------------------------------------

KEYS = [
    *{key for data in VALID.values() for key in data},
    *{key for data in VALID.values() for key in data["config"]},
    "jaxdecay_format",
    "power",
    "__class__",
    "__reduce__",
    "build_config",
    "shared_object_id",
    "Module",
    "class_name ",
    "config\x00",
]
MODULES = [
    "os",
    "builtins",
    "subprocess",
    "pickle",
    "keras.src.saving.serialization_lib",
    "keras.optimizers.schedules",
    "jaxdecay",
    "jaxdecay.keras",
    "jaxdecay>ExponentialDecay",
    "jaxdecay>PiecewiseConstantDecay",
    NEVER_IMPORTED,
    f"{NEVER_IMPORTED}.schedules",
    f"{NEVER_IMPORTED}>Evil",
    "__import__('os').system('true')",
]
SPECIAL_VALUES = [
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    5e-324,
    1.7976931348623157e308,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63) - 1,
    10**30,
    10**100,
    10**101,
    10**400,
    "",
    "0.1",
    "1000",
    "true",
    "NaN",
    *FAMILIES,
    "exponentialdecay",
    *MODULES,
    0,
    1,
    -1,
    True,
    False,
    None,
]

keys = st.sampled_from(KEYS) | st.text(max_size=12)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(SPECIAL_VALUES),
)
json_trees = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)
    ),
    max_leaves=12,
)


def nested(value, depth, as_object):
    for _ in range(depth):
        value = {"value": value} if as_object else [value]
    return value


@st.composite
def near_valid(draw):
    """A valid serialized config with one to three mutations, inside "config"
    (two times in three) or at the top level."""
    data = copy.deepcopy(VALID[draw(st.sampled_from(sorted(VALID)))])
    for _ in range(draw(st.integers(1, 3))):
        inner = isinstance(data.get("config"), dict) and draw(st.integers(0, 2)) > 0
        target = data["config"] if inner else data
        names = sorted(target, key=repr)
        operation = draw(
            st.sampled_from(["drop", "add", "rename", "replace", "nest", "format"])
        )
        if operation == "add" or not names:
            target[draw(keys)] = draw(json_trees)
        elif operation == "format":
            data["jaxdecay_format"] = draw(
                st.sampled_from([0, 1, 2, -1, 1.0, "1", None, True, 10**100])
                | st.integers()
            )
        else:
            name = draw(st.sampled_from(names))
            if operation == "drop":
                del target[name]
            elif operation == "rename":
                target[draw(keys)] = target.pop(name)
            elif operation == "replace":
                target[name] = draw(json_trees)
            else:
                depth = draw(st.integers(1, 12))
                target[name] = nested(target[name], depth, draw(st.booleans()))
    return data


fuzz_data = st.one_of(near_valid(), near_valid(), near_valid(), json_trees)


@st.composite
def fuzz_text(draw):
    """Raw text: anything, or valid config JSON with characters inserted, deleted
    or replaced, or bytes in any encoding."""
    kind = draw(st.sampled_from(["text", "bytes", "mutated", "mutated-bytes"]))
    if kind == "text":
        return draw(st.text())
    if kind == "bytes":
        return draw(st.binary())
    text = json.dumps(VALID[draw(st.sampled_from(sorted(VALID)))])
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 3))
        insert = draw(st.sampled_from([*'{}[]",:\\ 0-.eE', "NaN", "1" * 120]))
        insert = draw(st.just(insert) | st.text(max_size=3))
        text = text[:at] + insert + text[at + cut :]
    if kind == "mutated-bytes":
        encoding = draw(st.sampled_from(["utf-8", "utf-16", "utf-32", "latin-1"]))
        return text.encode(
            encoding, "surrogatepass" if "utf" in encoding else "replace"
        )
    return text


# ---------------------------------------------------------------------------
# The checks every input must pass.
# ---------------------------------------------------------------------------


JSON_ENCODINGS = [
    "utf-8",
    "utf-8-sig",
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "utf-32",
    "utf-32-le",
    "utf-32-be",
]


@pytest.fixture(scope="module", autouse=True)
def warm_up():
    """Runs each path of the readers once before the imports are watched: NumPy
    imports helpers lazily on a first call, and Python its codecs on first use
    (bytes are decoded in the encoding json.detect_encoding picks, one of these
    eight, whatever the data says); neither has to do with names in the data."""
    for text in ["[" * 100, "[NaN]", "1" * 200, "[" + "]" * 100, "x"]:
        with pytest.raises(ValueError):
            jaxdecay.deserialize(text)
    for data in VALID.values():
        text = json.dumps(data)
        jaxdecay.deserialize(text)
        for encoding in JSON_ENCODINGS:
            jaxdecay.deserialize(text.encode(encoding))


@contextlib.contextmanager
def watching_imports():
    """Records every import made in the block: calls to __import__ and
    importlib.import_module (even of modules already loaded), and new entries
    in sys.modules."""
    imported: list[str] = []
    real_import, real_import_module = builtins.__import__, importlib.import_module

    def spy_import(name, *args, **kwargs):
        imported.append(name)
        return real_import(name, *args, **kwargs)

    def spy_import_module(name, package=None):
        imported.append(name)
        return real_import_module(name, package)

    before = set(sys.modules)
    builtins.__import__, importlib.import_module = spy_import, spy_import_module
    try:
        yield imported
    finally:
        builtins.__import__, importlib.import_module = real_import, real_import_module
        imported.extend(sorted(set(sys.modules) - before))


def outcome(read, argument):
    """Calls `read(argument)`: returns the schedule, or the ValueError/TypeError
    it raised, after checking that nothing else escaped, nothing was imported,
    the call was quick and the message is short."""
    with watching_imports() as imported:
        start = time.perf_counter()
        try:
            result = read(argument)
        except (ValueError, TypeError) as error:
            result = error
        elapsed = time.perf_counter() - start
    assert not imported, f"imported {imported}"
    assert elapsed < SECONDS_PER_CALL, f"{elapsed:.2f} s"
    if isinstance(result, Exception):
        # Exactly these types: no JSONDecodeError, UnicodeDecodeError, KeyError...
        assert type(result) in (ValueError, TypeError), repr(result)
        message = str(result)
        assert 0 < len(message) <= MESSAGE_LIMIT, message[:200]
    else:
        assert isinstance(result, SCHEDULES)
        # What loads is a valid schedule, and writes back what it read.
        assert jaxdecay.deserialize(result.to_json()) == result
    return result


def same_outcome(a, b):
    """Both loaded equal schedules, or both refused with the same exception type."""
    if isinstance(a, SCHEDULES) or isinstance(b, SCHEDULES):
        assert a == b
    else:
        assert type(a) is type(b), (a, b)


def same_as_from_json(loaded, text):
    """`from_json` of the class `deserialize` loaded reads the same; where it
    refused, some family's `from_json` refuses with the same type (which family
    `deserialize` reads a bare config as depends on its keys and its name)."""
    if isinstance(loaded, SCHEDULES):
        same_outcome(loaded, outcome(type(loaded).from_json, text))
        return
    refusals = {type(outcome(cls.from_json, text)) for cls in SCHEDULES}
    assert type(loaded) in refusals, (loaded, refusals)


# ---------------------------------------------------------------------------
# Fuzz targets.
# ---------------------------------------------------------------------------


@fuzz_settings
@given(data=fuzz_data)
def test_deserialize_data(data):
    """deserialize(a dict or any other Python value from JSON)."""
    outcome(jaxdecay.deserialize, data)


@fuzz_settings
@given(data=fuzz_data)
def test_json_text_of_data(data):
    """The JSON text of the same data (NaN and Infinity literals included), as str
    and as bytes, through deserialize and from_json: read as the dict is (except
    that a text nested too deeply or with a NaN literal may be refused with a
    ValueError where the dict's value is refused with a TypeError)."""
    text = json.dumps(data)  # allow_nan: writes NaN, Infinity
    loaded = outcome(jaxdecay.deserialize, text)
    same_as_from_json(loaded, text)
    same_as_from_json(loaded, text.encode())
    from_dict = outcome(jaxdecay.deserialize, data)
    if isinstance(loaded, SCHEDULES) or isinstance(from_dict, SCHEDULES):
        assert loaded == from_dict


@fuzz_settings
@given(text=fuzz_text())
def test_raw_text(text):
    """Arbitrary and mutated text and bytes through deserialize and from_json."""
    same_as_from_json(outcome(jaxdecay.deserialize, text), text)


def test_modules_named_in_the_data_are_never_imported():
    """A config may name any module, in Keras' "module" and "registered_name" and in
    its class name: reading one imports none of them. The test reads such configs
    itself, so it checks something when it runs alone; after the fuzz targets, the
    final check covers what they read too."""
    for module in MODULES:
        for shape in VALID.values():
            data = copy.deepcopy(shape)
            data.update(module=module, registered_name=module)
            for named in (data, {**data, "class_name": module}):
                outcome(jaxdecay.deserialize, named)
                outcome(ExponentialDecay.from_json, json.dumps(named))
    assert not any(NEVER_IMPORTED in name for name in sys.modules)


# A fresh process, where nothing has run before the loader: NumPy's C code imports
# some helpers through __import__ on their first use only, so after other tests
# have used them, an import in the loader would go unseen.
FRESH_PROCESS = """
import builtins, json, sys, warnings
import jaxdecay
jaxdecay.deserialize({"class_name": "ExponentialDecay", "config": %s})
real_import, imported = builtins.__import__, []
def spy_import(name, *args, **kwargs):
    imported.append(name)
    return real_import(name, *args, **kwargs)
warned = []
for config in %s:
    data = {"class_name": "ExponentialDecay", "config": config}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        builtins.__import__ = spy_import
        try:
            jaxdecay.deserialize(data)
        finally:
            builtins.__import__ = real_import
    warned.append(len(caught))
    assert not imported, imported
print(json.dumps(warned))
"""


def test_a_config_that_warns_imports_nothing_in_a_fresh_process():
    """The warnings for numbers that the compute dtype rounds away (to inf, to 0,
    a subnormal, a rate to 1) are written without importing anything, even when
    they are the first thing the process reads."""
    base = {"initial_learning_rate": 0.1, "decay_steps": 1000, "decay_rate": 0.5}
    warning = [
        {**base, "decay_rate": 3.4028235677973366e38},
        {**base, "initial_learning_rate": 1e-50},
        {**base, "decay_rate": 1 - 1e-12},
        {**base, "initial_learning_rate": 1e-40},
    ]
    script = FRESH_PROCESS % (json.dumps(base), json.dumps(warning))
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "JAX_ENABLE_X64": "0"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == [1, 1, 1, 1]


# ---------------------------------------------------------------------------
# Limits on time and memory, measured.
# ---------------------------------------------------------------------------

MiB = 2**20


def measure(read, argument):
    """(seconds, peak bytes allocated) for `read(argument)`, which must raise
    ValueError or TypeError. Time is taken without tracemalloc, which slows
    allocation-heavy code several times over."""
    start = time.perf_counter()
    with pytest.raises((ValueError, TypeError)) as first:
        read(argument)
    seconds = time.perf_counter() - start
    tracemalloc.start()
    try:
        with pytest.raises(type(first.value)):
            read(argument)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return seconds, peak, str(first.value)


@pytest.mark.parametrize("kind", [str, bytes])
def test_100_mb_text_is_refused_at_once_without_copying(kind):
    """A 100 MB config is refused by its length before anything else, in well
    under a millisecond of work and without allocating a copy."""
    text = kind("x") * (100 * MiB) if kind is str else b"x" * (100 * MiB)
    for read in (jaxdecay.deserialize, ExponentialDecay.from_json):
        seconds, peak, message = measure(read, text)
        assert "the limit is 1048576" in message
        assert seconds < 0.05 and peak < 64 * 1024, (seconds, peak)


DEEP = {
    "arrays": "[" * 10**6,
    "objects": '{"a": ' * (MiB // 6),
    "closed": "[" * (MiB // 2) + "]" * (MiB // 2),
    "in-config": '{"class_name": "ExponentialDecay", "config": ' + "[" * 10**6,
    "after-escaped-backslash": '["\\\\"' + "[" * 10**6,  # ["\\"[[[...
}


@pytest.mark.parametrize("name", list(DEEP))
def test_deep_nesting_is_refused_quickly_in_bounded_memory(name):
    """Nesting beyond 8 levels is refused before parsing: no recursion (so no
    RecursionError), in a few tens of milliseconds, with a few MiB."""
    text = DEEP[name]
    assert len(text) <= MiB
    for argument in (text, text.encode()):
        seconds, peak, message = measure(jaxdecay.deserialize, argument)
        assert "nested" in message and "the limit is 8" in message
        assert seconds < 0.5 and peak < 32 * MiB, (seconds, peak)


def test_deep_nesting_within_strings_is_not_nesting():
    """Brackets inside strings (escaped quotes too) do not count as nesting: such
    a text is read, and refused for what it holds."""
    name = '\\"' + "[{" * 1000 + "\\\\"  # \"[{[{...\\ in the JSON text
    text = json.dumps(VALID["keras"])
    text = text.replace('"name": "ExponentialDecay"', f'"name": "{name}"')
    loaded = jaxdecay.deserialize(text)
    assert loaded.name == '"' + "[{" * 1000 + "\\"


def array_of(item):
    """A JSON array of copies of `item`, as long as fits in 1 MiB."""
    return "[" + ",".join([item] * ((MiB - 1) // (len(item) + 1))) + "]"


LARGE = {
    "numbers": array_of("0"),
    "floats": array_of("0.5"),
    "objects": array_of("{}"),
    "pairs": array_of('{"a":0}'),
    "keys": "{" + ",".join(f'"k{i}":0' for i in range(MiB // 12)) + "}",
    "string": '"' + "x" * (MiB - 2) + '"',
    "long-integer": "1" * (MiB - 1),
    "long-float": "0." + "1" * (MiB - 3),
}


@pytest.mark.parametrize("name", list(LARGE))
def test_largest_texts_are_read_quickly_in_bounded_memory(name):
    """Texts at the 1 MiB limit, made of what costs the most to parse, are refused
    within a second and ~25 times their size in memory."""
    text = LARGE[name]
    assert len(text) <= MiB
    seconds, peak, _ = measure(jaxdecay.deserialize, text)
    assert seconds < 1.0 and peak < 25 * MiB, (seconds, peak)


def deep_list(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "where", ["class_name", "module", "registered_name", "jaxdecay_format", "config"]
)
def test_deeply_nested_python_value_is_refused_quickly(where):
    """A Python value nested 100,000 deep (which JSON text cannot hold, a dict
    can) is refused with a short message, not a RecursionError."""
    data = copy.deepcopy(VALID["keras"])
    data[where] = deep_list(10**5)
    seconds, _, message = measure(jaxdecay.deserialize, data)
    assert where in message and len(message) <= MESSAGE_LIMIT
    assert seconds < 0.5


@pytest.mark.parametrize(
    "field", ["initial_learning_rate", "decay_steps", "staircase", "name", "power"]
)
def test_deeply_nested_python_config_value_is_refused_quickly(field):
    """The same inside "config": refused by deserialize before any message tries
    to show the whole value."""
    data = copy.deepcopy(VALID["keras"])
    data["config"][field] = deep_list(10**5)
    seconds, _, message = measure(jaxdecay.deserialize, data)
    assert field in message and len(message) <= MESSAGE_LIMIT
    assert seconds < 0.5
