"""GRPO training: config -> task -> model -> rewards -> trainer -> evaluate -> train -> evaluate -> save.

Run it as ``workbench train --config configs/demo.yaml`` or ``workbench.train(WorkbenchConfig(...))``.
The trainer is TRL's GRPOTrainer; the subclass here only *observes*: it records every rollout with
its rewards and advantage into the run directory, and times generation. The loss is TRL's.
"""

from __future__ import annotations

import json
import os
import sys
import time

from workbench.config import WorkbenchConfig, to_grpo_config
from workbench.distributed import world_size
from workbench.lifecycle import Stage, TrainResult, make_runlog_callback
from workbench.runlog import RunWriter


def build_dataset(task, n_prompts: int, template: str, tokenizer):
    """The GRPO train set: ``n_prompts`` train-split items of ``task`` as a ``datasets.Dataset`` with
    columns prompt (rendered with ``template``), prompt_id, question, answer and metadata (JSON)."""
    from datasets import Dataset

    from workbench.templates import render_prompt

    items = task.items("train", n_prompts)
    return Dataset.from_list([{
        "prompt": render_prompt(template, it["question"], tokenizer),
        "prompt_id": it["id"],
        "question": it["question"],
        "answer": it["answer"],
        "metadata": json.dumps(it["metadata"]),
    } for it in items])


def stop_generation_kwargs(stop: tuple[str, ...], tokenizer, use_vllm: bool = False) -> dict | None:
    """TRL's ``generation_kwargs`` that end rollouts at ``stop`` (``workbench.templates.stop_strings``).

    transformers' ``StopStringCriteria`` ends a row at a stop string and fills the rest of it with
    the pad id, made EOS here: TRL's rollout mask ends at the first EOS, so the rollout keeps the
    stop string and one EOS after it, and TRL counts it as ended, not clipped. That EOS was not
    sampled; it enters the loss like a sampled EOS, with the rollout's advantage.

    With ``use_vllm`` the same stops in vLLM's ``SamplingParams`` terms: ``stop`` and
    ``include_stop_str_in_output`` (the text keeps the stop string, as above); vLLM adds no EOS, so
    ``end_stopped_rows`` appends it. None: no stops."""
    if not stop:
        return None
    if use_vllm:
        return {"stop": list(stop), "include_stop_str_in_output": True}
    return {"stop_strings": list(stop), "pad_token_id": tokenizer.eos_token_id}


def end_stopped_rows(completion_ids: list[list[int]], logprobs: list[list[float]] | None, stop, tokenizer,
                     budget: int) -> tuple[list[list[int]], list[list[float]] | None]:
    """vLLM's rollouts, each row that ended at a stop string given one EOS after it, as the
    transformers path gives (``stop_generation_kwargs``), so TRL counts it as ended, not clipped
    (and ``mask_truncated_completions`` keeps it). A row already ending in EOS, not ending with a
    stop string, or at the ``budget`` (tokens) is left alone. The appended EOS's sampling log-prob
    is NaN, TRL's value for a token vLLM did not score (its importance ratio is then 1).

    ``completion_ids``: one list of token ids per rollout; ``logprobs``: the same shape, or None."""
    eos = tokenizer.eos_token_id
    ids_out, logps_out = [], [] if logprobs is not None else None
    for i, ids in enumerate(completion_ids):
        ids = list(ids)
        row_logps = list(logprobs[i]) if logprobs is not None else None
        text = tokenizer.decode(ids, skip_special_tokens=True)
        if ids and ids[-1] != eos and len(ids) < budget and any(text.rstrip().endswith(s) for s in stop):
            ids.append(eos)
            if row_logps is not None:
                row_logps.append(float("nan"))
        ids_out.append(ids)
        if logps_out is not None:
            logps_out.append(row_logps)
    return ids_out, logps_out


def check_vllm(cfg: WorkbenchConfig) -> None:
    """``use_vllm`` without vLLM installed, or without a GPU: one line (ConfigError) before a run directory exists."""
    import importlib.util

    from workbench.config import ConfigError

    if not cfg.use_vllm:
        return
    if importlib.util.find_spec("vllm") is None:
        raise ConfigError("use_vllm: true needs vLLM: pip install -e '.[vllm]' on a machine with a GPU "
                          "(or use_vllm: false to generate with transformers)")
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("use_vllm: true needs a GPU (vLLM does not run on these CPUs); use_vllm: false generates "
                          "with transformers")


def make_trainer_class():
    """TRL's GRPOTrainer subclassed to log rollouts and take the fast step (workbench.grpo.fast).

    Defined lazily so importing workbench.grpo.trainer does not import TRL."""
    from contextlib import ExitStack

    import torch
    from trl import GRPOTrainer

    from workbench.analysis import traces
    from workbench.analysis.evaluate import stopping_generation
    from workbench.attention import decode_attention
    from workbench.prepacked import prepacked_linears
    from workbench.grpo.fast import (cpu_logprob_tiles, inverse_cdf_sampling, lean_logprob_backward, merged_lora,
                                      no_lora_input_cast, shared_prefix_generation, shared_prefix_logps)

    class WorkbenchGRPOTrainer(GRPOTrainer):
        """GRPOTrainer that logs each rollout (with per-reward values and advantage) to the run log."""

        run_writer: RunWriter | None = None
        shared_prefix: bool = True  # see workbench.grpo.fast
        fast_generation: bool = True

        def _generate(self, prompts):
            start = time.perf_counter()
            fast = self.fast_generation and not self.use_vllm
            with ExitStack() as stack:
                if not self.use_vllm and (self.args.generation_kwargs or {}).get("stop_strings"):
                    stack.enter_context(stopping_generation(self.model, self.processing_class))
                if fast:
                    stack.enter_context(merged_lora(self.model))
                    stack.enter_context(shared_prefix_generation(self.model))
                    stack.enter_context(inverse_cdf_sampling())
                    stack.enter_context(decode_attention(self.model))
                    # After merged_lora, so it packs the merged weights.
                    stack.enter_context(prepacked_linears(self.model, rows=len(prompts)))
                result = super()._generate(prompts)
            self._wb_generation = (time.perf_counter() - start, sum(len(ids) for ids in result[1]))
            return result

        def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations,
                                  has_tool_images=False):
            completion_ids, logprobs = super()._generate_single_turn(prompt_ids, images, multimodal_fields,
                                                                     num_generations, has_tool_images)
            stop = (self.args.generation_kwargs or {}).get("stop")
            if self.use_vllm and stop:
                completion_ids, logprobs = end_stopped_rows(completion_ids, logprobs, stop, self.processing_class,
                                                            self.max_completion_length)
            return completion_ids, logprobs

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                               batch_size=None, compute_entropy=False, compute_aux_loss=False,
                                               **multimodal):
            if not self.shared_prefix or compute_aux_loss or any(v is not None for v in multimodal.values()):
                return super()._get_per_token_logps_and_entropies(
                    model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                    compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **multimodal)
            logps, entropies = shared_prefix_logps(model, input_ids, attention_mask, logits_to_keep,
                                                   compute_entropy, self.accelerator.autocast())
            return logps, entropies, None

        def training_step(self, *args, **kwargs):
            if not self.shared_prefix:  # TRL's step, as it comes
                return super().training_step(*args, **kwargs)
            with ExitStack() as stack:
                stack.enter_context(lean_logprob_backward())  # the backward runs inside training_step
                if self.accelerator.device.type == "cpu":
                    stack.enter_context(cpu_logprob_tiles())
                if self.args.bf16 and self.args.use_cpu:
                    stack.enter_context(no_lora_input_cast(self.model))
                return super().training_step(*args, **kwargs)

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            self._wb_rewards = rewards  # (B, n_funcs), gathered across processes
            return rewards

        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            if self.run_writer is not None and self.model.training:
                self._log_rollouts(inputs, output)  # every process: its rollouts are gathered to the main one
            return output

        def _log_rollouts(self, inputs, output):
            """Append this generation batch's rollouts to rollouts.jsonl: each process describes its own
            rows (``inputs``, ``output``: TRL's local slice; rewards: gathered, so row i of process p is
            ``p * len(inputs) + i``, TRL's ``process_slice``), the records are gathered, the main
            process writes them all. Groups are numbered over the global batch."""
            from workbench.distributed import gather_records

            rewards = self._wb_rewards.cpu()
            weights = self.reward_weights.cpu()
            ids, mask = output["completion_ids"].cpu(), output["completion_mask"].cpu()
            advantages = output["advantages"].cpu().tolist()
            eos = set(self.eos_token_ids) if hasattr(self, "eos_token_ids") else {self.processing_class.eos_token_id}
            step, G = self.state.global_step + 1, self.num_generations
            offset = self.accelerator.process_index * len(inputs)
            records = []
            for local, x in enumerate(inputs):
                i = offset + local  # the row's index in the global batch
                n = int(mask[local].sum())
                toks = ids[local, :n].tolist()
                per_func = {name: (None if torch.isnan(rewards[i, k]) else float(rewards[i, k]))
                            for k, name in enumerate(self.reward_func_names)}
                total = float(torch.nansum(rewards[i] * weights))
                completion = self.processing_class.decode(toks, skip_special_tokens=True)
                records.append({
                    "step": step, "prompt_id": x.get("prompt_id"), "prompt": x["prompt"], "answer": x.get("answer"),
                    "group": i // G, "index": i % G, "completion": completion,
                    "tokens": n, "truncated": not (toks and toks[-1] in eos),
                    "rewards": per_func, "reward": total, "advantage": advantages[local],
                    # Behaviour tags at logging time, so the app's curves are live (~50k rollouts/s).
                    "traces": traces.tag(completion, prompt=x["prompt"]),
                })
            records = gather_records(records)
            if hasattr(self, "_wb_generation"):  # tokens generated by all processes; seconds: this one's
                seconds, tokens = self._wb_generation
                self._wb_generation = (seconds, sum(gather_records([tokens])))
            # Written on the main process only (RunWriter.follower elsewhere), with each step's summary in the index.
            self.run_writer.rollouts(records, summarize=traces.step_summary)

    return WorkbenchGRPOTrainer


def grpo_record(logs: dict, trainer, callback) -> dict:
    """metrics.jsonl's normalised names for a GRPO step (TRL's raw keys are kept beside them)."""
    gen_s, gen_tokens = getattr(trainer, "_wb_generation", (None, None))
    return {
        "step": trainer.state.global_step,
        "reward_mean": logs.get("reward"),
        "reward_std": logs.get("reward_std"),
        "accuracy": logs.get("rewards/accuracy/mean"),
        "completion_length_mean": logs.get("completions/mean_length"),
        "completion_length_max": logs.get("completions/max_length"),
        "truncation_rate": logs.get("completions/clipped_ratio"),
        "kl": logs.get("kl"),
        "entropy": logs.get("entropy"),
        "learning_rate": logs.get("learning_rate"),
        "step_seconds": getattr(callback, "_step_seconds", None),
        "generation_seconds": gen_s,
        "generated_tokens": gen_tokens,
        "generated_tokens_per_s": (gen_tokens / gen_s) if gen_s else None,
        "gpu_memory_peak_gb": gpu_memory_peak_gb(),
    }


def gpu_memory_peak_gb() -> float | None:
    """This process's peak GPU memory allocated by torch so far, in GB (1e9 bytes); None without CUDA."""
    import torch

    return torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_available() else None


def fit_loss_in_memory(cfg: WorkbenchConfig, precision, model, tokenizer, dataset, writer=None,
                       budget_bytes: float | None = None) -> dict:
    """GRPOConfig overrides that split the loss of a CPU step into micro-batches when its activations
    would not fit in memory (workbench.grpo.memory), else {}. Only when the config leaves the split
    to us (one accumulation step, no gradient checkpointing); the generation batch, and so the
    algorithm, stay the same. Says so on stderr and in the run log (event ``loss_micro_batches``).
    ``budget_bytes``: default ``memory_budget_bytes()``."""
    from workbench.grpo.memory import loss_micro_batches, memory_budget_bytes

    if precision.device != "cpu" or cfg.gradient_accumulation_steps != 1 or cfg.gradient_checkpointing:
        return {}
    rows = cfg.per_device_train_batch_size
    prompts = [row["prompt"] for row in dataset.select(range(min(64, len(dataset))))]
    prompt_tokens = max((len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]), default=0)
    k = loss_micro_batches(model.config, rows, prompt_tokens + cfg.max_completion_length,
                           memory_budget_bytes() if budget_bytes is None else budget_bytes)
    if k == 1:
        return {}
    if writer is not None:
        writer.event("loss_micro_batches", micro_batches=k, rows=rows // k)
    print(f"memory: the loss runs in {k} micro-batches of {rows // k} rows (one generation, one optimizer step; "
          f"set gradient_accumulation_steps to choose)", file=sys.stderr, flush=True)
    return dict(per_device_train_batch_size=rows // k, gradient_accumulation_steps=k)


def train(cfg: WorkbenchConfig | None = None, progress: bool = True, reward_funcs: list | None = None,
          run_info: dict | None = None, before: dict | None = None, **overrides) -> TrainResult:
    """Run one GRPO experiment end to end and return where it was written and the held-out numbers.

    ``reward_funcs`` adds your own reward functions (TRL's contract, weight 1.0) to the configured
    ones, e.g. from a notebook; they are guarded like the built-in ones. ``run_info`` is added to
    the run's start event (the pipeline records its name and stage there). ``before``: this model's
    held-out result computed already (the pipeline passes the previous stage's "after", same items),
    recorded instead of evaluating again.
    """
    from workbench.rewards import SafeReward, build_rewards

    cfg = (cfg or WorkbenchConfig()).replace(**overrides) if overrides else (cfg or WorkbenchConfig())
    check_vllm(cfg)
    if os.environ.get("WORKBENCH_MEMORY_BUDGET_MB"):  # a bad value fails here, before the run directory exists
        from workbench.grpo.memory import memory_budget_bytes

        memory_budget_bytes()
    stage = Stage(cfg, "grpo", run_info)
    writer = stage.writer
    try:
        model, tokenizer = stage.load()
        # Each of N processes (accelerate launch) takes prompts_per_step prompts a step: the global batch is N times it.
        dataset = build_dataset(stage.task, cfg.max_steps * cfg.prompts_per_step * world_size(), stage.template,
                                tokenizer)

        def on_reward_error(name, index, exc):
            writer.event("error", where="reward", reward=name, index=index, error=repr(exc))

        funcs, weights = build_rewards(cfg.rewards, stage.task, cfg.max_completion_length, on_error=on_reward_error,
                                       timeout_s=cfg.reward_timeout_s)
        for fn in reward_funcs or []:
            funcs.append(SafeReward(fn, on_error=on_reward_error, timeout_s=cfg.reward_timeout_s))
            weights.append(1.0)
        trainer_ref: list = []
        micro = fit_loss_in_memory(cfg, stage.precision, model, tokenizer, dataset, writer)
        trainer = make_trainer_class()(
            model=model,
            reward_funcs=funcs,
            args=to_grpo_config(cfg, writer.path / "trainer", precision=stage.precision, reward_weights=weights,
                                disable_tqdm=not progress, **micro,
                                generation_kwargs=stop_generation_kwargs(stage.stop, tokenizer, cfg.use_vllm)),
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=stage.lora(),
            callbacks=[make_runlog_callback(writer, trainer_ref, grpo_record, max_seconds=cfg.max_seconds)],
        )
        trainer_ref.append(trainer)
        trainer.run_writer = writer
        trainer.shared_prefix, trainer.fast_generation = cfg.shared_prefix, cfg.fast_generation
        if (trainer.is_fsdp_enabled or trainer.is_deepspeed_enabled) and (cfg.shared_prefix or cfg.fast_generation):
            # Both read whole, unsharded weights (a LoRA delta folded into each weight, a prefix forward
            # outside the engine's wrapper): off under FSDP and DeepSpeed, where TRL's own path runs.
            engine = "FSDP" if trainer.is_fsdp_enabled else "DeepSpeed"
            trainer.shared_prefix = trainer.fast_generation = False
            writer.event("fast_paths_off", engine=engine)
            if trainer.accelerator.is_main_process:
                print(f"{engine}: shared-prefix and fast generation are off (they need unsharded weights); "
                      "TRL's own generation and loss run", file=sys.stderr, flush=True)
        return stage.run(trainer, tokenizer, cfg.eval_max_new_tokens or cfg.max_completion_length, progress, before,
                         train_prompts=len(dataset))
    except BaseException as e:
        stage.crashed(e)
        raise
    finally:
        writer.close()
