"""Golden bits: the learning rates of commit fdf55c6, bit for bit, on every path.

`tests/golden/bits_x32.json` and `tests/golden/bits_x64.json` hold a few hundred
configs (as `to_json()` text) and the bits of their learning rates at integer and
float32 steps, recorded by `tests/golden/record.py` from that commit's code. A
change meant to keep behaviour (a refactor of the internals) must give the same bits
here: eagerly, from the builder `exponential_decay` with the config's fields, with
the config as a jit argument, in a `jax.vmap` over stacked configs, and one step at
a time. The file of the current mode is read: x64 (`JAX_ENABLE_X64=1`) or not.

Every path is compared with the bits of an eager call on the same array of steps,
but for the scalar calls, which have their own record: at float steps past the
integer range the values are computed in float arithmetic, whose last bits depend
on the shape of the step array in the recorded code (a scalar can differ from an
array of them by an ulp).

A mismatch is reported once per config and step, with the expected and the computed
bits. For a change that is meant to change the numbers, `record.py`'s docstring says
how to record the data again.
"""

from __future__ import annotations

import functools
import json
import pathlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxdecay

X64 = bool(jax.config.jax_enable_x64)
DATA = pathlib.Path(__file__).parent / "golden" / f"bits_{'x64' if X64 else 'x32'}.json"
RESULT = np.dtype(np.float64 if X64 else np.float32)
# The step sets: integer steps (int32, or int64 under x64), and float32 steps.
SETS = ("int", "float32")
SHOWN = 40  # the mismatches a failure message lists


class Golden(NamedTuple):
    """The data file, parsed: per step set, the steps and the expected bits of
    each config as the rows of one array."""

    head: dict[str, Any]  # all but the cases
    texts: list[str]  # each config's to_json() text
    steps: dict[str, np.ndarray]  # set -> (configs, steps)
    bits: dict[str, np.ndarray]  # set -> (configs, steps), unsigned
    scalar_bits: np.ndarray  # (configs, scalar calls), unsigned


def words(text: str, dtype: Any) -> np.ndarray:
    """Hex words separated by spaces (8 digits for float32, 16 for float64) as the
    unsigned integers of `dtype`'s width."""
    dtype = np.dtype(dtype)
    big_endian = np.dtype(f">u{dtype.itemsize}")
    raw = np.frombuffer(bytes.fromhex(text.replace(" ", "")), big_endian)
    return raw.astype(big_endian.newbyteorder("="))


def floats(text: str, dtype: Any) -> np.ndarray:
    """The floats whose bits `text` holds."""
    return words(text, dtype).view(dtype)


@functools.cache
def golden() -> Golden:
    data = json.loads(DATA.read_text())
    head = {key: value for key, value in data.items() if key != "cases"}
    cases = data["cases"]
    steps, bits = {}, {}
    for name, spec in data["sets"].items():
        dtype = np.dtype(spec["dtype"])
        if name == "int":
            steps[name] = np.array([spec["common"] + c[name]["steps"] for c in cases])
            steps[name] = steps[name].astype(dtype)
        else:
            common = floats(spec["common"], dtype)
            own = [floats(c[name]["steps"], dtype) for c in cases]
            steps[name] = np.stack([np.concatenate([common, x]) for x in own])
        bits[name] = np.stack([words(c[name]["bits"], RESULT) for c in cases])
    scalar_bits = np.stack([words(c["scalar"], RESULT) for c in cases])
    texts = [case["config"] for case in cases]
    return Golden(head, texts, steps, bits, scalar_bits)


def configs() -> list[jaxdecay.ExponentialDecay]:
    """The recorded configs, as new instances: no call has been made on them."""
    return [jaxdecay.ExponentialDecay.from_json(text) for text in golden().texts]


def builder(text: str) -> Any:
    """`exponential_decay` with the fields of a recorded config but `name`, as its
    JSON text has them (extension fields at their defaults are absent)."""
    fields = dict(json.loads(text)["config"])
    fields.pop("name")
    return jaxdecay.exponential_decay(**fields)


def show(number: Any) -> str:
    """A step or a learning rate as the shortest text of its own type."""
    return str(number)


def mismatches(
    where: str, config: Any, steps: Any, expected: np.ndarray, got: Any
) -> list[str]:
    """One message per step where the computed bits differ from the expected ones.

    Args:
      where: the path (and step set) that computed `got`, for the message.
      config: the schedule, as the message shows it.
      steps: the steps, one per value.
      expected: the expected bits, unsigned integers of the result's width.
      got: the computed learning rates.
    """
    got = np.asarray(got)
    if got.dtype != RESULT or got.shape != expected.shape:
        return [
            f"{where}: {config!r}: expected {RESULT} of shape {expected.shape}, "
            f"got {got.dtype} of shape {got.shape}"
        ]
    got_bits = got.view(expected.dtype)
    width = 2 * RESULT.itemsize
    messages = []
    for i in np.flatnonzero(got_bits != expected):
        want = expected[i : i + 1].view(RESULT)[0]
        messages.append(
            f"{where}: {config!r} at step {show(steps[i])}: expected bits "
            f"{int(expected[i]):0{width}x} ({show(want)}), got "
            f"{int(got_bits[i]):0{width}x} ({show(got[i])})"
        )
    return messages


def check(messages: list[str]) -> None:
    """Fails with the first `SHOWN` messages and the number of all."""
    head = golden().head
    more = len(messages) - SHOWN
    assert not messages, (
        f"{len(messages)} learning rates differ from {DATA.name} (recorded at "
        f"commit {head['commit'][:7]} with jax {head['versions']['jax']}; jax "
        f"{jax.__version__} here):\n"
        + "\n".join(messages[:SHOWN])
        + (f"\n... and {more} more" if more > 0 else "")
    )


def test_data_file_is_this_mode():
    head = golden().head
    assert head["x64"] == X64
    assert head["result_dtype"] == RESULT.name
    assert tuple(head["sets"]) == SETS
    assert len(golden().texts) >= 150
    for name in SETS:
        assert golden().steps[name].shape == golden().bits[name].shape
    assert golden().steps["int"].dtype == np.dtype(np.int64 if X64 else np.int32)


def test_configs_read_back_to_their_text():
    for text, config in zip(golden().texts, configs(), strict=True):
        assert config.to_json() == text


@pytest.mark.parametrize("name", SETS)
def test_eager(name):
    steps, expected = golden().steps[name], golden().bits[name]
    messages = []
    for i, config in enumerate(configs()):
        got = config(steps[i])
        messages += mismatches(f"eager, {name}", config, steps[i], expected[i], got)
    check(messages)


@pytest.mark.parametrize("name", SETS)
def test_builder(name):
    steps, expected = golden().steps[name], golden().bits[name]
    messages = []
    for i, text in enumerate(golden().texts):
        schedule = builder(text)
        got = schedule(steps[i])
        messages += mismatches(f"builder, {name}", schedule, steps[i], expected[i], got)
    check(messages)


def at_steps(config, steps):
    """The schedule at each set's steps: one program for all the sets."""
    return {name: config(s) for name, s in steps.items()}


def test_config_as_jit_argument():
    """The config is data: a program per pytree structure (staircase, and
    whether there is an end_learning_rate), whatever the numbers."""
    run = jax.jit(at_steps)
    messages = []
    for i, config in enumerate(configs()):
        steps = {name: golden().steps[name][i] for name in SETS}
        got = run(config, steps)
        for name in SETS:
            expected = golden().bits[name][i]
            where = f"jit argument, {name}"
            messages += mismatches(where, config, steps[name], expected, got[name])
    check(messages)


# The stacks `jax.vmap` runs: continuous without an end_learning_rate or a warmup,
# staircase with both. Every structure is a program of its own, which costs a
# compile of seconds; the jit argument's test has them all.
VMAP_STRUCTURES = ((False, False, False), (True, True, True))


def test_vmap_over_stacked_configs():
    """The configs of a pytree structure (staircase, and whether there is an
    end_learning_rate and a warmup) stacked, each row with its own steps, in one
    program."""
    run = jax.jit(jax.vmap(at_steps))
    every = configs()
    groups: dict[Any, list[int]] = {}
    for i, config in enumerate(every):
        kind = (
            config.staircase,
            config.end_learning_rate is not None,
            config.warmup_steps > 0,
        )
        if kind in VMAP_STRUCTURES:
            groups.setdefault(kind, []).append(i)
    assert len(groups) == len(VMAP_STRUCTURES)
    messages = []
    for rows in groups.values():
        members = [every[i] for i in rows]
        stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *members)
        got = run(stacked, {name: golden().steps[name][rows] for name in SETS})
        for name in SETS:
            values = np.asarray(got[name])
            for j, i in enumerate(rows):
                steps, expected = golden().steps[name][i], golden().bits[name][i]
                where = f"vmap, {name}"
                messages += mismatches(where, every[i], steps, expected, values[j])
    check(messages)


def test_scalar_steps():
    """A new instance called one step at a time, as `record.py` did: integer steps
    as Python ints (the first call runs other code than later ones), then float32
    steps as NumPy scalars."""
    columns = golden().head["scalar_columns"]
    messages = []
    for i, config in enumerate(configs()):
        steps = [int(golden().steps["int"][i, c]) for c in columns["int"]]
        steps += [golden().steps["float32"][i, c] for c in columns["float32"]]
        got = np.array([np.asarray(config(step)) for step in steps])
        expected = golden().scalar_bits[i]
        messages += mismatches("scalar", config, steps, expected, got)
    check(messages)


def test_a_flipped_bit_is_reported():
    """The comparison sees a single bit: an expected value with its last bit flipped
    is one mismatch, reported with its config, step and both words."""
    steps, expected = golden().steps["int"][0], golden().bits["int"][0]
    config = configs()[0]
    got = np.asarray(config(steps))
    assert mismatches("eager", config, steps, expected, got) == []
    tampered = expected.copy()
    tampered[7] ^= 1
    messages = mismatches("eager", config, steps, tampered, got)
    assert len(messages) == 1
    width = 2 * RESULT.itemsize
    assert repr(config) in messages[0]
    assert f"at step {show(steps[7])}:" in messages[0]
    assert f"expected bits {int(tampered[7]):0{width}x}" in messages[0]
    assert f"got {int(expected[7]):0{width}x}" in messages[0]
    with pytest.raises(AssertionError, match="1 learning rates differ"):
        check(messages)
    # Values of another dtype differ too, whatever their bits.
    other = np.float32 if X64 else np.float64
    assert mismatches("eager", config, steps, expected, got.astype(other))
