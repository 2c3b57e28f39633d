"""Linear layers with oneDNN-prepacked weights for CPU bf16 decoding: the same matmuls, no per-call
weight reorder.

On CPU, a bf16 ``F.linear`` goes to oneDNN, which reorders the (N, K) weight into its blocked
layout on every call; a decoding step calls 211 linears of SmolLM2-135M for a batch of only 32
rows, so the reorder is a large share of each matmul. oneDNN's own prepacking
(``torch.ops.mkldnn._reorder_linear_weight`` once, then ``torch.ops.mkldnn._linear_pointwise``: what
torch.compile's CPU freezing pass emits for linears) does it once per generation. Measured on a
2-core Intel Xeon with AMX (torch 2.13), per call, 32 rows:

    shape (K -> N)     F.linear   prepacked
    576 -> 1536        112 us     80 us
    1536 -> 576        113 us     76 us
    576 -> 576          61 us     46 us
    576 -> 49152      3348 us   1937 us    (the LM head)

and a whole decode step of 32 rows (bf16, 128 new tokens, ``generate`` alone, alternating) 93-96
-> 86-87 ms a token; packing all 211 weights took 0.08-0.15 s. In whole GRPO steps at 256 tokens
the gain did not show clearly (generation medians 28.42 against 28.81 s, 3 steps each way;
docs/performance-log.md). The outputs are bit-identical to ``F.linear`` (bf16, every
shape tried: the same oneDNN kernel). fp32 is left alone: there prepacking was slower on the small
shapes. Written here because neither transformers nor torch offers prepacked linears outside
torch.compile's freezing, which bakes the weights into the compiled graph (and a GRPO step changes
them every step).
"""

from __future__ import annotations

from contextlib import contextmanager


def available() -> bool:
    """Whether this torch can prepack bf16 linears for oneDNN on this CPU (and oneDNN is not switched
    off with ``torch.backends.mkldnn.enabled = False``)."""
    import torch

    ops = torch.ops.mkldnn
    try:
        return (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
                and bool(ops._is_mkldnn_bf16_supported())
                and hasattr(ops, "_reorder_linear_weight") and hasattr(ops, "_linear_pointwise"))
    except (AttributeError, RuntimeError):  # a torch built without these ops
        return False


@contextmanager
def prepacked_linears(model, rows: int = 32):
    """Within the block, every ``torch.nn.Linear`` of ``model`` with bf16 weights on CPU runs through
    a oneDNN-prepacked copy of its weight, when called without gradients on a bf16 input (x (..., K)
    -> (..., N), bit-identical to ``F.linear``); with gradients or another input dtype it runs as
    before. ``rows``: the batch size oneDNN tunes the packed layout for (others work).

    The weights are packed on entry: enter this after anything that swaps weights for the block
    (``workbench.grpo.fast.merged_lora``), and do not change them inside it. Costs one packed copy
    of those weights (270 MB for SmolLM2-135M in bf16). A model with no such layer, a CUDA model, or
    a torch without the ops is left alone, and so is a layer with accelerate hooks (``_hf_hook``:
    the packed call would skip them) or one oneDNN fails to pack; nothing is raised. Source: the
    packing torch.compile's CPU freezing applies to linears (torch/_inductor/fx_passes/mkldnn_fusion.py)."""
    import torch

    layers = [m for m in model.modules() if type(m) is torch.nn.Linear and m.weight.dtype == torch.bfloat16
              and m.weight.device.type == "cpu" and not hasattr(m, "_hf_hook")]
    if not layers or not available():
        yield model
        return
    saved = []
    try:
        for layer in layers:
            try:
                packed = torch.ops.mkldnn._reorder_linear_weight(layer.weight.detach(), max(1, rows))
            except RuntimeError:  # a shape or build oneDNN cannot pack: this layer stays as it is
                continue
            saved.append((layer, layer.__dict__.get("forward")))
            layer.forward = _packed_forward(layer, packed, layer.forward)
        yield model
    finally:
        for layer, previous in saved:
            layer.__dict__.pop("forward", None)
            if previous is not None:  # an instance forward someone else had set
                layer.forward = previous


def packed_linear(x, packed, bias):
    """``F.linear(x, weight, bias)`` on a weight packed by ``torch.ops.mkldnn._reorder_linear_weight``:
    x (..., K) bf16 -> (..., N) bf16. No autograd."""
    import torch

    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


def _packed_forward(layer, packed, original):
    import torch

    def forward(x):
        if x.dtype is torch.bfloat16 and not torch.is_grad_enabled():
            return packed_linear(x, packed, layer.bias)
        return original(x)

    return forward
