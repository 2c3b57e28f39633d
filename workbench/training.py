"""GRPO training: config -> task -> model -> rewards -> trainer -> evaluate -> train -> evaluate -> save.

Run it as ``workbench train --config configs/demo.yaml`` or ``workbench.train(WorkbenchConfig(...))``.
The trainer is TRL's GRPOTrainer; the subclass here only *observes*: it records every rollout with
its rewards and advantage into the run directory, and times generation. The loss is TRL's.
"""

from __future__ import annotations

import json
import os
import platform
import time
import traceback
from dataclasses import dataclass
from datetime import datetime

from workbench.config import WorkbenchConfig, to_grpo_config
from workbench.runlog import RunWriter


@dataclass
class TrainResult:
    run_dir: str
    before: dict | None
    after: dict | None
    seconds: float


def default_run_name(cfg: WorkbenchConfig) -> str:
    task = os.path.basename(cfg.task).removesuffix(".jsonl")
    return f"{task}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def build_dataset(task, n_prompts: int, template: str, tokenizer):
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


def _make_trainer_class():
    # Defined lazily so importing workbench.training does not import TRL.
    from contextlib import ExitStack

    import torch
    from trl import GRPOTrainer

    from workbench import traces
    from workbench.fast import inverse_cdf_sampling, merged_lora, shared_prefix_generation, shared_prefix_logps

    class WorkbenchGRPOTrainer(GRPOTrainer):
        """GRPOTrainer that logs each rollout (with per-reward values and advantage) to the run log."""

        run_writer: RunWriter | None = None
        shared_prefix: bool = True  # see workbench.fast
        fast_generation: bool = True

        def _generate(self, prompts):
            start = time.perf_counter()
            fast = self.fast_generation and not self.use_vllm
            with ExitStack() as stack:
                if fast:
                    stack.enter_context(merged_lora(self.model))
                    stack.enter_context(shared_prefix_generation(self.model))
                    stack.enter_context(inverse_cdf_sampling())
                result = super()._generate(prompts)
            self._wb_generation = (time.perf_counter() - start, sum(len(ids) for ids in result[1]))
            return result

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

        def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
            rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
            self._wb_rewards = rewards  # (B, n_funcs), gathered across processes
            return rewards

        def _generate_and_score_completions(self, inputs):
            output = super()._generate_and_score_completions(inputs)
            if self.run_writer is not None and self.accelerator.is_main_process and self.model.training:
                self._log_rollouts(inputs, output)
            return output

        def _log_rollouts(self, inputs, output):
            rewards = self._wb_rewards.cpu()
            weights = self.reward_weights.cpu()
            ids, mask = output["completion_ids"].cpu(), output["completion_mask"].cpu()
            advantages = output["advantages"].cpu().tolist()
            eos = set(self.eos_token_ids) if hasattr(self, "eos_token_ids") else {self.processing_class.eos_token_id}
            step, G = self.state.global_step + 1, self.num_generations
            records = []
            for i, x in enumerate(inputs):
                n = int(mask[i].sum())
                toks = ids[i, :n].tolist()
                per_func = {name: (None if torch.isnan(rewards[i, k]) else float(rewards[i, k]))
                            for k, name in enumerate(self.reward_func_names)}
                total = float(torch.nansum(rewards[i] * weights))
                completion = self.processing_class.decode(toks, skip_special_tokens=True)
                records.append({
                    "step": step, "prompt_id": x.get("prompt_id"), "prompt": x["prompt"], "answer": x.get("answer"),
                    "group": i // G, "index": i % G, "completion": completion,
                    "tokens": n, "truncated": not (toks and toks[-1] in eos),
                    "rewards": per_func, "reward": total, "advantage": advantages[i],
                    # Behaviour tags at logging time, so the app's curves are live (~50k rollouts/s).
                    "traces": traces.tag(completion, prompt=x["prompt"]),
                })
            self.run_writer.rollouts(records)

    return WorkbenchGRPOTrainer


def _make_runlog_callback(writer: RunWriter, trainer_ref: list):
    from transformers import TrainerCallback

    class RunLogCallback(TrainerCallback):
        """Writes one metrics.jsonl line per logged step, with normalised names and TRL's raw keys."""

        def on_step_begin(self, args, state, control, **kwargs):
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self._step_seconds = time.perf_counter() - self._t0

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = dict(logs or {})
            if "train_runtime" in logs:  # the end-of-training summary, not a step
                writer.event("train_summary", **logs)
                return
            trainer = trainer_ref[0]
            gen_s, gen_tokens = getattr(trainer, "_wb_generation", (None, None))
            record = {
                "step": state.global_step,
                "reward_mean": logs.get("reward"),
                "reward_std": logs.get("reward_std"),
                "accuracy": logs.get("rewards/accuracy/mean"),
                "completion_length_mean": logs.get("completions/mean_length"),
                "completion_length_max": logs.get("completions/max_length"),
                "truncation_rate": logs.get("completions/clipped_ratio"),
                "kl": logs.get("kl"),
                "entropy": logs.get("entropy"),
                "learning_rate": logs.get("learning_rate"),
                "step_seconds": getattr(self, "_step_seconds", None),
                "generation_seconds": gen_s,
                "generated_tokens": gen_tokens,
                "generated_tokens_per_s": (gen_tokens / gen_s) if gen_s else None,
            }
            writer.metrics({**record, **{k: v for k, v in logs.items() if k not in record}})

    return RunLogCallback()


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "trl", "peft", "reasoning-gym"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def train(cfg: WorkbenchConfig | None = None, progress: bool = True, reward_funcs: list | None = None,
          **overrides) -> TrainResult:
    """Run one GRPO experiment end to end and return where it was written and the held-out numbers.

    ``reward_funcs`` adds your own reward functions (TRL's contract, weight 1.0) to the configured
    ones, e.g. from a notebook; they are guarded like the built-in ones.
    """
    import torch
    from transformers import set_seed

    from workbench.evaluate import evaluate_accuracy
    from workbench.models import check_model_name, load_model, lora_config, prepare_for_training, resolve_precision
    from workbench.rewards import SafeReward, build_rewards
    from workbench.tasks import get_task
    from workbench.templates import render_prompt, resolve_template

    cfg = (cfg or WorkbenchConfig()).replace(**overrides) if overrides else (cfg or WorkbenchConfig())
    t_start = time.time()
    # Bad task and model names fail here, before a run directory exists.
    task = get_task(cfg.task, seed=cfg.seed, **cfg.task_kwargs)
    check_model_name(cfg.model)
    precision = resolve_precision(cfg.precision, cfg.quantization)
    writer = RunWriter.create(cfg.runs_root, cfg.run_name or default_run_name(cfg))
    writer.write_config(cfg.to_dict())
    writer.event("start", model=cfg.model, task=cfg.task, pid=os.getpid(), host=os.uname().nodename,
                 precision=precision.__dict__, versions=_versions())
    try:
        if precision.device == "cpu":
            torch.set_num_threads(os.cpu_count() or 1)
        set_seed(cfg.seed)
        model, tokenizer = load_model(cfg.model, precision, seed=cfg.seed)
        model = prepare_for_training(model, precision, cfg.gradient_checkpointing)
        template = resolve_template(cfg.template, tokenizer)
        dataset = build_dataset(task, cfg.max_steps * cfg.prompts_per_step, template, tokenizer)
        eval_items = task.items("eval", cfg.eval_items) if cfg.eval_items else []
        eval_prompts = [render_prompt(template, it["question"], tokenizer) for it in eval_items]

        def on_reward_error(name, index, exc):
            writer.event("error", where="reward", reward=name, index=index, error=repr(exc))

        funcs, weights = build_rewards(cfg.rewards, task, cfg.max_completion_length, on_error=on_reward_error)
        for fn in reward_funcs or []:
            funcs.append(SafeReward(fn, on_error=on_reward_error))
            weights.append(1.0)
        targets = cfg.lora_target_modules
        targets = targets if targets == "all-linear" else [t.strip() for t in targets.split(",")]
        trainer_ref: list = []
        trainer = _make_trainer_class()(
            model=model,
            reward_funcs=funcs,
            args=to_grpo_config(cfg, writer.path / "trainer", precision=precision, reward_weights=weights,
                                disable_tqdm=not progress),
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora_config(cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, targets),
            callbacks=[_make_runlog_callback(writer, trainer_ref)],
        )
        if progress:  # keep transformers' progress bar, without a raw dict printed under it every step
            from transformers.trainer_callback import ProgressCallback

            class _BarOnly(ProgressCallback):
                def on_log(self, args, state, control, logs=None, **kwargs):
                    pass  # the numbers go to metrics.jsonl and the app

            trainer.remove_callback(ProgressCallback)
            trainer.add_callback(_BarOnly())
        trainer_ref.append(trainer)
        trainer.run_writer = writer
        trainer.shared_prefix, trainer.fast_generation = cfg.shared_prefix, cfg.fast_generation
        params = list(trainer.model.parameters())
        writer.event("setup", template=template, train_prompts=len(dataset), eval_items=len(eval_items),
                     trainable_params=sum(p.numel() for p in params if p.requires_grad),
                     total_params=sum(p.numel() for p in params),
                     quantized_modules=sum("4bit" in type(m).__name__ for m in trainer.model.modules()),
                     seconds=time.time() - t_start)

        max_new = cfg.eval_max_new_tokens or cfg.max_completion_length

        def run_eval(phase):
            if not eval_items:
                return None
            result = evaluate_accuracy(trainer.model, tokenizer, task, eval_items, eval_prompts, max_new,
                                       batch_size=cfg.eval_batch_size, progress=progress, desc=f"eval {phase}")
            writer.event("eval", phase=phase, **result)
            return result

        before = run_eval("before")
        trainer.train()
        after = run_eval("after")
        if cfg.save_adapter:
            adapter = writer.path / "adapter"
            trainer.model.save_pretrained(adapter)
            tokenizer.save_pretrained(adapter)
            writer.event("checkpoint", path=str(adapter), step=trainer.state.global_step)
        trainer_dir = writer.path / "trainer"
        if trainer_dir.is_dir() and not any(trainer_dir.iterdir()):
            trainer_dir.rmdir()  # TRL's output_dir; the workbench saves into the run directory itself
        seconds = time.time() - t_start
        summary = {k: v for k, v in (("before", before), ("after", after)) if v}
        writer.event("end", status="finished", seconds=seconds,
                     **{f"{k}_accuracy": v["accuracy"] for k, v in summary.items()})
        return TrainResult(str(writer.path), before, after, seconds)
    except BaseException as e:
        writer.event("error", where="train", error=repr(e), traceback=traceback.format_exc())
        writer.event("end", status="crashed", seconds=time.time() - t_start, error=repr(e))
        raise
    finally:
        writer.close()
