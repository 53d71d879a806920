"""Benchmark (a): the chunked read over a capacity-64 bank holding 20 valid frames, divided by the
exact read over a 20-frame memory. Goal: ratio <= 1.15 (the read costs what the valid memory costs).

Run: python benchmarks/memory_read.py [--objects 2] [--height 30 --width 54] [--repeats 10]
Shapes default to DAVIS 480p (30x54 positions at stride 16) with STM's key/value dims (128/512).
"""

import argparse
import time

import jax
import jax.numpy as jnp

from stm_jax.memory.read import read_chunked, read_plain


def best_time(fn, *args, repeats):
    jax.block_until_ready(fn(*args))  # compile + warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("--height", type=int, default=30)
    parser.add_argument("--width", type=int, default=54)
    parser.add_argument("--capacity", type=int, default=64)
    parser.add_argument("--valid", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    positions = args.height * args.width
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    keys = jax.random.normal(k1, (args.objects, args.capacity, positions, 128))
    values = jax.random.normal(k2, (args.objects, args.capacity, positions, 512))
    query = jax.random.normal(k3, (1, positions, 128))

    read = jax.jit(read_chunked, static_argnums=(4,))
    bank_valid = jnp.arange(args.capacity) < args.valid
    ours = best_time(read, keys, values, bank_valid, query, args.chunk, repeats=args.repeats)
    exact_keys, exact_values = keys[:, : args.valid], values[:, : args.valid]
    # Exact reads over a memory of exactly the valid frames: the plain (whole-affinity) reference,
    # and the same chunked algorithm with no spare capacity (isolates the cost of the padding).
    flat = lambda x: x.reshape(args.objects, args.valid * positions, -1)
    plain = jax.jit(read_plain)
    exact_plain = best_time(
        plain,
        flat(exact_keys),
        flat(exact_values),
        jnp.ones((args.objects, args.valid * positions), bool),
        query,
        repeats=args.repeats,
    )
    all_valid = jnp.ones(args.valid, bool)
    exact_chunked = best_time(
        read, exact_keys, exact_values, all_valid, query, args.chunk, repeats=args.repeats
    )
    print(
        f"positions per frame {positions}, objects {args.objects}, device {jax.devices()[0].platform}"
    )
    print(f"chunked read, capacity {args.capacity}, {args.valid} valid: {ours * 1e3:8.1f} ms")
    print(f"exact plain read over {args.valid} frames:         {exact_plain * 1e3:8.1f} ms")
    print(f"exact chunked read over {args.valid} frames:       {exact_chunked * 1e3:8.1f} ms")
    print(f"ratio vs exact plain read (goal <= 1.15):   {ours / exact_plain:.3f}")
    print(f"ratio vs exact chunked read (goal <= 1.15): {ours / exact_chunked:.3f}")


if __name__ == "__main__":
    main()
