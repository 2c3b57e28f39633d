"""Attention for CPU decoding: the same attention as SDPA, without SDPA's slow single-token path on CPU.

Measured on a 2-core AMD EPYC (avx512_bf16, torch 2.13), one decoding step of SmolLM2-135M's
attention (32 rows, 9 query heads over 3 key/value heads, head dim 64, bf16) per layer:

    keys   SDPA (transformers packs the grouped heads)   this module
    64     198 us                                         118 us
    300    521 us                                         314 us

and a whole decode step (32 rows, bf16, inverse-CDF sampling) took 74 -> 47-50 ms at 64 new tokens
and 99 -> 49 ms at 256 (Gemma 3 270M: 199 -> 117 ms). Inside the model, ``torch.profiler``
put SDPA's CPU flash kernel (``_scaled_dot_product_flash_attention_for_cpu``) at 860 us a call with
~60 keys, more than the isolated call above; why that kernel is slow with one query row per head
was not established (it is built for long query blocks).

``workbench_sdpa`` is registered with transformers' ``AttentionInterface`` (the library's own hook
for attention functions) and masks the way SDPA does (``sdpa_mask``). A single query token on CPU
takes `grouped_decode_attention`; everything else (prefill, training, GPUs) is transformers'
``sdpa_attention_forward`` unchanged. Written by hand because neither torch nor transformers has a
CPU kernel for grouped single-token attention: it is two batched matmuls and a softmax.
"""

from __future__ import annotations

from contextlib import contextmanager

ATTENTION = "workbench_sdpa"


def grouped_decode_attention(module, query, key, value, attention_mask, scaling=None):
    """Attention of one new token per row, computed per key/value head for all the query heads that
    share it (grouped-query attention without repeating the cache).

    query (B, H, 1, D); key, value (B, K, L, D) with H a multiple of K; attention_mask None, a bool
    (B or 1, 1, 1, L) mask (True = attend) or an additive float one. Returns ((B, 1, H, D), None),
    as transformers' attention functions do. The softmax runs in fp32, as in transformers'
    ``eager_attention_forward``; no dropout (decoding). Source: scaled dot-product attention
    (Vaswani et al. 2017, eq. 1) over grouped key/value heads (Ainslie et al. 2023, GQA).
    """
    import torch

    B, H, _, D = query.shape
    K, L = key.shape[1], key.shape[2]
    scaling = D**-0.5 if scaling is None else scaling
    q = query.reshape(B, K, H // K, D)  # the query heads of each key/value head, as rows
    scores = torch.matmul(q, key.transpose(2, 3)) * scaling  # (B, K, H/K, L)
    if attention_mask is not None:
        mask = attention_mask.reshape(attention_mask.shape[0], 1, 1, L)  # shared by all heads
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + mask
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(weights, value)  # (B, K, H/K, D)
    return out.reshape(B, 1, H, D), None


def workbench_sdpa(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
    """transformers' ``sdpa_attention_forward``, except one query token on CPU without softcap or
    position bias, which takes `grouped_decode_attention`. Same arguments and return value."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if (query.shape[2] == 1 and query.device.type == "cpu" and not (module.training and dropout)
            and kwargs.get("softcap") is None and kwargs.get("position_bias") is None
            and (attention_mask is None or (attention_mask.shape[1] == 1 and attention_mask.shape[-1] == key.shape[2]))):
        return grouped_decode_attention(module, query, key, value, attention_mask, scaling=scaling)
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                  is_causal=is_causal, **kwargs)


def register() -> str:
    """Register ``workbench_sdpa`` (attention and its mask) with transformers; returns its name.
    Idempotent."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION, workbench_sdpa)
    AttentionMaskInterface.register(ATTENTION, sdpa_mask)
    return ATTENTION


@contextmanager
def decode_attention(model):
    """Within the block, ``model`` (a transformers model, PEFT- or DDP-wrapped or not) attends with
    ``workbench_sdpa`` where it used ``sdpa``; afterwards it uses what it used before. Models on
    another attention implementation are left alone. Cheap (a config attribute per module): meant
    around each ``generate`` call, so training forwards keep transformers' own SDPA."""
    model = getattr(model, "module", model)  # DDP
    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT
    current = getattr(getattr(base, "config", None), "_attn_implementation", None)
    if current != "sdpa" or not hasattr(base, "set_attn_implementation"):
        yield model
        return
    base.set_attn_implementation(register())
    try:
        yield model
    finally:
        base.set_attn_implementation(current)
