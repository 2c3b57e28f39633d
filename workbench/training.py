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
from workbench.runlog import Run, RunWriter


@dataclass
class TrainResult:
    run_dir: str
    before: dict | None
    after: dict | None
    seconds: float  # the whole stage: loading, evaluation, training, saving
    train_seconds: float | None = None  # the trainer's own train() time
    steps: int | None = None


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


def _grpo_record(logs: dict, trainer, callback) -> dict:
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
    }


def _make_runlog_callback(writer: RunWriter, trainer_ref: list, record=_grpo_record, max_seconds: float | None = None):
    """A TrainerCallback that writes one metrics.jsonl line per logged step: ``record(logs, trainer,
    callback)``'s normalised names plus every raw key the trainer logged. With ``max_seconds`` it
    also stops training after the first step that ends past that many seconds of training."""
    from transformers import TrainerCallback

    class RunLogCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self._train_start = time.perf_counter()

        def on_step_begin(self, args, state, control, **kwargs):
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self._step_seconds = time.perf_counter() - self._t0
            if max_seconds is not None and time.perf_counter() - self._train_start >= max_seconds:
                control.should_training_stop = True
                writer.event("budget", max_seconds=max_seconds, step=state.global_step,
                             seconds=time.perf_counter() - self._train_start)

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = dict(logs or {})
            if "train_runtime" in logs:  # the end-of-training summary, not a step
                writer.event("train_summary", **logs)
                return
            rec = record(logs, trainer_ref[0], self)
            writer.metrics({**rec, **{k: v for k, v in logs.items() if k not in rec}})

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


class _Stage:
    """What every training stage (GRPO here, SFT in workbench.sft) does around its trainer: check
    names before a run directory exists, record start/setup/eval/checkpoint/end events, evaluate on
    the same held-out items before and after, save the adapter, and record a crash before re-raising."""

    def __init__(self, cfg, stage: str, run_info: dict | None = None):
        import torch

        from workbench.models import check_model_name, resolve_precision
        from workbench.tasks import get_task

        self.cfg, self.t_start = cfg, time.time()
        # Bad task and model names fail here, before a run directory exists.
        self.task = get_task(cfg.task, seed=cfg.seed, **cfg.task_kwargs)
        check_model_name(cfg.model)
        self.precision = resolve_precision(cfg.precision, cfg.quantization)
        if self.precision.device == "cpu":
            # Every core (torch may default to fewer), unless OMP_NUM_THREADS says otherwise: processes
            # sharing cores each with all of them spin against each other and slow down many-fold.
            torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
        self.writer = RunWriter.create(cfg.runs_root, cfg.run_name or default_run_name(cfg))
        self.writer.write_config(cfg.to_dict() if stage == "grpo" else {"stage": stage, **cfg.to_dict()})
        self.writer.event("start", stage=stage, model=cfg.model, task=cfg.task, pid=os.getpid(),
                          host=os.uname().nodename, precision=self.precision.__dict__, versions=_versions(),
                          **(run_info or {}))

    def load(self):
        from transformers import set_seed

        from workbench.models import load_model, prepare_for_training
        from workbench.templates import render_prompt, resolve_template

        set_seed(self.cfg.seed)
        model, tokenizer = load_model(self.cfg.model, self.precision, seed=self.cfg.seed)
        model = prepare_for_training(model, self.precision, self.cfg.gradient_checkpointing)
        self.template = resolve_template(self.cfg.template, tokenizer)
        self.eval_items = self.task.items("eval", self.cfg.eval_items) if self.cfg.eval_items else []
        self.eval_prompts = [render_prompt(self.template, it["question"], tokenizer) for it in self.eval_items]
        return model, tokenizer

    def lora(self):
        from workbench.models import lora_config

        targets = self.cfg.lora_target_modules
        targets = targets if targets == "all-linear" else [t.strip() for t in targets.split(",")]
        return lora_config(self.cfg.lora_r, self.cfg.lora_alpha, self.cfg.lora_dropout, targets)

    def setup_event(self, trainer, **extra) -> None:
        params = list(trainer.model.parameters())
        self.writer.event("setup", template=self.template, eval_items=len(self.eval_items),
                          trainable_params=sum(p.numel() for p in params if p.requires_grad),
                          total_params=sum(p.numel() for p in params),
                          quantized_modules=sum("4bit" in type(m).__name__ for m in trainer.model.modules()),
                          seconds=time.time() - self.t_start, **extra)

    def evaluate(self, model, tokenizer, phase: str, max_new_tokens: int, progress: bool) -> dict | None:
        from workbench.evaluate import evaluate_accuracy

        if not self.eval_items:
            return None
        result = evaluate_accuracy(model, tokenizer, self.task, self.eval_items, self.eval_prompts, max_new_tokens,
                                   batch_size=self.cfg.eval_batch_size, progress=progress, desc=f"eval {phase}")
        result.update(template=self.template, max_new_tokens=max_new_tokens)
        self.writer.event("eval", phase=phase, **result)
        return result

    def reuse(self, result: dict | None, max_new_tokens: int) -> dict | None:
        """Record ``result`` (this model's held-out result, computed by an earlier stage) as this run's
        "before" evaluation when it was made the same way: same items, template and token budget."""
        if not result or (result.get("template"), result.get("max_new_tokens")) != (self.template, max_new_tokens):
            return None
        if [r["id"] for r in result.get("items", [])] != [it["id"] for it in self.eval_items]:
            return None
        self.writer.event("eval", **{**result, "phase": "before", "reused": True})
        return result

    def finish(self, trainer, tokenizer, before, after) -> TrainResult:
        if self.cfg.save_adapter:
            adapter = self.writer.path / "adapter"
            trainer.model.save_pretrained(adapter)
            tokenizer.save_pretrained(adapter)
            self.writer.event("checkpoint", path=str(adapter), step=trainer.state.global_step)
        trainer_dir = self.writer.path / "trainer"
        if trainer_dir.is_dir() and not any(trainer_dir.iterdir()):
            trainer_dir.rmdir()  # the trainer's output_dir; the workbench saves into the run directory itself
        seconds = time.time() - self.t_start
        summary = {k: v for k, v in (("before", before), ("after", after)) if v}
        train_seconds = next((e.get("train_runtime") for e in reversed(Run(self.writer.path).events())
                              if e.get("event") == "train_summary"), None)
        self.writer.event("end", status="finished", seconds=seconds, train_seconds=train_seconds,
                          steps=trainer.state.global_step,
                          **{f"{k}_accuracy": v["accuracy"] for k, v in summary.items()})
        return TrainResult(str(self.writer.path), before, after, seconds, train_seconds, trainer.state.global_step)

    def run(self, trainer, tokenizer, max_new_tokens: int, progress: bool, before: dict | None = None,
            **setup) -> TrainResult:
        """Setup event, held-out "before" (reused when it matches), train, "after", save, end event."""
        self.quiet_progress_bar(trainer, progress)
        self.setup_event(trainer, **setup)
        before = self.reuse(before, max_new_tokens) or self.evaluate(trainer.model, tokenizer, "before",
                                                                     max_new_tokens, progress)
        trainer.train()
        after = self.evaluate(trainer.model, tokenizer, "after", max_new_tokens, progress)
        return self.finish(trainer, tokenizer, before, after)

    def crashed(self, e: BaseException) -> None:
        self.writer.event("error", where="train", error=repr(e), traceback=traceback.format_exc())
        self.writer.event("end", status="crashed", seconds=time.time() - self.t_start, error=repr(e))

    @staticmethod
    def quiet_progress_bar(trainer, progress: bool) -> None:
        # Keep transformers' progress bar (or, without progress, nothing), never a raw dict per step:
        # the numbers go to metrics.jsonl and the app.
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        class _BarOnly(ProgressCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                pass

        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)
        if progress:
            trainer.add_callback(_BarOnly())


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
    stage = _Stage(cfg, "grpo", run_info)
    writer = stage.writer
    try:
        model, tokenizer = stage.load()
        dataset = build_dataset(stage.task, cfg.max_steps * cfg.prompts_per_step, stage.template, tokenizer)

        def on_reward_error(name, index, exc):
            writer.event("error", where="reward", reward=name, index=index, error=repr(exc))

        funcs, weights = build_rewards(cfg.rewards, stage.task, cfg.max_completion_length, on_error=on_reward_error)
        for fn in reward_funcs or []:
            funcs.append(SafeReward(fn, on_error=on_reward_error))
            weights.append(1.0)
        trainer_ref: list = []
        trainer = _make_trainer_class()(
            model=model,
            reward_funcs=funcs,
            args=to_grpo_config(cfg, writer.path / "trainer", precision=stage.precision, reward_weights=weights,
                                disable_tqdm=not progress),
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=stage.lora(),
            callbacks=[_make_runlog_callback(writer, trainer_ref, max_seconds=cfg.max_seconds)],
        )
        trainer_ref.append(trainer)
        trainer.run_writer = writer
        trainer.shared_prefix, trainer.fast_generation = cfg.shared_prefix, cfg.fast_generation
        return stage.run(trainer, tokenizer, cfg.eval_max_new_tokens or cfg.max_completion_length, progress, before,
                         train_prompts=len(dataset))
    except BaseException as e:
        stage.crashed(e)
        raise
    finally:
        writer.close()
