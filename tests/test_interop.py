"""Config libraries: Fiddle, Hydra/OmegaConf, ml_collections, YAML and optax's kwargs.

Each library is an optional extra of jaxdecay (`configs`) and a requirement of the
test extra: where one is missing this module is skipped, and `.ci/run` fails if a run
with the test extra installed skipped anything for a missing library.
"""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

fdl = pytest.importorskip("fiddle")
hydra = pytest.importorskip("hydra")
ml_collections = pytest.importorskip("ml_collections")
yaml = pytest.importorskip("yaml")
pytest.importorskip("omegaconf")
pytest.importorskip("hypothesis")

from fiddle.experimental import serialization as fiddle_serialization
from hydra.core.config_store import ConfigStore
from hydra.utils import instantiate
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ValidationError

import jaxdecay
from jaxdecay import ExponentialDecayConfig, _interop

SCHEDULE = jaxdecay.ExponentialDecay(0.1, 1000, 0.96, staircase=True)
EXTENDED = jaxdecay.ExponentialDecay(
    0.1, 1000, 0.5, transition_begin=200, end_learning_rate=1e-3, name=None
)
OPTIONAL_LIBRARIES = (
    "matplotlib",
    "yaml",
    "fiddle",
    "hydra",
    "omegaconf",
    "ml_collections",
    "PIL",
)


def test_import_jaxdecay_imports_no_optional_library():
    code = (
        "import sys, jaxdecay, jaxdecay._cli, jaxdecay._interop, jaxdecay._solve; "
        f"print(sorted(set({OPTIONAL_LIBRARIES!r}) & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------------------
# Fiddle.
# ---------------------------------------------------------------------------


def test_fiddle_builds_the_dataclass():
    config = fdl.Config(
        jaxdecay.ExponentialDecay,
        initial_learning_rate=0.1,
        decay_steps=1000,
        decay_rate=0.96,
        staircase=True,
    )
    assert fdl.build(config) == SCHEDULE
    config.decay_rate = 0.5  # configs are mutable until built
    config.transition_begin = 200  # keyword-only fields too
    config.end_learning_rate = 1e-3
    config.staircase = False
    config.name = None
    assert fdl.build(config) == EXTENDED


def test_fiddle_builds_the_function():
    config = fdl.Config(
        jaxdecay.exponential_decay, 0.1, decay_steps=1000, decay_rate=0.5
    )
    schedule = fdl.build(config)
    assert float(schedule(2000)) == pytest.approx(0.025)


def test_fiddle_build_reports_the_bad_field():
    config = fdl.Config(
        jaxdecay.ExponentialDecay,
        initial_learning_rate=0.1,
        decay_steps=0,
        decay_rate=0.5,
    )
    with pytest.raises(ValueError, match="decay_steps must be an integer in"):
        fdl.build(config)


def test_fiddle_serialization_round_trip():
    config = fdl.Config(
        jaxdecay.ExponentialDecay,
        initial_learning_rate=0.1,
        decay_steps=1000,
        decay_rate=0.5,
        transition_begin=200,
        end_learning_rate=1e-3,
        name=None,
    )
    text = fiddle_serialization.dump_json(config)
    assert fdl.build(fiddle_serialization.load_json(text)) == EXTENDED


# ---------------------------------------------------------------------------
# Hydra and OmegaConf.
# ---------------------------------------------------------------------------


def test_structured_config_mirrors_the_dataclass():
    """The schema has the dataclass's fields, in order, with the same defaults."""
    schema = [
        (field.name, field.default)
        for field in dataclasses.fields(ExponentialDecayConfig)
        if field.name != "_target_"
    ]
    dataclass = [
        (field.name, field.default)
        for field in dataclasses.fields(jaxdecay.ExponentialDecay)
    ]
    assert schema == dataclass


def test_omegaconf_structured_config_validates_types_and_builds():
    schema = OmegaConf.structured(ExponentialDecayConfig)
    assert OmegaConf.is_missing(schema, "initial_learning_rate")
    # OmegaConf's YAML reads 1e-3 as a float; the schema converts "1000" to an int.
    override = OmegaConf.create(
        "initial_learning_rate: 1e-1\ndecay_steps: '1000'\ndecay_rate: 0.5\n"
        "transition_begin: 200\nend_learning_rate: 1e-3\nname: null\n"
    )
    config = OmegaConf.merge(schema, override)
    assert instantiate(config) == EXTENDED
    with pytest.raises(ValidationError, match="decay_steps"):
        OmegaConf.merge(schema, {"decay_steps": 1.5})
    with pytest.raises(ValidationError, match="staircase"):
        OmegaConf.merge(schema, {"staircase": "sometimes"})


def test_hydra_instantiate_reports_the_bad_field():
    config = OmegaConf.structured(
        ExponentialDecayConfig(
            initial_learning_rate=0.1, decay_steps=-1, decay_rate=0.5
        )
    )
    with pytest.raises(hydra.errors.InstantiationException, match="decay_steps"):
        instantiate(config)


def test_hydra_compose_from_the_config_store():
    store = ConfigStore.instance()
    store.store(name="jaxdecay_test_schedule", node=ExponentialDecayConfig)
    with hydra.initialize(version_base=None, config_path=None):
        config = hydra.compose(
            "jaxdecay_test_schedule",
            overrides=[
                "initial_learning_rate=0.1",
                "decay_steps=1000",
                "decay_rate=0.96",
                "staircase=true",
            ],
        )
    assert instantiate(config) == SCHEDULE


def test_dictconfig_goes_to_from_config():
    """A DictConfig is a Mapping: from_config reads it as it is."""
    config = OmegaConf.create(EXTENDED.get_config())
    assert isinstance(config, DictConfig)
    assert jaxdecay.ExponentialDecay.from_config(config) == EXTENDED
    # An OmegaConf node with Hydra's _target_ reads through the CLI's loader.
    node = OmegaConf.structured(
        ExponentialDecayConfig(
            initial_learning_rate=0.1, decay_steps=1000, decay_rate=0.96, staircase=True
        )
    )
    data = _interop.load_yaml(OmegaConf.to_yaml(node))
    assert _interop.schedule_from_data(data) == SCHEDULE


# ---------------------------------------------------------------------------
# ml_collections.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config_type", [ml_collections.ConfigDict, ml_collections.FrozenConfigDict]
)
def test_config_dict_to_from_config(config_type):
    config = config_type(EXTENDED.get_config())
    assert jaxdecay.ExponentialDecay.from_config(config.to_dict()) == EXTENDED


def test_config_dict_field_changes_are_validated():
    config = ml_collections.ConfigDict(SCHEDULE.get_config())
    config.decay_steps = 0
    with pytest.raises(ValueError, match="decay_steps must be an integer in"):
        jaxdecay.ExponentialDecay.from_config(config.to_dict())


def test_config_dict_directly_to_from_config():
    config = ml_collections.ConfigDict(SCHEDULE.get_config())
    assert jaxdecay.ExponentialDecay.from_config(config) == SCHEDULE


# ---------------------------------------------------------------------------
# YAML.
# ---------------------------------------------------------------------------

positive = st.floats(min_value=0, max_value=1e300, exclude_min=True)
configs = st.builds(
    jaxdecay.ExponentialDecay,
    initial_learning_rate=st.floats(-1e300, 1e300, allow_subnormal=True),
    decay_steps=st.integers(1, 2**63 - 1),
    decay_rate=positive,
    staircase=st.booleans(),
    name=st.none() | st.text(max_size=20),
    transition_begin=st.integers(0, 2**63 - 1),
    end_learning_rate=st.none() | st.floats(-1e300, 1e300),
)


@settings(max_examples=200, deadline=None)
@given(configs)
def test_yaml_round_trip_is_exact(schedule):
    text = _interop.to_yaml(schedule)
    assert jaxdecay.ExponentialDecay.from_config(yaml.safe_load(text)) == schedule
    assert jaxdecay.ExponentialDecay.from_config(_interop.load_yaml(text)) == schedule


def test_yaml_is_the_config_block():
    assert _interop.to_yaml(SCHEDULE) == (
        "initial_learning_rate: 0.1\n"
        "decay_steps: 1000\n"
        "decay_rate: 0.96\n"
        "staircase: true\n"
        "name: ExponentialDecay\n"
    )


def test_load_yaml_reads_yaml_1_2_floats():
    data = _interop.load_yaml("a: 1e-4\nb: 1E5\nc: -2.5e-3\nd: .5\ne: 1_000\nf: 1.0e-4")
    assert data == {"a": 1e-4, "b": 1e5, "c": -2.5e-3, "d": 0.5, "e": 1000, "f": 1e-4}
    assert type(data["b"]) is float
    # PyYAML's own SafeLoader is left as it was.
    assert yaml.safe_load("a: 1e-4") == {"a": "1e-4"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\na: 2\n", "the key 'a' is written twice at line 2, column 1"),
        ("a: [1\n", "not valid YAML: expected ',' or ']'"),
        ("a: !!python/object:os.system x\n", "not valid YAML"),
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        (
            "a: &a [1, 1]\nb: &b [*a, *a]\ninitial_learning_rate: *b\n",
            "aliases \\(\\*name\\) are refused in configs at line 2, column 8",
        ),
    ],
)
def test_load_yaml_errors_are_one_line_value_errors(text, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[")) as info:
        _interop.load_yaml(text)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------------------
# optax's keyword arguments and the shapes the CLI reads.
# ---------------------------------------------------------------------------


WARMUP = jaxdecay.ExponentialDecay(
    0.1, 1000, 0.5, True, transition_begin=200, end_learning_rate=1e-3,
    warmup_steps=100, warmup_init=0.01,
)  # fmt: skip


@pytest.mark.parametrize("schedule", [SCHEDULE, EXTENDED, WARMUP])
def test_optax_kwargs_round_trip(schedule):
    warmup = schedule.warmup_steps > 0
    kwargs = schedule.optax_kwargs(warmup=warmup)
    restored = _interop.from_optax_kwargs(kwargs)
    assert restored == dataclasses.replace(schedule, name="ExponentialDecay")
    assert _interop.schedule_from_data(kwargs) == restored


def test_optax_kwargs_of_the_warmup_schedule_by_hand():
    """peak_value marks warmup_exponential_decay_schedule's arguments, whose
    init_value is the warmup's start; optax's defaults are jaxdecay's."""
    kwargs = {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 100,
              "transition_steps": 1000, "decay_rate": 0.5}  # fmt: skip
    assert _interop.from_optax_kwargs(kwargs) == jaxdecay.ExponentialDecay(
        0.1, 1000, 0.5, warmup_steps=100, warmup_init=0.0
    )


def test_optax_kwargs_errors():
    with pytest.raises(ValueError) as raised:
        _interop.from_optax_kwargs({**SCHEDULE.optax_kwargs(), "lr": 1})
    assert str(raised.value) == (
        "optax.exponential_decay's arguments have unknown keys ['lr']; known keys are "
        "['init_value', 'transition_steps', 'decay_rate', 'transition_begin', "
        "'staircase', 'end_value']"
    )
    with pytest.raises(ValueError, match="missing the keys \\['transition_steps'\\]"):
        _interop.from_optax_kwargs({"init_value": 0.1, "decay_rate": 0.5})
    # Without peak_value a warmup's keys are exponential_decay's unknown ones.
    with pytest.raises(ValueError, match="unknown keys \\['warmup_steps'\\]"):
        _interop.from_optax_kwargs({**SCHEDULE.optax_kwargs(), "warmup_steps": 100})
    # optax's warmup schedule requires its own arguments.
    with pytest.raises(ValueError) as raised:
        _interop.from_optax_kwargs(
            {"peak_value": 0.1, "transition_steps": 1000, "decay_rate": 0.5}
        )
    assert str(raised.value) == (
        "optax.warmup_exponential_decay_schedule's arguments are missing the keys "
        "['init_value', 'warmup_steps']"
    )
    with pytest.raises(
        ValueError,
        match="unknown keys \\['lr'\\]; known keys are "
        "\\['init_value', 'peak_value', 'warmup_steps',",
    ):
        _interop.from_optax_kwargs({**WARMUP.optax_kwargs(warmup=True), "lr": 1})
    with pytest.raises(ValueError, match="warmup_steps must be an integer in"):
        _interop.from_optax_kwargs(
            {**WARMUP.optax_kwargs(warmup=True), "warmup_steps": -1}
        )


def test_schedule_from_data_shapes():
    shapes = [
        jaxdecay.serialize(EXTENDED),
        {"class_name": "ExponentialDecay", "config": EXTENDED.get_config()},
        EXTENDED.get_config(),
        {"_target_": "jaxdecay.ExponentialDecay", **EXTENDED.get_config()},
    ]
    for data in shapes:
        assert _interop.schedule_from_data(data) == EXTENDED
    with pytest.raises(TypeError, match="must be a mapping"):
        _interop.schedule_from_data([1])
    with pytest.raises(ValueError, match="never imported"):
        _interop.schedule_from_data({"_target_": "os.system"})
    # The numbers are kept exactly, NumPy scalars too.
    exact = jaxdecay.ExponentialDecay(np.float64(0.1), 10, 0.5)
    assert _interop.schedule_from_data(exact.get_config()) == exact
