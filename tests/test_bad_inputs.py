"""The bad-input table, row by row: input -> error type and exact message.

The table in docs/bad-inputs.md (section "Bad configs") is the one list: this file
parses it and checks every row through `jaxdecay.deserialize` and
`ExponentialDecay.from_json`, so that the documentation and the behaviour cannot
drift apart.
"""

from __future__ import annotations

import copy
import json
import pathlib
import re

import pytest

keras = pytest.importorskip("keras")

import jaxdecay
from jaxdecay import ExponentialDecay, PolynomialDecay
from jaxdecay._registry import FAMILIES

PAGE = pathlib.Path(__file__).parent.parent / "docs" / "bad-inputs.md"
BASE_MARKER = "<!-- docs:bad-inputs-base -->"
TABLE_MARKER = "<!-- docs:bad-inputs -->"
WHOLE_TEXT = "*the whole text*"
ABSENT = "*absent*"
PLACEHOLDER = "\x00jaxdecay-bad-input\x00"
ERRORS = {"ValueError": ValueError, "TypeError": TypeError}


def code(cell):
    """The content of a cell that is one code span."""
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match, f"expected one `code` span, got {cell!r}"
    return match.group(1)


def json_of(cell):
    """A JSON cell: code spans joined by " + ", each optionally followed by a
    multiplication sign and a count."""
    parts = cell.split(" + ")
    text = ""
    for part in parts:
        match = re.fullmatch(r"`([^`]+)`(?: \N{MULTIPLICATION SIGN} (\d+))?", part)
        assert match, f"cannot read the JSON cell {cell!r}"
        text += match.group(1) * int(match.group(2) or 1)
    return text


def read_page(base_marker=BASE_MARKER, table_marker=TABLE_MARKER):
    """(base config, rows) from the page's table under `table_marker`; rows are
    (id, where, json, error, message) with `json` None for *absent*."""
    text = PAGE.read_text(encoding="utf-8")
    if table_marker + "\n" not in text or base_marker + "\n" not in text:
        return None, []
    base = re.search(
        re.escape(base_marker) + r"\n\s*```json\n(.*?)```", text, flags=re.DOTALL
    )
    assert base, "the base config must follow its marker as a ```json block"
    table = text.split(table_marker + "\n", 1)[1].strip().splitlines()
    assert table[0].startswith("| Where | JSON | Error | Message |"), table[0]
    rows = []
    for line in table[2:]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        assert len(cells) == 4, f"a row has four cells: {line!r}"
        where, source, error, message = cells
        where = where if where == WHOLE_TEXT else code(where)
        source = None if source == ABSENT else json_of(source)
        ident = f"{where}={'absent' if source is None else source[:40]}"
        rows.append((ident, where, source, code(error), code(message)))
    return json.loads(base.group(1)), rows


BASE, ROWS = read_page()
# The hold (`transition_begin`, a piece) refused as any integer field is: negative,
# not an integer, beyond int64.
HOLD_ROWS = [
    ("config.transition_begin", "-1"),
    ("config.transition_begin", "1.5"),
    ("config.transition_begin", "9223372036854775808"),
]
# Each family with fields of its own has a table of its own: (base marker, table
# marker, the config the base is, rows the table must have).
FAMILY_TABLES = {
    "PiecewiseConstantDecay": (
        "<!-- docs:bad-inputs-base-piecewise -->",
        "<!-- docs:bad-inputs-piecewise -->",
        jaxdecay.PiecewiseConstantDecay([1000, 2000], [0.1, 0.05, 0.01]),
        [
            ("config.boundaries", "[2000, 1000]"),  # not increasing
            ("config.boundaries", "[1000, 1000]"),
            ("config.boundaries", "[1000.5, 2000]"),  # not an integer
            ("config.boundaries", "[]"),  # empty
            ("config.values", "[0.1, 0.05]"),  # one too few
            ("config.values", "[0.1, 0.05, 0.01, 0.001]"),  # one too many
            ("config.values", "[0.1, NaN, 0.01]"),  # not finite
        ],
    ),
    "PolynomialDecay": (
        "<!-- docs:bad-inputs-polynomial-base -->",
        "<!-- docs:bad-inputs-polynomial -->",
        PolynomialDecay(0.1, 1000),
        [
            ("config.decay_steps", "0"),
            ("config.power", "-1.0"),
            *HOLD_ROWS,
        ],
    ),
    "CosineDecay": (
        "<!-- docs:bad-inputs-cosine-base -->",
        "<!-- docs:bad-inputs-cosine -->",
        jaxdecay.CosineDecay(0.1, 1000),
        [("config.decay_steps", "0"), *HOLD_ROWS],
    ),
}
FAMILY_PAGES = {
    family: read_page(base_marker, table_marker)
    for family, (base_marker, table_marker, _, _) in FAMILY_TABLES.items()
}


def text_for(where, source, base=None):
    """The base config's JSON text with `source` at `where` (or the key removed),
    or `source` alone for the whole text. Inserted as text, so that NaN literals,
    long integers and duplicate keys reach the parser as written."""
    if where == WHOLE_TEXT:
        return source
    data = copy.deepcopy(BASE if base is None else base)
    *parents, key = where.split(".")
    target = data
    for parent in parents:
        target = target[parent]
    if source is None:
        del target[key]
        return json.dumps(data)
    target[key] = PLACEHOLDER
    return json.dumps(data).replace(json.dumps(PLACEHOLDER), source)


def test_page_has_the_table():
    """docs/bad-inputs.md has the bad-input table (section "Bad configs"), with the
    rows the issue asks for: each kind of bad input at least once."""
    assert ROWS, f"docs/bad-inputs.md has no bad-input table ({TABLE_MARKER})"
    present = {(where, source) for _, where, source, _, _ in ROWS}
    required = [
        ("config.decay_steps", "0"),  # non-positive
        ("config.decay_steps", "-1000"),
        ("config.decay_steps", "1000.0"),  # float
        ("config.decay_steps", "true"),  # bool
        ("config.decay_steps", "9223372036854775808"),  # huge
        ("config.decay_rate", "0"),
        ("config.decay_rate", "-0.5"),
        ("config.decay_rate", "NaN"),
        ("config.decay_rate", "Infinity"),
        ("config.initial_learning_rate", "NaN"),
        ("config.initial_learning_rate", "-Infinity"),
        ("config.decay_steps", '"1000"'),  # strings where numbers belong
        ("config.initial_learning_rate", '"0.1"'),
        ("config.warmup_steps", "-100"),
        ("config.warmup_init", '"0"'),
        ("config.power", "0.5"),  # unknown keys
        ("extra", "1"),
        ("class_name", '"os.system"'),  # unknown class names
        ("module", '"os"'),  # module names in the data
        ("config", "[]"),  # wrong JSON types
        (WHOLE_TEXT, "[1, 2]"),
        (WHOLE_TEXT, "not json"),  # non-JSON text
        (WHOLE_TEXT, "NaN"),  # NaN literals
        ("jaxdecay_format", "3"),  # a newer format
    ]
    missing = [row for row in required if row not in present]
    assert not missing, f"the table lacks rows for {missing}"


def test_base_config_is_what_jaxdecay_writes_and_loads():
    """The base of every row is jaxdecay's own output, and it loads."""
    assert BASE is not None, f"docs/bad-inputs.md has no base config ({BASE_MARKER})"
    schedule = ExponentialDecay(0.1, 1000, 0.96)
    assert jaxdecay.serialize(schedule) == BASE
    assert jaxdecay.deserialize(json.dumps(BASE)) == schedule


@pytest.mark.parametrize(
    ("where", "source", "error", "message"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS]
    # Without the table, one failing case rather than an empty (skipped) test.
    or [pytest.param(None, None, None, None, id="the page has no bad-input table")],
)
@pytest.mark.parametrize(
    "read",
    [jaxdecay.deserialize, ExponentialDecay.from_json],
    ids=["deserialize", "from_json"],
)
def test_row(read, where, source, error, message):
    """The row's input raises exactly the row's error with exactly its message."""
    assert ROWS, f"docs/bad-inputs.md has no bad-input table ({TABLE_MARKER})"
    text = text_for(where, source)
    with pytest.raises(ERRORS[error]) as raised:
        read(text)
    assert type(raised.value) is ERRORS[error]
    if read == ExponentialDecay.from_json:
        # A class's own reader knows that class only, and names it alone.
        message = message.replace(f"one of {EVERY_FAMILY}", "'ExponentialDecay'")
    assert str(raised.value) == message


EVERY_FAMILY = str(list(FAMILIES))


@pytest.mark.parametrize("family", sorted(FAMILY_TABLES))
def test_family_base_config_is_what_jaxdecay_writes_and_loads(family):
    base_marker, table_marker, schedule, required = FAMILY_TABLES[family]
    base, rows = FAMILY_PAGES[family]
    assert base is not None, f"no base config ({base_marker})"
    assert jaxdecay.serialize(schedule) == base
    assert jaxdecay.deserialize(json.dumps(base)) == schedule
    present = {(where, source) for _, where, source, _, _ in rows}
    missing = [row for row in required if row not in present]
    assert not missing, f"the {family} table ({table_marker}) lacks rows {missing}"


@pytest.mark.parametrize(
    ("family", "where", "source", "error", "message"),
    [
        pytest.param(family, *row[1:], id=f"{family}-{row[0]}")
        for family, (_, rows) in sorted(FAMILY_PAGES.items())
        for row in rows
    ],
)
@pytest.mark.parametrize("read", ["deserialize", "from_json"])
def test_family_row(read, family, where, source, error, message):
    text = text_for(where, source, FAMILY_PAGES[family][0])
    read = jaxdecay.deserialize if read == "deserialize" else FAMILIES[family].from_json
    with pytest.raises(ERRORS[error]) as raised:
        read(text)
    assert type(raised.value) is ERRORS[error]
    assert str(raised.value) == message


# ---------------------------------------------------------------------------
# Outside the table: Python values that JSON text cannot hold.
# ---------------------------------------------------------------------------

VALID = dict(initial_learning_rate=0.1, decay_steps=1000, decay_rate=0.96)


def deep_list(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("field", ["initial_learning_rate", "decay_steps"])
def test_huge_python_int_is_refused_naming_the_field(field):
    """A Python int of 5000 digits (a dict can hold one; JSON text is refused past
    100 digits) is refused with a message naming the field.

    The repr of an int beyond 4300 digits raises ValueError("Exceeds the limit
    (4300 digits) for integer string conversion"), which would replace the intended
    message if the checks formatted the value with a plain repr."""
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        ExponentialDecay(**{**VALID, field: 10**5000})
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        ExponentialDecay.from_config({**VALID, field: 10**5000})


@pytest.mark.parametrize("field", ["decay_steps", "name"])
def test_deeply_nested_python_value_is_refused_naming_the_field(field):
    """A value nested 100,000 deep given to the constructor or from_config is
    refused with a TypeError naming the field, not a RecursionError.

    A plain repr of such a value recurses past the interpreter's limit; the
    messages use a bounded one. (`jaxdecay.deserialize` refuses such values
    itself, see test_fuzz.py.)"""
    with pytest.raises(TypeError, match=rf"\b{field}\b"):
        ExponentialDecay(**{**VALID, field: deep_list(10**5)})
    with pytest.raises(TypeError, match=rf"\b{field}\b"):
        ExponentialDecay.from_config({**VALID, field: deep_list(10**5)})


def test_to_json_refuses_what_from_json_would_refuse():
    """to_json never writes a text longer than from_json reads."""
    schedule = ExponentialDecay(0.1, 1000, 0.96, name="x" * 2**20)
    with pytest.raises(ValueError, match=r"longer than from_json reads \(1048576\)"):
        schedule.to_json()
    assert jaxdecay.deserialize(jaxdecay.serialize(schedule)) == schedule


# ---------------------------------------------------------------------------
# The format version: where Keras ignores it, and what jaxdecay does with it.
# ---------------------------------------------------------------------------

KERAS_ONLY = ExponentialDecay(0.1, 1000, 0.96, True, "stairs")
EXTENDED = ExponentialDecay(0.1, 1000, 0.96, transition_begin=5, end_learning_rate=0.01)


def test_format_is_written_only_for_what_keras_cannot_read():
    """A config with Keras' keys only is exactly Keras' serialization (no version);
    one with jaxdecay's extension keys carries "jaxdecay_format": 1, at the top."""
    keras_schedule = keras.optimizers.schedules.ExponentialDecay(
        0.1, 1000, 0.96, True, "stairs"
    )
    assert jaxdecay.serialize(KERAS_ONLY) == keras.optimizers.schedules.serialize(
        keras_schedule
    )
    data = jaxdecay.serialize(EXTENDED)
    assert data["jaxdecay_format"] == 1
    assert "jaxdecay_format" not in data["config"]
    assert json.loads(EXTENDED.to_json()) == data


@pytest.mark.parametrize(
    "fields",
    [
        {"warmup_steps": 100},
        {"warmup_init": 0.01},
        {"warmup_steps": 7, "end_learning_rate": 0.01},
    ],
    ids=["warmup_steps", "warmup_init", "warmup_and_end"],
)
def test_a_warmup_is_written_as_format_2_and_read_back(fields):
    """The oldest format that has every key used: 2 for a warmup field, which a
    reader of format 1 would not know; written at the top, and read back."""
    schedule = ExponentialDecay(0.1, 1000, 0.96, **fields)
    data = jaxdecay.serialize(schedule)
    assert data["jaxdecay_format"] == 2
    assert data["config"].items() >= fields.items()
    assert jaxdecay.deserialize(data) == schedule
    assert ExponentialDecay.from_json(schedule.to_json()) == schedule


def test_keras_ignores_a_top_level_format_and_refuses_one_in_config():
    """Why the version is a top-level key: Keras 3 loads a config with an extra
    top-level key (through schedules.deserialize, deserialize_keras_object and
    inside an optimizer's config) and refuses an extra key inside "config"."""
    data = {**jaxdecay.serialize(KERAS_ONLY), "jaxdecay_format": 1}
    expected = KERAS_ONLY.get_config()
    for load in (
        keras.optimizers.schedules.deserialize,
        keras.saving.deserialize_keras_object,
    ):
        loaded = load(copy.deepcopy(data))
        assert type(loaded) is keras.optimizers.schedules.ExponentialDecay
        assert loaded.get_config() == expected
    placeholder = keras.optimizers.schedules.ExponentialDecay(0.5, 10, 0.5)
    config = keras.optimizers.serialize(keras.optimizers.SGD(placeholder))
    config["config"]["learning_rate"] = copy.deepcopy(data)
    reloaded = keras.optimizers.deserialize(config).get_config()["learning_rate"]
    assert reloaded["class_name"] == "ExponentialDecay"
    assert reloaded["config"] == expected
    inside = {**data, "config": {**data["config"], "jaxdecay_format": 1}}
    del inside["jaxdecay_format"]
    with pytest.raises(TypeError, match="jaxdecay_format"):
        keras.optimizers.schedules.deserialize(inside)


@pytest.mark.parametrize("schedule", [KERAS_ONLY, EXTENDED], ids=["keras", "extended"])
def test_format_1_and_no_format_are_read(schedule):
    """An absent version (Keras, TF 2, jaxdecay 0.1.0) and version 1 both load."""
    data = jaxdecay.serialize(schedule)
    with_format = {**data, "jaxdecay_format": 1}
    without = {key: value for key, value in data.items() if key != "jaxdecay_format"}
    for variant in (with_format, without):
        assert jaxdecay.deserialize(variant) == schedule
        assert ExponentialDecay.from_json(json.dumps(variant)) == schedule


def test_newer_format_is_refused_naming_what_it_added():
    """A newer format is refused before anything else, naming the field, the value
    and the fields this version does not know, which are never dropped."""
    newer = {**jaxdecay.serialize(EXTENDED), "jaxdecay_format": 3}
    newer["config"] = {**newer["config"], "cooldown_steps": 100}
    newer["schedule_kind"] = "cosine"
    expected = (
        "jaxdecay_format is 3, newer than 2, the newest format this jaxdecay reads: "
        "the config is refused rather than read without what the newer format "
        "added; upgrade jaxdecay to load it (fields unknown here: "
        "['config.cooldown_steps', 'schedule_kind'])"
    )
    for read in (jaxdecay.deserialize, ExponentialDecay.from_json):
        argument = newer if read is jaxdecay.deserialize else json.dumps(newer)
        with pytest.raises(ValueError) as raised:
            read(argument)
        assert str(raised.value) == expected
