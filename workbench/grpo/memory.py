"""How many micro-batches the loss of a GRPO step needs to fit in memory.

At reasoning lengths the policy's activations, kept for backward, outgrow a laptop: on the embedded
model (30 layers, hidden 576, MLP 1536) one row of 55 prompt + 256 completion tokens keeps 0.40 GB
(autograd's saved tensors, measured with ``torch.autograd.graph.saved_tensors_hooks``), and the step's
peak is about twice that (6-8 GB for 8 rows). 32 rows in one micro-batch were killed for memory on a
24 GB machine. TRL's own gradient accumulation splits the loss: ``per_device_train_batch_size`` rows
per micro-batch, ``gradient_accumulation_steps`` micro-batches, one generation and one optimizer step
for all of them (TRL's ``steps_per_generation`` defaults to the accumulation steps), and the loss
normaliser spans the whole generation batch, so the update is the same mathematics.
"""

from __future__ import annotations

# Activation floats kept per token per layer, in units of (hidden, intermediate) size: the residual
# stream, norms, attention inputs/outputs and LoRA inputs (~8 x hidden) and the MLP's gate, up, act and
# product (~5 x intermediate). Fitted to the measurement above (52 KB per token per layer in fp32).
_PER_HIDDEN, _PER_INTERMEDIATE = 8, 5
# The step's peak over the saved tensors (backward's temporaries, the allocator).
PEAK_FACTOR = 2.0


def activation_bytes(config, rows: int, tokens: int) -> int:
    """Estimated peak bytes of the loss's forward-backward for ``rows`` sequences of ``tokens`` tokens
    (prompt + completion) through a decoder with ``config``'s (a transformers config) size, in fp32.
    A model config without ``num_hidden_layers`` / ``hidden_size`` raises AttributeError."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden = config.hidden_size
    intermediate = getattr(config, "intermediate_size", None) or 4 * hidden
    per_token_layer = 4 * (_PER_HIDDEN * hidden + _PER_INTERMEDIATE * intermediate)
    return int(PEAK_FACTOR * rows * tokens * config.num_hidden_layers * per_token_layer)


def loss_micro_batches(config, rows: int, tokens: int, budget_bytes: float) -> int:
    """The fewest micro-batches ``k`` (a divisor of ``rows``) whose ``rows / k`` rows fit
    ``budget_bytes`` by ``activation_bytes``; ``rows`` (one row each) when none fits."""
    for k in range(1, rows + 1):
        if rows % k == 0 and activation_bytes(config, rows // k, tokens) <= budget_bytes:
            return k
    return rows


def memory_budget_bytes(fraction: float = 0.6) -> float:
    """``fraction`` of the memory available now (``psutil.virtual_memory().available``, bytes), or
    ``WORKBENCH_MEMORY_BUDGET_MB`` (megabytes) when set: a cap for a machine shared with other jobs.

    Raises WorkbenchError (one line) when the variable is not a positive number."""
    import os

    import psutil

    from workbench.errors import WorkbenchError

    cap = os.environ.get("WORKBENCH_MEMORY_BUDGET_MB")
    if cap:
        try:
            mb = float(cap)
        except ValueError:
            mb = 0.0
        if not mb > 0:
            raise WorkbenchError(f"WORKBENCH_MEMORY_BUDGET_MB must be a positive number of megabytes, got {cap!r}")
        return mb * 2 ** 20
    return fraction * psutil.virtual_memory().available
