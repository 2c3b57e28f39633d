"""workbench.attention: single-token CPU attention is SDPA's attention, and generation through it is
token-identical."""

import pytest
import torch

from workbench import attention
from workbench.models import TINY_MODEL, load_model, resolve_precision


class _Module(torch.nn.Module):  # what transformers passes as ``module``: the attention layer
    def __init__(self, groups):
        super().__init__()
        self.num_key_value_groups = groups
        self.is_causal = True


@pytest.mark.parametrize("heads,kv_heads", [(9, 3), (4, 4)])
@pytest.mark.parametrize("mask_kind", [None, "bool", "float"])
def test_grouped_decode_attention_matches_transformers_sdpa(heads, kv_heads, mask_kind):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    g = torch.Generator().manual_seed(0)
    B, L, D = 5, 37, 16
    q = torch.randn(B, heads, 1, D, generator=g)
    k, v = torch.randn(B, kv_heads, L, D, generator=g), torch.randn(B, kv_heads, L, D, generator=g)
    keep = torch.ones(B, 1, 1, L, dtype=torch.bool)
    keep[1, ..., :11] = False  # left padding of different lengths
    keep[3, ..., :4] = False
    mask = {None: None, "bool": keep,
            "float": torch.zeros(B, 1, 1, L).masked_fill(~keep, torch.finfo(torch.float32).min)}[mask_kind]
    module = _Module(heads // kv_heads).eval()
    want, _ = sdpa_attention_forward(module, q, k, v, mask, scaling=0.3)
    got, none = attention.grouped_decode_attention(module, q, k, v, mask, scaling=0.3)
    assert none is None and got.shape == want.shape == (B, 1, heads, D)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    if mask_kind:  # the mask matters: without it row 1 would attend to its padding
        unmasked, _ = attention.grouped_decode_attention(module, q, k, v, None, scaling=0.3)
        assert not torch.allclose(unmasked[1], want[1], atol=1e-3)


def test_workbench_sdpa_falls_back_to_sdpa_beyond_one_cpu_token(monkeypatch):
    calls = []
    real = attention.grouped_decode_attention
    monkeypatch.setattr(attention, "grouped_decode_attention", lambda *a, **k: calls.append(1) or real(*a, **k))
    module = _Module(2).eval()
    q, k = torch.randn(2, 4, 3, 8), torch.randn(2, 2, 3, 8)
    attention.workbench_sdpa(module, q, k, k, None)  # a prefill block: transformers' SDPA
    assert calls == []
    attention.workbench_sdpa(module, q[:, :, :1], k, k, None)
    assert calls == [1]


@pytest.fixture(scope="module")
def tiny():
    model, tok = load_model(TINY_MODEL, resolve_precision("fp32", "none", device="cpu"))
    assert model.config.num_attention_heads != model.config.num_key_value_heads  # grouped-query attention
    return model.eval(), tok


def test_generation_through_decode_attention_is_token_identical(tiny, monkeypatch):
    model, tok = tiny
    calls = []
    real = attention.grouped_decode_attention
    monkeypatch.setattr(attention, "grouped_decode_attention", lambda *a, **k: calls.append(1) or real(*a, **k))
    rows = ["what is 2 + 3?", "a longer prompt, with more tokens in it than the first", "7 * 8 ="]
    enc = tok(rows, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    assert (enc["attention_mask"] == 0).any()  # padded rows: the mask must be honoured
    kw = dict(max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id, return_dict_in_generate=True,
              output_logits=True)
    with torch.no_grad():
        plain = model.generate(**enc, **kw)
        with attention.decode_attention(model):
            assert model.config._attn_implementation == attention.ATTENTION
            ours = model.generate(**enc, **kw)
    assert model.config._attn_implementation == "sdpa"  # restored
    assert calls  # the decode steps took the grouped path
    assert torch.equal(plain.sequences, ours.sequences)
    # Every step's logits, not only their argmax (a random tiny model's argmax moves little).
    torch.testing.assert_close(torch.stack(ours.logits), torch.stack(plain.logits), rtol=1e-5, atol=1e-5)


def test_decode_attention_leaves_other_implementations_alone(tiny):
    model, _ = tiny
    model.set_attn_implementation("eager")
    try:
        with attention.decode_attention(model):
            assert model.config._attn_implementation == "eager"
    finally:
        model.set_attn_implementation("sdpa")
