"""Speed: jaxdecay against optax and Keras 3 (JAX backend), measured in one run.

Prints one table with ratios:
- the eager call of an existing schedule on a Python int step (logging the lr every
  step), against a jitted identity call, the floor for any call into compiled code;
- the first eager call of a new schedule, its construction included (a search
  driver, a notebook or the command line makes a new one per config);
- jit throughput over 4M (and 64M) int32 steps, in steps/s and as a fraction of the
  machine's memory-bandwidth bound (a jitted copy that moves the same bytes, 4 in
  and 4 out per step). Every row comes twice, continuous (staircase=False) and
  staircase (staircase=True), each against optax's and Keras' schedule with the
  same flag. The rows: jaxdecay's three jit paths, the config closed over (a
  constant) and the config as a jit argument, against a jitted optax and Keras
  schedule closed over; and a vmap over 16 stacked configs, each over its 16th of
  the steps, against optax's own vmapped idiom: the schedule built inside the
  vmapped function from a traced `init_value` (and Keras' ExponentialDecay built
  the same way from a traced `initial_learning_rate`), over the same 16 rows of
  steps. Then the same three paths for a config with a 1000-step warmup, against
  optax's warmup_exponential_decay_schedule (closed over, or built inside the vmap
  from traced `init_value` and `peak_value`; Keras has no exponential decay with a
  warmup);
- jit throughput of `PolynomialDecay` (powers 1 and 2; closed over, as a jit
  argument, 16 configs vmapped) against optax's and Keras' `polynomial_schedule`
  and `PolynomialDecay`; of `PiecewiseConstantDecay` (closed over, as a jit
  argument) against optax's `piecewise_constant_schedule`, for a config both give
  bit for bit (values halving at each of 3 boundaries, optax's boundaries one step
  later); of `CosineDecay` (closed over, as a jit argument) against optax's and
  Keras' cosine decays: over 4M int32 steps (64K in the quick run);
- trace + compile of an `optax.sgd` train step with each schedule;
- a sweep of 16 learning rates, 20 SGD steps each on a small model: jaxdecay
  compiles once (the config is an argument, or vmapped), optax and Keras compile
  each closure anew;
- new processes: one learning rate printed with jaxdecay and with optax (beyond
  what `import jax` costs), and `jaxdecay show` against `python -c "import jax"`;
- the resident memory of a schedule kept alive after its first call.

Repetitions are interleaved (A B C A B C ...) so that drift hits every contestant
alike; each cell is the median. `--quick` runs a small smoke version.

Usage: `python benchmarks/speed.py [--quick]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, TypeVar

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax

import jaxdecay

INIT, DECAY_STEPS, RATE = 0.1, 1000, 0.96
WARMUP = 1000


def interleaved(
    contestants: dict[str, Callable[[], Any]], repetitions: int
) -> dict[str, float]:
    """Median wall time in seconds of each zero-argument callable, interleaved."""
    times: dict[str, list[float]] = {name: [] for name in contestants}
    for _ in range(repetitions):
        for name, run in contestants.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def eager_latency(repetitions: int) -> dict[str, float]:
    """Seconds per eager call of an existing schedule at a Python int step."""
    schedules = {
        "jaxdecay": jaxdecay.ExponentialDecay(INIT, DECAY_STEPS, RATE),
        "jaxdecay builder": jaxdecay.exponential_decay(INIT, DECAY_STEPS, RATE),
        "optax": optax.exponential_decay(INIT, DECAY_STEPS, RATE),
        "keras": keras.optimizers.schedules.ExponentialDecay(INIT, DECAY_STEPS, RATE),
        # The floor for any eager call into compiled code: JAX's dispatch.
        "jit identity": jax.jit(lambda step: step),
    }
    calls = 200
    for schedule in schedules.values():
        for step in range(20):  # compile and warm up
            jax.block_until_ready(schedule(step))

    def loop(schedule: Any) -> Callable[[], None]:
        def run() -> None:
            for step in range(12_345, 12_345 + calls):
                schedule(step)
            jax.block_until_ready(schedule(0))

        return run

    medians = interleaved({n: loop(s) for n, s in schedules.items()}, repetitions)
    return {name: seconds / calls for name, seconds in medians.items()}


def first_call(repetitions: int) -> dict[str, float]:
    """Seconds to build a schedule of new numbers and get its first learning rate."""
    counter = iter(range(1, 10**9))
    makers = {
        "jaxdecay": jaxdecay.ExponentialDecay,
        "jaxdecay builder": jaxdecay.exponential_decay,
        "optax": optax.exponential_decay,
        "keras": keras.optimizers.schedules.ExponentialDecay,
    }
    calls = 50

    def loop(make: Callable[..., Any]) -> Callable[[], None]:
        def run() -> None:
            for _ in range(calls):
                # New numbers each time: no cache can serve them.
                init = INIT * (1 + next(counter) * 1e-6)
                jax.block_until_ready(make(init, DECAY_STEPS, RATE)(2500))

        return run

    for make in makers.values():
        loop(make)()  # compile and warm up
    medians = interleaved({n: loop(m) for n, m in makers.items()}, repetitions)
    return {name: seconds / calls for name, seconds in medians.items()}


_Config = TypeVar("_Config")


def _stack(configs: list[_Config]) -> _Config:
    stacked: _Config = jax.tree.map(lambda *leaves: jnp.stack(leaves), *configs)
    return stacked


def _flagged(name: str, staircase: bool) -> str:
    """The name of a throughput contestant with the given staircase flag."""
    return f"{name} staircase" if staircase else name


def _jit_contestants(
    staircase: bool, steps: jax.Array, rows: jax.Array
) -> dict[str, Callable[[], Any]]:
    """The jitted schedules of `throughput` with one staircase flag."""
    config = jaxdecay.ExponentialDecay(INIT, DECAY_STEPS, RATE, staircase)
    warm = jaxdecay.ExponentialDecay(
        INIT, DECAY_STEPS, RATE, staircase, warmup_steps=WARMUP, warmup_init=INIT / 10
    )
    # 16 configs, each over its 16th of the steps: the same work as one config.
    peaks = [INIT * (i + 1) for i in range(16)]
    configs = _stack(
        [jaxdecay.ExponentialDecay(p, DECAY_STEPS, RATE, staircase) for p in peaks]
    )
    warm_configs = _stack(
        [
            jaxdecay.ExponentialDecay(
                p, DECAY_STEPS, RATE, staircase, warmup_steps=WARMUP, warmup_init=p / 10
            )
            for p in peaks
        ]
    )
    # The same 16 numbers as data for optax's and Keras' vmapped idiom.
    inits = jnp.asarray(peaks, jnp.float32)
    warm_inits = jnp.asarray([p / 10 for p in peaks], jnp.float32)
    as_argument = jax.jit(lambda c, s: c(s))
    swept = jax.jit(jax.vmap(lambda c, s: c(s)))
    closed_over = jax.jit(config)
    warm_closed_over = jax.jit(warm)
    optax_schedule = jax.jit(
        optax.exponential_decay(INIT, DECAY_STEPS, RATE, staircase=staircase)
    )
    keras_schedule = jax.jit(
        keras.optimizers.schedules.ExponentialDecay(
            INIT, DECAY_STEPS, RATE, staircase=staircase
        )
    )
    optax_warm = jax.jit(
        optax.warmup_exponential_decay_schedule(
            INIT / 10, INIT, WARMUP, DECAY_STEPS, RATE, staircase=staircase
        )
    )
    # optax's way to sweep a learning rate in one program: build the schedule inside
    # the vmapped function, from a traced init_value (peak_value for the warmup).
    optax_vmap = jax.jit(
        jax.vmap(
            lambda init, s: optax.exponential_decay(
                init, DECAY_STEPS, RATE, staircase=staircase
            )(s)
        )
    )
    optax_warm_vmap = jax.jit(
        jax.vmap(
            lambda init, peak, s: optax.warmup_exponential_decay_schedule(
                init, peak, WARMUP, DECAY_STEPS, RATE, staircase=staircase
            )(s)
        )
    )
    # Keras' ExponentialDecay can be built the same way: it keeps the traced
    # initial_learning_rate as it is and converts it only when called.
    keras_vmap = jax.jit(
        jax.vmap(
            lambda init, s: keras.optimizers.schedules.ExponentialDecay(
                init, DECAY_STEPS, RATE, staircase=staircase
            )(s)
        )
    )
    functions: dict[str, Callable[[], Any]] = {
        "jaxdecay": lambda: closed_over(steps),
        "jaxdecay argument": lambda: as_argument(config, steps),
        "jaxdecay vmap": lambda: swept(configs, rows),
        "warmup": lambda: warm_closed_over(steps),
        "warmup argument": lambda: as_argument(warm, steps),
        "warmup vmap": lambda: swept(warm_configs, rows),
        "optax": lambda: optax_schedule(steps),
        "optax vmap": lambda: optax_vmap(inits, rows),
        "optax warmup": lambda: optax_warm(steps),
        "optax warmup vmap": lambda: optax_warm_vmap(warm_inits, inits, rows),
        "keras": lambda: keras_schedule(steps),
        "keras vmap": lambda: keras_vmap(inits, rows),
    }
    return {_flagged(name, staircase): f for name, f in functions.items()}


def throughput(size: int, repetitions: int) -> dict[str, float]:
    """Steps per second of each jitted schedule over `size` int32 steps, continuous
    and staircase (names from `_flagged`); "copy" is the bandwidth bound: a jitted op
    that reads 4 bytes and writes 4 per step."""
    steps = jnp.asarray(
        np.random.default_rng(0).integers(0, 2**31 - 1, size, dtype=np.int32)
    )
    rows = steps.reshape(16, -1)
    copy = jax.jit(lambda x: jax.lax.bitcast_convert_type(x, jnp.float32))
    functions: dict[str, Callable[[], Any]] = {
        **_jit_contestants(False, steps, rows),
        **_jit_contestants(True, steps, rows),
        # Same bytes as a schedule: int32 in, 4 bytes out; no arithmetic to speak of.
        "copy": lambda: copy(steps),
    }
    for function in functions.values():
        jax.block_until_ready(function())

    def run(function: Callable[[], Any]) -> Callable[[], None]:
        return lambda: jax.block_until_ready(function())

    medians = interleaved({n: run(f) for n, f in functions.items()}, repetitions)
    return {name: size / seconds for name, seconds in medians.items()}


PIECEWISE_BOUNDARIES = [2**29, 2**30, 3 * 2**29]


def piecewise_throughput(size: int, repetitions: int) -> dict[str, float]:
    """Steps per second of `PiecewiseConstantDecay` and of optax's equivalent
    over `size` int32 steps; checks first that they agree bit for bit."""
    steps = jnp.asarray(np.random.default_rng(0).integers(0, 2**31 - 1, size, np.int32))
    values = [INIT / 2**i for i in range(len(PIECEWISE_BOUNDARIES) + 1)]
    config = jaxdecay.PiecewiseConstantDecay(PIECEWISE_BOUNDARIES, values)
    # optax's boundary b applies from step b on; Keras' after it.
    scales = {b + 1: 0.5 for b in PIECEWISE_BOUNDARIES}
    optax_schedule = jax.jit(optax.piecewise_constant_schedule(INIT, scales))
    closed_over = jax.jit(config)
    as_argument = jax.jit(lambda c, s: c(s))
    functions: dict[str, Callable[[], Any]] = {
        "jaxdecay": lambda: closed_over(steps),
        "jaxdecay argument": lambda: as_argument(config, steps),
        "optax": lambda: optax_schedule(steps),
    }
    results = {name: np.asarray(function()) for name, function in functions.items()}
    for name, result in results.items():
        if not np.array_equal(result, results["optax"]):
            raise AssertionError(f"{name} differs from optax's piecewise schedule")

    def run(function: Callable[[], Any]) -> Callable[[], None]:
        return lambda: jax.block_until_ready(function())

    medians = interleaved({n: run(f) for n, f in functions.items()}, repetitions)
    return {name: size / seconds for name, seconds in medians.items()}


POLYNOMIAL_END = 0.001


def polynomial_throughput(size: int, repetitions: int) -> dict[str, float]:
    """Steps per second of `PolynomialDecay` and `optax.polynomial_schedule` (and
    Keras') over `size` int32 steps below `2 * DECAY_STEPS`, for a power of 1 (the
    common case, no logarithm) and of 2: the config closed over, as a jit argument,
    and 16 configs vmapped (optax's and Keras' idiom: the schedule built inside
    the vmapped function from a traced initial value)."""
    steps = jnp.asarray(
        np.random.default_rng(0).integers(0, 2 * DECAY_STEPS, size, dtype=np.int32)
    )
    rows = steps.reshape(16, -1)
    peaks = [INIT * (i + 1) for i in range(16)]
    inits = jnp.asarray(peaks, jnp.float32)
    as_argument = jax.jit(lambda c, s: c(s))
    swept = jax.jit(jax.vmap(lambda c, s: c(s)))
    functions: dict[str, Callable[[], Any]] = {}
    for power in (1.0, 2.0):
        config = jaxdecay.PolynomialDecay(INIT, DECAY_STEPS, POLYNOMIAL_END, power)
        configs = _stack(
            [
                jaxdecay.PolynomialDecay(p, DECAY_STEPS, POLYNOMIAL_END, power)
                for p in peaks
            ]
        )
        closed_over = jax.jit(config)
        theirs = jax.jit(
            optax.polynomial_schedule(INIT, POLYNOMIAL_END, power, DECAY_STEPS)
        )
        keras_schedule = jax.jit(
            keras.optimizers.schedules.PolynomialDecay(
                INIT, DECAY_STEPS, POLYNOMIAL_END, power
            )
        )
        optax_vmap = jax.jit(
            jax.vmap(
                lambda init, s, power=power: optax.polynomial_schedule(
                    init, POLYNOMIAL_END, power, DECAY_STEPS
                )(s)
            )
        )
        keras_vmap = jax.jit(
            jax.vmap(
                lambda init, s, power=power: keras.optimizers.schedules.PolynomialDecay(
                    init, DECAY_STEPS, POLYNOMIAL_END, power
                )(s)
            )
        )
        functions.update(
            {
                f"jaxdecay {power}": lambda f=closed_over: f(steps),
                f"jaxdecay argument {power}": lambda c=config: as_argument(c, steps),
                f"jaxdecay vmap {power}": lambda c=configs: swept(c, rows),
                f"optax {power}": lambda f=theirs: f(steps),
                f"optax vmap {power}": lambda f=optax_vmap: f(inits, rows),
                f"keras {power}": lambda f=keras_schedule: f(steps),
                f"keras vmap {power}": lambda f=keras_vmap: f(inits, rows),
            }
        )
    for function in functions.values():
        jax.block_until_ready(function())

    def run(function: Callable[[], Any]) -> Callable[[], None]:
        return lambda: jax.block_until_ready(function())

    medians = interleaved({n: run(f) for n, f in functions.items()}, repetitions)
    return {name: size / seconds for name, seconds in medians.items()}


COSINE_ALPHA = 0.1


def cosine_throughput(size: int, repetitions: int) -> dict[str, float]:
    """Steps per second of `CosineDecay` (closed over, and the config as a jit
    argument) and of optax's and Keras' cosine schedules, over `size` int32
    steps."""
    steps = jnp.asarray(
        np.random.default_rng(1).integers(0, 2**31 - 1, size, dtype=np.int32)
    )
    # A decay as long as the steps: every step is on the curve.
    decay_steps = 2**31
    config = jaxdecay.CosineDecay(INIT, decay_steps, COSINE_ALPHA)
    closed_over = jax.jit(config)
    as_argument = jax.jit(lambda c, s: c(s))
    optax_schedule = jax.jit(
        optax.cosine_decay_schedule(INIT, decay_steps, COSINE_ALPHA)
    )
    keras_schedule = jax.jit(
        keras.optimizers.schedules.CosineDecay(INIT, decay_steps, COSINE_ALPHA)
    )
    functions: dict[str, Callable[[], Any]] = {
        "jaxdecay": lambda: closed_over(steps),
        "jaxdecay argument": lambda: as_argument(config, steps),
        "optax": lambda: optax_schedule(steps),
        "keras": lambda: keras_schedule(steps),
    }
    for function in functions.values():
        jax.block_until_ready(function())

    def run(function: Callable[[], Any]) -> Callable[[], None]:
        return lambda: jax.block_until_ready(function())

    medians = interleaved({n: run(f) for n, f in functions.items()}, repetitions)
    return {name: size / seconds for name, seconds in medians.items()}


def train_step_compile_time(repetitions: int) -> dict[str, float]:
    """Seconds to trace and compile an `optax.sgd` train step with a new schedule
    (closed over), and with jaxdecay's config as an argument of the step."""
    counter = iter(range(1, 10**9))
    params = jax.ShapeDtypeStruct((16, 1), jnp.float32)
    x, y = _data()

    def step_with(schedule: Any) -> Callable[..., Any]:
        optimizer = optax.sgd(schedule)

        def step(params: jax.Array, state: Any) -> Any:
            grads = jax.grad(lambda p: jnp.mean((x @ p - y) ** 2))(params)
            updates, state = optimizer.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        return step

    def fresh(make: Callable[[float], Any]) -> Callable[[], None]:
        def run() -> None:
            # A new learning rate each time: no cache can serve it.
            schedule = make(INIT * (1 + next(counter) * 1e-6))
            state = jax.eval_shape(optax.sgd(schedule).init, params)
            jax.jit(step_with(schedule)).lower(params, state).compile()

        return run

    def as_argument() -> None:
        config = jaxdecay.ExponentialDecay(INIT * (1 + next(counter) * 1e-6), 50, RATE)
        state = jax.eval_shape(optax.sgd(config).init, params)

        def step(config: Any, params: jax.Array, state: Any) -> Any:
            return step_with(config)(params, state)

        jax.jit(step).lower(config, params, state).compile()

    return interleaved(
        {
            "jaxdecay": fresh(lambda v: jaxdecay.ExponentialDecay(v, 50, RATE)),
            "jaxdecay argument": as_argument,
            "optax": fresh(lambda v: optax.exponential_decay(v, 50, RATE)),
            "keras": fresh(
                lambda v: keras.optimizers.schedules.ExponentialDecay(v, 50, RATE)
            ),
        },
        repetitions,
    )


# -- The sweep: 16 learning rates, 20 SGD steps each on a small regression. --------

SWEEP_STEPS = 20


def _data() -> tuple[jax.Array, jax.Array]:
    key_x, key_w = jax.random.split(jax.random.key(0))
    x = jax.random.normal(key_x, (256, 16))
    return x, x @ jax.random.normal(key_w, (16, 1))


def _train(schedule: Any, x: jax.Array, y: jax.Array) -> jax.Array:
    """Final loss after SWEEP_STEPS steps of optax.sgd(schedule), in one scan."""
    optimizer = optax.sgd(schedule)
    params = jnp.zeros((16, 1))

    def loss(p: jax.Array) -> jax.Array:
        return jnp.mean((x @ p - y) ** 2)

    def step(carry: Any, _: Any) -> tuple[Any, None]:
        p, state = carry
        updates, state = optimizer.update(jax.grad(loss)(p), state, p)
        return (optax.apply_updates(p, updates), state), None

    (params, _), _ = jax.lax.scan(
        step, (params, optimizer.init(params)), None, SWEEP_STEPS
    )
    return loss(params)


def sweep(repetitions: int, count: int = 16) -> tuple[dict[str, float], dict[str, int]]:
    """Wall time of a whole sweep, compiles included, and the compiles it took."""
    x, y = _data()
    rates = np.geomspace(1e-3, 1e-1, count)
    traces = {"jaxdecay jit": 0, "jaxdecay vmap": 0, "optax": 0, "keras": 0}
    sweep_id = iter(range(10**9))

    def counted(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any) -> Any:
            traces[name] += 1
            return function(*args)

        return wrapper

    def jaxdecay_jit() -> None:
        # A fresh jitted function per sweep, so each sweep pays its compile.
        train = jax.jit(counted("jaxdecay jit", _train))
        offset = next(sweep_id) * 1e-9  # new values each sweep: nothing cached
        for rate in rates:
            config = jaxdecay.ExponentialDecay(float(rate) + offset, 50, RATE)
            train(config, x, y).block_until_ready()

    def jaxdecay_vmap() -> None:
        train = jax.jit(
            jax.vmap(counted("jaxdecay vmap", _train), in_axes=(0, None, None))
        )
        offset = next(sweep_id) * 1e-9
        configs = [
            jaxdecay.ExponentialDecay(float(rate) + offset, 50, RATE) for rate in rates
        ]
        stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *configs)
        train(stacked, x, y).block_until_ready()

    def closures(name: str, make: Callable[[float], Any]) -> Callable[[], None]:
        def run() -> None:
            offset = next(sweep_id) * 1e-9
            for rate in rates:
                schedule = make(float(rate) + offset)
                train = jax.jit(counted(name, lambda x, y, s=schedule: _train(s, x, y)))
                train(x, y).block_until_ready()

        return run

    contestants = {
        "jaxdecay jit": jaxdecay_jit,
        "jaxdecay vmap": jaxdecay_vmap,
        "optax": closures("optax", lambda v: optax.exponential_decay(v, 50, RATE)),
        "keras": closures(
            "keras",
            lambda v: keras.optimizers.schedules.ExponentialDecay(v, 50, RATE),
        ),
    }
    times = interleaved(contestants, repetitions)
    compiles = {name: count_ // repetitions for name, count_ in traces.items()}
    return times, compiles


_CONFIG = '{"initial_learning_rate": 0.1, "decay_steps": 1000, "decay_rate": 0.96}'


def processes(repetitions: int) -> dict[str, float]:
    """Seconds of whole new processes, interleaved: `import jax` alone; one learning
    rate printed with jaxdecay and with optax; `jaxdecay show` with its
    compilation cache (warmed once) and without."""
    python = sys.executable
    cache = tempfile.mkdtemp()
    show = [python, "-m", "jaxdecay", "show", _CONFIG, "--steps", "0,1000,2000"]
    commands = {
        "import jax": ([python, "-c", "import jax"], {}),
        "jaxdecay": (
            [
                python,
                "-c",
                "import jaxdecay; "
                "print(jaxdecay.ExponentialDecay(0.1, 1000, 0.96)(2500))",
            ],
            {},
        ),
        "optax": (
            [
                python,
                "-c",
                "import optax; print(optax.exponential_decay(0.1, 1000, 0.96)(2500))",
            ],
            {},
        ),
        "show": (show, {"JAXDECAY_CACHE_DIR": cache}),
        "show, no cache": (show, {"JAXDECAY_NO_CACHE": "1"}),
    }

    def run(command: list[str], env: dict[str, str]) -> Callable[[], None]:
        environment = {
            k: v for k, v in os.environ.items() if not k.startswith("JAXDECAY_")
        }
        environment.update(env)

        def go() -> None:
            subprocess.run(command, check=True, capture_output=True, env=environment)

        return go

    contestants = {name: run(*spec) for name, spec in commands.items()}
    contestants["show"]()  # fills the cache
    try:
        return interleaved(contestants, repetitions)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


# Builds `count` schedules of distinct numbers, calls each once and keeps them all:
# prints the growth of the resident set, in bytes per schedule.
_MEMORY = """
import os, sys
os.environ.setdefault("KERAS_BACKEND", "jax")
import jax


def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make(kind, init):
    if kind == "jaxdecay":
        import jaxdecay
        return jaxdecay.ExponentialDecay(init, 1000, 0.96)
    if kind == "optax":
        import optax
        return optax.exponential_decay(init, 1000, 0.96)
    import keras
    return keras.optimizers.schedules.ExponentialDecay(init, 1000, 0.96)


kind, count = sys.argv[1], int(sys.argv[2])
kept = [make(kind, 0.1)]
jax.block_until_ready(kept[0](2500))  # compiles and warms up
before = resident()
for i in range(count):
    kept.append(make(kind, 0.1 * (1 + (i + 1) * 1e-6)))
    jax.block_until_ready(kept[-1](2500))
print((resident() - before) / count)
"""


def memory(count: int) -> dict[str, float]:
    """Bytes of resident memory per schedule kept alive after its first call, each
    contestant in a new process (a config holds its prepared constants on the
    device; optax's closure and Keras' object hold their Python numbers)."""
    result = {}
    for kind in ("jaxdecay", "optax", "keras"):
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY, kind, str(count)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result[kind] = float(out.split()[-1])
    return result


def _rate(value: float) -> str:
    return f"{value:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (seconds)")
    args = parser.parse_args()
    repetitions = 3 if args.quick else 9
    sizes = [1 << 16] if args.quick else [4 << 20, 64 << 20]

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.processor() or 'cpu'}; jax {jax.__version__}, optax "
        f"{optax.__version__}, keras {keras.__version__}, backend "
        f"{jax.default_backend()}"
    )
    rows: list[tuple[str, str, str, str, str]] = []
    latency = eager_latency(repetitions)
    floor = latency["jit identity"]
    for name in ("jaxdecay", "jaxdecay builder"):
        rows.append(
            (
                f"eager call, Python int step (us): {name}",
                f"{latency[name] * 1e6:.1f}",
                f"{latency['optax'] * 1e6:.1f}",
                f"{latency['keras'] * 1e6:.1f}",
                f"{latency['optax'] / latency[name]:.1f}x / "
                f"{latency['keras'] / latency[name]:.1f}x",
            )
        )
    rows.append(
        (
            f"  jitted identity, the dispatch floor (us): {floor * 1e6:.1f}",
            f"{latency['jaxdecay'] / floor:.2f}x / "
            f"{latency['jaxdecay builder'] / floor:.2f}x of it",
            "",
            "",
            "",
        )
    )
    first = first_call(repetitions)
    for name in ("jaxdecay", "jaxdecay builder"):
        rows.append(
            (
                f"first call of a new schedule (us): {name}",
                f"{first[name] * 1e6:.1f}",
                f"{first['optax'] * 1e6:.1f}",
                f"{first['keras'] * 1e6:.1f}",
                f"{first['optax'] / first[name]:.2f}x / "
                f"{first['keras'] / first[name]:.2f}x",
            )
        )
    for size in sizes:
        # Each throughput cell is one call over millions of steps, noisier on a
        # shared machine than the latency rows: more repetitions.
        rates = throughput(size, repetitions if args.quick else 3 * repetitions)
        label = f"{size >> 20}M" if size >= 1 << 20 else f"{size >> 10}K"
        for name, optax_name, keras_name, path in [
            ("jaxdecay", "optax", "keras", "config closed over"),
            ("jaxdecay argument", "optax", "keras", "config as argument"),
            (
                "jaxdecay vmap",
                "optax vmap",
                "keras vmap",
                "16 configs vmapped*",
            ),
            ("warmup", "optax warmup", None, "warmup, closed over"),
            ("warmup argument", "optax warmup", None, "warmup, as argument"),
            (
                "warmup vmap",
                "optax warmup vmap",
                None,
                "warmup, 16 configs vmapped*",
            ),
        ]:
            for staircase in (False, True):
                ours = rates[_flagged(name, staircase)]
                theirs = rates[_flagged(optax_name, staircase)]
                keras_rate = rates[_flagged(keras_name, staircase)] if keras_name else 0
                rows.append(
                    (
                        f"jit, {label} int32 steps (steps/s): {path}, "
                        f"{'stairs' if staircase else 'smooth'}",
                        _rate(ours),
                        _rate(theirs),
                        _rate(keras_rate) if keras_name else "-",
                        f"{ours / theirs:.2f}x / "
                        + (f"{ours / keras_rate:.2f}x" if keras_name else "-"),
                    )
                )
        for staircase in (False, True):
            rows.append(
                (
                    f"  fraction of copy bound ({_rate(rates['copy'])}/s), "
                    f"closed over, {'stairs' if staircase else 'smooth'}",
                    f"{rates[_flagged('jaxdecay', staircase)] / rates['copy']:.2f}",
                    f"{rates[_flagged('optax', staircase)] / rates['copy']:.2f}",
                    f"{rates[_flagged('keras', staircase)] / rates['copy']:.2f}",
                    "",
                )
            )
    # PolynomialDecay, 4M steps (the quick run's size otherwise).
    size = sizes[0]
    label = f"{size >> 20}M" if size >= 1 << 20 else f"{size >> 10}K"
    rates = polynomial_throughput(size, repetitions if args.quick else 3 * repetitions)
    for power in (1.0, 2.0):
        for name, path in [
            ("jaxdecay", "closed over"),
            ("jaxdecay argument", "as argument"),
            ("jaxdecay vmap", "16 configs vmapped*"),
        ]:
            other = "vmap " if "vmap" in name else ""
            ours = rates[f"{name} {power}"]
            theirs = rates[f"optax {other}{power}"]
            keras_rate = rates[f"keras {other}{power}"]
            rows.append(
                (
                    f"jit, {label} int32 steps (steps/s): PolynomialDecay power "
                    f"{power:g}, {path}",
                    _rate(ours),
                    _rate(theirs),
                    _rate(keras_rate),
                    f"{ours / theirs:.2f}x / {ours / keras_rate:.2f}x",
                )
            )
    piecewise = piecewise_throughput(size, 3 * repetitions)
    for name, path in [
        ("jaxdecay", "config closed over"),
        ("jaxdecay argument", "config as argument"),
    ]:
        rows.append(
            (
                f"jit, {label} int32 steps (steps/s): PiecewiseConstantDecay, {path}",
                _rate(piecewise[name]),
                _rate(piecewise["optax"]),
                "-",
                f"{piecewise[name] / piecewise['optax']:.2f}x / -",
            )
        )
    cosine = cosine_throughput(size, 3 * repetitions)
    for name, path in [
        ("jaxdecay", "config closed over"),
        ("jaxdecay argument", "config as argument"),
    ]:
        rows.append(
            (
                f"jit, {label} int32 steps (steps/s): CosineDecay, {path}",
                _rate(cosine[name]),
                _rate(cosine["optax"]),
                _rate(cosine["keras"]),
                f"{cosine[name] / cosine['optax']:.2f}x / "
                f"{cosine[name] / cosine['keras']:.2f}x",
            )
        )
    compiles = train_step_compile_time(repetitions)
    for name, path in [
        ("jaxdecay", "schedule closed over"),
        ("jaxdecay argument", "config as argument"),
    ]:
        rows.append(
            (
                f"sgd train step, trace + compile (ms): {path}",
                f"{compiles[name] * 1e3:.1f}",
                f"{compiles['optax'] * 1e3:.1f}",
                f"{compiles['keras'] * 1e3:.1f}",
                f"{compiles['optax'] / compiles[name]:.2f}x / "
                f"{compiles['keras'] / compiles[name]:.2f}x",
            )
        )
    times, traced = sweep(max(1, repetitions // 3))
    best = min(times["jaxdecay jit"], times["jaxdecay vmap"])
    rows.append(
        (
            "16-rate sweep, s (compiles)",
            f"{times['jaxdecay jit']:.2f} ({traced['jaxdecay jit']}) jit / "
            f"{times['jaxdecay vmap']:.2f} ({traced['jaxdecay vmap']}) vmap",
            f"{times['optax']:.2f} ({traced['optax']})",
            f"{times['keras']:.2f} ({traced['keras']})",
            f"{times['optax'] / best:.1f}x / {times['keras'] / best:.1f}x",
        )
    )

    # New processes are slow and steady: one round suffices for a smoke run.
    seconds = processes(1 if args.quick else repetitions)
    base = seconds["import jax"]
    beyond = {name: seconds[name] - base for name in ("jaxdecay", "optax")}
    rows.append(
        (
            "new process, print one lr, ms beyond import jax",
            f"{beyond['jaxdecay'] * 1e3:.0f}",
            f"{beyond['optax'] * 1e3:.0f}",
            "",
            f"{beyond['optax'] / beyond['jaxdecay']:.2f}x / -",
        )
    )
    for name in ("show", "show, no cache"):
        rows.append(
            (
                f"`jaxdecay {name}`, vs `python -c 'import jax'` ({base * 1e3:.0f} ms)",
                f"{seconds[name] / base:.2f}x ({seconds[name] * 1e3:.0f} ms)",
                "",
                "",
                "",
            )
        )

    count = 500 if args.quick else 5000
    kept = memory(count)
    rows.append(
        (
            f"memory per schedule kept after a call, {count} kept (KB)",
            f"{kept['jaxdecay'] / 1e3:.2f}",
            f"{kept['optax'] / 1e3:.2f}",
            f"{kept['keras'] / 1e3:.2f}",
            "",
        )
    )

    header = ("", "jaxdecay", "optax", "keras", "speedup vs optax / keras")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print(
            "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    print(
        "* against optax's (and Keras') own idiom: the schedule built inside the "
        "vmapped function from a traced learning rate"
    )


if __name__ == "__main__":
    main()
