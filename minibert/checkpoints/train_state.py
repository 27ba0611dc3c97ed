"""Training checkpoints with orbax: parameters, optimizer state and step, written atomically.

Orbax writes each checkpoint to a temporary folder and renames it when complete, so a process killed
mid-save leaves the previous checkpoints intact and `latest_step` never points at a partial one.
The data position and the dropout RNG are functions of the step (see training/data.py and loop.py),
so the step restores them too.
"""

from pathlib import Path

import orbax.checkpoint as ocp


def manager(directory: str | Path, keep: int = 2) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(Path(directory).absolute(), options=ocp.CheckpointManagerOptions(max_to_keep=keep))


def save(checkpoints: ocp.CheckpointManager, step: int, state) -> None:
    checkpoints.save(step, args=ocp.args.StandardSave(state))
    checkpoints.wait_until_finished()


def restore(checkpoints: ocp.CheckpointManager, template):
    """The latest checkpoint, shaped and sharded like `template`; (None, template) when there is none."""
    step = checkpoints.latest_step()
    if step is None:
        return None, template
    try:
        return step, checkpoints.restore(step, args=ocp.args.StandardRestore(template))
    except ValueError as error:          # orbax's message lists every array: keep its first line
        raise ValueError(f"the checkpoint of step {step} in {checkpoints.directory} does not fit this model and "
                         f"optimizer (another --family, --size, vocabulary or --grad-accumulation?): "
                         f"{str(error).strip().splitlines()[0][:300]}") from None
