"""What the workbench's own additions need to stay correct under ``accelerate launch`` / ``torchrun``.

TRL and accelerate run the training itself on N processes (DDP, DeepSpeed ZeRO, FSDP2). The
workbench adds a run directory, a rollout log and held-out evaluation around it; this module holds
the few collective steps those need, all through accelerate's own operations:

- one run directory, named and created by the main process (``agree``: the main process's value,
  or its error, reaches every process);
- every process's rollouts gathered to the main process, which alone writes (``gather_records``);
- waiting for the main process to finish writing before the others go on (``wait_for_main``).

Without a launcher (one process) every function here is a local no-op: nothing is initialised and
accelerate is not imported.
"""

from __future__ import annotations

import os


def world_size() -> int:
    """Processes in this job, from the launcher's ``WORLD_SIZE`` (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def process_index() -> int:
    """This process's rank, from the launcher's ``RANK`` (0 without a launcher)."""
    return int(os.environ.get("RANK", "0") or 0)


def is_main_process() -> bool:
    """Whether this process writes the run directory (rank 0)."""
    return process_index() == 0


def _state():
    # accelerate's PartialState initialises torch.distributed from the launcher's environment (gloo
    # on CPU, NCCL on GPU), as the trainer will; built on first use, then shared by both. It is a
    # singleton, so it must be built with cpu=True where the trainer will train on the CPU
    # (transformers' use_cpu) or it would stay single-process for the trainer too.
    import torch
    from accelerate import PartialState

    cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true") or not torch.cuda.is_available()
    return PartialState(cpu=cpu)


def agree(compute):
    """``compute()`` run on the main process only; its value (or the exception it raised) reaches
    every process. Used for what must be decided once: the run's name, creating its directory.
    Raises on every process what ``compute`` raised on the main one."""
    if world_size() == 1:
        return compute()
    from accelerate.utils import broadcast_object_list

    _state()
    box = [None]
    if is_main_process():
        try:
            box = [("ok", compute())]
        except Exception as e:  # sent to the other processes, then raised everywhere
            box = [("error", e)]
    broadcast_object_list(box, from_process=0)
    kind, value = box[0]
    if kind == "error":
        raise value
    return value


def gather_records(records: list) -> list:
    """Every process's ``records`` concatenated in rank order, on every process (accelerate's
    ``gather_object``: all processes must call it, the same number of times). One process: ``records``."""
    if world_size() == 1:
        return list(records)
    from accelerate.utils import gather_object

    return gather_object(list(records))


def wait_for_main() -> None:
    """A barrier: every process waits here until all arrive (the main one after writing)."""
    if world_size() > 1:
        _state().wait_for_everyone()


def any_process(flag: bool) -> bool:
    """Whether ``flag`` is true on any process (an all-reduce of one number; all processes must call
    it). What makes a stop decision the same everywhere: a signal or a time budget seen by one process
    stops all of them at the same step, where a lone stop would leave the others waiting forever."""
    if world_size() == 1:
        return bool(flag)
    import torch
    from accelerate.utils import reduce

    state = _state()
    return bool(reduce(torch.tensor([float(bool(flag))], device=state.device), reduction="sum").item() > 0)

