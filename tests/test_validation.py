"""Every validation rule: the exception type, and a message naming field and value."""

import dataclasses
import inspect
import json
import math
import pickle
import re
import sys
import time
import warnings

import jax
import numpy as np
import pytest

import jaxdecay
from jaxdecay import ExponentialDecay, exponential_decay

VALID = dict(initial_learning_rate=0.1, decay_steps=1000, decay_rate=0.5)
NEVER_IMPORTED = "jaxdecay_test_never_imported"

constructors = pytest.mark.parametrize(
    "construct", [exponential_decay, ExponentialDecay], ids=["function", "dataclass"]
)


def names(field, value):
    """A regex matching a message that names `field` and then `value` (a regex
    for its repr), the value not being part of a longer number or word."""
    return rf"\b{field}\b.*(?<![\w.\-]){value}(?![\w.])"


def case(field, value, error, shown=None):
    """One invalid value; `shown` is a regex for how the message shows it."""
    shown = re.escape(repr(value)) if shown is None else shown
    return pytest.param(field, value, error, shown, id=f"{field}={value!r}")


INVALID = [
    # decay_steps: an integer in [1, 2**63 - 1]; floats and bools are refused.
    case("decay_steps", 0, ValueError),
    case("decay_steps", -1, ValueError),
    case("decay_steps", 1.5, TypeError),
    case("decay_steps", 1000.0, TypeError),
    case("decay_steps", True, TypeError),
    case("decay_steps", 2**63, ValueError),
    case("decay_steps", "1000", TypeError),
    case("decay_steps", None, TypeError),
    # decay_rate: a finite real > 0.
    case("decay_rate", 0, ValueError, r"0(\.0)?"),
    case("decay_rate", -0.5, ValueError),
    case("decay_rate", math.nan, ValueError),
    case("decay_rate", math.inf, ValueError),
    case("decay_rate", "0.9", TypeError),
    case("decay_rate", True, TypeError),
    case("decay_rate", None, TypeError),
    # initial_learning_rate: a finite real.
    case("initial_learning_rate", math.nan, ValueError),
    case("initial_learning_rate", math.inf, ValueError),
    case("initial_learning_rate", -math.inf, ValueError),
    case("initial_learning_rate", "0.1", TypeError),
    case("initial_learning_rate", None, TypeError),
    case("initial_learning_rate", True, TypeError),
    case("initial_learning_rate", np.float32(np.nan), ValueError, "nan"),
    # end_learning_rate: None or a finite real.
    case("end_learning_rate", math.nan, ValueError),
    case("end_learning_rate", math.inf, ValueError),
    case("end_learning_rate", "x", TypeError),
    # transition_begin: an integer in [0, 2**63 - 1].
    case("transition_begin", -1, ValueError),
    case("transition_begin", 1.5, TypeError),
    case("transition_begin", True, TypeError),
    case("transition_begin", 2**63, ValueError),
    # staircase: a bool, nothing else.
    case("staircase", 1, TypeError),
    case("staircase", "yes", TypeError),
    case("staircase", None, TypeError),
]


@constructors
@pytest.mark.parametrize(("field", "value", "error", "shown"), INVALID)
def test_invalid_argument(construct, field, value, error, shown):
    """An invalid argument raises the right error, naming the field and the value."""
    with pytest.raises(error, match=names(field, shown)):
        construct(**{**VALID, field: value})


def test_invalid_name():
    """A name that is neither a str nor None raises TypeError naming it."""
    with pytest.raises(TypeError, match=names("name", "3")):
        ExponentialDecay(**VALID, name=3)


@constructors
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("decay_steps", 2**63 - 1),
        ("decay_steps", np.int64(1000)),
        ("decay_steps", np.uint64(1000)),
        ("transition_begin", 2**63 - 1),
        ("transition_begin", np.int32(5)),
        ("end_learning_rate", None),
        ("decay_rate", 1),
        ("decay_rate", np.float32(0.5)),
        ("initial_learning_rate", 0),
    ],
)
def test_valid_edge_values_accepted(construct, field, value):
    """Edge values within the rules are accepted and the schedule computes; at step
    0 it is the initial learning rate."""
    arguments = {**VALID, field: value}
    schedule = construct(**arguments)
    initial = np.asarray(arguments["initial_learning_rate"], np.float64)
    np.testing.assert_allclose(schedule(0), initial, rtol=1e-6)


def test_name_none_accepted():
    """name=None (what TF 2 configs write) is accepted."""
    assert ExponentialDecay(**VALID, name=None).name is None


@pytest.mark.parametrize(
    "step",
    [
        pytest.param(np.asarray([True, False]), id="bool-array"),
        pytest.param(True, id="python-bool"),
        pytest.param(np.asarray([1 + 2j], np.complex64), id="complex-array"),
        pytest.param(1j, id="python-complex"),
    ],
)
@pytest.mark.parametrize("wrap", [jax.jit, lambda f: f], ids=["jit", "eager"])
def test_bad_step_dtype(wrap, step):
    """A bool or complex step raises TypeError naming the step's dtype."""
    schedule = wrap(exponential_decay(**VALID))
    with pytest.raises(TypeError, match=r"\bstep\b.*\b(bool|complex64|complex128)\b"):
        schedule(step)


# ---------------------------------------------------------------------------
# from_config.
# ---------------------------------------------------------------------------


def test_from_config_unknown_key():
    """A key Keras and jaxdecay do not know raises ValueError naming it."""
    with pytest.raises(ValueError, match=r"unknown.*'power'"):
        ExponentialDecay.from_config({**VALID, "power": 0.5})


@pytest.mark.parametrize(
    "missing", ["initial_learning_rate", "decay_steps", "decay_rate"]
)
def test_from_config_missing_key(missing):
    """A missing required key raises ValueError naming it."""
    config = {key: value for key, value in VALID.items() if key != missing}
    with pytest.raises(ValueError, match=rf"missing.*'{missing}'"):
        ExponentialDecay.from_config(config)


@pytest.mark.parametrize("config", [[1, 2], "decay_steps=1000", None, 3])
def test_from_config_wrong_type(config):
    """A config that is not a mapping raises TypeError showing what it got."""
    with pytest.raises(TypeError, match=r"config.*" + re.escape(repr(config))):
        ExponentialDecay.from_config(config)


def test_from_config_non_string_key():
    """Non-string keys raise TypeError."""
    with pytest.raises(TypeError, match="keys"):
        ExponentialDecay.from_config({**VALID, 1: 2})


@pytest.mark.parametrize(
    ("field", "value", "error", "shown"),
    [
        ("decay_steps", 1000.0, TypeError, r"1000\.0"),
        ("staircase", 0, TypeError, "0"),
        ("decay_rate", -1, ValueError, r"-1(\.0)?"),
    ],
)
def test_from_config_validates_values(field, value, error, shown):
    """from_config runs the constructor's checks (a JSON 1000.0 is not an int)."""
    with pytest.raises(error, match=names(field, shown)):
        ExponentialDecay.from_config({**VALID, field: value})


# ---------------------------------------------------------------------------
# deserialize: allow-lists, and nothing named in the data is imported.
# ---------------------------------------------------------------------------


def wrapped(**overrides):
    data = {
        "module": "keras.optimizers.schedules",
        "class_name": "ExponentialDecay",
        "config": dict(VALID),
        "registered_name": None,
    }
    data.update(overrides)
    return data


@pytest.fixture
def no_imports():
    """Asserts that the test imported no module (and none named in its data)."""
    before = set(sys.modules)
    yield
    assert not any(NEVER_IMPORTED in name for name in sys.modules)
    assert set(sys.modules) - before == set()


@pytest.mark.parametrize(
    "class_name",
    [
        "CosineDecayRestarts",
        "os.system",
        f"{NEVER_IMPORTED}.Evil",
        "exponentialdecay",
        None,
        3,
    ],
)
def test_deserialize_class_name_not_allowed(class_name, no_imports):
    """Only the families' class names are accepted; others raise ValueError
    naming the class_name, and nothing is imported."""
    with pytest.raises(ValueError, match=r"class_name.*" + re.escape(repr(class_name))):
        jaxdecay.deserialize(wrapped(class_name=class_name))


@pytest.mark.parametrize(
    "module",
    [
        "os",
        "builtins",
        NEVER_IMPORTED,
        f"{NEVER_IMPORTED}.schedules",
        "keras.src",
        # jaxdecay's private modules are no names a serialized schedule is read by.
        "jaxdecay._keras",
        "jaxdecay._exponential",
        "jaxdecay.keras.ExponentialDecay",
    ],
)
def test_deserialize_module_not_allowed(module, no_imports):
    """A module outside the allow-list raises ValueError naming it; it is never
    imported (text form too)."""
    with pytest.raises(ValueError, match=r"module.*" + re.escape(repr(module))):
        jaxdecay.deserialize(wrapped(module=module))
    with pytest.raises(ValueError, match=r"module.*" + re.escape(repr(module))):
        jaxdecay.deserialize(json.dumps(wrapped(module=module)))


@pytest.mark.parametrize("module", [["os"], {"name": NEVER_IMPORTED}, 3])
def test_deserialize_module_of_wrong_type(module, no_imports):
    """A module that is not a str (a JSON array or object) is refused with a message
    naming the field and the value, as for class_name; nothing is imported."""
    with pytest.raises(
        (TypeError, ValueError), match=r"module.*" + re.escape(repr(module))
    ):
        jaxdecay.deserialize(json.dumps(wrapped(module=module)))


@pytest.mark.parametrize(
    "registered_name",
    [
        "os.system",
        f"{NEVER_IMPORTED}>Evil",
        3,
        "jaxdecay>InverseTimeDecay",  # another class's
        "jaxdecay.keras>ExponentialDecay",
        "Custom>ExponentialDecay",
        ["jaxdecay>ExponentialDecay"],
    ],
)
def test_deserialize_registered_name_not_allowed(registered_name, no_imports):
    """A registered_name other than None, "ExponentialDecay" and
    "jaxdecay>ExponentialDecay" (Keras' name for `to_keras()`'s class) raises
    ValueError."""
    with pytest.raises(
        ValueError, match=r"registered_name.*" + re.escape(repr(registered_name))
    ):
        jaxdecay.deserialize(wrapped(registered_name=registered_name))


def test_deserialize_accepts_allowed_names(no_imports):
    """The allowed module / registered_name spellings load (and import nothing)."""
    for module in [
        "keras.optimizers.schedules",
        "keras.src.optimizers.schedules.learning_rate_schedule",
        "jaxdecay",
        "jaxdecay.keras",
    ]:
        for registered_name in (None, "ExponentialDecay", "jaxdecay>ExponentialDecay"):
            loaded = jaxdecay.deserialize(
                wrapped(module=module, registered_name=registered_name)
            )
            assert loaded == ExponentialDecay(**VALID)


def test_deserialize_unknown_wrapper_key(no_imports):
    """A top-level key outside module/class_name/config/registered_name raises."""
    with pytest.raises(ValueError, match=r"unknown.*'extra'"):
        jaxdecay.deserialize(wrapped(extra=1))


@pytest.mark.parametrize("missing", ["class_name", "config"])
def test_deserialize_missing_wrapper_key(missing):
    """class_name and config are required."""
    data = wrapped()
    del data[missing]
    with pytest.raises(ValueError, match=rf"missing.*'{missing}'"):
        jaxdecay.deserialize(data)


@pytest.mark.parametrize("config", [[1, 2], "x", None])
def test_deserialize_config_wrong_type(config):
    """A config that is not a dict raises TypeError."""
    with pytest.raises(TypeError, match="config"):
        jaxdecay.deserialize(wrapped(config=config))


@pytest.mark.parametrize("data", [[wrapped()], 3, None, 1.5])
def test_deserialize_wrong_type(data):
    """Data that is neither a dict nor JSON text raises TypeError showing it."""
    with pytest.raises(TypeError, match=re.escape(repr(data)[:20])):
        jaxdecay.deserialize(data)


@pytest.mark.parametrize(
    "text",
    ["", "not json", "{", '{"class_name": }', b"\xff\xfe\x00", "[1, 2", "'single'"],
)
def test_deserialize_non_json_text(text):
    """Text that is not JSON raises ValueError."""
    with pytest.raises(ValueError, match="JSON"):
        jaxdecay.deserialize(text)


def test_deserialize_json_text_of_a_list():
    """Valid JSON that is not an object raises TypeError."""
    with pytest.raises(TypeError):
        jaxdecay.deserialize("[1, 2]")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("field", ["initial_learning_rate", "decay_rate"])
def test_deserialize_non_finite_json_literal(literal, field):
    """NaN / Infinity literals (which Python's json accepts) raise ValueError."""
    config = {**VALID, field: "@"}
    text = json.dumps(wrapped(config=config)).replace('"@"', literal)
    with pytest.raises(ValueError, match=literal.lstrip("-")):
        jaxdecay.deserialize(text)


def test_deserialize_overflowing_json_number():
    """1e999 parses as inf in Python's json; it is refused as not finite."""
    text = json.dumps(wrapped()).replace('"decay_rate": 0.5', '"decay_rate": 1e999')
    with pytest.raises(ValueError, match=names("decay_rate", "inf")):
        jaxdecay.deserialize(text)


@pytest.mark.parametrize(
    "text", ["[" * 100_000, '{"a": ' * 100_000, "[" * 100_000 + "]" * 100_000]
)
def test_deserialize_deeply_nested_json(text):
    """Deeply nested JSON raises ValueError, quickly (no RecursionError escapes)."""
    start = time.perf_counter()
    with pytest.raises(ValueError, match="JSON"):
        jaxdecay.deserialize(text)
    with pytest.raises(ValueError, match="JSON"):
        ExponentialDecay.from_json(text.encode())
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("text", ["lr.json", "configs/LR.YAML", "runs/7/lr"])
def test_from_json_of_a_path_says_it_is_one(text):
    """Text that looks like a file name gets the JSON error and a pointer to load."""
    for read in (jaxdecay.deserialize, ExponentialDecay.from_json):
        with pytest.raises(ValueError) as raised:
            read(text)
        assert str(raised.value) == (
            "not valid JSON: Expecting value: line 1 column 1 (char 0); "
            f"{text.strip()!r} looks like a file path: deserialize and from_json "
            "read JSON text, ExponentialDecay.load(path) reads a file"
        )


def test_from_json_of_a_path_object_points_to_load(tmp_path):
    with pytest.raises(TypeError, match=r"got the path .*load\(path\) reads a file"):
        ExponentialDecay.from_json(tmp_path / "lr.json")


@pytest.mark.parametrize("text", [3, None, {"class_name": "ExponentialDecay"}])
def test_from_json_wrong_type(text):
    """from_json takes str or bytes only."""
    with pytest.raises(TypeError, match="text"):
        ExponentialDecay.from_json(text)


# ---------------------------------------------------------------------------
# optax's argument names.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("optax_name", "field"),
    [
        ("init_value", "initial_learning_rate"),
        ("peak_value", "initial_learning_rate"),  # warmup_exponential_decay_schedule's
        ("transition_steps", "decay_steps"),
        ("end_value", "end_learning_rate"),
    ],
)
@pytest.mark.parametrize("make", [ExponentialDecay, exponential_decay])
def test_optax_names_name_the_field(make, optax_name, field):
    """optax's name raises a TypeError that names jaxdecay's field, as written, for
    the dataclass and the builder alike."""
    kwargs = {**VALID}
    kwargs[optax_name] = kwargs.pop(field, 0.01)
    expected = (
        f"{make.__name__}() got an unexpected keyword argument '{optax_name}'; "
        f"jaxdecay calls it '{field}' (Keras' name for optax's {optax_name})"
    )
    with pytest.raises(TypeError) as raised:
        make(**kwargs)
    assert str(raised.value) == expected
    # Also next to the right name, and after positional arguments.
    with pytest.raises(TypeError, match=f"jaxdecay calls it '{field}'"):
        make(0.1, 1000, 0.5, **{optax_name: 0.01})


def test_dataclass_with_optax_names_stays_a_dataclass():
    """The check wraps the generated __init__: the signature, replace, pickling
    and Python's own error for other unknown names are unchanged."""
    parameters = inspect.signature(ExponentialDecay).parameters
    assert list(parameters) == [f.name for f in dataclasses.fields(ExponentialDecay)]
    assert parameters["transition_begin"].kind is inspect.Parameter.KEYWORD_ONLY
    schedule = ExponentialDecay(**VALID)
    assert dataclasses.replace(schedule, decay_rate=0.25).decay_rate == 0.25
    assert pickle.loads(pickle.dumps(schedule)) == schedule
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'power'$"):
        ExponentialDecay(**VALID, power=2)


@pytest.mark.parametrize(
    "schedule",
    [exponential_decay(**VALID), {"class_name": "ExponentialDecay"}, None],
    ids=["function", "dict", "none"],
)
def test_serialize_refuses_non_dataclass(schedule):
    """serialize takes only an ExponentialDecay: a plain function from
    exponential_decay holds no config, so it raises TypeError."""
    with pytest.raises(TypeError, match="ExponentialDecay"):
        jaxdecay.serialize(schedule)


X64 = jax.config.jax_enable_x64
# Not 1, but 1 when rounded (a long double where the compute dtype is float64).
ONE_IN_COMPUTE = np.longdouble(1) + np.longdouble(2.0**-60) if X64 else 0.99999999


@pytest.mark.skipif(
    X64 and np.finfo(np.longdouble).nmant < 60, reason="no wider float than float64"
)
@pytest.mark.parametrize("construct", [ExponentialDecay, exponential_decay])
def test_a_rate_that_rounds_to_1_warns_naming_the_field_and_the_fix(construct):
    with pytest.warns(UserWarning, match=r"^decay_rate=.* is 1 in float") as caught:
        construct(0.1, 1, ONE_IN_COMPUTE)
    assert "decay_steps * k" in str(caught[0].message)
    assert "JAX_ENABLE_X64=1" in str(caught[0].message)
    assert caught[0].filename == __file__  # the caller's line, not the package's


@pytest.mark.skipif(X64, reason="every Python float is a float64")
@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("initial_learning_rate", 1e-50, "0.0"),
        ("decay_rate", 1e39, "inf"),
        ("end_learning_rate", -1e-46, "-0.0"),
        ("warmup_init", 1e300, "inf"),
    ],
)
def test_a_number_that_rounds_to_0_or_inf_warns_naming_the_field(field, value, shown):
    arguments = dict(initial_learning_rate=0.1, decay_steps=1, decay_rate=0.5)
    arguments[field] = value
    if field == "warmup_init":
        arguments["warmup_steps"] = 10
    message = rf"^{field}={re.escape(repr(value))} is {shown} in float32"
    with pytest.warns(UserWarning, match=message):
        ExponentialDecay(**arguments)


@pytest.mark.skipif(X64, reason="every Python float is a float64")
@pytest.mark.parametrize(
    ("field", "value", "zero"),
    [
        ("initial_learning_rate", 1e-40, "0.0"),
        ("decay_rate", 1e-45, "0.0"),
        ("end_learning_rate", -1e-39, "-0.0"),
    ],
)
def test_a_subnormal_number_warns_that_it_counts_as_0(field, value, zero):
    arguments = dict(initial_learning_rate=0.1, decay_steps=1, decay_rate=0.5)
    arguments[field] = value
    message = (
        rf"^{field}={re.escape(repr(value))} is subnormal in float32, .* counts "
        rf"as {re.escape(zero)} "
    )
    with pytest.warns(UserWarning, match=message):
        ExponentialDecay(**arguments)


def test_numbers_that_keep_their_meaning_do_not_warn():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ExponentialDecay(1e-30, 1, 0.9999999, end_learning_rate=1e30)  # not 1
        ExponentialDecay(0.1, 1, 1.0)  # exactly 1 is what it says
        ExponentialDecay(0.0, 1, 0.5, end_learning_rate=-0.0)
    assert [str(w.message) for w in caught] == []
