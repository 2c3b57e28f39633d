"""workbench.prepacked: CPU bf16 linears through oneDNN-prepacked weights give F.linear's output
exactly, and generation through them is token-identical."""

import pytest
import torch
import torch.nn.functional as F

from workbench import prepacked
from workbench.models import TINY_MODEL, load_model, resolve_precision

pytestmark = pytest.mark.skipif(not prepacked.available(), reason="this torch/CPU has no oneDNN bf16 prepacking")


@pytest.fixture
def packed_calls(monkeypatch):
    """The input shapes of the calls that reached oneDNN's packed linear."""
    calls = []
    real = prepacked.packed_linear

    def spy(x, packed, bias):
        calls.append(tuple(x.shape))
        return real(x, packed, bias)

    monkeypatch.setattr(prepacked, "packed_linear", spy)
    return calls


@pytest.mark.parametrize("shape", [(32, 1, 40), (7, 1, 40), (3, 9, 40), (64, 40)])
def test_prepacked_linear_is_bit_identical_to_f_linear(shape, packed_calls):
    g = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(40, 24).to(torch.bfloat16)
    x = torch.randn(*shape, generator=g).to(torch.bfloat16)
    with torch.no_grad():
        want = F.linear(x, layer.weight, layer.bias)
        with prepacked.prepacked_linears(layer, rows=32):
            got = layer(x)
    assert packed_calls == [shape]
    assert "forward" not in vars(layer)  # restored
    assert torch.equal(got, want)


def test_prepacked_linears_leave_gradients_to_f_linear():
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 4).to(torch.bfloat16)
    x = torch.randn(2, 8, dtype=torch.bfloat16)
    layer(x).square().sum().backward()
    want = layer.weight.grad.clone()
    layer.weight.grad = None
    with prepacked.prepacked_linears(layer):
        layer(x).square().sum().backward()  # the packed weight is no parameter: it must not be used here
    assert layer.weight.grad is not None and torch.equal(layer.weight.grad, want)
    fp32 = torch.nn.Linear(8, 4)
    with prepacked.prepacked_linears(fp32):
        assert "forward" not in vars(fp32)  # fp32 weights are not packed


def test_generation_through_prepacked_linears_is_token_identical(packed_calls):
    model, tok = load_model(TINY_MODEL, resolve_precision("fp32", "none", device="cpu"))
    model = model.to(torch.bfloat16).eval()
    rows = ["what is 2 + 3?", "a longer prompt, with more tokens in it than the first", "7 * 8 ="]
    enc = tok(rows, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    kw = dict(max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id, return_dict_in_generate=True,
              output_logits=True)
    with torch.no_grad():
        plain = model.generate(**enc, **kw)
        with prepacked.prepacked_linears(model, rows=3):
            ours = model.generate(**enc, **kw)
    assert (3, 1, model.config.hidden_size) in packed_calls  # decoding took the packed path
    assert "forward" not in vars(model.lm_head)
    assert torch.equal(plain.sequences, ours.sequences)
    assert torch.equal(torch.stack(ours.logits), torch.stack(plain.logits))


def test_generation_with_merged_lora_then_prepacked_is_token_identical(packed_calls):
    # The trainer's order: LoRA merged into fresh weights first, then those weights packed.
    from peft import get_peft_model

    from workbench.grpo.fast import merged_lora
    from workbench.models import lora_config

    torch.manual_seed(0)
    model, tok = load_model(TINY_MODEL, resolve_precision("fp32", "none", device="cpu"))
    model = get_peft_model(model.to(torch.bfloat16), lora_config(8, 16, 0.0, "all-linear"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)  # adapters that change the output
    model.eval()
    enc = tok(["what is 2 + 3?", "7 * 8 ="], return_tensors="pt", padding=True, padding_side="left",
              add_special_tokens=False)
    kw = dict(max_new_tokens=10, do_sample=False, pad_token_id=tok.pad_token_id, return_dict_in_generate=True,
              output_logits=True)
    with torch.no_grad():
        with merged_lora(model):
            plain = model.generate(**enc, **kw)
        with merged_lora(model), prepacked.prepacked_linears(model, rows=2):
            ours = model.generate(**enc, **kw)
        adapters = model.generate(**enc, **kw)  # afterwards: the adapters again, nothing left packed
    assert packed_calls
    assert not [m for m in model.modules() if "forward" in vars(m)]
    assert torch.equal(plain.sequences, ours.sequences)
    assert torch.equal(torch.stack(ours.logits), torch.stack(plain.logits))
    torch.testing.assert_close(torch.stack(adapters.logits), torch.stack(plain.logits), rtol=0.05, atol=0.05)
