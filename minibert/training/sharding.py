"""Data parallelism with `jax.sharding`: one mesh axis over every device, the batch split along it.

The same code runs on 1 CPU, a GPU, or the 8 cores of a TPU: parameters and optimizer state are replicated,
the batch's leading axis is sharded over `data`, and XLA inserts the gradient all-reduce. Across several
hosts, call `jax.distributed.initialize()` first: the mesh below then spans every host's devices, and each
host builds only its own rows of the batch (training/data.py), which `global_batch` assembles with
`jax.make_array_from_process_local_data` into one global array — no host ever holds the whole batch.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def data_mesh() -> Mesh:
    return Mesh(np.array(jax.devices()), ("data",))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec("data"))


def global_batch(local_batch, mesh: Mesh):
    """This process's rows (every array's leading axis) → global arrays of (process_count · rows, ...) sharded
    over `data`; process p's rows are rows p·rows … (p+1)·rows of the global batch."""
    sharding = batch_sharding(mesh)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    if batch_size % mesh.size:
        raise ValueError(f"batch size {batch_size} is not divisible by the {mesh.size} devices")
