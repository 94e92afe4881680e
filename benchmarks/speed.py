"""Speed: jaxdecay against optax and Keras 3 (JAX backend), measured in one run.

Prints one table with ratios:
- eager call latency on a Python int step (logging the lr every step);
- jit throughput over 4M and 64M int32 steps, in steps/s and as a fraction of the
  machine's memory-bandwidth bound, measured here as a jitted copy that moves the
  same bytes (4 in and 4 out per step);
- trace + compile time of a fresh schedule;
- a sweep of 16 learning rates on a small model: jaxdecay compiles once (the config
  is an argument, or vmapped), optax and Keras compile each closure anew.

Repetitions are interleaved (A B C A B C ...) so that drift hits every contestant
alike; each cell is the median. `--quick` runs a small smoke version.

Usage: `python benchmarks/speed.py [--quick]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax

import jaxdecay

INIT, DECAY_STEPS, RATE = 0.1, 1000, 0.96


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
    """Seconds per eager call at a Python int step (a loop of calls, per call)."""
    schedules = {
        "jaxdecay": jaxdecay.ExponentialDecay(INIT, DECAY_STEPS, RATE),
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


def throughput(size: int, repetitions: int) -> dict[str, float]:
    """Steps per second of each jitted schedule over `size` int32 steps; "copy" is
    the bandwidth bound: a jitted op that reads 4 bytes and writes 4 per step."""
    steps = jnp.asarray(
        np.random.default_rng(0).integers(0, 2**31 - 1, size, dtype=np.int32)
    )
    functions = {
        "jaxdecay": jax.jit(jaxdecay.ExponentialDecay(INIT, DECAY_STEPS, RATE)),
        "optax": jax.jit(optax.exponential_decay(INIT, DECAY_STEPS, RATE)),
        "keras": jax.jit(
            keras.optimizers.schedules.ExponentialDecay(INIT, DECAY_STEPS, RATE)
        ),
        # Same bytes as a schedule: int32 in, 4 bytes out; no arithmetic to speak of.
        "copy": jax.jit(lambda x: jax.lax.bitcast_convert_type(x, jnp.float32)),
    }
    for function in functions.values():
        jax.block_until_ready(function(steps))

    def run(function: Callable[[jax.Array], jax.Array]) -> Callable[[], None]:
        return lambda: jax.block_until_ready(function(steps))

    medians = interleaved({n: run(f) for n, f in functions.items()}, repetitions)
    return {name: size / seconds for name, seconds in medians.items()}


def compile_time(repetitions: int) -> dict[str, float]:
    """Seconds to trace and compile a fresh schedule for a scalar int32 step."""
    counter = iter(range(1, 10**9))
    step = jax.ShapeDtypeStruct((), jnp.int32)

    def fresh(make: Callable[[float], Any]) -> Callable[[], None]:
        def run() -> None:
            # A new learning rate each time: no cache can serve it.
            init = INIT * (1 + next(counter) * 1e-6)
            jax.jit(make(init)).lower(step).compile()

        return run

    return interleaved(
        {
            "jaxdecay": fresh(
                lambda v: jaxdecay.ExponentialDecay(v, DECAY_STEPS, RATE)
            ),
            "optax": fresh(lambda v: optax.exponential_decay(v, DECAY_STEPS, RATE)),
            "keras": fresh(
                lambda v: keras.optimizers.schedules.ExponentialDecay(
                    v, DECAY_STEPS, RATE
                )
            ),
        },
        repetitions,
    )


# -- The sweep: 16 learning rates, 200 SGD steps each on a small regression. -------

SWEEP_STEPS = 200


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
    rows.append(
        (
            "eager call, Python int step (us)",
            f"{latency['jaxdecay'] * 1e6:.1f}",
            f"{latency['optax'] * 1e6:.1f}",
            f"{latency['keras'] * 1e6:.1f}",
            f"{latency['optax'] / latency['jaxdecay']:.1f}x / "
            f"{latency['keras'] / latency['jaxdecay']:.1f}x",
        )
    )
    rows.append(
        (
            "  jitted identity, the dispatch floor (us)",
            f"{latency['jit identity'] * 1e6:.1f}",
            "",
            "",
            "",
        )
    )
    for size in sizes:
        rates = throughput(size, repetitions)
        label = f"{size >> 20}M" if size >= 1 << 20 else f"{size >> 10}K"
        rows.append(
            (
                f"jit, {label} int32 steps (steps/s)",
                _rate(rates["jaxdecay"]),
                _rate(rates["optax"]),
                _rate(rates["keras"]),
                f"{rates['jaxdecay'] / rates['optax']:.2f}x / "
                f"{rates['jaxdecay'] / rates['keras']:.2f}x",
            )
        )
        rows.append(
            (
                f"  fraction of copy bound ({_rate(rates['copy'])}/s)",
                f"{rates['jaxdecay'] / rates['copy']:.2f}",
                f"{rates['optax'] / rates['copy']:.2f}",
                f"{rates['keras'] / rates['copy']:.2f}",
                "",
            )
        )
    compiles = compile_time(repetitions)
    rows.append(
        (
            "trace + compile (ms)",
            f"{compiles['jaxdecay'] * 1e3:.1f}",
            f"{compiles['optax'] * 1e3:.1f}",
            f"{compiles['keras'] * 1e3:.1f}",
            f"{compiles['optax'] / compiles['jaxdecay']:.2f}x / "
            f"{compiles['keras'] / compiles['jaxdecay']:.2f}x",
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

    header = ("", "jaxdecay", "optax", "keras", "speedup vs optax / keras")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print(
            "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )


if __name__ == "__main__":
    main()
