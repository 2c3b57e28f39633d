"""The run directory: the only module that knows its layout. It writes it and reads it.

Layout of ``<runs_root>/<run_name>/``::

    config.yaml      the run's settings. A GRPO run: its WorkbenchConfig (``WorkbenchConfig.from_yaml``
                       reads it back). Other stages add ``stage``: "sft" (an SFTStageConfig) or
                       "sample" (workbench.stages.rejection_sampling's options); a run without ``stage`` is GRPO.
    events.jsonl     one object per event: {"time", "event", ...}; events are
                       start       {"stage", "model", "task", "precision", "pid", "host", "process", "versions",
                                    + "pipeline", "pipeline_stage", "stage_index", "start_model"
                                    when a pipeline ran it}
                       setup       {"template", "train_prompts", "eval_items", "trainable_params",
                                    "total_params", "quantized_modules", "seconds"}
                       eval        {"phase": "before"|"after", "n", "accuracy", "stderr", "items": [...]}
                       checkpoint  {"path"}
                       error       {"where", "error", ...}   (a reward function that raised, a crash)
                       train_summary  TRL's end-of-training numbers (train_runtime, ...)
                       budget      {"max_seconds", "step", "seconds"}: training stopped by its time budget
                       sample_summary  a sample stage's counts: samples, accepted, rejected by reason, ...
                       resume      {"from_step", "checkpoint", "found", "dropped": {file: count}, "pid",
                                    "process", "host"}: a resume from the checkpoint of step from_step
                       end         {"status": "finished"|"crashed"|"interrupted", "seconds", ...}
    metrics.jsonl    one object per logged optimizer step: {"step", "time", "reward_mean", "reward_std",
                       "rewards/<name>/mean", "rewards/<name>/std", "accuracy", "completion_length_mean",
                       "completion_length_max", "truncation_rate", "kl", "entropy", "learning_rate",
                       "step_seconds", "generation_seconds", "generated_tokens", "generated_tokens_per_s",
                       "reward_errors/<name>", ...} plus every raw key TRL logged (nothing logged is lost).
                       "kl" is null when beta = 0: TRL then computes no reference log-probs.
                     An SFT run's lines are {"step", "loss", "token_accuracy", "entropy", "grad_norm",
                       "learning_rate", "step_seconds", ...TRL's raw keys}.
    rollouts.jsonl   one object per rollout, every rollout of every step: {"step", "prompt_id",
                       "prompt", "answer", "group", "index", "completion", "tokens", "truncated",
                       "rewards": {name: value or null}, "reward", "advantage",
                       "traces": workbench.analysis.traces.tag(completion, prompt)}
    rollouts.index.jsonl  one line per step per write: {"step", "offset" (bytes into rollouts.jsonl),
                       "bytes", "n", "summary": workbench.analysis.traces.step_summary or null}, so a
                       reader shows one step, or draws the curves, without reading the log (RolloutLog).
                       Derived: a resume deletes it and readers rebuild what it lacks from the log.
    trainer/         the trainer's checkpoints (checkpoint-<step>/: adapter or model, optimizer,
                       scheduler, RNG states, trainer state), the last ``save_total_limit`` kept
    superseded/      records a resume took out of metrics.jsonl and rollouts.jsonl (see below)
    adapter/         the trained LoRA adapter and tokenizer (``save_pretrained`` format)
    merged/          a pipeline stage's policy: the adapter folded into its starting model, which
                       the next stage starts from (workbench.models.merge_adapter)
    data.jsonl       a sample stage's accepted samples as SFT rows (workbench.stages.sft_data); its
                       rollouts.jsonl has every candidate with "accepted" and "reject_reason"

Every .jsonl file is append-only; each record is written as one ``write`` of one line and flushed,
so another process can read the files while training runs. Readers skip a partial last line (no
trailing newline yet) and count, rather than raise on, corrupt lines.

A resume is the one exception, and it keeps the log exact: it continues from the last checkpoint
(step k), so the records of steps after k that the killed process had written are moved out of
metrics.jsonl and rollouts.jsonl into ``superseded/`` (files replaced atomically, nothing deleted),
and every step appears exactly once. events.jsonl is not rewritten; ``current_events`` (which
``Run.events`` applies) drops what a resume superseded: events before it with a "step" after k, and
the "end" events before it.

No torch or TRL imports here: the app and the notebooks' analysis cells read runs without them.
"""

from __future__ import annotations

import errno
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson  # reads JSON lines several times faster than json (a million-rollout run's index: issue 15)
import yaml

from workbench.errors import WorkbenchError

CONFIG = "config.yaml"
EVENTS = "events.jsonl"
METRICS = "metrics.jsonl"
ROLLOUTS = "rollouts.jsonl"
ROLLOUT_INDEX = "rollouts.index.jsonl"  # one line per step per write: byte range + summary (RolloutLog)
ADAPTER = "adapter"
POLICY = "policy"  # a full fine-tune's whole policy (finetune: full), where a LoRA run has adapter/
TRAINER = "trainer"  # the trainer's output_dir: its checkpoint-<step>/ directories
SUPERSEDED = "superseded"


class RunDirError(WorkbenchError):
    pass


def _clean(value: Any) -> Any:
    # JSON has no NaN/inf; write null so every reader (browsers included) can parse the line.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def safe_run_dir(runs_root: str | Path, run_name: str) -> Path:
    """Resolve ``runs_root/run_name``, refusing names that would leave the runs root."""
    if not run_name or run_name in (".", "..") or "/" in run_name or "\\" in run_name or os.path.isabs(run_name):
        raise RunDirError(f"invalid run name {run_name!r}: use a plain directory name (no '/', '..' or absolute path)")
    root = Path(runs_root).resolve()
    path = (root / run_name).resolve()
    if path.parent != root:
        raise RunDirError(f"run name {run_name!r} resolves outside the runs root {root}")
    return path


def unused_run_name(runs_root: str | Path, base: str) -> str:
    """``base``, or ``base-2``, ``base-3``, ... when that directory exists under ``runs_root``: for
    generated names (a timestamp to the second), so two runs started within one second do not collide."""
    name, n = base, 1
    while (Path(runs_root) / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


class DiskFullError(RunDirError):
    """The device holding a run directory is full: the run cannot go on writing its log."""


class RunWriter:
    """Appends to a run directory. Create with ``RunWriter.create``."""

    def __init__(self, path: Path, active: bool = True):
        self.path = Path(path)
        self.active = active  # False: a process other than the main one under N processes (writes nothing)
        self._files = {}

    @classmethod
    def follower(cls, path: str | Path) -> "RunWriter":
        """A writer for the run at ``path`` that writes nothing: what every process but the main one
        holds when N processes train one run (``workbench.distributed``); the main one writes."""
        return cls(path, active=False)

    @classmethod
    def create(cls, runs_root: str | Path, run_name: str) -> "RunWriter":
        root = Path(runs_root)
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / f".write-test-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise RunDirError(f"runs directory {str(root)!r} is not writable ({e.strerror}); pass a writable --runs_root") from None
        path = safe_run_dir(root, run_name)
        if path.exists() and any(path.iterdir()):
            raise RunDirError(f"run directory {str(path)!r} already exists; choose another --run_name or remove it")
        path.mkdir(exist_ok=True)
        return cls(path)

    @classmethod
    def reopen(cls, path: str | Path) -> "RunWriter":
        """A writer that appends to the existing run directory ``path`` (a resume)."""
        path = Path(path)
        if not (path / EVENTS).is_file():
            raise RunDirError(f"no run to resume at {str(path)!r} (it has no {EVENTS})")
        return cls(path)

    def supersede_after(self, step: int) -> dict[str, int]:
        """Move the records of steps after ``step`` out of metrics.jsonl and rollouts.jsonl into
        ``superseded/<file>`` (each file replaced atomically); returns {file: records moved}."""
        moved = {}
        # The index's byte ranges no longer hold once rollouts.jsonl is rewritten: readers rebuild it
        # from the log (RolloutLog reads what no index line covers), and new steps are indexed again.
        (self.path / ROLLOUT_INDEX).unlink(missing_ok=True)
        for name in (METRICS, ROLLOUTS):
            path = self.path / name
            if not path.is_file():
                continue
            keep, drop = [], []
            with open(path, "rb") as f:
                for line in f:
                    record = parse_line(line)  # a corrupt or cut line (None) stays where readers count it
                    late = record is not None and isinstance(record.get("step"), int) and record["step"] > step
                    (drop if late else keep).append(line if line.endswith(b"\n") else line + b"\n")
            moved[name] = len(drop)
            if drop:
                (self.path / SUPERSEDED).mkdir(exist_ok=True)
                with open(self.path / SUPERSEDED / name, "ab") as f:
                    f.writelines(drop)
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_bytes(b"".join(keep))
                os.replace(tmp, path)
        return moved

    def _append(self, name: str, record: dict) -> None:
        if not self.active:
            return
        f = self._files.get(name)
        try:
            if f is None:
                f = self._files[name] = open(self.path / name, "a", encoding="utf-8")
            f.write(json.dumps(_clean(record), ensure_ascii=False) + "\n")
            f.flush()
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            self._files.pop(name, None)
            _close_quietly(f)  # its buffer cannot be written either
            raise DiskFullError(f"no space left on the device while writing {self.path / name}; the run stops here "
                                f"(free space, then resume it from its last checkpoint)") from None

    def write_config(self, config_dict: dict) -> None:
        if not self.active:
            return
        (self.path / CONFIG).write_text(yaml.safe_dump(config_dict, sort_keys=False))

    def event(self, event: str, **data) -> None:
        self._append(EVENTS, {"time": time.time(), "event": event, **data})

    def metrics(self, record: dict) -> None:
        self._append(METRICS, {"time": time.time(), **record})

    def rollouts(self, records: list[dict], summarize=None) -> None:
        """Append ``records`` to rollouts.jsonl, then one line per step to its index
        (rollouts.index.jsonl: the step's byte range, its rollout count and ``summarize(records of the
        step)``, e.g. ``workbench.analysis.traces.step_summary``), so readers find a step, or draw
        the curves, without reading the log (``RolloutLog``)."""
        if not self.active or not records:
            return
        path = self.path / ROLLOUTS
        end = path.stat().st_size if path.exists() else 0  # every line is flushed: the size is where it ends
        spans = []  # (step, first byte, end byte) of each record
        for record in records:
            self._append(ROLLOUTS, record)
            offset, end = end, path.stat().st_size
            spans.append((record.get("step"), offset, end))
        # Consecutive records of one step form one range.
        i = 0
        while i < len(spans):
            j = i
            while j + 1 < len(spans) and spans[j + 1][0] == spans[i][0]:
                j += 1
            part = records[i:j + 1]
            self._append(ROLLOUT_INDEX, {"step": spans[i][0], "offset": spans[i][1], "bytes": spans[j][2] - spans[i][1],
                                         "n": len(part), "summary": summarize(part) if summarize else None})
            i = j + 1

    def close(self) -> None:
        for f in self._files.values():
            _close_quietly(f)
        self._files.clear()


def _close_quietly(f) -> None:
    """Close a log file whose last flush may fail (a full disk): what could not be written is lost
    either way, and the error that matters was raised where the write failed."""
    if f is None:
        return
    try:
        f.close()
    except OSError:
        pass


def current_events(events: list[dict]) -> list[dict]:
    """``events`` without what a later ``resume`` superseded (module docstring): events before a
    resume whose "step" is past its "from_step", and "end" events before it."""
    resumes = [i for i, e in enumerate(events) if e.get("event") == "resume"]
    if not resumes:
        return events
    out = []
    for i, e in enumerate(events):
        later = [events[j]["from_step"] for j in resumes if j > i and isinstance(events[j].get("from_step"), int)]
        if later and (e.get("event") == "end" or (isinstance(e.get("step"), int) and e["step"] > min(later))):
            continue
        out.append(e)
    return out


def parse_line(line: bytes) -> dict | None:
    """One JSON-lines record, or None for a line that is not a JSON object (corrupt, cut, blank)."""
    try:
        record = orjson.loads(line)
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def read_jsonl(path: str | Path, offset: int = 0) -> tuple[list[dict], int, int]:
    """Read complete lines from byte ``offset``: (records, next_offset, corrupt_line_count).

    A last line without its newline is still being written: it is left for the next read
    (``next_offset`` points at its start). A complete line that is not JSON is counted and skipped.
    """
    path = Path(path)
    if not path.exists():
        return [], offset, 0
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1  # 0 when no complete line
    records, corrupt = [], 0
    for line in data[:end].splitlines():
        if not line.strip():
            continue
        record = parse_line(line)
        if record is None:
            corrupt += 1
        else:
            records.append(record)
    return records, offset + end, corrupt


class RolloutLog:
    """rollouts.jsonl read through its index: which steps it holds, each step's rollouts by seeking
    to its byte ranges, and each step's summary, without reading the log. Refreshed incrementally
    (``refresh``) while a run writes; a run without an index (older runs, a sample stage's log) or
    bytes no index line covers yet are read once, from where the index stops.

    ``summarize(records)`` (e.g. ``traces.step_summary``) makes a summary where the index has none;
    ``merge(a, b)`` (``traces.merge_summaries``) joins one step's summaries. Without them,
    ``summaries`` is empty. Raises RunDirError for files linked out of the run directory."""

    def __init__(self, run: "Run", summarize=None, merge=None):
        self.run, self.summarize, self.merge = run, summarize, merge
        self._reset()

    def _reset(self) -> None:
        self.resets = getattr(self, "resets", -1) + 1  # times the log was found replaced (a resume) or cut
        self.end = 0  # bytes of rollouts.jsonl accounted for
        self.index_offset = 0
        self.count = 0
        self.corrupt = 0
        self.version = 0
        self._inode = None
        self._ranges: dict = {}  # step -> [(offset, bytes, n, summary or None)]
        self._merged: dict = {}  # step -> (ranges seen, merged summary)

    def refresh(self) -> bool:
        """Take in what the writer appended since the last call; True when anything new arrived."""
        path, index = self.run.file(ROLLOUTS), self.run.file(ROLLOUT_INDEX)
        stat = path.stat() if path.exists() else None
        size, inode = (stat.st_size, stat.st_ino) if stat else (0, None)
        if size < self.end or (self._inode is not None and inode != self._inode):  # replaced (a resume) or cut
            self._reset()
        self._inode = inode
        before = (self.end, self.count, self.corrupt)
        entries, self.index_offset, _ = read_jsonl(index, self.index_offset)
        for e in entries:
            offset, nbytes = e.get("offset"), e.get("bytes")
            if not (isinstance(offset, int) and isinstance(nbytes, int)) or offset + nbytes > size:
                continue  # not a range of this log (or of a log since rewritten): the scan below covers it
            if offset < self.end:
                continue  # already read from the log itself
            if offset > self.end:
                self._scan(self.end, offset)
            self._add(e.get("step"), offset, nbytes, int(e.get("n") or 0), e.get("summary"))
            self.end = offset + nbytes
        self._scan(self.end, size)
        changed = (self.end, self.count, self.corrupt) != before
        self.version += changed
        return changed

    def _add(self, step, offset: int, nbytes: int, n: int, summary) -> None:
        self._ranges.setdefault(step, []).append((offset, nbytes, n, summary))
        self.count += n

    def _scan(self, start: int, stop: int) -> None:
        """Index the complete lines in bytes [start, stop) of the log; self.end moves past them."""
        if stop <= start:
            return
        with open(self.run.file(ROLLOUTS), "rb") as f:
            f.seek(start)
            data = f.read(stop - start)
        cut = data.rfind(b"\n") + 1
        pos, run_step, run_start, run_records = start, None, start, []
        for line in data[:cut].splitlines(keepends=True):
            record = parse_line(line)
            step = record.get("step") if record is not None else None
            if record is None:
                self.corrupt += bool(line.strip())
            elif run_records and step != run_step:
                self._add(run_step, run_start, pos - run_start, len(run_records), self._summary(run_records))
                run_records, run_start = [], pos
            if record is not None:
                if not run_records:
                    run_start, run_step = pos, step
                run_records.append(record)
            pos += len(line)
        if run_records:
            self._add(run_step, run_start, pos - run_start, len(run_records), self._summary(run_records))
        self.end = start + cut

    def _summary(self, records):
        return self.summarize(records) if self.summarize else None

    def steps(self) -> list:
        """The steps with rollouts, in order."""
        return sorted(s for s in self._ranges if isinstance(s, int))

    def step_count(self, step) -> int:
        """Rollouts of ``step`` taken in so far."""
        return sum(n for _, _, n, _ in self._ranges.get(step, []))

    def step_rollouts(self, step) -> list[dict]:
        """The rollouts of ``step`` in log order, read from its byte ranges only."""
        return [r for offset, nbytes, _, _ in self._ranges.get(step, []) for r in self._read(offset, nbytes)]

    def summaries(self) -> dict:
        """{step: summary} for every step, each step's ranges merged once (and again only when it grows)."""
        if not (self.summarize and self.merge):
            return {}
        out = {}
        for step in self.steps():
            ranges = self._ranges[step]
            seen, merged = self._merged.get(step, (0, None))
            for i in range(seen, len(ranges)):
                offset, nbytes, n, summary = ranges[i]
                if summary is None:  # an index line written without one (a sample stage): read the range
                    summary = self.summarize(self._read(offset, nbytes))
                    ranges[i] = (offset, nbytes, n, summary)
                merged = summary if merged is None else self.merge(merged, summary)
            self._merged[step] = (len(ranges), merged)
            out[step] = merged
        return out

    def _read(self, offset: int, nbytes: int) -> list[dict]:
        if not nbytes:
            return []
        with open(self.run.file(ROLLOUTS), "rb") as f:
            f.seek(offset)
            lines = f.read(nbytes).splitlines()
        return [r for r in map(parse_line, lines) if r is not None]


@dataclass
class Run:
    """Read side of a run directory (finished, running or crashed)."""

    path: Path

    def __post_init__(self):
        self.path = Path(self.path)
        if not self.path.is_dir():
            raise RunDirError(f"no run directory at {str(self.path)!r}")

    @classmethod
    def open(cls, runs_root: str | Path, run_name: str) -> "Run":
        return cls(safe_run_dir(runs_root, run_name))

    @property
    def name(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        """Path of one of the run's files, refusing a link that leads out of the run directory
        (a run copied from elsewhere must not make a reader open other files)."""
        p = self.path / name
        if p.exists() and not p.resolve().is_relative_to(self.path.resolve()):
            raise RunDirError(f"{name} in run {self.name!r} points outside its run directory")
        return p

    def config(self) -> dict:
        p = self.file(CONFIG)
        return (yaml.safe_load(p.read_text()) or {}) if p.exists() else {}

    def events(self) -> list[dict]:
        """The run's events, without those a resume superseded (``current_events``)."""
        return current_events(read_jsonl(self.file(EVENTS))[0])

    def metrics(self) -> list[dict]:
        return read_jsonl(self.file(METRICS))[0]

    def rollouts(self, step: int | None = None) -> list[dict]:
        """Every rollout, or with ``step`` that step's only, read through the index (``RolloutLog``)
        so a step of a million-rollout run costs what the step holds."""
        if step is None:
            return read_jsonl(self.file(ROLLOUTS))[0]
        log = RolloutLog(self)
        log.refresh()
        return log.step_rollouts(step)

    def evals(self) -> dict[str, dict]:
        return {e["phase"]: e for e in self.events() if e.get("event") == "eval"}

    def status(self) -> str:
        """'running', 'finished', 'crashed' or 'empty'. A started run whose process is gone without an
        end event counts as crashed when it ran on this host."""
        events = self.events()
        if not events:
            return "empty"
        end = next((e for e in reversed(events) if e.get("event") == "end"), None)
        if end is not None:
            return end.get("status", "finished")
        start = next((e for e in events if e.get("event") == "start"), {})
        if start.get("host") == os.uname().nodename and start.get("pid") and not _same_process(start):
            return "crashed"
        return "running"

    @property
    def adapter_dir(self) -> Path:
        return self.file(ADAPTER)

    def last_checkpoint(self) -> Path | None:
        """The trainer checkpoint a resume continues from (the highest step), or None."""
        root = self.file(TRAINER)
        found = [(int(p.name.split("-")[1]), p) for p in root.glob("checkpoint-*")
                 if p.is_dir() and p.name.split("-")[1].isdigit() and (p / "trainer_state.json").is_file()] \
            if root.is_dir() else []
        return max(found)[1] if found else None

    def checkpoint_step(self) -> int | None:
        """The training step of the run's last saved adapter (its last ``checkpoint`` event), or None."""
        steps = [e.get("step") for e in self.events() if e.get("event") == "checkpoint"]
        return steps[-1] if steps else None


def process_identity(pid: int | None = None) -> str | None:
    """What tells a process apart from a later one that reuses its PID: "<boot id>:<start time>"
    (clock ticks after boot, /proc/<pid>/stat field 22). None where /proc does not say (not Linux,
    or no such process). Recorded as "process" in a run's start event."""
    pid = os.getpid() if pid is None else int(pid)
    try:
        with open(f"/proc/{pid}/stat") as f:
            # The command name (field 2) may hold spaces and parentheses: count from its last ")".
            start_ticks = f.read().rsplit(")", 1)[1].split()[19]
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except (OSError, IndexError):
        return None
    return f"{boot}:{start_ticks}"


def this_process() -> dict:
    """{"pid", "process", "host"} of the calling process: what a start or resume event records so
    that ``Run.status`` can tell whether the run's process still lives (``process_identity``)."""
    return {"pid": os.getpid(), "process": process_identity(), "host": os.uname().nodename}


def _same_process(start: dict) -> bool:
    """Whether the process that wrote the ``start`` event is still running: its PID is alive and,
    where the event recorded one, it is the same process (not a later one that reused the PID)."""
    if not _pid_alive(start["pid"]):
        return False
    recorded = start.get("process")
    return recorded is None or process_identity(start["pid"]) in (recorded, None)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def list_runs(runs_root: str | Path) -> list[Run]:
    root = Path(runs_root)
    if not root.is_dir():
        return []
    runs = [Run(p) for p in root.iterdir() if p.is_dir() and ((p / EVENTS).exists() or (p / CONFIG).exists())]
    return sorted(runs, key=lambda r: (r.path / CONFIG).stat().st_mtime if (r.path / CONFIG).exists() else 0)
