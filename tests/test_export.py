"""A function that takes the config as an argument, through `jax.export`: exported,
serialized, read back and called, it gives the bits of the jitted function."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("flatbuffers")  # jax.export's serialization needs it

from jax import export

import jaxdecay
from jaxdecay import _export
from jaxdecay._config import Labels

STEPS = jnp.arange(0, 60 * 37, 37)
CONFIGS = {
    "default": jaxdecay.ExponentialDecay(0.1, decay_steps=100, decay_rate=0.5),
    "float32": jaxdecay.ExponentialDecay(np.float32(0.1), 100, np.float32(0.96)),
    "bfloat16-staircase": jaxdecay.ExponentialDecay(
        jnp.bfloat16(0.1), 300, 0.5, staircase=True, name="warmup"
    ),
    "extensions": jaxdecay.ExponentialDecay(
        0.1, 2**40, 1e-9, transition_begin=3, end_learning_rate=0.01
    ),
}


def schedule_at(config, steps):
    return config(steps)


def round_trip(*arguments):
    """The exported program of `schedule_at`, serialized and read back."""
    exported = export.export(jax.jit(schedule_at))(*arguments)
    return export.deserialize(exported.serialize())


@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_the_exported_program_gives_the_bits_of_the_jitted_function(config):
    expected = jax.jit(schedule_at)(config, STEPS)
    result = round_trip(config, STEPS).call(config, STEPS)
    assert result.dtype == expected.dtype
    np.testing.assert_array_equal(result, expected)


def test_the_static_fields_travel_with_the_program():
    """The program read back rebuilds the config's static fields, and returns the
    learning rates of the config's bfloat16 number taken at its value (0.1
    rounded), halved at each stair, in the compute dtype."""
    config = CONFIGS["bfloat16-staircase"]
    steps = jnp.asarray([0, 299, 300, 600])
    exported = round_trip(config, steps)
    leaves = jax.tree.leaves((config, steps))
    (read, _), _ = jax.tree.unflatten(exported.in_tree, leaves)
    assert (read.staircase, read.name) == (True, "warmup")
    result = exported.call(config, steps)
    assert result.dtype == jnp.result_type(float)
    rate = float(jnp.bfloat16(0.1))  # 0.10009765625
    assert [float(x) for x in result] == [rate, rate, rate / 2, rate / 4]


def test_other_numbers_run_the_same_program():
    """The numbers are the program's arguments: a config with other numbers and
    the same static fields runs the program exported for the first one."""
    exported = round_trip(CONFIGS["default"], STEPS)
    other = jaxdecay.ExponentialDecay(0.3, decay_steps=7, decay_rate=0.25)
    expected = jax.jit(schedule_at)(other, STEPS)
    np.testing.assert_array_equal(exported.call(other, STEPS), expected)


def test_the_static_fields_are_written_as_json():
    config = CONFIGS["bfloat16-staircase"]
    data = export.export(jax.jit(schedule_at))(config, STEPS).serialize()
    assert b'{"staircase": true, "name": "warmup", "pieces": []}' in data
    warmup = jaxdecay.ExponentialDecay(0.1, 300, 0.5, warmup_steps=10)
    data = export.export(jax.jit(schedule_at))(warmup, STEPS).serialize()
    assert b'"name": "ExponentialDecay", "pieces": ["warmup"]}' in data


def test_an_older_program_names_its_result_dtype_which_is_checked():
    """Programs exported when the result dtype was structure name it; a name that
    is not a float dtype is refused."""
    old = b'{"staircase": false, "name": null, "dtype": "bfloat16", "pieces": []}'
    aux = _export._deserialize_aux(jaxdecay.ExponentialDecay, old)
    assert aux[:2] == (False, ())
    tampered = old.replace(b'"bfloat16"', b'"int32"')
    with pytest.raises(TypeError, match="dtype must be the name of a float dtype"):
        _export._deserialize_aux(jaxdecay.ExponentialDecay, tampered)


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"\x80\x04K\x01.", ValueError, "utf-8"),  # a pickle is never unpickled
        (b'["staircase", "name", "dtype"]', ValueError, "JSON object with the keys"),
        (b'{"staircase": 1, "name": null, "dtype": null}', TypeError, "staircase"),
        (b'{"staircase": false, "name": 3, "dtype": null}', TypeError, "name"),
        (b'{"staircase": false, "name": null, "dtype": "O"}', TypeError, "dtype"),
        (b'{"staircase": false, "name": null, "dtype": "f4"}', TypeError, "dtype"),
        (b'{"staircase": false, "dtype": null, "pieces": []}', ValueError, "keys"),
        (
            b'{"staircase": false, "name": null, "dtype": null, "pieces": ["ramp"]}',
            TypeError,
            "pieces must be a list of some of",
        ),
        (
            b'{"staircase": false, "name": null, "dtype": null, "pieces": "warmup"}',
            TypeError,
            "pieces",
        ),
    ],
)
def test_the_static_fields_are_checked_when_read(data, error, message):
    with pytest.raises(error, match=message):
        _export._deserialize_aux(jaxdecay.ExponentialDecay, data)


@pytest.mark.parametrize("pieces", [(), ("warmup",)])
def test_the_static_fields_read_back(pieces):
    aux = (True, pieces, Labels(("lr",)))
    codec = (
        jaxdecay.ExponentialDecay,
        _export._serialize_aux(jaxdecay.ExponentialDecay, aux),
    )
    read = _export._deserialize_aux(*codec)
    assert read == aux and read[-1].values == ("lr",)


def test_a_program_exported_before_the_pieces_were_structure_reads_back():
    """Its fields have no "pieces": the config gets every piece of its family,
    which gives the same bits whatever its numbers."""
    old = b'{"staircase": true, "name": null, "dtype": null}'
    aux = _export._deserialize_aux(jaxdecay.ExponentialDecay, old)
    assert aux[:2] == (True, ("warmup",)) and aux[-1].values == (None,)
