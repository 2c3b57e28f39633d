"""The fast path is the same algorithm: identical loss and gradients to TRL's, identical generation."""

import warnings

import pytest
import torch
from datasets import Dataset

from workbench.config import WorkbenchConfig, to_grpo_config
from workbench.grpo.fast import merged_lora
from workbench.models import TINY_MODEL, load_model, lora_config, resolve_precision
from workbench.grpo.trainer import make_trainer_class


def _reward(completions, **kw):
    return [0.0] * len(completions)


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    torch.manual_seed(0)
    model, tok = load_model(TINY_MODEL, resolve_precision("fp32", "none", device="cpu"))
    cfg = WorkbenchConfig(model=TINY_MODEL, num_generations=4, per_device_train_batch_size=8, lora_dropout=0.0,
                          temperature=0.7)
    trainer = make_trainer_class()(
        model=model, reward_funcs=[_reward], processing_class=tok,
        args=to_grpo_config(cfg, tmp_path_factory.mktemp("out"), use_cpu=True),
        train_dataset=Dataset.from_list([{"prompt": "hi"}] * 8),
        peft_config=lora_config(8, 16, 0.0, "all-linear"),
    )
    trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); _compute_loss reads it
    with torch.no_grad():  # non-zero LoRA B, so the adapters matter and A receives gradient
        for name, p in trainer.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    return trainer


def _rollout_batch(pad_id, G=4, vocab=1000, seed=0):
    """Two prompts of different lengths (left-padded), G rollouts each, ragged completions."""
    g = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(5, vocab, (n,), generator=g) for n in (9, 6)]
    P, C = 9, 7
    prompt_ids = torch.full((2 * G, P), pad_id)
    prompt_mask = torch.zeros(2 * G, P, dtype=torch.long)
    completion_ids = torch.full((2 * G, C), pad_id)
    completion_mask = torch.zeros(2 * G, C, dtype=torch.long)
    for i in range(2 * G):
        p = prompts[i // G]
        prompt_ids[i, P - len(p):], prompt_mask[i, P - len(p):] = p, 1
        n = int(torch.randint(1, C + 1, (1,), generator=g))
        completion_ids[i, :n] = torch.randint(5, vocab, (n,), generator=g)
        completion_mask[i, :n] = 1
    return {
        "prompt_ids": prompt_ids, "prompt_mask": prompt_mask,
        "completion_ids": completion_ids, "completion_mask": completion_mask,
        "advantages": torch.randn(2 * G, generator=g),
        "num_items_in_batch": completion_mask.sum(),
    }


def _loss_and_grads(trainer, batch, shared_prefix):
    trainer.shared_prefix = shared_prefix
    trainer.model.train()
    trainer.model.zero_grad()
    loss = trainer._compute_loss(trainer.model, dict(batch))
    loss.backward()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    return loss.detach(), grads


def test_shared_prefix_gives_trl_loss_and_gradients(trainer):
    batch = _rollout_batch(trainer.processing_class.pad_token_id)
    loss_trl, grads_trl = _loss_and_grads(trainer, batch, shared_prefix=False)
    loss_ours, grads_ours = _loss_and_grads(trainer, batch, shared_prefix=True)
    assert torch.allclose(loss_ours, loss_trl, rtol=1e-5, atol=1e-7), (loss_ours, loss_trl)
    assert grads_trl and set(grads_ours) == set(grads_trl)
    assert any(g.abs().sum() > 0 for g in grads_trl.values())
    for name in grads_trl:
        assert torch.allclose(grads_ours[name], grads_trl[name], rtol=1e-4, atol=1e-7), name


def test_shared_prefix_logps_match_trl(trainer):
    b = _rollout_batch(trainer.processing_class.pad_token_id, seed=1)
    ids = torch.cat([b["prompt_ids"], b["completion_ids"]], 1)
    mask = torch.cat([b["prompt_mask"], b["completion_mask"]], 1)
    C = b["completion_ids"].size(1)
    with torch.no_grad():
        trainer.shared_prefix = False
        ref, ref_ent, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, C, compute_entropy=True)
        trainer.shared_prefix = True
        ours, ours_ent, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, C,
                                                                       compute_entropy=True)
    m = b["completion_mask"].bool()
    assert torch.allclose(ours[m], ref[m], atol=1e-5)
    assert torch.allclose(ours_ent[m], ref_ent[m], atol=1e-5)


def test_merged_lora_generates_like_the_adapters_and_restores_weights(trainer):
    model = trainer.model
    model.eval()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids = torch.randint(5, 1000, (2, 10))
    with torch.no_grad():
        with_adapters = model(input_ids=ids).logits
        with merged_lora(model):
            merged = model(input_ids=ids).logits
        without = model(input_ids=ids).logits
        with model.disable_adapter():
            base_only = model(input_ids=ids).logits
    assert not torch.allclose(base_only, with_adapters, atol=1e-4)  # the adapters matter here...
    assert torch.allclose(merged, with_adapters, atol=1e-4)  # ...and merging keeps their effect
    assert torch.equal(without, with_adapters)  # adapters back on, base weights bit-identical
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), n
    model.train()


def test_inverse_cdf_sampling_draws_the_same_distribution():
    from workbench.grpo.fast import inverse_cdf_sampling

    probs = torch.tensor([[0.0, 0.5, 0.0, 0.3, 0.2, 0.0]]).repeat(20000, 1)
    with inverse_cdf_sampling():
        draws = torch.multinomial(probs, 1).squeeze(1)
        assert torch.multinomial(probs[:2], 2).shape == (2, 2)  # other uses pass through
    assert torch.multinomial is not None and torch.multinomial.__module__ != "workbench.grpo.fast"
    freq = torch.bincount(draws, minlength=6).float() / len(draws)
    assert freq[[0, 2, 5]].sum() == 0  # zero-probability tokens are never drawn
    assert torch.allclose(freq, probs[0], atol=0.015)  # ~4 standard errors at n=20000


def test_shared_prefix_generation_is_token_identical(trainer):
    from workbench.grpo.fast import shared_prefix_generation

    tok, model = trainer.processing_class, trainer.model
    model.eval()
    rows = ["what is 2 + 3?"] * 3 + ["a longer prompt, with more tokens in it"] * 3
    enc = tok(rows, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    kw = dict(max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
    with torch.no_grad():
        plain = model.generate(**enc, **kw)
        with shared_prefix_generation(model):
            shared = model.generate(**enc, **kw)
    assert "generate" not in vars(model)  # the patch is gone
    assert torch.equal(plain, shared)
    model.train()


def test_fast_path_passes_the_kv_cache_under_the_installed_transformers_name(trainer, monkeypatch):
    # transformers 5.24 renamed past_key_values to cache and warns that the old name will go; the shared
    # prefix (loss and generation) must use whichever name the installed release takes.
    from transformers.utils import generic
    from workbench.grpo.fast import shared_prefix_generation

    warned = []
    monkeypatch.setattr(generic.logger, "warning_once", lambda msg, *a, **k: warned.append(msg))
    b = _rollout_batch(trainer.processing_class.pad_token_id, seed=2)
    ids = torch.cat([b["prompt_ids"], b["completion_ids"]], 1)
    mask = torch.cat([b["prompt_mask"], b["completion_mask"]], 1)
    trainer.shared_prefix = True
    trainer.model.eval()
    with torch.no_grad(), warnings.catch_warnings(record=True) as caught:  # generate's deprecate_kwarg warns here
        warnings.simplefilter("always")
        trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, b["completion_ids"].size(1))
        with shared_prefix_generation(trainer.model):
            trainer.model.generate(input_ids=b["prompt_ids"], attention_mask=b["prompt_mask"], max_new_tokens=3,
                                   do_sample=False, pad_token_id=trainer.processing_class.pad_token_id)
    trainer.model.train()
    warned += [str(w.message) for w in caught if "past_key_values" in str(w.message)]
    assert not [m for m in warned if "deprecated" in m or "past_key_values" in m], warned


def test_no_full_vocabulary_logits_for_every_position(trainer):
    # A 262k-token vocabulary (Gemma 3) makes (rows x positions x vocab) logits the largest tensor of
    # a step. The LM head module may only ever project one position per row (generation, evaluation);
    # the loss goes through TRL's fused, chunked head, which never calls the module.
    from workbench.analysis.evaluate import generate

    model, tok = trainer.model, trainer.processing_class
    shapes = []
    hook = model.get_output_embeddings().register_forward_hook(lambda m, i, out: shapes.append(tuple(out.shape)))
    try:
        generate(model, tok, ["What is 2 + 3?", "Hi"] * 3, 6, batch_size=6, progress=False)
        assert shapes and all(s[1] == 1 for s in shapes), shapes  # (rows, 1, vocab) per decoding step
        shapes.clear()
        b = _rollout_batch(tok.pad_token_id, seed=2)
        ids = torch.cat([b["prompt_ids"], b["completion_ids"]], 1)
        mask = torch.cat([b["prompt_mask"], b["completion_mask"]], 1)
        for shared in (True, False):
            trainer.shared_prefix = shared
            with torch.no_grad():
                trainer._get_per_token_logps_and_entropies(model, ids, mask, b["completion_ids"].size(1))
        assert shapes == []
    finally:
        hook.remove()
        trainer.shared_prefix = True


def test_cpu_bf16_loss_and_gradients_within_tolerance_of_fp32(trainer):
    # The CPU bf16 policy (workbench.models.cpu_bf16_is_fast): frozen base weights in bf16, autocast for
    # the matmuls, LoRA weights and their gradients in fp32. Measured here: per-token log-probs within
    # 0.05 nats, each LoRA gradient at cosine > 0.995 to fp32's and its norm within 3% (tiny model: 0.004 nats,
    # cosine 0.9999, 0.7%).
    model = trainer.model
    batch = _rollout_batch(trainer.processing_class.pad_token_id, seed=3)
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1)
    C, m = batch["completion_ids"].size(1), batch["completion_mask"].bool()

    def logps():  # (B, C)
        with torch.no_grad():
            return trainer._get_per_token_logps_and_entropies(model, ids, mask, C)[0]

    # A policy that differs from the one that sampled (ratio != 1), so the loss depends on the precision.
    batch["old_per_token_logps"] = logps() + 0.1 * torch.randn(m.shape, generator=torch.Generator().manual_seed(0))
    lp32, (loss32, g32) = logps(), _loss_and_grads(trainer, batch, shared_prefix=True)
    frozen = {p: p.data for p in model.parameters() if not p.requires_grad}
    try:
        for p in frozen:
            p.data = p.data.to(torch.bfloat16)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lp16, (loss16, g16) = logps(), _loss_and_grads(trainer, batch, shared_prefix=True)
    finally:
        for p, data in frozen.items():
            p.data = data
    assert all(g.dtype == torch.float32 for g in g16.values())
    assert (lp16.float() - lp32)[m].abs().max() < 0.05
    assert abs(loss16 - loss32) < 0.02 * abs(loss32) + 1e-3, (loss16, loss32)
    for name in g32:
        cos = torch.nn.functional.cosine_similarity(g16[name].flatten(), g32[name].flatten(), dim=0)
        assert cos > 0.995 and abs(g16[name].norm() / g32[name].norm() - 1) < 0.03, (name, cos)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_lean_logprob_backward_gives_trls_gradient(dtype):
    from trl.kernels.chunked_logprob import ChunkedLogProbFunction

    from workbench.grpo.fast import lean_logprob_backward

    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(40, 16, generator=g)
    weight = torch.randn(300, 16, generator=g)
    targets = torch.randint(0, 300, (40,), generator=g)
    weights = torch.randn(40, generator=g)  # a per-token loss weight, like GRPO's advantages

    def grad(chunk):  # vocabulary tiles of ``chunk`` columns: targets fall in every tile
        h = hidden.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            logps = ChunkedLogProbFunction.apply(h, weight, None, targets, 0.7, chunk)[0]
        (logps * weights).sum().backward()
        return logps.detach(), h.grad

    for chunk in (300, 64):
        ref_logps, ref = grad(chunk)
        with lean_logprob_backward():
            logps, ours = grad(chunk)
        assert torch.equal(logps, ref_logps)
        tol = 1e-5 if dtype == torch.float32 else 1e-2
        assert ref.abs().max() > 0.1 and torch.allclose(ours, ref, rtol=tol, atol=tol), (ours - ref).abs().max()


def test_no_lora_input_cast_under_autocast_gives_the_same_gradients(trainer):
    from workbench.grpo.fast import no_lora_input_cast

    model = trainer.model
    batch = _rollout_batch(trainer.processing_class.pad_token_id, seed=4)
    frozen = {p: p.data for p in model.parameters() if not p.requires_grad}
    try:
        for p in frozen:  # the CPU bf16 policy: bf16 base weights, fp32 LoRA, autocast
            p.data = p.data.to(torch.bfloat16)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss_cast, g_cast = _loss_and_grads(trainer, batch, shared_prefix=True)
            with no_lora_input_cast(model):
                layers = [m for m in model.modules() if hasattr(m, "cast_input_dtype_enabled")]
                assert layers and not any(m.cast_input_dtype_enabled for m in layers)
                loss_plain, g_plain = _loss_and_grads(trainer, batch, shared_prefix=True)
    finally:
        for p, data in frozen.items():
            p.data = data
    assert torch.equal(loss_plain, loss_cast)
    for name in g_cast:
        assert torch.equal(g_plain[name], g_cast[name]), name


def test_cpu_logprob_tiles_give_the_same_loss_and_gradients_in_small_tiles(trainer):
    from trl.kernels import chunked_logprob

    from workbench.grpo.fast import cpu_logprob_tiles

    batch = _rollout_batch(trainer.processing_class.pad_token_id, seed=5)
    loss_ref, g_ref = _loss_and_grads(trainer, batch, shared_prefix=True)
    shapes, fold = [], chunked_logprob._forward_tile
    chunked_logprob._forward_tile = lambda tile, *a, **k: shapes.append(tuple(tile.shape)) or fold(tile, *a, **k)
    try:
        with cpu_logprob_tiles(tokens=8, vocab=96):  # the tiny model's vocabulary spans several tiles
            loss, g = _loss_and_grads(trainer, batch, shared_prefix=True)
    finally:
        chunked_logprob._forward_tile = fold
    assert shapes and max(s[0] for s in shapes) <= 8 and max(s[1] for s in shapes) <= 96, shapes[:3]
    assert len(shapes) > 1
    assert chunked_logprob.TOKEN_CHUNK_SIZE == 4096  # restored
    torch.testing.assert_close(loss, loss_ref, rtol=1e-5, atol=1e-6)
    for name in g_ref:
        torch.testing.assert_close(g[name], g_ref[name], rtol=1e-4, atol=1e-6)
