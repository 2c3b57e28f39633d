"""One experiment, one config object: `WorkbenchConfig` (GRPO) or `SFTStageConfig` (SFT).

Both extend `StageConfig`, the fields every training stage shares (model, task, run directory,
optimiser, LoRA, held-out evaluation, a `max_seconds` compute budget).

The same object comes from Python kwargs in a notebook (``WorkbenchConfig(task="countdown")``),
from ``--config recipe.yaml`` plus ``--key value`` overrides on the CLI (``parse_cli``, built on
TRL's ``TrlParser``), and from a run directory's ``config.yaml`` (``WorkbenchConfig.from_yaml``).
``to_grpo_config`` is the only place that builds TRL's ``GRPOConfig``.

The defaults are the demo's settings (embedded 135M model on a 2-core CPU, see README); recipes
under configs/ override them. This module imports no torch/TRL at import time.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workbench.cost import CPU_CORE_HOUR_PRICE, GPU_HOUR_PRICE
from workbench.errors import WorkbenchError

VLLM_MODES = ("colocate", "server")  # TRL's GRPOConfig.vllm_mode
LOSS_TYPES = ("grpo", "dapo", "dr_grpo", "bnpo", "cispo", "sapo")
SCALE_REWARDS = ("group", "batch", "none")
FINETUNE_MODES = ("lora", "full")


class ConfigError(WorkbenchError):
    pass


class _FlagError(ConfigError, argparse.ArgumentTypeError):
    """A bad ``--rewards`` / ``--task_kwargs`` value: argparse prints an ArgumentTypeError's own
    message ("rewards: expected 'name=value'...") rather than naming the parsing class."""


def _parse_mapping(value: Any, what: str, cast=float) -> dict:
    """Accept a dict, a JSON object string, or ``"a=1,b=0.5"`` (the CLI form)."""
    if isinstance(value, dict):
        return dict(value)
    if value is None or value == "":
        return {}
    text = str(value).strip()
    if text.startswith("{"):
        try:
            return dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise _FlagError(f"{what}: not valid JSON ({e}): {text!r}") from None
    out = {}
    for part in text.split(","):
        key, sep, val = part.partition("=")
        if not sep:
            raise _FlagError(f"{what}: expected 'name=value[,name=value]', got {text!r}")
        try:
            out[key.strip()] = cast(yaml.safe_load(val)) if cast is not None else yaml.safe_load(val)
        except (TypeError, ValueError):
            raise _FlagError(f"{what}: value for {key.strip()!r} is not a number: {val!r}") from None
    return out


class RewardWeights(dict):
    """Type of ``rewards`` for the CLI parser: argparse calls it on the flag's string."""

    def __init__(self, value=None):
        super().__init__(_parse_mapping(value, "rewards"))


class TaskKwargs(dict):
    """Type of ``task_kwargs`` for the CLI parser (values parsed as YAML scalars)."""

    def __init__(self, value=None):
        super().__init__(_parse_mapping(value, "task_kwargs", cast=None))


@dataclass
class StageConfig:
    """What every training stage shares: model, task, run directory, optimiser, LoRA, held-out evaluation."""

    # What to train on
    model: str = field(
        default="smollm2-135m-instruct",
        metadata={"help": "'smollm2-135m-instruct' (embedded), 'tiny-random' (tests), a local path or a hub id."},
    )
    task: str = field(
        default="chain_sum",
        metadata={"help": "A task name from `workbench tasks`, any reasoning-gym dataset name, or a .jsonl file."},
    )
    task_kwargs: TaskKwargs = field(
        default_factory=dict,
        metadata={"help": "Task keyword arguments (YAML mapping, JSON object or 'k=v,k=v'), e.g. reasoning-gym's."},
    )
    template: str = field(
        default="chat_concise",
        metadata={"help": "Prompt template: auto, r1_zero, chat_think or chat_concise (see workbench.templates)."},
    )
    stop: str = field(  # or a list (YAML, Python): the parser needs one type
        default="auto",
        metadata={"help": "Where a generation ends besides EOS: auto (the template's end of turn: '</answer>' and "
                          "'User:' for r1_zero, none for chat templates), none, or strings separated by '|' "
                          "(YAML: a list). Rollouts and evaluation both stop there."},
    )
    # Where the run goes
    runs_root: str = field(default="runs", metadata={"help": "Directory that holds run directories."})
    run_name: str | None = field(default=None, metadata={"help": "Run directory name (default: task-timestamp)."})
    seed: int = field(default=0, metadata={"help": "Seed for data order, sampling and LoRA init."})
    # Optimisation
    max_steps: int = field(default=20, metadata={"help": "Optimizer steps."})
    per_device_train_batch_size: int = field(
        default=32, metadata={"help": "Completions per device per step; prompts per step = this / num_generations."}
    )
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Micro-batches per optimizer step."})
    learning_rate: float = field(default=2e-4, metadata={"help": "AdamW learning rate of the LoRA parameters."})
    lr_scheduler_type: str = field(default="constant", metadata={"help": "transformers scheduler name."})
    warmup_steps: int = field(default=0, metadata={"help": "Linear warm-up steps."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradient clipping."})
    gradient_checkpointing: bool = field(
        default=False,
        metadata={"help": "Recompute activations in backward (TRL's default is on; a 135M model does not need it)."},
    )
    max_seconds: float | None = field(
        default=None,
        metadata={"help": "Stop training after the step that passes this many seconds of training (a compute budget)."},
    )
    # Model policy
    precision: str = field(default="auto", metadata={"help": "auto (bf16 on CUDA; on CPU bf16 where a matmul probe finds it fast, else fp32), fp32, bf16, fp16."})
    quantization: str = field(default="auto", metadata={"help": "auto (4bit on CUDA, none on CPU), none, 4bit."})
    finetune: str = field(
        default="lora",
        metadata={"help": "lora (adapters on a frozen base, the default) or full (every parameter trains: "
                          "for the aha lab's tiny models)."},
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(
        default=0.0,
        metadata={"help": "LoRA dropout. 0: rollouts are then sampled from exactly the policy the loss scores "
                          "(with dropout, TRL samples through dropout noise and the fast path does not)."},
    )
    lora_target_modules: str = field(default="all-linear", metadata={"help": "'all-linear' or 'q_proj,v_proj,...'."})
    # Evaluation on the held-out split
    eval_items: int = field(default=96, metadata={"help": "Held-out items evaluated before and after (0: skip)."})
    eval_batch_size: int = field(default=32, metadata={"help": "Prompts per greedy-generation batch in evaluation."})
    eval_max_new_tokens: int | None = field(default=None, metadata={"help": "Default: max_completion_length."})
    eval_every: int = field(
        default=0, metadata={"help": "Also evaluate every N training steps (0: only before and after)."})
    eval_samples: int = field(
        default=0,
        metadata={"help": "Sampled answers per held-out question at each evaluation (sampled pass@1, behaviour "
                          "rates; 0: greedy only). They draw from their own random generator, never the run's."})
    eval_temperature: float = field(default=1.0, metadata={"help": "Temperature of those samples."})
    # Checkpoints and resume
    save_steps: float = field(
        default=0.25,
        metadata={"help": "Checkpoint every N steps (N >= 1), or every fraction of max_steps (0 < N < 1: 0.25 saves "
                          "four times a run), through the trainer's own checkpointing; also when a time budget or "
                          "Ctrl-C stops training."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept (the newest)."})
    resume: bool = field(
        default=False,
        metadata={"help": "Continue the run runs_root/run_name from its last checkpoint if it exists (else start "
                          "it); `workbench train --resume RUN_DIR` does the same for a run directory."})
    # Output
    save_adapter: bool = field(default=True, metadata={"help": "Save the LoRA adapter + tokenizer at the end."})
    report_to: str = field(
        default="none",
        metadata={"help": "Trackers fed the same per-step metrics as metrics.jsonl, through transformers: none, "
                          "tensorboard (offline: event files under <run>/trainer/runs), trackio, wandb, or several "
                          "separated by ','."})
    # Cost accounting (workbench.cost): recorded with every run, shown in the app and `workbench eval`.
    gpu_hour_price: float = field(default=GPU_HOUR_PRICE, metadata={"help": "USD per GPU-hour (DeepSeek-R1's rate: $2)."})
    cpu_core_hour_price: float = field(default=CPU_CORE_HOUR_PRICE, metadata={"help": "USD per CPU core-hour, for CPU runs."})


    def __post_init__(self):
        # Plain dicts from here on (YAML-safe, comparable), whatever form they came in.
        self.task_kwargs = dict(TaskKwargs(self.task_kwargs))
        self.validate()

    def validate(self) -> None:
        """Fail fast on bad values, naming the field and the valid choices."""
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "lora_r", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.finetune not in FINETUNE_MODES:
            raise ConfigError(f"unknown finetune {self.finetune!r}; valid choices: {', '.join(FINETUNE_MODES)}")
        if self.learning_rate < 0:
            raise ConfigError(f"learning_rate must be >= 0, got {self.learning_rate}")
        if self.eval_items < 0:
            raise ConfigError(f"eval_items must be >= 0, got {self.eval_items}")
        for name in ("eval_every", "eval_samples"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.gpu_hour_price < 0 or self.cpu_core_hour_price < 0:
            raise ConfigError(f"gpu_hour_price and cpu_core_hour_price must be >= 0 (USD per hour), got "
                              f"{self.gpu_hour_price} and {self.cpu_core_hour_price}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ConfigError(f"max_seconds must be > 0 (or null for no limit), got {self.max_seconds}")
        if not (self.save_steps > 0 and (self.save_steps < 1 or float(self.save_steps).is_integer())):
            raise ConfigError(f"save_steps must be a whole number of steps >= 1 or a fraction of max_steps in (0, 1), "
                              f"got {self.save_steps}")
        if self.save_total_limit < 1:
            raise ConfigError(f"save_total_limit must be >= 1, got {self.save_total_limit}")
        if self.resume and not self.run_name:
            raise ConfigError("resume: true needs a run_name (the run to continue), or use "
                              "workbench train --resume RUN_DIR")
        from workbench.models import PRECISIONS, QUANTIZATIONS
        from workbench.templates import TEMPLATES

        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; valid choices: {', '.join(PRECISIONS)}")
        if self.quantization not in QUANTIZATIONS:
            raise ConfigError(f"unknown quantization {self.quantization!r}; valid choices: {', '.join(QUANTIZATIONS)}")
        if self.template not in TEMPLATES:
            raise ConfigError(f"unknown template {self.template!r}; valid choices: {', '.join(TEMPLATES)}")
        if isinstance(self.stop, (list, tuple)):
            if not all(isinstance(s, str) and s for s in self.stop):
                raise ConfigError(f"stop must be auto, none, or a list of non-empty strings, got {self.stop!r}")
            self.stop = list(self.stop)
        elif not isinstance(self.stop, str) or not self.stop:
            raise ConfigError(f"stop must be auto, none, or strings separated by '|', got {self.stop!r}")

    # Serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in data if k not in known]
        if unknown:
            raise ConfigError(unknown_keys_message(unknown, known))
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path):
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a YAML mapping of config keys")
        return cls.from_dict(data)

    def replace(self, **changes):
        return self.from_dict({**self.to_dict(), **changes})


@dataclass
class WorkbenchConfig(StageConfig):
    """A GRPO experiment (the demo's settings by default)."""

    # GRPO
    rewards: RewardWeights = field(
        default_factory=lambda: {"accuracy": 1.0},
        metadata={"help": "Reward name -> weight, e.g. 'accuracy=1,format=0.5'; your own as package.module:name=0.2 "
                          "(see workbench.rewards)."},
    )
    reward_timeout_s: float | None = field(
        default=120.0,
        metadata={"help": "Time limit of one reward call (a batch), seconds: a call still running gives its batch no "
                          "reward, counted in reward_errors/<name> (None: no limit)."},
    )
    num_generations: int = field(default=8, metadata={"help": "Rollouts per prompt (the group size G)."})
    temperature: float = field(default=1.0, metadata={"help": "Rollout sampling temperature."})
    top_p: float = field(default=1.0, metadata={"help": "Rollout nucleus sampling."})
    max_completion_length: int = field(default=24, metadata={"help": "New tokens per rollout."})
    beta: float = field(default=0.0, metadata={"help": "KL coefficient to the reference (R1-Zero used 0.001)."})
    epsilon: float = field(default=0.2, metadata={"help": "PPO clip range (lower; upper too unless epsilon_high)."})
    epsilon_high: float | None = field(default=None, metadata={"help": "Upper clip (DAPO clip-higher)."})
    loss_type: str = field(default="dapo", metadata={"help": f"TRL loss aggregation: {', '.join(LOSS_TYPES)}."})
    scale_rewards: str = field(
        default="group", metadata={"help": "Advantage scaling: group (GRPO), batch, or none (Dr. GRPO)."}
    )
    num_iterations: int = field(default=1, metadata={"help": "Policy updates per generation batch (mu)."})
    mask_truncated_completions: bool = field(default=False, metadata={"help": "Drop truncated rollouts from loss."})
    shared_prefix: bool = field(
        default=True,
        metadata={"help": "Compute each distinct prompt once in the policy forward/backward (workbench.grpo.fast)."},
    )
    fast_generation: bool = field(
        default=True, metadata={"help": "Generate with LoRA folded in, each prompt prefilled once, cheap sampling (workbench.grpo.fast)."}
    )
    # Generation with vLLM (GPU only; pip install -e ".[vllm]"), mapped into TRL's GRPOConfig as is.
    use_vllm: bool = field(default=False, metadata={"help": "Generate rollouts with vLLM through TRL."})
    vllm_mode: str = field(
        default="colocate",
        metadata={"help": "colocate (vLLM inside each training process, sharing its GPU) or server (a separate "
                          "`trl vllm-serve` process or node; see vllm_server_base_url)."})
    vllm_server_base_url: str | None = field(
        default=None, metadata={"help": "server mode: the vLLM server's URL, e.g. http://10.0.0.5:8000 (default: "
                                        "TRL's, http://0.0.0.0:8000)."})
    vllm_gpu_memory_utilization: float = field(
        default=0.3, metadata={"help": "colocate mode: the share of each GPU's memory vLLM may take, in (0, 1]."})
    vllm_tensor_parallel_size: int = field(
        default=1, metadata={"help": "colocate mode: GPUs one vLLM engine spans."})

    def __post_init__(self):
        self.rewards = {str(k): float(v) for k, v in RewardWeights(self.rewards).items()}
        super().__post_init__()

    def validate(self) -> None:
        super().validate()
        for name in ("max_steps", "num_generations", "max_completion_length", "num_iterations"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_generations < 2:
            raise ConfigError("num_generations must be >= 2: GRPO normalises rewards within a group")
        generation_batch = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if generation_batch % self.num_generations:
            raise ConfigError(
                f"num_generations ({self.num_generations}) must divide the generation batch "
                f"per_device_train_batch_size x gradient_accumulation_steps = {generation_batch}; "
                f"valid num_generations for it: {[g for g in range(2, generation_batch + 1) if generation_batch % g == 0]}"
            )
        if self.loss_type not in LOSS_TYPES:
            raise ConfigError(f"unknown loss_type {self.loss_type!r}; valid choices: {', '.join(LOSS_TYPES)}")
        if self.scale_rewards not in SCALE_REWARDS:
            raise ConfigError(f"unknown scale_rewards {self.scale_rewards!r}; valid choices: {', '.join(SCALE_REWARDS)}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.beta < 0 or self.epsilon <= 0:
            raise ConfigError(f"beta must be >= 0 and epsilon > 0, got beta={self.beta}, epsilon={self.epsilon}")
        if self.reward_timeout_s is not None and not self.reward_timeout_s > 0:
            raise ConfigError(f"reward_timeout_s must be > 0 seconds (or null for no limit), got {self.reward_timeout_s}")
        if self.vllm_mode not in VLLM_MODES:
            raise ConfigError(f"unknown vllm_mode {self.vllm_mode!r}; valid choices: {', '.join(VLLM_MODES)}")
        if not 0 < self.vllm_gpu_memory_utilization <= 1:
            raise ConfigError(f"vllm_gpu_memory_utilization must be in (0, 1], got {self.vllm_gpu_memory_utilization}")
        if self.vllm_tensor_parallel_size < 1:
            raise ConfigError(f"vllm_tensor_parallel_size must be >= 1, got {self.vllm_tensor_parallel_size}")
        if not self.rewards:
            raise ConfigError("rewards is empty; give at least one, e.g. rewards: {accuracy: 1.0}")
        from workbench.rewards import check_reward_names

        try:
            check_reward_names(self.rewards)
        except WorkbenchError as e:
            raise ConfigError(str(e)) from None

    @property
    def prompts_per_step(self) -> int:
        return self.per_device_train_batch_size * self.gradient_accumulation_steps // self.num_generations


@dataclass
class SFTStageConfig(StageConfig):
    """Supervised fine-tuning on JSONL conversations (R1's cold start, its second SFT, distillation)."""

    data: str = field(
        default="coldstart:chain_sum",
        metadata={"help": "Comma-separated SFT JSONL files ({'messages': [...]} or {'prompt', 'completion'} rows); "
                          "'coldstart:<task>' names a shipped cold-start set (see workbench.stages.cold_start)."},
    )
    # Defaults that differ from GRPO's: R1's reasoning format, epochs rather than steps, smaller batches.
    template: str = field(default="chat_think", metadata={"help": "Prompt template of the held-out evaluation."})
    max_steps: int = field(default=-1, metadata={"help": "Optimizer steps (-1: epochs decide)."})
    epochs: float = field(default=2.0, metadata={"help": "Passes over the data (R1 used 2-3)."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Sequences per device per step."})
    max_length: int = field(default=512, metadata={"help": "Tokens per sequence (longer ones are truncated)."})
    eval_max_new_tokens: int | None = field(default=128, metadata={"help": "New tokens per held-out answer."})

    def validate(self) -> None:
        super().validate()
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(f"max_steps must be >= 1, or -1 to let epochs decide; got {self.max_steps}")
        if self.epochs <= 0 or self.max_length < 16:
            raise ConfigError(f"epochs must be > 0 and max_length >= 16; got {self.epochs}, {self.max_length}")
        if not str(self.data).strip():
            raise ConfigError("data is empty; give an SFT JSONL path or 'coldstart:<task>'")

    def data_sources(self) -> list[str]:
        return [d.strip() for d in str(self.data).split(",") if d.strip()]


def unknown_keys_message(unknown, known) -> str:
    """One line naming each unknown key (with the closest valid key, if any) and every valid key."""
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key.lstrip("-"), known, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return f"unknown config key(s): {', '.join(hints)}; valid keys: {', '.join(sorted(known))}"


def parse_cli(argv: list[str] | None = None, cls: type[StageConfig] | None = None):
    """``--config recipe.yaml`` plus ``--key value`` overrides, through TRL's TrlParser.

    ``cls`` is the stage's config class: WorkbenchConfig (GRPO, the default) or SFTStageConfig.
    """
    from trl import TrlParser

    cls = cls or WorkbenchConfig
    prog = "workbench sft" if cls is SFTStageConfig else "workbench train"
    parser = TrlParser(cls, prog=prog)
    parser.allow_abbrev = False  # '--max_step' is a typo to report, not a prefix of '--max_steps'

    def one_line(message: str):
        # argparse prints the whole usage (30 lines) before its error; the workbench says one line.
        raise ConfigError(f"{message}; see {prog} --help")

    parser.error = one_line
    _check_config_file(argv)
    known = {f.name for f in dataclasses.fields(cls)}
    try:
        (cfg,) = parser.parse_args_and_config(args=argv)
    except ValueError as e:
        # TrlParser lists unknown YAML keys; HfArgumentParser lists unknown CLI flags. Name them with hints.
        text = str(e)
        if "Unknown arguments from config file" in text or "not used by the HfArgumentParser" in text:
            items = _quoted_items(text)
            flags = [tok for tok in items if tok.startswith("-")] or items  # CLI lists values too; name the flags
            bad = [tok for tok in flags if tok.lstrip("-") not in known]
            raise ConfigError(unknown_keys_message(bad or [text], known)) from None
        raise ConfigError(text) from None
    return cfg


def _check_config_file(argv: list[str] | None) -> None:
    """A ``--config`` file that is missing or is not YAML, named in one line before TRL reads it."""
    argv = list(argv or [])
    path = None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
    if path is None:
        return
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {path!r} not found" + ("" if p.suffix in (".yaml", ".yml") else
                                                                 "; recipes are YAML files, e.g. configs/demo.yaml"))
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        hint = " (YAML indents with spaces, not tabs)" if "\\t" in str(problem) or "tab" in str(problem) else ""
        raise ConfigError(f"{path}: not valid YAML: {where}{problem}{hint}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe is a YAML mapping of key: value lines, got a {type(data).__name__}")


def _quoted_items(text: str) -> list[str]:
    import re

    return [m for m in re.findall(r"'([^']+)'", text) if m.startswith("--") or not m.startswith("-")]


def _trainer_kwargs(cfg: StageConfig, output_dir: str | Path, precision=None) -> dict:
    """transformers TrainingArguments that every stage sets the same way."""
    import dataclasses

    from transformers import TrainingArguments

    # transformers 5.24 renamed gradient checkpointing to activation checkpointing (the old name warns).
    names = {f.name for f in dataclasses.fields(TrainingArguments)}
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return dict(
        **{checkpointing: cfg.gradient_checkpointing},
        output_dir=str(output_dir),
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_steps,
        max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=precision is not None and precision.dtype == "bfloat16",
        fp16=precision is not None and precision.dtype == "float16",
        use_cpu=precision is not None and precision.device == "cpu",
        logging_steps=1,
        # The trainer's own checkpoints (adapter or model, optimizer, scheduler, RNG states, trainer
        # state) under <run>/trainer/: what an exact resume needs. The final adapter is the workbench's.
        save_strategy="steps",
        save_steps=cfg.save_steps if cfg.save_steps < 1 else int(cfg.save_steps),
        save_total_limit=cfg.save_total_limit,
        # Under DDP every parameter that trains is used in every forward (LoRA or full): no search for
        # unused ones (transformers would turn it on for a PEFT model, an extra graph walk per step).
        ddp_find_unused_parameters=False,
        report_to=[r.strip() for r in cfg.report_to.split(",")] if "," in cfg.report_to else cfg.report_to,
        disable_tqdm=False,
    )


def to_grpo_config(cfg: WorkbenchConfig, output_dir: str | Path, precision=None, **overrides):
    """The only place that builds TRL's GRPOConfig from a WorkbenchConfig."""
    from trl import GRPOConfig

    kwargs = _trainer_kwargs(cfg, output_dir, precision)
    kwargs.update(
        num_generations=cfg.num_generations,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        max_completion_length=cfg.max_completion_length,
        beta=cfg.beta,
        epsilon=cfg.epsilon,
        epsilon_high=cfg.epsilon_high if cfg.epsilon_high is not None else cfg.epsilon,
        loss_type=cfg.loss_type,
        scale_rewards=cfg.scale_rewards,
        num_iterations=cfg.num_iterations,
        mask_truncated_completions=cfg.mask_truncated_completions,
        log_completions=False,  # every rollout goes to rollouts.jsonl instead
        use_vllm=cfg.use_vllm,
        vllm_mode=cfg.vllm_mode,
        vllm_gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
        vllm_tensor_parallel_size=cfg.vllm_tensor_parallel_size,
        **({"vllm_server_base_url": cfg.vllm_server_base_url} if cfg.vllm_server_base_url else {}),
        remove_unused_columns=False,
    )
    kwargs.update(overrides)
    return GRPOConfig(**kwargs)


def to_sft_config(cfg: SFTStageConfig, output_dir: str | Path, precision=None, **overrides):
    """The only place that builds TRL's SFTConfig from an SFTStageConfig."""
    from trl import SFTConfig

    kwargs = _trainer_kwargs(cfg, output_dir, precision)
    kwargs.update(
        num_train_epochs=cfg.epochs,
        max_length=cfg.max_length,
        packing=False,  # one conversation per row: completion-only loss needs its prompt/completion boundary
        completion_only_loss=True,  # loss on the assistant's reply only, as R1's SFT (prompts are not targets)
    )
    kwargs.update(overrides)
    return SFTConfig(**kwargs)
