"""``workbench bench``: TRL's GRPOTrainer as it comes vs the workbench's training path, side by side.

In one process, on the same model weights, task, prompts, seeds and GRPO settings, it alternates one
step of (a) ``GRPOTrainer`` with TRL's defaults (gradient checkpointing on, generation through the
LoRA adapters, full-sequence policy forward), (b) ``GRPOTrainer`` tuned with its own options
(``TRL_TUNED``) and (c) the workbench's trainer (see workbench/grpo/fast.py), after a warm-up step
of each. Per path and setting it prints the step time
(median, min, max), where the time goes (generation / reward / forward-backward / optimizer /
other), generated and trained tokens per second, peak memory, and the step's compute floor: its
matmul FLOPs over this machine's matmul rate, which the benchmark measures itself.

    workbench bench                                   # demo settings, then longer completions, more rollouts
    workbench bench --steps 5 --settings demo --output bench.json
    workbench bench --model random-0.5b --settings demo,long   # on a GPU: bf16 + QLoRA by the CUDA policy

The floor counts 2 FLOPs per parameter per token for a forward pass and 2 more for the backward
(input gradients only: the base weights are frozen; LoRA's own FLOPs are <1% and left out), over
the step's real (unpadded) tokens: generation = prompt prefill + one forward per new token;
training = forward + backward over prompt + completion, with the LM head over completion tokens.
``floor_s`` counts every row's prompt, as TRL's step does; ``floor_shared_prefix_s`` counts each
distinct prompt once in training, the work the workbench's path actually needs.

The compute floor ignores memory traffic, and batched decoding cannot run faster than reading every
weight once per decoded token (SmolLM2-135M in bf16: 270 MB a token, against 8.6 GFLOP for 32 rows).
``floor_roofline_s`` is the compute floor with the decode phase's matmul time replaced by the larger
of it and that weight read (decode steps x weight bytes / the machine's measured read rate; the
KV-cache reads are left out, so it is still a lower bound). Roofline model: Williams, Waterman and
Patterson, "Roofline", CACM 2009.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from contextlib import contextmanager

SETTINGS = {
    # name: (prompts per step, rollouts per prompt, max new tokens)
    "demo": (4, 8, 24),
    "long": (4, 8, 64),
    "wide": (4, 16, 24),
    "reasoning": (4, 8, 256),  # R1's regime: long completions (issue 16)
}
# Settings whose rollouts are all forced to their full length (``min_new_tokens``), whatever the
# model: a trained model's lengths vary from run to run, so only a fixed length compares runs.
FULL_LENGTH = frozenset({"reasoning"})
SPLIT = ("generation", "reward", "forward_backward", "optimizer", "other")
# The paths, in the order each step runs them: TRL as it comes, TRL tuned, the workbench.
PATHS = ("vanilla", "trl_tuned", "workbench")
# The second anchor: TRL configured as well as it can be without vLLM, with its own options only.
# Gradient checkpointing off (it recomputes the forward to save memory), and, where the activations
# would not fit, the loss split into micro-batches by TRL's gradient accumulation, as the workbench's
# path does (``fit_loss_in_memory``; without it `reasoning` was killed for memory at 24.3 GB). Left
# at TRL's default, measured with transformers' `generate` alone on the embedded model (2026-12-01,
# CPU, bf16, 128 tokens x 32 rows): ``cache_implementation="static"`` decoded at 74.5 ms/token against
# 76.8 with the dynamic cache, and with a compiled forward also 74.6 (after 43 s of compiling): not
# worth it here. Reading the weights takes ~10 ms of those ~75 ms a token (270 MB at the measured
# 28 GB/s; see ``floor_roofline_s``); the rest is per-op work over 30 layers and the logits.
# ``use_transformers_continuous_batching`` casts the whole model, LoRA included, to bf16 and returns
# no log-probs. Measured on `long` (2026-12-01, 2-core AMD EPYC, bf16, one step after a warm-up):
# 31.41 s a step (generation 20.68, forward-backward 10.28; peak 13.3 GB) against 29.15 s without
# it in the full bench (generation 10.01, forward-backward 18.74): its CPU generation is twice as
# slow, and the cheaper all-bf16 backward does not make up for it. Not in the anchor.
TRL_TUNED = dict(gradient_checkpointing=False)


def matmul_flops_per_s(device: str, dtype, n: int = 2048, reps: int = 5) -> float:
    """Best-of-``reps`` rate of an n x n x n matmul: the machine's practical matmul ceiling."""
    import torch

    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(reps + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def read_bytes_per_s(device: str, mb: int = 256, reps: int = 5) -> float:
    """Best-of-``reps`` rate of reading an ``mb`` MB fp32 tensor once (a sum): the machine's practical
    memory read rate, in bytes/s, for the threads torch uses. Far larger than any cache."""
    import torch

    x = torch.ones(mb * 2 ** 20 // 4, device=device)
    best = float("inf")
    for _ in range(reps + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        x.sum()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return x.numel() * 4 / best


class MatmulRate:
    """The machine's matmul rate as the best of trials spread through a benchmark run (``measure``
    before and after each setting): one trial taken while something else held the cores read
    102 GFLOP/s on a machine that does 300, and made a floor the step then "beat". ``best``: FLOP/s.
    Each ``measure`` also takes a memory-read trial (``read_bytes_per_s``); ``best_read``: bytes/s."""

    def __init__(self, device: str, dtype):
        self.device, self.dtype, self.trials, self.read_trials = device, dtype, [], []

    def measure(self) -> float:
        self.trials.append(matmul_flops_per_s(self.device, self.dtype))
        self.read_trials.append(read_bytes_per_s(self.device))
        return self.trials[-1]

    @property
    def best(self) -> float:
        return max(self.trials)

    @property
    def best_read(self) -> float:
        return max(self.read_trials)


def add_floors(result: dict, rate: float, read_rate: float | None = None) -> dict:
    """``result`` (``run_setting``'s) with its compute floors at ``rate`` FLOP/s: ``floor_s`` for the
    least work the step needs (each distinct prompt once, ``floor_shared_prefix_flops``) and
    ``floor_every_row_s`` (every row's prompt); each path's median over ``floor_s``; and
    ``measurement_fault``, True when a path ran below its floor (a ratio under 1 cannot happen: the
    rate was measured low). With ``read_rate`` (bytes/s) and the result's ``weight_bytes``,
    ``decode_steps`` and ``decode_flops``, also ``floor_roofline_s`` (see the module docstring:
    decoding reads every weight once a token) and each path's median over it."""
    result["floor_s"] = result["floor_shared_prefix_flops"] / rate
    result["floor_every_row_s"] = result["floor_flops"] / rate
    paths = [path for path in PATHS if path in result]
    for path in paths:
        result[f"{path}_over_floor"] = result[path]["median_s"] / result["floor_s"]
    if read_rate and result.get("weight_bytes"):
        decode_s = result["decode_flops"] / rate
        result["weight_read_s"] = result["decode_steps"] * result["weight_bytes"] / read_rate
        result["floor_roofline_s"] = result["floor_s"] - decode_s + max(decode_s, result["weight_read_s"])
        for path in paths:
            result[f"{path}_over_roofline"] = result[path]["median_s"] / result["floor_roofline_s"]
    result["measurement_fault"] = min(result[f"{path}_over_floor"] for path in paths) < 1
    return result


def weight_bytes(model) -> int:
    """Bytes of the model's weights as stored (4-bit packed as packed; a tied head once; LoRA out)."""
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    return sum(p.numel() * p.element_size() for n, p in lm.named_parameters() if "lora_" not in n)


def param_counts(model) -> tuple[int, int]:
    """(backbone parameters excluding the embedding table, LM-head parameters)."""
    lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    emb = lm.get_input_embeddings()
    head = lm.get_output_embeddings()
    n_head = head.weight.numel() if hasattr(head, "weight") else 0
    total = sum(p.numel() for n, p in lm.named_parameters() if "lora_" not in n)
    # 4-bit weights are stored packed (2 per byte); count them by their logical shape.
    total += sum(p.numel() for n, p in lm.named_parameters() if "lora_" not in n and p.dtype.itemsize == 1)
    body = total - emb.weight.numel() - (0 if head.weight is emb.weight else n_head)
    return body, n_head


def step_flops(body: int, head: int, prompt_lens: list[int], completion_lens: list[int], group: int = 1) -> float:
    """Matmul FLOPs of one GRPO step. ``group`` > 1 counts each prompt once in training (rows arrive
    as ``group`` consecutive copies of a prompt: TRL's sampler order)."""
    prompts = sum(prompt_lens)
    completions = sum(completion_lens)
    generation = 2 * body * (prompts + completions) + 2 * head * completions
    training = 4 * body * (sum(prompt_lens[::group]) + completions) + 4 * head * completions
    return generation + training


class PeakMemory:
    """Peak resident memory (CPU, sampled) or peak allocated GPU memory while the block runs."""

    def __init__(self, device: str):
        self.device, self.peak = device, 0

    @contextmanager
    def measure(self):
        import torch

        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            yield
            self.peak = torch.cuda.max_memory_allocated()
            return
        import psutil

        proc, stop, peak = psutil.Process(), threading.Event(), [0]

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], proc.memory_info().rss)
                stop.wait(0.05)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.peak = peak[0]


def _timed_class(base):
    """Subclass of a GRPOTrainer class that times the phases of each step (and changes nothing else)."""
    import torch

    class Timed(base):
        def _reset_timer(self):
            self.t = dict.fromkeys(("generation", "reward", "prepare", "train_step", "optimizer"), 0.0)
            self.tokens = {"prompt": [], "completion": []}

        def _generate(self, prompts):
            t = time.perf_counter()
            out = super()._generate(prompts)
            self.t["generation"] += time.perf_counter() - t
            self.tokens["prompt"] += [len(p) for p in out[0]]
            self.tokens["completion"] += [len(c) for c in out[1]]
            return out

        def _calculate_rewards(self, *args, **kwargs):
            t = time.perf_counter()
            out = super()._calculate_rewards(*args, **kwargs)
            self.t["reward"] += time.perf_counter() - t
            return out

        def _prepare_inputs(self, *args, **kwargs):
            t = time.perf_counter()
            out = super()._prepare_inputs(*args, **kwargs)
            self.t["prepare"] += time.perf_counter() - t
            return out

        def training_step(self, *args, **kwargs):
            t = time.perf_counter()
            out = super().training_step(*args, **kwargs)
            if self.args.use_cpu is False and torch.cuda.is_available():
                torch.cuda.synchronize()
            self.t["train_step"] += time.perf_counter() - t
            return out

        def create_optimizer(self, *args, **kwargs):
            opt = super().create_optimizer(*args, **kwargs)
            inner = opt
            while hasattr(inner, "optimizer"):  # accelerate wraps the torch optimizer after the first train()
                inner = inner.optimizer
            if not getattr(inner, "_wb_timed", False):
                start = {}
                inner.register_step_pre_hook(lambda *a: start.__setitem__("t", time.perf_counter()))
                inner.register_step_post_hook(
                    lambda *a: self.t.__setitem__("optimizer", self.t["optimizer"] + time.perf_counter() - start["t"]))
                inner._wb_timed = True
            return opt

    return Timed


def _build_trainer(path: str, model, tokenizer, dataset, reward, settings, precision, tmp, lora, fixed_length):
    from trl import GRPOConfig, GRPOTrainer

    from workbench.config import WorkbenchConfig, to_grpo_config
    from workbench.grpo.trainer import fit_loss_in_memory, make_trainer_class

    prompts, G, max_new = settings
    cfg = WorkbenchConfig(model="tiny-random", num_generations=G, per_device_train_batch_size=prompts * G,
                          max_completion_length=max_new, learning_rate=2e-4, seed=0)
    # Without checkpointing (TRL tuned, the workbench), the loss runs in as many micro-batches as memory
    # needs (TRL's gradient accumulation: the same generation batch and optimizer step); as it comes, in one.
    micro = {} if path == "vanilla" else fit_loss_in_memory(cfg, precision, model, tokenizer, dataset)
    shared = dict(per_device_train_batch_size=prompts * G, num_generations=G, max_completion_length=max_new,
                  max_steps=1, learning_rate=2e-4, temperature=1.0, logging_steps=1, report_to="none",
                  save_strategy="no", disable_tqdm=True, seed=0, use_cpu=precision.device == "cpu",
                  bf16=precision.dtype == "bfloat16")
    if fixed_length:  # random weights rarely stop: force every rollout to the same length
        shared["generation_kwargs"] = {"min_new_tokens": max_new}
    if path in ("vanilla", "trl_tuned"):
        # TRL as it comes: its GRPOConfig defaults (gradient checkpointing on, ...) for everything else;
        # tuned: the same with TRL_TUNED's options.
        args = GRPOConfig(output_dir=os.path.join(tmp, path),
                          **{**shared, **micro, **(TRL_TUNED if path == "trl_tuned" else {})})
        return _timed_class(GRPOTrainer)(model=model, reward_funcs=[reward], args=args, train_dataset=dataset,
                                         processing_class=tokenizer, peft_config=lora)
    args = to_grpo_config(cfg, os.path.join(tmp, "workbench"), precision=precision, max_steps=1, disable_tqdm=True,
                          generation_kwargs=shared.get("generation_kwargs"), **micro)
    trainer = _timed_class(make_trainer_class())(model=model, reward_funcs=[reward], args=args,
                                                  train_dataset=dataset, processing_class=tokenizer,
                                                  peft_config=lora)
    trainer.shared_prefix = cfg.shared_prefix
    trainer.fast_generation = cfg.fast_generation
    return trainer


def _quiet(trainer):
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    for cb in (PrinterCallback, ProgressCallback):  # the benchmark prints its own lines
        trainer.remove_callback(cb)
    return trainer


def _one_step(trainer, seed: int, memory: PeakMemory) -> dict:
    from transformers import set_seed

    trainer._reset_timer()
    set_seed(seed)  # both paths draw the same sampling randomness at the same step
    with memory.measure():
        t = time.perf_counter()
        trainer.train()
        total = time.perf_counter() - t
    tt = trainer.t
    fwd_bwd = tt["train_step"] - tt["prepare"]
    other_prepare = tt["prepare"] - tt["generation"] - tt["reward"]
    # The HF train() call also sets up its loop; that setup is "other" (it is identical for both paths).
    split = {"generation": tt["generation"], "reward": tt["reward"], "forward_backward": fwd_bwd,
             "optimizer": tt["optimizer"]}
    split["other"] = total - sum(split.values())
    return {"seconds": total, "split": split, "scoring_other": other_prepare,
            "prompt_tokens": trainer.tokens["prompt"], "completion_tokens": trainer.tokens["completion"],
            "peak_memory_bytes": memory.peak}


def _summary(steps: list[dict]) -> dict:
    secs = [s["seconds"] for s in steps]
    gen_tok = sum(sum(s["completion_tokens"]) for s in steps)
    gen_s = sum(s["split"]["generation"] for s in steps)
    train_tok = sum(sum(s["prompt_tokens"]) + sum(s["completion_tokens"]) for s in steps)
    fb_s = sum(s["split"]["forward_backward"] for s in steps)
    return {
        "median_s": statistics.median(secs), "min_s": min(secs), "max_s": max(secs),
        "split_median_s": {k: statistics.median(s["split"][k] for s in steps) for k in SPLIT},
        "generated_tokens_per_s": gen_tok / gen_s if gen_s else None,
        "trained_tokens_per_s": train_tok / fb_s if fb_s else None,
        "peak_memory_mb": max(s["peak_memory_bytes"] for s in steps) / 2 ** 20,
        "steps": steps,
    }


def run_setting(name, settings, model_name, precision, steps, warmup, fixed_length, task_name="chain_sum",
                progress=print, paths=PATHS):
    """One setting, each of ``paths`` (``PATHS``, the workbench's always included), ``steps`` measured
    steps each: step times and their split, and the
    step's matmul FLOPs (``floor_flops``, ``floor_shared_prefix_flops``; ``add_floors`` turns them
    into seconds at the run's best matmul rate)."""
    import tempfile

    import torch

    from workbench.config import WorkbenchConfig
    from workbench.models import load_model, lora_config
    from workbench.rewards import build_rewards
    from workbench.tasks import get_task
    from workbench.templates import has_chat_template, resolve_template
    from workbench.grpo.trainer import build_dataset

    prompts, G, max_new = settings
    fixed_length = fixed_length or name in FULL_LENGTH
    paths = tuple(path for path in PATHS if path in paths or path == "workbench")
    task = get_task(task_name)
    models = {}
    for path in paths:
        models[path] = load_model(model_name, precision, seed=0)  # identical weights for both paths
    tokenizer = models["workbench"][1]
    # The demo's template for a chat model; R1-Zero's for a base model (gemma3-270m), which has no chat template.
    template = resolve_template("chat_concise" if has_chat_template(tokenizer) else "r1_zero", tokenizer)
    dataset = build_dataset(task, prompts, template, tokenizer)  # the rows training uses
    (reward,), _ = build_rewards({"accuracy": 1.0}, task, max_new)
    defaults = WorkbenchConfig()  # LoRA as the demo trains it
    lora = lora_config(defaults.lora_r, defaults.lora_alpha, defaults.lora_dropout, defaults.lora_target_modules)
    tmp = tempfile.mkdtemp(prefix="wb-bench-")
    trainers = {}
    for path, (model, tok) in models.items():
        if precision.quantization == "4bit":
            from workbench.models import prepare_for_training

            model = prepare_for_training(model, precision, gradient_checkpointing=path == "vanilla")
        trainers[path] = _quiet(_build_trainer(path, model, tok, dataset, reward, settings, precision, tmp, lora,
                                               fixed_length))
    memory = PeakMemory(precision.device)
    records = {path: [] for path in paths}
    for i in range(warmup + steps):
        for path in paths:
            rec = _one_step(trainers[path], seed=1000 + i, memory=memory)
            if i >= warmup:
                records[path].append(rec)
            progress(f"  [{name}] step {i + 1 - warmup if i >= warmup else 'warm-up'} {path:9s} "
                     f"{rec['seconds']:6.2f} s  (" + ", ".join(f"{k} {v:.2f}" for k, v in rec["split"].items()) + ")")
    body, head = param_counts(trainers["workbench"].model)
    floors, floors_shared, decode_flops, decode_steps = [], [], [], []
    for rec in [rec for path in paths for rec in records[path]]:
        floors.append(step_flops(body, head, rec["prompt_tokens"], rec["completion_tokens"]))
        floors_shared.append(step_flops(body, head, rec["prompt_tokens"], rec["completion_tokens"], group=G))
        decode_flops.append(2 * (body + head) * sum(rec["completion_tokens"]))
        decode_steps.append(max(rec["completion_tokens"]))  # decoding runs until its longest row ends
    result = {
        "name": name, "model": model_name, "prompts_per_step": prompts, "num_generations": G,
        "max_completion_length": max_new, "fixed_length": fixed_length, "device": precision.device, "dtype": precision.dtype,
        "quantization": precision.quantization,
        **{path: _summary(records[path]) for path in paths},
        "floor_flops": statistics.median(floors), "floor_shared_prefix_flops": statistics.median(floors_shared),
        "backbone_params": body, "head_params": head, "trl_tuned_options": dict(TRL_TUNED),
        "decode_flops": statistics.median(decode_flops), "decode_steps": statistics.median(decode_steps),
        "weight_bytes": weight_bytes(trainers["workbench"].model),
        "loss_micro_batches": {path: trainers[path].args.gradient_accumulation_steps for path in paths},
    }
    for anchor, key in (("vanilla", "speedup"), ("trl_tuned", "speedup_vs_tuned")):
        if anchor in result:
            result[key] = result[anchor]["median_s"] / result["workbench"]["median_s"]
    del trainers, models
    if precision.device == "cuda":
        torch.cuda.empty_cache()
    return result


def print_table(results: list[dict], rate: MatmulRate) -> None:
    print(f"\nmatmul rate: best of {len(rate.trials)} trials {rate.best / 1e9:.1f} GFLOP/s (trials: "
          + ", ".join(f"{t / 1e9:.0f}" for t in rate.trials) + ")")
    if rate.read_trials:
        print(f"memory read rate: best of {len(rate.read_trials)} trials {rate.best_read / 1e9:.1f} GB/s (trials: "
              + ", ".join(f"{t / 1e9:.1f}" for t in rate.read_trials) + ")")
    for r in results:
        print(f"\n== {r['name']}: {r['model']} ({r['device']}, {r['dtype']}, quant {r['quantization']}), "
              f"{r['prompts_per_step']} prompts x {r['num_generations']} rollouts, <= {r['max_completion_length']} "
              f"new tokens")
        print(f"{'path':10s} {'median s':>9s} {'min':>7s} {'max':>7s} " + " ".join(f"{k[:8]:>8s}" for k in SPLIT)
              + f" {'gen tok/s':>9s} {'trn tok/s':>9s} {'peak MB':>8s}")
        for path in [path for path in PATHS if path in r]:
            s = r[path]
            print(f"{path:10s} {s['median_s']:9.2f} {s['min_s']:7.2f} {s['max_s']:7.2f} "
                  + " ".join(f"{s['split_median_s'][k]:8.2f}" for k in SPLIT)
                  + f" {s['generated_tokens_per_s'] or 0:9.1f} {s['trained_tokens_per_s'] or 0:9.1f}"
                  + f" {s['peak_memory_mb']:8.0f}")
        speedups = ", ".join(f"{r[key]:.2f}x over {label}" for key, label in
                             (("speedup", "TRL as it comes"), ("speedup_vs_tuned", "TRL tuned")) if key in r)
        print(f"floor {r['floor_s']:.2f} s (each prompt once; {r['floor_every_row_s']:.2f} s with every row's "
              f"prompt)" + (f" | speedup: {speedups}" if speedups else "")
              + " | / floor: " + ", ".join(f"{path} {r[f'{path}_over_floor']:.2f}" for path in PATHS if path in r))
        if "floor_roofline_s" in r:
            print(f"roofline floor {r['floor_roofline_s']:.2f} s (decoding reads {r['weight_bytes'] / 1e6:.0f} MB of "
                  f"weights per token: {r['weight_read_s']:.2f} s at {rate.best_read / 1e9:.1f} GB/s) | / roofline: "
                  + ", ".join(f"{path} {r[f'{path}_over_roofline']:.2f}" for path in PATHS if path in r))
        split = {path: k for path, k in r.get("loss_micro_batches", {}).items() if k > 1}
        if split:
            print("loss in micro-batches (to fit memory): " + ", ".join(f"{path} {k}" for path, k in split.items()))
        if r["measurement_fault"]:
            print("MEASUREMENT FAULT: a path ran faster than its floor, so the matmul rate was measured low "
                  "(something else was running?); rerun on a quiet machine")
