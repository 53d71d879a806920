"""Spreading independent videos over this process's devices: one worker thread per device.

Each thread owns one device (with its own replica of the weights) and pulls the next video from a
shared queue, so devices stay busy whatever the videos' lengths. JAX releases the GIL while a
device computes, so threads are enough.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence

import jax


def local_devices(config) -> list:
    """This process's devices to use (config.num_devices > 0 limits them)."""
    devices = jax.local_devices()
    return devices[: config.num_devices] if config.get("num_devices") else devices


def map_over_devices(devices: Sequence, variables, items: Sequence, work: Callable) -> None:
    """Calls work(item, variables_on_device) for every item, concurrently on `devices`.

    The first exception raised by any worker is re-raised here after all workers stop.
    """
    pending: queue.Queue = queue.Queue()
    for item in items:
        pending.put(item)
    errors: list[BaseException] = []

    def worker(device):
        replica = jax.device_put(variables, device)
        while not errors:
            try:
                item = pending.get_nowait()
            except queue.Empty:
                return
            try:
                work(item, replica)
            except BaseException as error:  # surfaced in the caller's thread
                errors.append(error)

    threads = [threading.Thread(target=worker, args=(d,)) for d in devices[: max(len(items), 1)]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
