"""Where the workbench's GRPO step saves time over TRL as it comes, without changing the algorithm.

Profiled on the demo (2-core CPU, SmolLM2-135M fp32, LoRA r16, 4 prompts x 8 rollouts, <= 24 new
tokens, ~50-token prompts; `workbench bench` reproduces it): TRL's step spends its time in
 1. gradient checkpointing (on by default): a second forward pass inside backward;
 2. the policy forward+backward over all 32 x ~75 tokens, although the 32 rows hold only 4
    distinct prompts: ~2/3 of those tokens are the same prompt recomputed 8 times;
 3. the fused LM head scoring every position, prompt included (off CUDA, TRL's kernel scores the
    whole sequence and masks afterwards): a 49k-vocab projection over ~3x the needed tokens;
 4. generation through per-layer LoRA adapter calls (two extra small matmuls, a dropout and an
    add per linear layer per decoded token);
 5. generation's prefill over all 32 rows (1.4 s), although only 4 prompts are distinct (0.2 s);
 6. ``torch.multinomial`` on CPU, which draws an exponential per vocabulary entry: 27 ms per
    decoding step for 32 x 49k probabilities, ~0.6 s of a 24-token generation.

Fixes, each the same mathematics:
 1. `gradient_checkpointing=False` in the config (a 135M model fits; big models can turn it on).
 2.+3. `shared_prefix_logps`: run the backbone once per *distinct* prompt (minus its last token)
    with gradients, repeat its KV cache to the G rollouts of each prompt (autograd sends every
    rollout's gradient back through the shared prefix), then run only ``[last prompt token,
    completion]`` through the model with TRL's own fused LM head. Positions, masks, temperature
    and the log-prob kernel are TRL's; only the duplicated work is gone.
 4. `merged_lora`: for generation, add each layer's LoRA delta into a *new* weight tensor and run
    the base layers with adapters disabled; the original tensors are put back afterwards (no
    merge/unmerge round-off drift). Sampling then sees no LoRA dropout, as with TRL's vLLM path.
    Skipped for 4-bit base weights (they cannot hold a merged delta).
 5. `shared_prefix_generation`: prefill each distinct prompt (minus its last token) once, repeat
    the KV cache to its rows, and let ``generate`` continue from the cache.
 6. `inverse_cdf_sampling`: the same categorical distribution drawn with one uniform per row
    (cumulative sum + binary search) instead of one exponential per vocabulary entry.
 7. `lean_logprob_backward`: at reasoning lengths TRL's chunked log-prob kernel took half the
    forward-backward on CPU (4.7 s of 9.5 s for 8 rows x 256 tokens, bf16): off Triton devices its
    backward tile runs ~14 full passes over a (4096 x 32768) tile (float copy, zeros_like, a
    boolean one-hot, ...). The same gradient in 6 in-place passes and a scatter.
 8. `no_lora_input_cast`: under CPU bf16 autocast, PEFT casts every LoRA layer's bf16 input to the
    adapter's fp32 and autocast casts it straight back to bf16 for the matmul: a full activation
    copy per adapted layer, forward and backward (copy_ was 1.5 s of a 9.5 s forward-backward).
    PEFT's own switch turns the first cast off; the values are the same (bf16 -> fp32 -> bf16 is exact).
 9. `cpu_logprob_tiles`: TRL sizes its log-prob tiles for GPUs (4096 tokens x 32768 vocabulary: a
    512 MB fp32 tile per elementwise pass). On CPU every pass over such a tile goes to DRAM; tiles
    of 512 x 4096 (8 MB) stay in cache. Forward + backward of 2048 tokens x 49k vocabulary, bf16,
    2 cores: 1.9-2.0 s -> 1.0 s (min of 3). Only the tiling changes (fp32 accumulation included).
10. `workbench.attention.decode_attention` (entered around generation with the above): one query
    token per row on CPU attends through two batched matmuls instead of SDPA's CPU flash kernel
    (99 -> 49 ms a decode step at 256 tokens on a 2-core EPYC; details in that module).
11. `workbench.prepacked.prepacked_linears` (entered after `merged_lora`): CPU bf16 linears run on
    weights packed once for oneDNN instead of reordered on every call (93-96 -> 86-87 ms a decode
    step of 32 rows on a 2-core Intel Xeon with AMX; bit-identical outputs).
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

import torch

from workbench.analysis.evaluate import patched_generate


@functools.cache
def cache_keyword() -> str:
    """The name this transformers gives the KV cache, as a model argument and an output field:
    ``"cache"`` from 5.24 on, ``"past_key_values"`` before. 5.24 still takes the old name but warns
    that it goes away (``_rename_kwargs_for_bc`` in transformers/utils/generic.py, and
    ``deprecate_kwarg`` on ``generate``); the pin allows releases on both sides of the rename."""
    from transformers.modeling_outputs import BaseModelOutputWithPast

    return "cache" if "cache" in BaseModelOutputWithPast.__dataclass_fields__ else "past_key_values"


@contextmanager
def merged_lora(model):
    """Generate with LoRA deltas folded into the base weights; restores the exact originals."""
    try:
        from peft.tuners.lora import LoraLayer
    except ImportError:  # no peft: nothing to merge
        yield model
        return
    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    mergeable = layers and hasattr(model, "disable_adapter") and all(
        getattr(layer.get_base_layer(), "weight", None) is not None
        and layer.get_base_layer().weight.dtype in (torch.float32, torch.bfloat16, torch.float16)
        for layer in layers
    )
    if not mergeable:
        yield model
        return
    swaps = []
    try:
        with torch.no_grad():
            for layer in layers:
                base = layer.get_base_layer()
                active = [a for a in layer.active_adapters if a in layer.lora_A]
                if not active:
                    continue
                delta = sum(layer.get_delta_weight(a) for a in active)
                swaps.append((base, base.weight.data))
                base.weight.data = base.weight.data + delta.to(base.weight.dtype)
        with model.disable_adapter():
            yield model
    finally:
        for base, original in swaps:
            base.weight.data = original


def _unique_rows(ids, mask):
    """(unique (ids, mask) rows, inverse index): rows that share a prompt and its padding."""
    unique, inverse = torch.unique(torch.cat([ids, mask], dim=1), dim=0, return_inverse=True)
    P = ids.size(1)
    return unique[:, :P], unique[:, P:], inverse


def shared_prefix_generation(model):
    """Within the block, ``model.generate(input_ids, attention_mask, ...)`` prefills each distinct
    prompt once and continues every row from a copy of its prompt's KV cache."""
    return patched_generate(model, lambda original: _shared_prefix_generate(model, original))


def _shared_prefix_generate(model, original):
    def generate(input_ids=None, attention_mask=None, **kwargs):
        cache_kw = cache_keyword()
        for name in ("cache", "past_key_values"):  # an explicit None is no cache; ours takes its place
            if name in kwargs and kwargs[name] is None:
                del kwargs[name]
        if (input_ids is None or attention_mask is None or input_ids.size(1) < 2
                or "cache" in kwargs or "past_key_values" in kwargs):
            return original(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        ids, mask, inverse = _unique_rows(input_ids, attention_mask)
        if ids.size(0) == input_ids.size(0):  # nothing shared
            return original(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        with torch.no_grad():
            cache = getattr(_backbone(model)(input_ids=ids[:, :-1], attention_mask=mask[:, :-1], use_cache=True), cache_kw)
        cache.batch_select_indices(inverse)
        return original(input_ids=input_ids, attention_mask=attention_mask, **{cache_kw: cache}, **kwargs)

    return generate


@contextmanager
def inverse_cdf_sampling():
    """Replace ``torch.multinomial(probs, 1)`` (what transformers' sampler calls) with inverse-CDF
    sampling for the duration of the block. Other uses of multinomial pass through unchanged."""
    original = torch.multinomial

    def multinomial(probs, num_samples, replacement=False, *, generator=None, out=None):
        if num_samples != 1 or probs.dim() != 2 or out is not None or not probs.is_floating_point():
            return original(probs, num_samples, replacement, generator=generator, out=out)
        cdf = probs.float().cumsum(dim=-1)  # (B, V)
        # 1 - U is in (0, 1]: a draw of exactly 0 cannot land on a leading zero-probability token.
        u = 1.0 - torch.rand(probs.size(0), 1, device=probs.device, generator=generator)
        idx = torch.searchsorted(cdf, u * cdf[:, -1:])  # first index whose cumulative mass reaches u
        return idx.clamp_(max=probs.size(1) - 1)

    torch.multinomial = multinomial
    try:
        yield
    finally:
        torch.multinomial = original


def _backbone(model):
    # Under DDP the loss's model is the DistributedDataParallel wrapper: the prefix runs on the module
    # inside it, the tail through the wrapper (so DDP prepares its gradient all-reduce as usual).
    model = getattr(model, "module", model)
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(lm, lm.base_model_prefix)


def shared_prefix_logps(model, input_ids, attention_mask, logits_to_keep, compute_entropy, autocast):
    """Per-token log-probs (and entropies) of the last ``logits_to_keep`` tokens, computing each
    distinct prompt once. Same inputs and outputs as TRL's ``_get_per_token_logps_and_entropies``
    for a text-only model whose LM head TRL has fused (``add_fused_lm_head``)."""
    C = logits_to_keep
    prompt_ids, completion_ids = input_ids[:, :-C], input_ids[:, -C:]  # (B, P), (B, C)
    # Rows with the same prompt (ids and padding) share one prefix computation.
    unique_ids, unique_mask, inverse = _unique_rows(prompt_ids, attention_mask[:, :-C])  # (U, P), (U, P), (B,)
    P = prompt_ids.size(1)
    cache_kw = cache_keyword()
    with autocast:
        if P > 1:
            prefix = _backbone(model)(input_ids=unique_ids[:, :-1], attention_mask=unique_mask[:, :-1], use_cache=True)
            cache = getattr(prefix, cache_kw)
            cache.batch_select_indices(inverse)  # (U, ...) -> (B, ...); differentiable indexing
        else:
            cache = None
        # The last prompt token's output predicts the first completion token, so it runs with the completion.
        tail_ids = torch.cat([prompt_ids[:, -1:], completion_ids], dim=1)  # (B, C + 1)
        labels = tail_ids.masked_fill(attention_mask[:, -C - 1 :] == 0, -100)
        labels[:, 0] = -100
        out = model(
            input_ids=tail_ids,
            attention_mask=attention_mask,  # (B, P + C): the cached prefix plus the tail
            labels=labels,
            fused_lm_head=True,
            **{cache_kw: cache},
        )
    logps = out.log_probs[:, -C:]  # (B, C)
    entropies = out.entropy[:, -C:] if compute_entropy else None
    return logps, entropies


def _lean_backward_tile(original):
    # TRL's ``_backward_tile`` signature (trl/kernels/chunked_logprob.py); written by hand because TRL's
    # torch fallback for devices without Triton allocates a new full tile per elementwise step.
    def backward_tile(tile, tile_stride, targets, log_z, entropy, grad_logprobs, grad_entropy, vocab_start, n_cols,
                      logit_scale, softcap, inv_t, HAS_SOFTCAP, HAS_LOGPROB_GRAD, HAS_ENTROPY_GRAD, BLOCK_SIZE):
        if HAS_SOFTCAP or HAS_ENTROPY_GRAD or not HAS_LOGPROB_GRAD:  # the general case stays TRL's
            return original(tile, tile_stride, targets, log_z, entropy, grad_logprobs, grad_entropy, vocab_start,
                            n_cols, logit_scale, softcap, inv_t, HAS_SOFTCAP, HAS_LOGPROB_GRAD, HAS_ENTROPY_GRAD,
                            BLOCK_SIZE)
        # d(log p_target)/d(tile_j) = g * logit_scale * inv_t * (1[j = target] - p_j), p_j = exp(z_j - log_z)
        scale = logit_scale * inv_t
        p = tile.float()  # (n, n_cols); the tile itself when it is fp32 (it is overwritten anyway)
        p.mul_(scale).sub_(log_z.unsqueeze(-1)).exp_()
        coef = grad_logprobs.float() * scale  # (n,)
        p.mul_(-coef.unsqueeze(-1))
        local = targets - vocab_start
        rows = ((local >= 0) & (local < n_cols)).nonzero().squeeze(-1)
        p[rows, local[rows]] += coef[rows]
        if p.data_ptr() != tile.data_ptr():
            tile.copy_(p)

    return backward_tile


@contextmanager
def lean_logprob_backward():
    """Within the block, TRL's chunked log-prob backward (off Triton devices) computes each tile's
    logits gradient in place (``_lean_backward_tile``): the same values, a third of the memory passes."""
    from trl.kernels import chunked_logprob

    original = chunked_logprob._backward_tile
    chunked_logprob._backward_tile = _lean_backward_tile(original)
    try:
        yield
    finally:
        chunked_logprob._backward_tile = original


# Tile shape for TRL's chunked log-prob kernel on CPU (tokens x vocabulary columns). Swept on 2048
# tokens x 49152 vocabulary, bf16, 2 cores (min of 3, ms): 4096x32768 1886-2035, 1024x4096 1210,
# 512x8192 1136, 2048x2048 1077, 512x2048 1121, 512x4096 990-1005.
CPU_LOGPROB_TOKENS, CPU_LOGPROB_VOCAB = 512, 4096


@contextmanager
def cpu_logprob_tiles(tokens=CPU_LOGPROB_TOKENS, vocab=CPU_LOGPROB_VOCAB):
    """Within the block, TRL's chunked log-prob kernel (``ChunkedLogProbFunction`` behind the fused LM
    head) works in (``tokens`` x ``vocab``) tiles instead of its GPU-sized (4096 x 32768). The same
    online log-sum-exp and fp32 gradient accumulation, in cache-sized pieces. For CPU runs only: on
    Triton devices the GPU tile is the right one."""
    from trl.kernels import chunked_logprob
    from trl.trainer import utils as trl_utils

    saved = chunked_logprob.TOKEN_CHUNK_SIZE, trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE
    chunked_logprob.TOKEN_CHUNK_SIZE, trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE = tokens, vocab
    try:
        yield
    finally:
        chunked_logprob.TOKEN_CHUNK_SIZE, trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE = saved


def no_lora_input_cast(model):
    """PEFT's ``disable_input_dtype_casting``: LoRA layers take their input in its own dtype. Only
    under autocast, which casts it for the adapter's matmul anyway; elsewhere a bf16 input would meet
    fp32 adapter weights and fail."""
    from peft.helpers import disable_input_dtype_casting

    return disable_input_dtype_casting(model)
