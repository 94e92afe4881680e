"""ExponentialDecay as a value: constructor, immutability, copies, configs, JSON."""

import copy
import copyreg
import dataclasses
import inspect
import json
import pickle
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

chex = pytest.importorskip("chex")
optax = pytest.importorskip("optax")

from _reference import bits

import jaxdecay
from jaxdecay import ExponentialDecay

KERAS_KEYS = ["initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name"]


STEPS = np.asarray([0, 1, 999, 1000, 1001, 5000, 123_457], np.int32)

# ---------------------------------------------------------------------------
# Constructor.
# ---------------------------------------------------------------------------


def test_positional_order_is_keras():
    """Positional arguments are Keras' (initial_learning_rate, decay_steps,
    decay_rate, staircase, name)."""
    schedule = ExponentialDecay(0.25, 300, 0.5, True, "warm")
    assert schedule.initial_learning_rate == 0.25
    assert schedule.decay_steps == 300
    assert schedule.decay_rate == 0.5
    assert schedule.staircase is True
    assert schedule.name == "warm"
    assert schedule.transition_begin == 0
    assert schedule.end_learning_rate is None


def test_defaults_are_keras():
    """staircase defaults to False and name to "ExponentialDecay", as in Keras."""
    schedule = ExponentialDecay(0.1, 1000, 0.96)
    assert schedule.staircase is False
    assert schedule.name == "ExponentialDecay"


@pytest.mark.parametrize("extra", [(0,), (0, None), (5, 0.01)])
def test_extension_fields_are_keyword_only(extra):
    """transition_begin and end_learning_rate cannot be given positionally."""
    with pytest.raises(TypeError):
        ExponentialDecay(0.1, 1000, 0.5, False, "n", *extra)


def test_extension_fields_by_keyword():
    """transition_begin and end_learning_rate are set by keyword."""
    schedule = ExponentialDecay(
        0.1, 1000, 0.5, transition_begin=7, end_learning_rate=0.01
    )
    assert (schedule.transition_begin, schedule.end_learning_rate) == (7, 0.01)


def test_frozen():
    """Assigning to any field raises FrozenInstanceError and changes nothing."""
    schedule = ExponentialDecay(0.1, 1000, 0.5)
    for field in dataclasses.fields(schedule):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(schedule, field.name, getattr(schedule, field.name))
    assert schedule == ExponentialDecay(0.1, 1000, 0.5)


def test_replace_builds_a_variant():
    """`dataclasses.replace` gives a new schedule with the new values."""
    schedule = ExponentialDecay(0.1, 1000, 0.5, name="a")
    variant = dataclasses.replace(schedule, decay_steps=10, transition_begin=3)
    assert variant == ExponentialDecay(0.1, 10, 0.5, name="a", transition_begin=3)
    assert schedule.decay_steps == 1000
    # The variant computes with its own values: 0.1 * 0.5**1 at step 3 + 10.
    np.testing.assert_allclose(variant(13), 0.05, rtol=2e-6)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (dict(decay_steps=0), ValueError),
        (dict(decay_rate=-1.0), ValueError),
        (dict(staircase=1), TypeError),
        (dict(transition_begin=-1), ValueError),
        (dict(end_learning_rate=float("nan")), ValueError),
    ],
)
def test_replace_revalidates(change, error):
    """`dataclasses.replace` with an invalid value raises, naming the field."""
    (field,) = change
    with pytest.raises(error, match=field):
        dataclasses.replace(ExponentialDecay(0.1, 1000, 0.5), **change)


def test_equality_and_hash():
    """Equal fields compare and hash equal (numbers normalized: 1 == 1.0, int64)."""
    a = ExponentialDecay(1, np.int64(1000), 0.5, transition_begin=np.int32(3))
    b = ExponentialDecay(1.0, 1000, 0.5, transition_begin=3)
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert isinstance(a.decay_steps, int) and isinstance(a.transition_begin, int)


@pytest.mark.parametrize(
    "change",
    [
        dict(initial_learning_rate=0.2),
        dict(decay_steps=999),
        dict(decay_rate=0.25),
        dict(staircase=True),
        dict(name="other"),
        dict(transition_begin=1),
        dict(end_learning_rate=0.0),
    ],
)
def test_inequality(change):
    """Schedules that differ in any one field compare unequal."""
    base = ExponentialDecay(0.1, 1000, 0.5)
    assert base != dataclasses.replace(base, **change)


@pytest.mark.parametrize(
    "schedule",
    [
        ExponentialDecay(0.1, 1000, 0.5),
        ExponentialDecay(
            np.float16(0.1),
            1000,
            0.96,
            True,
            None,
            transition_begin=10,
            end_learning_rate=0.01,
        ),
    ],
    ids=["default", "all-fields"],
)
@pytest.mark.parametrize(
    "clone",
    [copy.copy, copy.deepcopy, lambda s: pickle.loads(pickle.dumps(s))],
    ids=["copy", "deepcopy", "pickle"],
)
def test_copies_are_equal_and_compute_the_same_bits(schedule, clone):
    """copy.copy, copy.deepcopy and a pickle round trip give an equal schedule that
    computes the same bits, under jit too."""
    twin = clone(schedule)
    assert twin == schedule
    assert hash(twin) == hash(schedule)
    assert bits(twin(STEPS)) == bits(schedule(STEPS))
    assert bits(jax.jit(twin)(STEPS)) == bits(jax.jit(schedule)(STEPS))


def test_tampered_pickle_is_validated():
    """A pickle whose state holds an invalid value raises on load."""

    class Tampered:
        def __reduce__(self):
            state = ExponentialDecay(0.1, 1000, 0.5).__getstate__()
            state["decay_steps"] = -1000
            return copyreg._reconstructor, (ExponentialDecay, object, None), state

    data = pickle.dumps(Tampered())
    with pytest.raises(ValueError, match=r"decay_steps.*-1000"):
        pickle.loads(data)


# ---------------------------------------------------------------------------
# Keras config.
# ---------------------------------------------------------------------------


def test_get_config_has_exactly_keras_keys_by_default():
    """With default transition_begin/end_learning_rate the config is Keras' 5 keys,
    with plain JSON values."""
    config = ExponentialDecay(
        np.float32(0.5), np.int64(1000), 0.25, True, "s"
    ).get_config()
    assert list(config) == KERAS_KEYS
    assert config == {
        "initial_learning_rate": 0.5,
        "decay_steps": 1000,
        "decay_rate": 0.25,
        "staircase": True,
        "name": "s",
    }
    assert type(config["initial_learning_rate"]) is float
    assert type(config["decay_steps"]) is int
    assert type(config["decay_rate"]) is float
    json.dumps(config, allow_nan=False)


@pytest.mark.parametrize(
    ("extra", "added"),
    [
        (dict(transition_begin=5), dict(transition_begin=5)),
        (dict(end_learning_rate=0.01), dict(end_learning_rate=0.01)),
        (
            dict(transition_begin=5, end_learning_rate=0.0),
            dict(transition_begin=5, end_learning_rate=0.0),
        ),
        (dict(transition_begin=0, end_learning_rate=None), {}),
    ],
)
def test_get_config_adds_extension_keys_only_when_set(extra, added):
    """transition_begin / end_learning_rate appear only when not at their defaults."""
    config = ExponentialDecay(0.1, 1000, 0.5, **extra).get_config()
    assert set(config) == set(KERAS_KEYS) | set(added)
    assert {key: config[key] for key in added} == added


@pytest.mark.parametrize(
    "schedule",
    [
        ExponentialDecay(0.1, 1000, 0.96),
        ExponentialDecay(1 / 3, 7, 1.5, True, None, end_learning_rate=2.0),
        ExponentialDecay(0.1, 2**63 - 1, 1 - 2**-53, transition_begin=2**63 - 1),
    ],
)
def test_from_config_round_trip(schedule):
    """from_config(get_config()) gives back an equal schedule."""
    assert ExponentialDecay.from_config(schedule.get_config()) == schedule


def test_from_config_accepts_tf2_name_none_and_missing_optional_keys():
    """A config with only the three required keys, or "name": None, loads."""
    required = dict(initial_learning_rate=0.1, decay_steps=1000, decay_rate=0.5)
    assert ExponentialDecay.from_config(required) == ExponentialDecay(0.1, 1000, 0.5)
    loaded = ExponentialDecay.from_config({**required, "name": None})
    assert loaded.name is None


# ---------------------------------------------------------------------------
# JSON and (de)serialize.
# ---------------------------------------------------------------------------

AWKWARD = [
    pytest.param(dict(initial_learning_rate=0.1, decay_rate=0.1), id="0.1"),
    pytest.param(dict(initial_learning_rate=1 / 3, decay_rate=2 / 3), id="thirds"),
    pytest.param(
        dict(initial_learning_rate=2.0**-1074, decay_rate=1 - 2**-53), id="subnormal"
    ),
    pytest.param(
        dict(initial_learning_rate=1.7976931348623157e308, decay_rate=1 + 2**-52),
        id="max-float",
    ),
    pytest.param(
        dict(initial_learning_rate=-0.0, decay_rate=5e-324, end_learning_rate=-1e-300),
        id="negative-zero",
    ),
]


@pytest.mark.parametrize("fields", AWKWARD)
def test_json_round_trip_is_bit_exact(fields):
    """to_json / from_json keep every float bit for bit (0.1, 1/3, subnormals...)."""
    schedule = ExponentialDecay(
        decay_steps=2**53 + 1, staircase=True, name="é ☃", transition_begin=9, **fields
    )
    text = schedule.to_json()
    loaded = ExponentialDecay.from_json(text)
    assert loaded == schedule
    for field in ("initial_learning_rate", "decay_rate", "end_learning_rate"):
        value, back = getattr(schedule, field), getattr(loaded, field)
        if value is not None:
            assert float(back).hex() == float(value).hex(), field
    assert ExponentialDecay.from_json(text.encode()) == schedule
    assert ExponentialDecay.from_json(schedule.to_json(indent=2)) == schedule


def test_to_json_is_keras_shape():
    """to_json writes the dict `serialize` returns."""
    schedule = ExponentialDecay(0.1, 1000, 0.5, transition_begin=3)
    assert json.loads(schedule.to_json()) == jaxdecay.serialize(schedule)


def test_serialize_has_keras3_keys():
    """serialize gives Keras 3's module/class_name/config/registered_name dict."""
    schedule = ExponentialDecay(0.1, 1000, 0.5)
    data = jaxdecay.serialize(schedule)
    assert set(data) == {"module", "class_name", "config", "registered_name"}
    assert data["class_name"] == "ExponentialDecay"
    assert data["module"] == "keras.optimizers.schedules"
    assert data["registered_name"] is None
    assert data["config"] == schedule.get_config()


TF2_TEXT = (
    '{"class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.1, '
    '"decay_steps": 1000, "decay_rate": 0.5, "staircase": false, "name": null}}'
)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            jaxdecay.serialize(ExponentialDecay(0.1, 1000, 0.5, name=None)), id="dict"
        ),
        pytest.param(
            json.dumps(jaxdecay.serialize(ExponentialDecay(0.1, 1000, 0.5, name=None))),
            id="text",
        ),
        pytest.param(
            json.dumps(
                jaxdecay.serialize(ExponentialDecay(0.1, 1000, 0.5, name=None))
            ).encode(),
            id="bytes",
        ),
        pytest.param(json.loads(TF2_TEXT), id="tf2-dict"),
        pytest.param(TF2_TEXT, id="tf2-text"),
        pytest.param(bytearray(TF2_TEXT.encode()), id="tf2-bytearray"),
    ],
)
def test_deserialize_accepts(data):
    """deserialize reads a dict, JSON text, bytes, and TF 2's shape with name null."""
    assert jaxdecay.deserialize(data) == ExponentialDecay(0.1, 1000, 0.5, name=None)


@pytest.mark.parametrize(
    "config",
    [
        {"initial_learning_rate": 0.1, "decay_steps": 1000, "decay_rate": 0.5},
        ExponentialDecay(0.1, 1000, 0.5, transition_begin=3).get_config(),
    ],
    ids=["three-keys", "get-config"],
)
def test_deserialize_reads_a_bare_config(config):
    """A bare get_config() dict, or its JSON, reads as from_config reads it."""
    expected = ExponentialDecay.from_config(config)
    assert jaxdecay.deserialize(config) == expected
    assert jaxdecay.deserialize(json.dumps(config)) == expected
    assert ExponentialDecay.from_json(json.dumps(config)) == expected


def test_deserialize_checks_a_bare_config_as_from_config_does():
    """A bare config's errors are from_config's; a container value is refused
    without being shown whole."""
    bare = {"initial_learning_rate": 0.1, "decay_steps": 1000}
    with pytest.raises(
        ValueError, match=r"^config is missing the keys \['decay_rate'\]"
    ):
        jaxdecay.deserialize(bare)
    with pytest.raises(TypeError, match=r"^decay_rate must be a number"):
        jaxdecay.deserialize({**bare, "decay_rate": [0.5] * 10**6})


def test_load_reads_a_file_that_to_json_wrote(tmp_path):
    """load reads the file to_json's text was written to, by str or Path."""
    schedule = ExponentialDecay(0.1, 1000, 0.5, True, transition_begin=10)
    path = tmp_path / "lr.json"
    path.write_text(schedule.to_json(indent=2))
    assert ExponentialDecay.load(path) == schedule
    assert ExponentialDecay.load(str(path)) == schedule


def test_load_names_the_file_in_errors(tmp_path):
    """Errors name the file; a missing file is the OSError open raises."""
    path = tmp_path / "bad.json"
    path.write_text('{"initial_learning_rate": 0.1, "decay_steps": 0, "decay_rate": 1}')
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: decay_steps must"):
        ExponentialDecay.load(path)
    path.write_text(" " * (2**20 + 1))
    with pytest.raises(ValueError, match="longer than 1048576 bytes"):
        ExponentialDecay.load(path)
    with pytest.raises(FileNotFoundError):
        ExponentialDecay.load(tmp_path / "missing.json")


def test_load_reads_yaml_as_the_command_line_does(tmp_path):
    """A .yaml or .yml file is YAML, read by the command line's reader: `1e-3` is a
    number (YAML 1.1 would make it a string, which the constructor refuses)."""
    pytest.importorskip("yaml")
    expected = ExponentialDecay(1e-3, 1000, 0.5, warmup_steps=10)
    text = "initial_learning_rate: 1e-3\ndecay_steps: 1000\ndecay_rate: 0.5\n"
    for name in ("lr.yaml", "lr.YML"):
        path = tmp_path / name
        path.write_text(text + "warmup_steps: 10\n")
        assert ExponentialDecay.load(path) == expected
    path.write_text("a: [1,\n")
    with pytest.raises(ValueError, match=r"lr\.YML: not valid YAML: .* at line 2"):
        ExponentialDecay.load(path)


def test_load_of_another_file_says_what_it_reads(tmp_path):
    path = tmp_path / "lr.toml"
    path.write_text("initial_learning_rate = 0.1\n")
    with pytest.raises(ValueError) as error:
        ExponentialDecay.load(path)
    assert str(error.value).startswith(f"{path}: not valid JSON")
    assert str(error.value).endswith(
        "; load reads YAML from a .yaml or .yml file, and JSON from any other"
    )


def test_a_negative_zero_survives_every_format(tmp_path):
    """warmup_init=-0.0 gives -0.0 at step 0: JSON, YAML, a file, pickle and optax's
    arguments keep it, and it is not equal to the config with +0.0."""
    pytest.importorskip("yaml")
    from jaxdecay import _interop

    negative = ExponentialDecay(0.1, 1000, 0.5, warmup_steps=10, warmup_init=-0.0)
    positive = dataclasses.replace(negative, warmup_init=0.0)
    assert negative != positive and hash(negative) != hash(positive)
    assert bits(negative(0)) != bits(positive(0))
    assert negative.get_config()["warmup_init"] == 0.0
    assert "warmup_init" not in positive.get_config()
    path = tmp_path / "lr.json"
    path.write_text(negative.to_json())
    copies = [
        ExponentialDecay.from_json(negative.to_json()),
        jaxdecay.deserialize(jaxdecay.serialize(negative)),
        ExponentialDecay.load(path),
        pickle.loads(pickle.dumps(negative)),
    ]
    optax_kwargs = negative.optax_kwargs(warmup=True)
    assert np.copysign(1.0, optax_kwargs["init_value"]) == -1.0
    yaml_path = tmp_path / "lr.yaml"
    yaml_path.write_text(_interop.to_yaml(negative))
    copies.append(ExponentialDecay.load(yaml_path))
    for copy_ in copies:
        assert copy_ == negative
        assert bits(copy_(0)) == bits(negative(0))


def test_optax_names_in_a_config_name_the_field():
    """from_config and deserialize refuse optax's names as the constructor does,
    naming the field, however the dict is wrapped."""
    config = {"initial_learning_rate": 0.1, "transition_steps": 10, "decay_rate": 0.5}
    message = (
        "config has optax's key 'transition_steps'; jaxdecay calls it 'decay_steps' "
        "(Keras' name for optax's transition_steps)"
    )
    for read in (
        ExponentialDecay.from_config,
        jaxdecay.deserialize,
        lambda c: jaxdecay.deserialize({"class_name": "ExponentialDecay", "config": c}),
    ):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            read(config)
    with pytest.raises(ValueError, match="optax's key 'init_value'; jaxdecay calls"):
        jaxdecay.deserialize({"init_value": 0.1, "transition_steps": 10})


def test_deserialize_round_trip_with_extensions():
    """serialize / deserialize keep transition_begin and end_learning_rate."""
    schedule = ExponentialDecay(
        0.3, 17, 1.25, True, "up", transition_begin=4, end_learning_rate=1.0
    )
    assert jaxdecay.deserialize(jaxdecay.serialize(schedule)) == schedule


# ---------------------------------------------------------------------------
# optax.
# ---------------------------------------------------------------------------


def test_optax_kwargs_names():
    """optax_kwargs maps Keras names onto optax's."""
    kwargs = ExponentialDecay(
        0.1, 10, 0.5, True, "x", transition_begin=5, end_learning_rate=0.02
    ).optax_kwargs()
    assert kwargs == dict(
        init_value=0.1,
        transition_steps=10,
        decay_rate=0.5,
        transition_begin=5,
        staircase=True,
        end_value=0.02,
    )


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 0.1),  # before transition_begin: init_value
        (5, 0.1),  # at transition_begin
        (14, 0.1),  # 9 steps in: still the first stair (staircase)
        (15, 0.05),  # one stair of transition_steps=10 at decay_rate 0.5
        (24, 0.05),
        (25, 0.025),
        (35, 0.02),  # 0.0125 clipped to end_value
        (1000, 0.02),
    ],
)
def test_optax_kwargs_drive_optax(step, expected):
    """optax.exponential_decay(**optax_kwargs()) gives the hand-worked values, so
    every argument reached the right optax parameter."""
    schedule = ExponentialDecay(
        0.1, 10, 0.5, True, transition_begin=5, end_learning_rate=0.02
    )
    value = optax.exponential_decay(**schedule.optax_kwargs())(jnp.asarray(step))
    np.testing.assert_allclose(value, expected, rtol=2e-6)


# optax's two schedules: the signatures are optax's own, the values optax's.

WARMUP = ExponentialDecay(
    0.1, 1000, 0.5, warmup_steps=100, warmup_init=0.01, name="warm"
)


@pytest.mark.parametrize(
    ("warmup", "function"),
    [
        (False, optax.exponential_decay),
        (True, optax.warmup_exponential_decay_schedule),
    ],
)
def test_optax_kwargs_are_optax_arguments_in_optax_order(warmup, function):
    """The roles declared on the fields name optax's parameters, in its order."""
    schedule = WARMUP if warmup else ExponentialDecay(0.1, 1000, 0.5)
    kwargs = schedule.optax_kwargs(warmup=warmup)
    assert list(kwargs) == list(inspect.signature(function).parameters)


def test_optax_kwargs_of_a_warmup():
    """In the warmup's arguments the peak is initial_learning_rate and init_value is
    warmup_init."""
    assert WARMUP.optax_kwargs(warmup=True) == {
        "init_value": 0.01,
        "peak_value": 0.1,
        "warmup_steps": 100,
        "transition_steps": 1000,
        "decay_rate": 0.5,
        "transition_begin": 0,
        "staircase": False,
        "end_value": None,
    }


def test_optax_kwargs_refuse_the_schedule_that_does_not_fit():
    with pytest.raises(ValueError) as raised:
        WARMUP.optax_kwargs()
    assert str(raised.value) == (
        "optax.exponential_decay has no warmup; this schedule sets warmup_steps=100: "
        "use to_optax(), or optax_kwargs(warmup=True) for the arguments of "
        "optax.warmup_exponential_decay_schedule"
    )
    with pytest.raises(ValueError) as raised:
        ExponentialDecay(0.1, 1000, 0.5, warmup_init=0.01).optax_kwargs(warmup=True)
    assert str(raised.value) == (
        "optax.warmup_exponential_decay_schedule needs warmup_steps > 0; this "
        "schedule has warmup_steps=0: use to_optax(), or optax_kwargs() for the "
        "arguments of optax.exponential_decay"
    )
    with pytest.raises(TypeError, match="warmup must be a bool, got 1 of type int"):
        WARMUP.optax_kwargs(warmup=1)


def test_optax_kwargs_of_a_traced_schedule_are_refused():
    def kwargs(schedule):
        return schedule.optax_kwargs()

    with pytest.raises(TypeError, match="warmup_steps is a traced integer"):
        jax.jit(kwargs)(WARMUP)


OPTAX_STEPS = np.array(
    [-5, 0, 1, 37, 50, 99, 100, 101, 350, 599, 600, 1099, 1100, 1101, 3100, 7777,
     20_000],
    np.int32,
)  # fmt: skip


@pytest.mark.parametrize("staircase", [False, True])
@pytest.mark.parametrize("transition_begin", [0, 500])
@pytest.mark.parametrize("end_learning_rate", [None, 0.02])
@pytest.mark.parametrize("warmup_steps", [0, 100])
def test_to_optax_is_optax_schedule_with_the_same_values(
    staircase, transition_begin, end_learning_rate, warmup_steps
):
    """to_optax() is optax's schedule, and gives jaxdecay's values within optax's
    float32 error (about a hundred ulp), in the warmup, at its end and after."""
    schedule = ExponentialDecay(
        0.1,
        1000,
        0.5,
        staircase,
        transition_begin=transition_begin,
        end_learning_rate=end_learning_rate,
        warmup_steps=warmup_steps,
        warmup_init=0.01,
    )
    steps = jnp.asarray(OPTAX_STEPS)
    chex.assert_trees_all_close(
        schedule.to_optax()(steps), schedule(steps), rtol=1e-5, atol=0
    )


def test_to_optax_builds_the_schedule_that_fits():
    """Hand-worked: a warmup from 0.01 to 0.1 over 100 steps, then halving every
    1000 steps."""
    values = WARMUP.to_optax()(jnp.asarray([0, 50, 100, 1100, 2100]))
    chex.assert_trees_all_close(
        values, jnp.asarray([0.01, 0.055, 0.1, 0.05, 0.025]), rtol=1e-6
    )
    plain = ExponentialDecay(0.1, 1000, 0.5, warmup_init=0.01)  # no warmup: unused
    values = plain.to_optax()(jnp.asarray([0, 1000, 2000]))
    chex.assert_trees_all_close(values, jnp.asarray([0.1, 0.05, 0.025]), rtol=1e-6)


def test_to_optax_without_optax_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "optax", None)  # import optax raises
    with pytest.raises(ImportError) as raised:
        WARMUP.to_optax()
    assert str(raised.value) == (
        "this needs optax, which is not installed: pip install 'jaxdecay[optax]'"
    )
