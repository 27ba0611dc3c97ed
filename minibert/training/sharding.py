"""Data parallelism with `jax.sharding`: one mesh axis over every device, the batch split along it.

The same code runs on 1 CPU, a GPU, or the 8 cores of a TPU: parameters and optimizer state are replicated,
the batch's leading axis is sharded over `data`, and XLA inserts the gradient all-reduce. Across several
hosts, call `jax.distributed.initialize()` first (each host then feeds its own slice of the batch; see the
README) — the mesh below then spans every host's devices.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def data_mesh() -> Mesh:
    return Mesh(np.array(jax.devices()), ("data",))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec("data"))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    if batch_size % mesh.size:
        raise ValueError(f"batch size {batch_size} is not divisible by the {mesh.size} devices")
