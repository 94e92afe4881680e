"""Records the exact learning-rate bits of many schedules, for tests/test_golden.py.

The data files next to this script were recorded from jaxdecay at commit fdf55c6
(fdf55c602f751636ab74e8d94aa05b4013fb6dc5) with jax 0.10.2 on x86_64 CPU. They pin
the output of that code bit for bit, so that a change of the library's internals can
show that every schedule still gives the same learning rates.

To record them again (from the repository's root; the first line checks out the
code to record from, and `PYTHONPATH` makes `import jaxdecay` load it):

    git worktree add /tmp/jaxdecay-golden fdf55c6
    PYTHONPATH=/tmp/jaxdecay-golden python tests/golden/record.py
    PYTHONPATH=/tmp/jaxdecay-golden JAX_ENABLE_X64=1 python tests/golden/record.py
    git worktree remove --force /tmp/jaxdecay-golden

The first run writes `bits_x32.json` (JAX's default: float32 results, int32 steps),
the second `bits_x64.json` (float64 results, int64 steps). The script prints the
path of the jaxdecay it imported and the commit found there.

What is recorded: a deterministic list of configs (hand-picked edge cases, then
random ones from a fixed seed), each built through the public API only and stored
as its `to_json()` text, which reads back to the same numbers. In float32, configs
with a float beyond float32's range are left out (NumPy warns when it rounds them
to infinity). Each config, as a new instance read from that text, is called on two
arrays of steps: integer steps (int32, or int64 under x64) and float32 steps. Each
array is a common part, the same for every config (negative, small, around powers
of 2 and 10, random, up to 2**31 - 1 and under x64 past it; for floats also
fractions, values past 2**32, infinities and NaN), then the config's own steps
(around the end of its warmup, the start of its decay and its stairs, then random
ones). Another new instance is then called on a few of those steps one at a time
(`scalar_calls`): a scalar step runs other programs than an array of them, and at
float steps past the integer range, computed in float arithmetic, their last bit
can differ from the array's.

A learning rate is stored as the hex of its bits (the float viewed as uint32, or as
uint64 for float64), and so is a float step, so that -0.0, infinities and NaN are
exact. The data file, JSON, one case a line:

    {"commit": ..., "x64": ..., "versions": {...}, "result_dtype": "float32",
     "sets": {"int": {"dtype": "int32", "common": [step, ...]},
              "float32": {"dtype": "float32", "common": "hex hex ..."}},
     "scalar_columns": {"int": [index, ...], "float32": [index, ...]},
     "cases": [{"config": to_json text,
                "int": {"steps": [own step, ...], "bits": "hex hex ..."},
                "float32": {"steps": "hex ...", "bits": "hex hex ..."},
                "scalar": "hex hex ..."}, ...]}

`bits` has a value for each of the common steps, then for each of the config's own;
`scalar` one for each index of `scalar_columns` (into those steps), integer steps
first.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import pathlib
import platform
import subprocess
import sys
import zlib
from typing import Any

import jax
import numpy as np

import jaxdecay

RECORDED_COMMIT = "fdf55c602f751636ab74e8d94aa05b4013fb6dc5"
SEED = 20251202
INT64_MAX = 2**63 - 1
OWN_INT_STEPS = 30  # the steps of each config's own, per set
OWN_FLOAT_STEPS = 14
FLOAT32_MAX = float(np.finfo(np.float32).max)
HERE = pathlib.Path(__file__).resolve().parent


def data_path(x64: bool) -> pathlib.Path:
    """The data file of a mode: `bits_x64.json` under x64, else `bits_x32.json`."""
    return HERE / ("bits_x64.json" if x64 else "bits_x32.json")


# ---------------------------------------------------------------------------
# Configs.
# ---------------------------------------------------------------------------


def _config(
    initial: float,
    decay_steps: int,
    rate: float,
    staircase: bool = False,
    **kwargs: Any,
) -> jaxdecay.ExponentialDecay:
    return jaxdecay.ExponentialDecay(initial, decay_steps, rate, staircase, **kwargs)


def hand_picked() -> list[jaxdecay.ExponentialDecay]:
    """Edge cases, each continuous and staircase."""
    big = [2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1, 2**32, 2**32 + 1, 2**40, 2**62]
    shapes: list[dict[str, Any]] = []
    # The plain schedule and its decay_steps, from 1 to 2**63 - 1.
    for steps in [1, 2, 3, 7, 10, 1000, 12345, *big, INT64_MAX]:
        shapes.append(dict(initial=0.1, decay_steps=steps, rate=0.5))
    # decay_rate: near 1, tiny, huge, growth.
    for rate in [
        1.0,
        1 - 2**-24,
        1 - 2**-53,
        1 + 2**-23,
        1 + 2**-52,
        0.9999999,
        1.0000001,
        0.96,
        2.0,
        10.0,
        1e-30,
        1e-45,
        1e-300,
        5e-324,
        1e30,
        3e38,
        1e300,
        1.7976931348623157e308,
    ]:
        shapes.append(dict(initial=0.1, decay_steps=100, rate=rate))
    # initial_learning_rate: positive, negative, zero, tiny, huge.
    for initial in [
        1.0,
        -0.5,
        0.0,
        -0.0,
        1e-40,
        1.4e-45,
        1e-300,
        5e-324,
        3e38,
        3.4028234663852886e38,
        1e300,
        1.7976931348623157e308,
        -1e300,
    ]:
        shapes.append(dict(initial=initial, decay_steps=100, rate=0.5))
        shapes.append(dict(initial=initial, decay_steps=100, rate=2.0))
    # end_learning_rate: a floor, a ceiling, equal to the start, zero, negative,
    # and with a rate of 1 (a ceiling: the rate is not < 1).
    shapes += [
        dict(initial=0.1, decay_steps=100, rate=0.5, end=0.01),
        dict(initial=0.1, decay_steps=100, rate=0.5, end=0.1),
        dict(initial=0.1, decay_steps=100, rate=0.5, end=0.0),
        dict(initial=0.1, decay_steps=100, rate=0.5, end=0.5),
        dict(initial=0.1, decay_steps=100, rate=2.0, end=10.0),
        dict(initial=0.1, decay_steps=100, rate=2.0, end=0.05),
        dict(initial=0.1, decay_steps=100, rate=1.0, end=0.05),
        dict(initial=-0.5, decay_steps=100, rate=0.5, end=-0.01),
        dict(initial=-0.5, decay_steps=100, rate=2.0, end=-40.0),
        dict(initial=0.1, decay_steps=1, rate=1e-30, end=1e-40),
        dict(initial=0.1, decay_steps=2**40, rate=1e-300, end=1e-3),
        dict(initial=1e-3, decay_steps=3, rate=1e30, end=3e38),
        dict(initial=0.1, decay_steps=100, rate=0.5, end=-1e300),
    ]
    # transition_begin, up to 2**63 - 1.
    for begin in [1, 10, 1000, 2**31 - 1, 2**31, 2**31 + 5, 2**32, 2**33, 2**62]:
        shapes.append(dict(initial=0.1, decay_steps=1000, rate=0.5, begin=begin))
    shapes.append(dict(initial=0.1, decay_steps=3, rate=0.9, begin=INT64_MAX))
    # Warmups: short, long, past 2**31; from 0, above 0, below 0, above the peak.
    for warmup, init in [
        (1, 0.0),
        (2, 0.01),
        (10, 0.0),
        (10, -0.05),
        (100, 0.3),
        (1000, 0.0),
        (1000, 1e-30),
        (12345, -1e30),
        (2**20, 0.01),
        (2**31 - 1, 0.0),
        (2**31, 0.05),
        (2**31 + 7, -0.01),
        (2**32 + 3, 0.0),
        (2**40, 0.02),
        (INT64_MAX, -0.1),
    ]:
        shapes.append(
            dict(initial=0.1, decay_steps=1000, rate=0.5, warmup=warmup, init=init)
        )
    shapes += [
        dict(initial=-0.2, decay_steps=50, rate=0.5, warmup=100, init=0.1),
        dict(initial=0.0, decay_steps=50, rate=0.5, warmup=100, init=0.3),
        dict(initial=1e-40, decay_steps=50, rate=0.5, warmup=7, init=-1e-40),
        dict(initial=3e38, decay_steps=50, rate=0.5, warmup=3, init=-3e38),
        dict(initial=1e300, decay_steps=50, rate=0.5, warmup=3, init=-1e300),
    ]
    # Everything at once.
    shapes += [
        dict(initial=0.1, decay_steps=7, rate=0.5, begin=13, end=1e-3, warmup=5),
        dict(
            initial=0.3,
            decay_steps=1000,
            rate=0.99,
            begin=2**31 + 1,
            end=0.01,
            warmup=2**31 + 3,
            init=-0.01,
        ),
        dict(
            initial=2.5,
            decay_steps=2**33,
            rate=3.0,
            begin=2**32,
            end=100.0,
            warmup=2**32 + 1,
            init=0.5,
        ),
        dict(initial=1.0, decay_steps=1, rate=0.999, begin=1, end=0.5, warmup=1),
    ]
    configs = []
    for shape in shapes:
        for staircase in (False, True):
            configs.append(
                _config(
                    shape["initial"],
                    shape["decay_steps"],
                    shape["rate"],
                    staircase,
                    transition_begin=shape.get("begin", 0),
                    end_learning_rate=shape.get("end"),
                    warmup_steps=shape.get("warmup", 0),
                    warmup_init=shape.get("init", 0.0),
                )
            )
    return configs


def _log_uniform_int(rng: np.random.Generator, low: int, high: int) -> int:
    """An integer in [low, high], log-uniform (low >= 1)."""
    value = int(np.exp(rng.uniform(np.log(low), np.log(high + 1))))
    return min(max(value, low), high)


def _integer(rng: np.random.Generator) -> int:
    """A decay_steps (>= 1), from a mixture of small, medium and huge ones."""
    kind = rng.integers(5)
    if kind == 0:
        return int(rng.integers(1, 11))
    if kind == 1:
        return int(rng.integers(1, 100_001))
    if kind == 2:
        return 2**31 + int(rng.integers(-8, 9))
    if kind == 3:
        return 2**32 + int(rng.integers(-8, 9))
    return _log_uniform_int(rng, 1, 2**62)


def _rate(rng: np.random.Generator) -> float:
    kind = rng.integers(5)
    if kind == 0:
        return float(rng.uniform(0.01, 0.999))
    if kind == 1:
        return float(1 - 10 ** -rng.uniform(3, 9))
    if kind == 2:
        return float(1 + 10 ** -rng.uniform(3, 9))
    if kind == 3:
        return float(rng.uniform(1.001, 4.0))
    return float(10 ** rng.uniform(-40, 40))


def randomized(count: int) -> list[jaxdecay.ExponentialDecay]:
    """`count` configs from a fixed seed, each field from a mixture of ranges."""
    rng = np.random.default_rng(SEED)
    configs = []
    for _ in range(count):
        initial = float(10 ** rng.uniform(-6, 1))
        if rng.random() < 0.15:
            initial = -initial
        decay_steps = _integer(rng)
        rate = _rate(rng)
        staircase = bool(rng.random() < 0.5)
        begin = 0
        if rng.random() < 0.5:
            begin = _integer(rng) if rng.random() < 0.5 else int(rng.integers(1, 5000))
        warmup, init = 0, 0.0
        if rng.random() < 0.5:
            warmup = _integer(rng) if rng.random() < 0.4 else int(rng.integers(1, 5000))
            sign = float(rng.choice([0.0, 1.0, -1.0]))
            init = sign * initial * float(rng.uniform(0, 2)) if sign else 0.0
        end = None
        if rng.random() < 0.5:
            # A bound the schedule reaches (a floor for decay, a ceiling for
            # growth), or one it starts beyond.
            stairs = float(rng.uniform(0, 50))
            power = float(np.clip(stairs * np.log(rate), -600, 600))
            end = initial * float(np.exp(power)) if rng.random() < 0.8 else initial * 3
        configs.append(
            _config(
                initial,
                decay_steps,
                rate,
                staircase,
                transition_begin=begin,
                end_learning_rate=end,
                warmup_steps=warmup,
                warmup_init=init,
            )
        )
    return configs


def fits(config: jaxdecay.ExponentialDecay, x64: bool) -> bool:
    """Whether every float of `config` is finite in the compute dtype: float32
    leaves out values beyond its range (NumPy warns when it rounds them to inf)."""
    if x64:
        return True
    floats = [
        config.initial_learning_rate,
        config.decay_rate,
        config.warmup_init,
        config.end_learning_rate,
    ]
    return all(x is None or abs(x) <= FLOAT32_MAX for x in floats)


def all_configs(x64: bool) -> list[jaxdecay.ExponentialDecay]:
    configs = [c for c in hand_picked() + randomized(80) if fits(c, x64)]
    for config in configs:
        # The stored text must give back the same numbers, bit for bit (the sign
        # of a zero included, which == does not see).
        again = jaxdecay.ExponentialDecay.from_json(config.to_json())
        assert repr(again) == repr(config), (again, config)
    return configs


# ---------------------------------------------------------------------------
# Steps.
# ---------------------------------------------------------------------------


def common_int_steps(x64: bool) -> list[int]:
    """Integer steps shared by every config: negative, small, around powers of 2
    and 10, random, up to 2**31 - 1 (and past it, in int64, under x64)."""
    steps = [-(2**31), -(2**31) + 1, -(10**6), -1000, -2, -1]
    steps += list(range(0, 12))
    for k in range(4, 31):
        steps += [2**k - 1, 2**k]
    steps += [2**8 + 1, 2**16 + 1, 2**24 + 1, 2**30 + 1]
    for k in range(2, 10):
        steps += [10**k - 1, 10**k, 10**k + 1]
    steps += [1999, 2001, 2**31 - 2, 2**31 - 1]
    rng = np.random.default_rng(SEED + 1)
    steps += [int(x) for x in rng.integers(0, 2**31, 16)]
    steps += [int(x) for x in rng.integers(0, 5000, 8)]
    if x64:
        steps += [2**31, 2**31 + 1, 2**32 - 1, 2**32, 2**32 + 1, 2**32 + 1000]
        steps += [2**33, 2**40 + 1, 2**53 - 1, 2**53, 2**53 + 1, 2**62]
        steps += [INT64_MAX - 1, INT64_MAX, -(2**63), -(2**40)]
        steps += [int(x) for x in rng.integers(2**31, INT64_MAX, 8, np.int64)]
    return sorted(set(steps))


def common_float_steps() -> list[float]:
    """Float steps shared by every config: whole, fractional, negative, huge,
    infinite and NaN."""
    steps = [0.0, -0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 7.0, 9.999]
    steps += [10.0, 99.5, 100.0, 100.5, 999.5, 1000.0, 1000.5, 1234.75, 1e-45, 1e-7]
    steps += [12345.5, 1e6 + 0.5, 2.0**23 + 0.5, 2.0**24, 2.0**24 + 2, 1e8 + 4]
    steps += [2.0**31 - 128, 2.0**31, 2.0**32, 2.0**32 + 512, 2.0**33, 2.0**40]
    steps += [2.0**53, 2.0**63, 2.0**64, 2.0**65, 1e20, 3.4e38]
    steps += [np.inf, -np.inf, np.nan, -0.5, -1.0, -1e10, -3.4e38]
    rng = np.random.default_rng(SEED + 2)
    steps += [float(x) for x in rng.uniform(0, 1e4, 6)]
    steps += [float(x) for x in 10 ** rng.uniform(4, 12, 4)]
    values = np.array(steps, np.float32)
    _, first = np.unique(values.view(np.uint32), return_index=True)
    return [float(x) for x in values[np.sort(first)]]


def own_steps(
    config: jaxdecay.ExponentialDecay, rng: np.random.Generator, *, low: int, high: int
) -> list[int]:
    """`OWN_INT_STEPS` integer steps of `config`'s own, in [low, high]: around the
    end of its warmup, the start of its decay and its stairs, then random ones."""
    warmup, begin = config.warmup_steps, config.transition_begin
    start, every = warmup + begin, config.decay_steps
    points = [warmup - 1, warmup, warmup + 1, warmup // 2]
    points += [start - 1, start, start + 1, start + every // 2]
    for k in [1, 2, 3, 10, 1000, int(rng.integers(4, 100))]:
        points += [start + k * every - 1, start + k * every, start + k * every + 1]
    steps = sorted({p for p in points if low <= p <= high})[:OWN_INT_STEPS]
    span = max(1, min(high - max(start, 0), 100 * every))
    while len(steps) < OWN_INT_STEPS:
        if rng.random() < 0.5 and start <= high:
            step = start + int(rng.integers(0, span, dtype=np.int64))
        else:
            step = int(rng.integers(low, high, dtype=np.int64, endpoint=True))
        if low <= step <= high and step not in steps:
            steps.append(step)
    return steps


def own_float_steps(
    config: jaxdecay.ExponentialDecay, rng: np.random.Generator
) -> list[float]:
    """`OWN_FLOAT_STEPS` float32 steps of `config`'s own: just before, at and after
    the end of its warmup, the start of its decay and its first stairs."""
    warmup, begin = config.warmup_steps, config.transition_begin
    start, every = warmup + begin, config.decay_steps
    steps: list[float] = []
    for point in [warmup, start, start + every, start + 2 * every]:
        for offset in [-0.5, 0.0, 0.25]:
            steps.append(float(np.float32(point) + np.float32(offset)))
    while len(steps) < OWN_FLOAT_STEPS:
        steps.append(float(np.float32(start + rng.uniform(0, 3) * every)))
    return steps[:OWN_FLOAT_STEPS]


# ---------------------------------------------------------------------------
# Bits.
# ---------------------------------------------------------------------------

_UNSIGNED = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def to_hex(values: Any) -> str:
    """The bits of a float array, as fixed-width hex words separated by spaces."""
    values = np.asarray(values)
    width = 2 * values.dtype.itemsize
    words = values.view(_UNSIGNED[values.dtype])
    return " ".join(f"{int(x):0{width}x}" for x in words)


# The steps a config is also called on one at a time, from a new instance: its own
# integer step [5] first (a config's first call runs other code than later ones),
# then float32 steps (a fraction, beyond 2**32, huge, infinite, and the config's
# own start - 0.5, start and start + 0.25).
SCALAR_INT_OWN = [5]
SCALAR_FLOAT_COMMON = [1234.75, 2.0**33, 1e20, np.inf]
SCALAR_FLOAT_OWN = [3, 4, 5]


def scalar_columns(common_ints: int, common_floats: np.ndarray) -> dict[str, list[int]]:
    """The scalar calls' steps, as indices into a config's steps of each set."""
    floats = [int(np.flatnonzero(common_floats == x)[0]) for x in SCALAR_FLOAT_COMMON]
    floats += [len(common_floats) + i for i in SCALAR_FLOAT_OWN]
    return {"int": [common_ints + i for i in SCALAR_INT_OWN], "float32": floats}


def scalar_calls(
    config: jaxdecay.ExponentialDecay,
    steps: dict[str, np.ndarray],
    columns: dict[str, list[int]],
) -> np.ndarray:
    """`config` called on one step at a time: the integer steps as Python ints,
    then the float steps as NumPy float32 scalars."""
    values = [config(int(steps["int"][i])) for i in columns["int"]]
    values += [config(steps["float32"][i]) for i in columns["float32"]]
    return np.array([np.asarray(value) for value in values])


def versions() -> dict[str, str]:
    return {
        "jax": jax.__version__,
        "jaxlib": importlib.metadata.version("jaxlib"),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "backend": jax.default_backend(),
    }


def source_commit() -> str:
    """The git commit of the imported jaxdecay's checkout, with "-dirty" if its
    files differ from it; "" outside git."""
    where = pathlib.Path(jaxdecay.__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return commit + ("-dirty" if status else "")


def record(x64: bool) -> dict[str, Any]:
    """The data file's contents for the mode (x64 or not) JAX is in."""
    int_dtype = np.dtype(np.int64 if x64 else np.int32)
    result_dtype = np.dtype(np.float64 if x64 else np.float32)
    limits = np.iinfo(int_dtype)
    common = {
        "int": np.array(common_int_steps(x64), int_dtype),
        "float32": np.array(common_float_steps(), np.float32),
    }
    columns = scalar_columns(len(common["int"]), common["float32"])
    cases = []
    for config in all_configs(x64):
        text = config.to_json()
        # Seeded by the config itself: its steps do not depend on its place.
        rng = np.random.default_rng([SEED, zlib.crc32(text.encode())])
        own = {
            "int": np.array(
                own_steps(config, rng, low=int(limits.min), high=int(limits.max)),
                int_dtype,
            ),
            "float32": np.array(own_float_steps(config, rng), np.float32),
        }
        steps = {name: np.concatenate([common[name], own[name]]) for name in common}
        case: dict[str, Any] = {"config": text}
        for name in steps:
            # Each set from a new instance, as the tests call it.
            values = np.asarray(jaxdecay.ExponentialDecay.from_json(text)(steps[name]))
            assert values.dtype == result_dtype, values.dtype
            own_text = own[name].tolist() if name == "int" else to_hex(own[name])
            case[name] = {"steps": own_text, "bits": to_hex(values)}
        fresh = jaxdecay.ExponentialDecay.from_json(text)
        case["scalar"] = to_hex(scalar_calls(fresh, steps, columns))
        cases.append(case)
    return {
        "description": "learning-rate bits of jaxdecay.ExponentialDecay; see record.py",
        "commit": source_commit(),
        "x64": x64,
        "versions": versions(),
        "result_dtype": result_dtype.name,
        "sets": {
            "int": {"dtype": int_dtype.name, "common": common["int"].tolist()},
            "float32": {"dtype": "float32", "common": to_hex(common["float32"])},
        },
        "scalar_columns": columns,
        "cases": cases,
    }


def write(data: dict[str, Any], path: pathlib.Path) -> None:
    """JSON with one case a line: compact, and a change shows as the lines it is."""
    head = {key: value for key, value in data.items() if key != "cases"}
    text = json.dumps(head, separators=(",", ":"))[:-1] + ',"cases":[\n'
    text += ",\n".join(json.dumps(c, separators=(",", ":")) for c in data["cases"])
    text += "\n]}\n"
    assert json.loads(text) == data
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, help="the file to write")
    args = parser.parse_args(argv)
    # As the tests run: tests/conftest.py makes promotion strict for the session.
    jax.config.update("jax_numpy_dtype_promotion", "strict")
    x64 = bool(jax.config.jax_enable_x64)
    commit = source_commit()
    print(f"jaxdecay from {jaxdecay.__file__} at commit {commit or '(unknown)'}")
    if commit != RECORDED_COMMIT:
        print(f"note: the data files were recorded at {RECORDED_COMMIT}")
    data = record(x64)
    path = args.out or data_path(x64)
    write(data, path)
    case = data["cases"][0]
    steps = {name: len(case[name]["bits"].split()) for name in data["sets"]}
    steps["scalar"] = len(case["scalar"].split())
    print(
        f"{path}: {len(data['cases'])} configs, steps per config {steps}, "
        f"{path.stat().st_size} bytes"
    )


if __name__ == "__main__":
    sys.exit(main())
