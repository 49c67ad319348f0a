"""Scaling out: data-parallel training over every device, and over several hosts, with JAX's own sharding.

    mesh = data_mesh()                      # one axis, "data", over all devices (one device: a mesh of one)
    state = replicate(state, mesh)          # parameters and optimizer state: a full copy on every device
    batch = shard_batch(batch, mesh)        # each device gets len(batch) / n_devices rows

`posekit.train.fit` does exactly this. Under `jax.jit` the train step then compiles to one SPMD program:
every device computes the loss and gradients of its rows, and XLA inserts the all-reduce that sums the
gradients, so the update is the one a single device would make on the whole batch (BatchNorm's batch
statistics, too, are taken over the whole batch). Nothing here replaces JAX; it names the three decisions.

Several hosts: `initialize` calls `jax.distributed.initialize` (with a coordinator address, the process count
and this process's id, or with JAX's own environment variables); each process then produces only its rows of
every global batch (`host_rows`) and `shard_batch` assembles the global array from the processes' parts. With
data shards (`host_shards`, `posekit.data.Shards`), each process also reads only its part of the dataset.

Used in `posekit.train` and the performance appendix ("Scaling out").
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh with axis "data" over `devices` (default: every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices: expected at least one device, found none")
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """The sharding of parameters and optimizer state: the same full array on every device."""
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """The sharding of a batch: split along its first axis over the "data" axis."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicate(tree, mesh: Mesh):
    """Place every array of `tree` on every device of `mesh`."""
    return jax.device_put(tree, replicated(mesh))


def check_batch(batch_size: int, mesh: Mesh, what: str = "batch") -> None:
    """A clear error when a global batch does not split evenly over the mesh's devices."""
    n = mesh.devices.size
    if batch_size % n:
        lo, hi = batch_size // n * n, -(-batch_size // n) * n
        raise ValueError(
            f"{what}: the global batch of {batch_size} does not split evenly over {n} devices "
            f"({jax.devices()[0].platform}); use a multiple of {n}, e.g. {lo or hi} or {hi}"
        )


def host_rows(global_batch: int) -> slice:
    """This process's rows of a global batch: process p of P reads rows [p·B/P, (p+1)·B/P)."""
    n, p = jax.process_count(), jax.process_index()
    if global_batch % n:
        raise ValueError(f"batch: the global batch of {global_batch} does not split evenly over {n} processes")
    per = global_batch // n
    return slice(p * per, (p + 1) * per)


def shard_range(n: int, shard: int, num_shards: int) -> range:
    """Shard `shard` of `num_shards` of a dataset of n items: the contiguous items [s·n/S, (s+1)·n/S)."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard: expected 0 <= shard < {num_shards}, got {shard}")
    if n < num_shards:
        raise ValueError(f"data shards: a dataset of {n} items cannot be split into {num_shards} non-empty shards")
    return range(shard * n // num_shards, (shard + 1) * n // num_shards)


def host_shards(num_shards: int) -> list[int]:
    """The data shards this process reads: process p of P reads shards [p·S/P, (p+1)·S/P) (S a multiple of P)."""
    n, p = jax.process_count(), jax.process_index()
    if num_shards < 1 or num_shards % n:
        raise ValueError(f"data shards: {num_shards} shards do not split evenly over {n} processes; "
                         f"use a multiple of {n}")  # fmt: skip
    per = num_shards // n
    return list(range(p * per, (p + 1) * per))


def shard_batch(batch: dict, mesh: Mesh) -> dict:
    """Place a batch (a dict of arrays, all of the same first dimension) split over the "data" axis.

    With one process, `batch` is the whole global batch. With several, it is this process's rows
    (`host_rows`), and the global arrays are assembled from every process's part.
    """
    sizes = {k: np.shape(v)[0] for k, v in batch.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"batch: every array needs the same first dimension, found {sizes}")
    sharding = batch_sharding(mesh)
    if jax.process_count() == 1:
        check_batch(next(iter(sizes.values())), mesh)
        return jax.device_put(batch, sharding)
    check_batch(next(iter(sizes.values())) * jax.process_count(), mesh)
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()}


def to_host(tree):
    """Numpy copies of a tree of replicated arrays, also when other processes hold devices of the mesh."""

    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(x.addressable_shards[0].data)
        return np.asarray(x)

    return jax.tree.map(one, tree)


def from_process_zero(tree):
    """Process 0's values of `tree` on every process (`multihost_utils.broadcast_one_to_all`); the tree itself
    with a single process. `fit` uses it so that every host resumes from process 0's checkpoint, even a host
    that cannot see the file (no shared disk) and would otherwise start again from step 0."""
    if jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    return jax.tree.map(np.asarray, multihost_utils.broadcast_one_to_all(tree))


ENV = {"coordinator": "JAX_COORDINATOR_ADDRESS", "num_processes": "JAX_NUM_PROCESSES", "process_id": "JAX_PROCESS_ID"}


def initialize(coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None):
    """Join a multi-process run (`jax.distributed.initialize`); a no-op for a single process.

    Arguments left out are read from JAX's environment variables (JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES,
    JAX_PROCESS_ID); with none of them set, nothing happens. On the CPU backend the processes exchange
    gradients over gloo. Returns (process index, process count).
    """
    args = {"coordinator": coordinator, "num_processes": num_processes, "process_id": process_id}
    for name, var in ENV.items():
        if args[name] is None and os.environ.get(var):
            args[name] = os.environ[var]
    if all(v is None for v in args.values()):
        return jax.process_index(), jax.process_count()
    missing = [ENV[k] for k, v in args.items() if v is None]
    if missing:
        raise ValueError(f"initialize: a multi-process run needs all three settings; missing {missing}")
    # before any backend starts: the CPU backend's cross-process collectives (harmless on GPUs)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=str(args["coordinator"]),
        num_processes=int(args["num_processes"]),
        process_id=int(args["process_id"]),
    )
    return jax.process_index(), jax.process_count()


def describe(mesh: Mesh | None = None) -> str:
    """One line for a chapter's log: the backend, the devices and the processes the run uses."""
    mesh = data_mesh() if mesh is None else mesh
    d = mesh.devices.ravel()
    kinds = sorted({getattr(x, "device_kind", x.platform) for x in d})
    return (f"JAX {jax.__version__} on {jax.default_backend()}: {d.size} device(s) ({', '.join(kinds)}), "
            f"{jax.process_count()} process(es)")  # fmt: skip
