"""The lifecycle every trained stage shares (GRPO in workbench.grpo, SFT in workbench.stages.sft).

``Stage`` checks names before a run directory exists, records start/setup/eval/checkpoint/end events
through ``workbench.runlog``, evaluates on the same held-out items before and after training, saves
the adapter and records a crash before re-raising. ``make_runlog_callback`` turns the trainer's logs
into metrics.jsonl lines. The trainers themselves are TRL's.
"""

from __future__ import annotations

import os
import platform
import signal
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from workbench.config import StageConfig
from workbench import cost, distributed, runlog
from workbench.runlog import Run, RunWriter, this_process


@dataclass
class TrainResult:
    """Where a trained stage was written and its held-out results (``evaluate_accuracy`` dicts), in seconds."""

    run_dir: str
    before: dict | None
    after: dict | None
    seconds: float  # the whole stage: loading, evaluation, training, saving
    train_seconds: float | None = None  # the trainer's own train() time
    steps: int | None = None
    status: str = "finished"  # or "interrupted" (Ctrl-C / SIGTERM: checkpointed, resumable)
    cost: dict | None = None  # workbench.cost.estimate: devices, device-hours, tokens, estimated USD


def default_run_name(cfg: StageConfig) -> str:
    """``<task>-<YYYYmmdd-HHMMSS>`` (``-2``, ``-3``, ... if that run exists): the run directory's name
    when the config gives none."""
    from workbench.runlog import unused_run_name

    task = os.path.basename(cfg.task).removesuffix(".jsonl")
    return unused_run_name(cfg.runs_root, f"{task}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")


def make_runlog_callback(writer: RunWriter, trainer_ref: list, record, max_seconds: float | None = None):
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
            # Under N processes the budget is the main process's clock, agreed by all: they stop together.
            if max_seconds is not None and distributed.any_process(
                    distributed.is_main_process() and time.perf_counter() - self._train_start >= max_seconds):
                control.should_training_stop = True
                control.should_save = True  # a budget stop is resumable too
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


def package_versions() -> dict:
    """Versions of Python and the packages a run's numbers depend on (None when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "trl", "peft", "reasoning-gym"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


class Stage:
    """What every training stage (GRPO here, SFT in workbench.stages.sft) does around its trainer: check
    names before a run directory exists, record start/setup/eval/checkpoint/end events, evaluate on
    the same held-out items before and after, save the adapter, and record a crash before re-raising."""

    def __init__(self, cfg, stage: str, run_info: dict | None = None):
        import torch

        from workbench.models import Precision, check_model_name, resolve_precision
        from workbench.tasks import get_task

        self.cfg, self.t_start = cfg, time.time()
        # Bad task and model names fail here, before a run directory exists.
        self.task = get_task(cfg.task, seed=cfg.seed, **cfg.task_kwargs)
        check_model_name(cfg.model)
        self.precision = resolve_precision(cfg.precision, cfg.quantization)
        if cfg.precision == "auto" and cfg.finetune == "full" and self.precision == Precision("cpu", "bfloat16", "none"):
            # CPU bf16 keeps the frozen base weights in bf16; trained weights need fp32 (no master copy here).
            self.precision = resolve_precision("fp32", "none", "cpu")
        if self.precision.device == "cpu":
            # Every core (torch may default to fewer), unless OMP_NUM_THREADS says otherwise: processes
            # sharing cores each with all of them spin against each other and slow down many-fold.
            torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
        self.check_prompt_lengths()
        self.resume_from, self.interrupted = None, None
        existing = runlog.safe_run_dir(cfg.runs_root, cfg.run_name) if cfg.run_name else None
        # Under N processes (accelerate launch, torchrun) the main process names, creates or reopens
        # the run directory and alone writes it; the others hold a writer that writes nothing.
        made: dict = {}
        if cfg.resume and existing is not None and (existing / runlog.EVENTS).is_file():
            def reopen():
                made["writer"] = self._reopen(existing, stage)
                return str(self.resume_from)

            self.resume_from = Path(distributed.agree(reopen))
        else:
            def create():
                writer = made["writer"] = RunWriter.create(cfg.runs_root, cfg.run_name or default_run_name(cfg))
                writer.write_config(cfg.to_dict() if stage == "grpo" else {"stage": stage, **cfg.to_dict()})
                writer.event("start", stage=stage, model=cfg.model, task=cfg.task, **this_process(),
                             precision=self.precision.__dict__, devices=cost.this_job(self.precision.device),
                             versions=package_versions(), **(run_info or {}))
                return str(writer.path)

            existing = Path(distributed.agree(create))
        self.writer = made.get("writer") or RunWriter.follower(existing)

    def check_prompt_lengths(self) -> None:
        """Refuse, before any run directory exists, a file task (JSONL) whose rendered prompt plus the
        completion budget does not fit the model's context: one line naming the question and the
        numbers. (Procedural tasks generate short questions.) Raises WorkbenchError."""
        from workbench.errors import WorkbenchError
        from workbench.models import context_length, load_tokenizer
        from workbench.templates import render_prompt, resolve_template

        if not hasattr(self.task, "split_size"):
            return
        tokenizer = load_tokenizer(self.cfg.model)
        context = context_length(self.cfg.model, tokenizer)
        if not context:
            return
        budget = max(getattr(self.cfg, "max_completion_length", 0) or 0, self.cfg.eval_max_new_tokens or 128)
        template = resolve_template(self.cfg.template, tokenizer)
        for split in ("train", "eval"):
            for i in range(self.task.split_size(split)):
                question = self.task.item(split, i)["question"]
                if len(question.encode("utf-8")) + budget + 512 < context:
                    continue  # a token covers at least one byte, and no template adds 512 tokens: it fits
                n = len(tokenizer(render_prompt(template, question, tokenizer))["input_ids"])
                if n + budget > context:
                    raise WorkbenchError(
                        f"task {self.task.name!r}: {split} question {i} ({question[:40]!r}...) is {n} tokens; with "
                        f"{budget} new tokens it exceeds {self.cfg.model}'s context of {context} tokens; shorten or "
                        "remove it")

    def _reopen(self, path, stage: str) -> RunWriter:
        """Continue the run at ``path`` from its last checkpoint: supersede the records written after
        it (runlog's resume rule) and record a ``resume`` event. Raises RunDirError, touching
        nothing, when the run is still running, finished, or has no checkpoint."""
        from workbench.runlog import RunDirError

        run = Run(path)
        status = run.status()
        if status == "running":
            raise RunDirError(f"run {str(path)!r} is still running (its process is alive); stop it before resuming")
        if status == "finished":
            raise RunDirError(f"run {str(path)!r} finished; there is nothing to resume")
        checkpoint = run.last_checkpoint()
        if checkpoint is None:
            raise RunDirError(f"run {str(path)!r} has no checkpoint to resume from (it stopped before its first "
                              f"save; checkpoints come every save_steps)")
        self.resume_from = checkpoint
        step = int(checkpoint.name.split("-")[1])
        writer = RunWriter.reopen(path)
        moved = writer.supersede_after(step)
        writer.write_config(self.cfg.to_dict() if stage == "grpo" else {"stage": stage, **self.cfg.to_dict()})
        writer.event("resume", from_step=step, checkpoint=str(checkpoint), found=status, dropped=moved,
                     **this_process(), versions=package_versions())
        return writer

    def load(self):
        from transformers import set_seed

        from workbench.models import load_model, prepare_for_training
        from workbench.rewards.extract import prompt_opens_think
        from workbench.templates import render_prompt, resolve_template, stop_strings

        set_seed(self.cfg.seed)
        model, tokenizer = load_model(self.cfg.model, self.precision, seed=self.cfg.seed)
        model = prepare_for_training(model, self.precision, self.cfg.gradient_checkpointing)
        self.template = resolve_template(self.cfg.template, tokenizer)
        self.stop = stop_strings(self.template, tokenizer, self.cfg.stop)  # rollouts and evaluation end there
        self.eval_items = self.task.items("eval", self.cfg.eval_items) if self.cfg.eval_items else []
        self.eval_prompts = [render_prompt(self.template, it["question"], tokenizer) for it in self.eval_items]
        # A template that ends the prompt by opening <think> (R1-Distill's) changes what the format
        # reward and the format check read: recorded in the setup event.
        self.prompt_opens_think = prompt_opens_think(render_prompt(self.template, "1 + 1", tokenizer))
        return model, tokenizer

    def lora(self):
        """The LoRA config for the trainer's ``peft_config``; None with ``finetune: full`` (all parameters train)."""
        from workbench.models import lora_config

        if self.cfg.finetune == "full":
            return None
        targets = self.cfg.lora_target_modules
        targets = targets if targets == "all-linear" else [t.strip() for t in targets.split(",")]
        return lora_config(self.cfg.lora_r, self.cfg.lora_alpha, self.cfg.lora_dropout, targets)

    def setup_event(self, trainer, **extra) -> None:
        params = list(trainer.model.parameters())
        self.writer.event("setup", template=self.template, stop=list(getattr(self, "stop", ())),
                          eval_items=len(self.eval_items),
                          prompt_opens_think=getattr(self, "prompt_opens_think", False),
                          checker=getattr(self.task, "checker", None),
                          trainable_params=sum(p.numel() for p in params if p.requires_grad),
                          total_params=sum(p.numel() for p in params),
                          quantized_modules=sum("4bit" in type(m).__name__ for m in trainer.model.modules()),
                          seconds=time.time() - self.t_start, **extra)

    def evaluate(self, model, tokenizer, phase: str, max_new_tokens: int, progress: bool,
                 step: int | None = None) -> dict | None:
        """Held-out evaluation, recorded as an ``eval`` event: greedy accuracy on the stage's eval items
        and, with ``eval_samples`` > 0, sampled pass@1 with behaviour rates (``sampled_metrics``).

        Evaluation draws from its own random generator, seeded from the run's seed alone: the training
        trajectory is the same whether and how often it evaluates, and every evaluation of one run
        samples with the same random numbers. Returns the result, or None without eval items."""
        import torch

        from workbench.analysis.evaluate import evaluate_accuracy, evaluate_sampled, sampled_metrics
        from workbench.tasks.base import derive_seed

        if not self.eval_items:
            return None
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(derive_seed(self.cfg.seed, "evaluation"))
            result = evaluate_accuracy(model, tokenizer, self.task, self.eval_items, self.eval_prompts,
                                       max_new_tokens, batch_size=self.cfg.eval_batch_size, progress=progress,
                                       desc=f"eval {phase}", stop=self.stop)
            samples = getattr(self.cfg, "eval_samples", 0)
            if samples:
                sampled = evaluate_sampled(model, tokenizer, self.task, self.eval_items, self.eval_prompts, k=1,
                                           n=samples, max_new_tokens=max_new_tokens,
                                           temperature=self.cfg.eval_temperature, top_p=1.0,
                                           batch_size=self.cfg.eval_batch_size * samples, progress=progress,
                                           stop=self.stop)
                result["sampled"] = sampled_metrics(sampled, self.task)
        result.update(template=self.template, max_new_tokens=max_new_tokens, stop=list(self.stop))
        self.writer.event("eval", phase=phase, **({"step": step} if step is not None else {}), **result)
        return result

    def reuse(self, result: dict | None, max_new_tokens: int) -> dict | None:
        """Record ``result`` (this model's held-out result, computed by an earlier stage) as this run's
        "before" evaluation (step 0) when it was made the same way: same items, template, stop strings
        and token budget."""
        made = (result or {}).get("template"), (result or {}).get("max_new_tokens"), (result or {}).get("stop", [])
        if not result or made != (self.template, max_new_tokens, list(self.stop)):
            return None
        if [r["id"] for r in result.get("items", [])] != [it["id"] for it in self.eval_items]:
            return None
        # A result read back from an earlier stage's events carries that event's own keys: not this one's.
        fields = {k: v for k, v in result.items() if k not in ("event", "time", "phase", "step")}
        self.writer.event("eval", **{**fields, "phase": "before", "step": 0, "reused": True})
        return result

    def finish(self, trainer, tokenizer, before, after, status: str = "finished") -> TrainResult:
        if self.cfg.save_adapter:
            # A full fine-tune saves the whole policy (a model directory) where an adapter would go.
            # The trainer's save_model: every process calls it (FSDP and ZeRO-3 gather the sharded
            # weights), the main process writes.
            adapter = self.writer.path / (runlog.ADAPTER if self.cfg.finetune == "lora" else runlog.POLICY)
            trainer.save_model(str(adapter))
            if self.writer.active:
                (adapter / "training_args.bin").unlink(missing_ok=True)  # the run's config.yaml says it
                tokenizer.save_pretrained(adapter)
            self.writer.event("checkpoint", path=str(adapter), step=trainer.state.global_step)
        seconds = time.time() - self.t_start
        if not self.writer.active:  # another process wrote the run; this one only trained
            return TrainResult(str(self.writer.path), before, after, seconds, None, trainer.state.global_step, status)
        trainer_dir = self.writer.path / "trainer"
        if trainer_dir.is_dir() and not any(trainer_dir.iterdir()):
            trainer_dir.rmdir()  # the trainer's output_dir; the workbench saves into the run directory itself
        summary = {k: v for k, v in (("before", before), ("after", after)) if v}
        run = Run(self.writer.path)
        events = run.events()
        train_seconds = next((e.get("train_runtime") for e in reversed(events) if e.get("event") == "train_summary"),
                             None)
        spent = cost.estimate(events + [{"time": time.time()}], run.metrics(), run.config())
        self.writer.event("end", status=status, seconds=seconds, train_seconds=train_seconds,
                          steps=trainer.state.global_step, cost=spent,
                          **{f"{k}_accuracy": v["accuracy"] for k, v in summary.items()})
        return TrainResult(str(self.writer.path), before, after, seconds, train_seconds, trainer.state.global_step,
                           status, spent)

    def run(self, trainer, tokenizer, max_new_tokens: int, progress: bool, before: dict | None = None,
            **setup) -> TrainResult:
        """Setup event, held-out "before" (reused when it matches), train (evaluating every
        ``eval_every`` steps, phase "step"), "after", save, end event."""
        self.quiet_progress_bar(trainer, progress)
        self.setup_event(trainer, **setup)
        if self.resume_from is not None:  # the run's own step-0 evaluation, made before it was killed
            before = Run(self.writer.path).evals().get("before")
        else:
            before = self.reuse(before, max_new_tokens) or self.evaluate(trainer.model, tokenizer, "before",
                                                                         max_new_tokens, progress, step=0)
        every = getattr(self.cfg, "eval_every", 0)
        if every:
            trainer.add_callback(self.periodic_evaluation(tokenizer, every, max_new_tokens))
        trainer.add_callback(self.stop_on_signal())
        with self.interruptible():
            trainer.train(resume_from_checkpoint=str(self.resume_from) if self.resume_from else None)
        if self.interrupted:
            # Checkpointed at the step it finished; the held-out "after" waits for the resumed run.
            return self.finish(trainer, tokenizer, before, None, status="interrupted")
        after = self.evaluate(trainer.model, tokenizer, "after", max_new_tokens, progress,
                              step=trainer.state.global_step)
        return self.finish(trainer, tokenizer, before, after)

    @contextmanager
    def interruptible(self):
        """Ctrl-C (SIGINT) or SIGTERM while training: the first finishes the current step, then the
        trainer checkpoints and stops (``stop_on_signal``); a second abandons the step at once
        (KeyboardInterrupt). Handlers are installed in the main thread only, and restored after."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self.interrupted:
                raise KeyboardInterrupt
            self.interrupted = signal.Signals(signum).name
            print(f"\n{self.interrupted}: finishing this step, then saving a checkpoint (again to abandon the step)",
                  file=sys.stderr, flush=True)

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def stop_on_signal(self):
        """A TrainerCallback that, after a signal (``interruptible``), saves a checkpoint at the end of
        the current step and stops training."""
        from transformers import TrainerCallback

        stage = self

        class StopOnSignal(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                # A signal to any of N processes stops all of them after this step (distributed.any_process).
                if distributed.any_process(bool(stage.interrupted)):
                    control.should_save = True
                    control.should_training_stop = True
                    stage.interrupted = stage.interrupted or "another process's signal"
                    stage.writer.event("interrupted", signal=stage.interrupted, step=state.global_step)

        return StopOnSignal()

    def periodic_evaluation(self, tokenizer, every: int, max_new_tokens: int):
        """A TrainerCallback that evaluates (phase "step") after every ``every``-th step but the last
        (the "after" evaluation covers that one)."""
        from transformers import TrainerCallback

        stage = self

        class PeriodicEvaluation(TrainerCallback):
            def on_step_end(self, args, state, control, model=None, **kwargs):
                step = state.global_step
                if step % every == 0 and step < state.max_steps and not control.should_training_stop:
                    stage.evaluate(model, tokenizer, "step", max_new_tokens, progress=False, step=step)

        return PeriodicEvaluation()

    def crashed(self, e: BaseException) -> None:
        """Record how the stage ended before the exception goes on: "interrupted" for a second Ctrl-C,
        else "crashed" with the error. Best effort: on a full disk these records may not fit either."""
        try:
            if isinstance(e, KeyboardInterrupt):  # a second Ctrl-C: the step abandoned, the last checkpoint stands
                self.writer.event("end", status="interrupted", seconds=time.time() - self.t_start, abandoned_step=True)
                return
            if not isinstance(e, runlog.DiskFullError):
                self.writer.event("error", where="train", error=repr(e), traceback=traceback.format_exc())
            self.writer.event("end", status="crashed", seconds=time.time() - self.t_start, error=repr(e))
        except OSError:
            pass

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
