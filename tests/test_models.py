"""Model resolution and the precision policy; the embedded model loads from its GGUF and generates."""

import pytest

from workbench.errors import WorkbenchError
from workbench.models import (EMBEDDED_MODEL, TINY_MODEL, embedded_model_dir, load_model, resolve_precision,
                              workbench_home)


def test_policy_cpu_is_fp32_without_quantization():
    p = resolve_precision(device="cpu")
    assert (p.dtype, p.quantization) == ("float32", "none")


def test_policy_cuda_is_qlora_bf16():
    p = resolve_precision(device="cuda")
    assert (p.dtype, p.quantization) == ("bfloat16", "4bit")


def test_policy_overrides():
    p = resolve_precision("bf16", "4bit", device="cpu")
    assert (p.dtype, p.quantization) == ("bfloat16", "4bit")
    assert resolve_precision("fp32", "none", device="cuda").quantization == "none"


@pytest.mark.parametrize("kw", [{"precision": "int8"}, {"quantization": "2bit"}])
def test_policy_bad_names(kw):
    with pytest.raises(WorkbenchError, match="valid choices"):
        resolve_precision(device="cpu", **kw)


def test_unknown_model_name():
    with pytest.raises(WorkbenchError, match="valid choices.*smollm2-135m-instruct"):
        load_model("no-such-model", resolve_precision(device="cpu"))


def test_workbench_home_moves_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    assert workbench_home() == tmp_path


def test_tiny_model_is_small_and_uses_embedded_tokenizer():
    model, tok = load_model(TINY_MODEL, resolve_precision(device="cpu"))
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    assert model.config.vocab_size == len(tok)
    assert tok.chat_template  # SmolLM2's, so chat templates are exercised in tests


@pytest.mark.slow
def test_embedded_model_loads_from_gguf_cache_and_generates():
    import torch

    model, tok = load_model(EMBEDDED_MODEL, resolve_precision(device="cpu"))
    assert (embedded_model_dir() / "model.safetensors").exists()  # converted once, cached
    assert model.dtype == torch.float32
    assert sum(p.numel() for p in model.parameters()) > 100_000_000
    text = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                   tokenize=False, add_generation_prompt=True)
    enc = tok(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=12, do_sample=False)
    reply = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in reply
