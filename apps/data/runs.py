"""Reading runs for the app: ``RunData`` (a run's records, read incrementally through
``workbench.runlog``), ``RunStore`` (every run under a runs root), and the run table and status line."""

from __future__ import annotations

import html
import os
import threading
import time
from pathlib import Path

from workbench import cost, runlog
from workbench.analysis import traces
from workbench.runlog import RunDirError

FILES = (runlog.EVENTS, runlog.METRICS, runlog.ROLLOUTS)
RUN_COLUMNS = ["run", "status", "step", "elapsed", "ETA", "last reward", "held-out acc. before → after", "bad lines"]


class RunData:
    """A run's records, extended incrementally (files are append-only).

    Events and metrics are kept in memory (one line per step or event). Rollouts are not: they are
    read through ``runlog.RolloutLog``, so opening a run costs its index (one line per step), a step
    costs that step's rollouts, and the curves come from per-step summaries
    (``traces.step_summary``). ``version`` increases whenever new records arrive, so callers can skip
    re-rendering. ``corrupt`` counts complete lines that were not JSON; ``partial`` the bytes of a
    last line without its newline (still being written, or cut off if the run is over).
    """

    def __init__(self, run: runlog.Run):
        self.run = run
        self.records: dict[str, list[dict]] = {f: [] for f in FILES if f != runlog.ROLLOUTS}
        self.log = runlog.RolloutLog(run, traces.step_summary, traces.merge_summaries)
        self.offsets = dict.fromkeys(FILES, 0)
        self._inodes: dict[str, int | None] = {}
        self.corrupt = dict.fromkeys(FILES, 0)
        self.partial = dict.fromkeys(FILES, 0)
        self.version = 0
        self._status: tuple | None = None
        self._derived: dict[str, tuple[int, object]] = {}
        self._steps: dict = {}  # step -> (rollout count when read, its rollouts with "tag"): the steps last shown
        self._rows: dict = {}  # step -> (rollout count, its traces.curve_row)
        self._summaries: tuple = (None, {})  # ((log resets, log version), log.summaries())
        self._lock = threading.RLock()

    name = property(lambda self: self.run.name)
    # A resumed run is one run: what its resume superseded is left out (runlog.current_events).
    events = property(lambda self: runlog.current_events(self.records[runlog.EVENTS]))
    metrics = property(lambda self: self.records[runlog.METRICS])
    rollout_count = property(lambda self: self.log.count)

    def refresh(self, files=FILES) -> bool:
        """Read what was appended since the last call; True when anything new arrived."""
        changed = False
        with self._lock:
            for name in files:
                if name == runlog.ROLLOUTS:
                    changed |= self._refresh_rollouts()
                    continue
                try:
                    path = self.run.file(name)
                except RunDirError:  # a link out of the run directory: read nothing from it
                    continue
                stat = path.stat() if path.exists() else None
                size, inode = (stat.st_size, stat.st_ino) if stat else (0, None)
                replaced = self._inodes.get(name) not in (None, inode)  # a resume rewrites metrics/rollouts
                self._inodes[name] = inode
                if size < self.offsets[name] or replaced:  # the file was replaced or cut: read it again
                    self.records[name], self.offsets[name], self.corrupt[name] = [], 0, 0
                    self._derived = {}
                    changed = True
                new, offset, bad = runlog.read_jsonl(path, self.offsets[name])
                self.records[name].extend(new)
                self.corrupt[name] += bad
                self.offsets[name], self.partial[name] = offset, size - offset
                changed |= bool(new or bad)
            if changed:
                self.version += 1
        return changed

    def _refresh_rollouts(self) -> bool:
        try:
            path = self.run.file(runlog.ROLLOUTS)
            resets = self.log.resets
            changed = self.log.refresh()
        except RunDirError:  # a link out of the run directory: read nothing from it
            return False
        if self.log.resets != resets:  # rewritten (a resume) or cut: what was read of it is void
            self._steps, self._rows, self._derived, changed = {}, {}, {}, True
        size = path.stat().st_size if path.exists() else 0
        self.offsets[runlog.ROLLOUTS], self.corrupt[runlog.ROLLOUTS] = self.log.end, self.log.corrupt
        self.partial[runlog.ROLLOUTS] = size - self.log.end
        return changed

    def config(self) -> dict:
        try:
            return self.run.config()
        except Exception:  # a config.yaml cut mid-write: show the run anyway
            return {}

    def status(self) -> str:
        # A finished or crashed run stays so until its events file changes; only a live one
        # needs Run.status()'s process check on every refresh.
        key = (self.offsets[runlog.EVENTS], self.corrupt[runlog.EVENTS])
        if self._status and self._status[0] == key and self._status[1] in ("finished", "crashed"):
            return self._status[1]
        status = self.run.status()
        self._status = (key, status)
        return status

    def rollout_steps(self) -> list[int]:
        """The steps that have rollouts, in order."""
        return self.log.steps()

    def step_rollouts(self, step) -> list[dict]:
        """``step``'s rollouts in log order, each with "tag" (its ``traces.tag`` summary: the logged
        "traces" when of the current pattern version, else computed); read from the step's byte
        ranges once, then again only when the step grows."""
        with self._lock:
            n = self.log.step_count(step)
            hit = self._steps.get(step)
            if hit is None or hit[0] != n:
                rows = []
                for r in self.log.step_rollouts(step):
                    t = r.get("traces")
                    ok = isinstance(t, dict) and t.get("version") == traces.VERSION
                    rows.append({**r, "tag": t if ok else traces.tag(r.get("completion") or "", r.get("prompt"))})
                if len(self._steps) >= 8:  # the steps someone is looking at, not the whole run
                    self._steps.pop(next(iter(self._steps)))
                hit = self._steps[step] = (n, rows)
            return hit[1]

    def summaries(self) -> dict:
        """{step: traces.step_summary of its rollouts}, from the index (computed once per step, the
        dict rebuilt only when the log grew)."""
        with self._lock:
            if self._summaries[0] != (self.log.resets, self.log.version):
                self._summaries = ((self.log.resets, self.log.version), self.log.summaries())
            return self._summaries[1]

    def curve_rows(self) -> list[dict]:
        """``traces.step_curves`` of the run from its summaries, each step's row computed once (and
        again only when the step grows): a refresh costs the new steps, not the run."""
        with self._lock:
            summaries = self.summaries()
            for step, sm in summaries.items():
                hit = self._rows.get(step)
                if sm["n"] and (hit is None or hit[0] != sm["n"]):
                    self._rows[step] = (sm["n"], traces.curve_row(step, sm))
            return [self._rows[s][1] for s in summaries if summaries[s]["n"]]

    def derived(self, key: str, compute):
        """``compute(self)``, cached until new records arrive."""
        with self._lock:
            hit = self._derived.get(key)
            if hit is None or hit[0] != self.version:
                hit = self._derived[key] = (self.version, compute(self))
            return hit[1]


class RunStore:
    """Every run under one runs root, shared by all browser sessions of the app."""

    def __init__(self, runs_root: str | Path):
        self.root = Path(runs_root)
        self._runs: dict[Path, RunData] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Run names, oldest first (the newest is the one a newcomer wants)."""
        return [r.name for r in runlog.list_runs(self.root)]

    def get(self, name: str, files=FILES) -> RunData:
        """The run called ``name``, refreshed; RunDirError for a bad or missing name."""
        run = runlog.Run.open(self.root, name)
        with self._lock:
            data = self._runs.get(run.path)
            if data is None:
                data = self._runs[run.path] = RunData(run)
        data.refresh(files)
        return data


# --- Summaries -----------------------------------------------------------------------------------


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h {m:02d}m" if h else (f"{m}m {sec:02d}s" if m else f"{sec}s")


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def summary(data: RunData) -> dict:
    """Status, progress and timing of a run: what the run table and status line show."""
    cfg = data.config()
    events, metrics = data.events, data.metrics
    status = data.status()
    step = max((m.get("step") or 0 for m in metrics), default=0)
    max_steps = cfg.get("max_steps")
    start = next((e for e in events if e.get("event") == "start"), None)
    end = next((e for e in reversed(events) if e.get("event") == "end"), None)
    if isinstance(max_steps, int) and max_steps <= 0:  # an SFT stage whose epochs decide its length
        epoch = next((m.get("epoch") for m in reversed(metrics) if m.get("epoch")), None)
        if end is not None and isinstance(end.get("steps"), int):
            max_steps = end["steps"]
        elif isinstance(epoch, (int, float)) and isinstance(cfg.get("epochs"), (int, float)) and step:
            max_steps = round(step / epoch * cfg["epochs"])
        else:
            max_steps = None
    if end is not None and isinstance(end.get("seconds"), (int, float)):
        elapsed = end["seconds"]
    elif start is not None and isinstance(start.get("time"), (int, float)):
        last = max([e.get("time") or 0 for e in events] + [m.get("time") or 0 for m in metrics])
        elapsed = (time.time() if status == "running" else last) - start["time"]
    else:
        elapsed = None
    step_times = [m["step_seconds"] for m in metrics if isinstance(m.get("step_seconds"), (int, float))]
    eta = 0.0 if status == "finished" else None
    if status == "running" and step_times and isinstance(max_steps, int):
        eta = sum(step_times) / len(step_times) * max(0, max_steps - step)
    evals = {e.get("phase"): e for e in events if e.get("event") == "eval"}
    rewards = [m.get("reward_mean") for m in metrics if m.get("reward_mean") is not None]
    return {
        "name": data.name, "status": status, "step": step, "max_steps": max_steps,
        "elapsed": elapsed, "eta": eta, "rollouts": data.rollout_count,
        "last_reward": rewards[-1] if rewards else None,
        "before": (evals.get("before") or {}).get("accuracy"), "after": (evals.get("after") or {}).get("accuracy"),
        "corrupt": sum(data.corrupt.values()),
        # A last line with no newline in a run that is over will never be completed (a full disk, a
        # kill mid-write); files the table does not read (rollouts) are checked by their last byte.
        "partial": sum(data.partial.values()) + sum(_ends_cut(data, f) for f in FILES if not data.offsets[f])
        if status != "running" else 0,
        "error": next((e.get("error") for e in reversed(events) if e.get("event") == "error"
                       and e.get("where") == "train"), None),
        "model": cfg.get("model"), "task": cfg.get("task"),
        # Device-hours and estimated cost so far (workbench.cost); None for runs made before costs were recorded.
        "cost": cost.estimate(events, metrics, cfg, running=status == "running"),
    }


def _ends_cut(data: RunData, name: str) -> int:
    """1 when the run's file ``name`` ends in a line without its newline, else 0 (reads one byte)."""
    try:
        path = data.run.file(name)
        if not path.is_file() or path.stat().st_size == 0:
            return 0
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return int(f.read(1) != b"\n")
    except (OSError, RunDirError):
        return 0


def run_table(store: RunStore) -> list[list]:
    """One row per run (columns ``RUN_COLUMNS``), newest first."""
    rows = []
    for name in reversed(store.names()):
        try:
            s = summary(store.get(name, files=(runlog.EVENTS, runlog.METRICS)))
        except Exception as e:  # one unreadable run (a missing dir, a hand-edited file) must not blank the table
            rows.append([name, f"unreadable: {e}", "", "", "", "", "", ""])
            continue
        rows.append([
            name, s["status"], f"{s['step']}/{s['max_steps'] or '?'}", fmt_seconds(s["elapsed"]),
            fmt_seconds(s["eta"]) if s["status"] == "running" else "–",
            "–" if s["last_reward"] is None else f"{s['last_reward']:.3f}",
            f"{pct(s['before'])} → {pct(s['after'])}", s["corrupt"] + (1 if s["partial"] else 0),
        ])
    return rows


KNOWN_STATUSES = ("running", "finished", "crashed", "empty")


def status_html(s: dict) -> str:
    """The status line of the selected run; the text "step N" is what tests watch grow."""
    # Every value here comes from files a run directory holds, which may be copied from anywhere.
    status = s["status"] if s["status"] in KNOWN_STATUSES else "unknown"
    parts = [f"<b>{html.escape(s['name'])}</b>", f'<span class="wb-status wb-{status}">{status}</span>',
             f"step {html.escape(str(s['step']))}/{html.escape(str(s['max_steps'] or '?'))}",
             f"elapsed {fmt_seconds(s['elapsed'])}"]
    if s["status"] == "running":
        parts.append("ETA " + (fmt_seconds(s["eta"]) if s["eta"] is not None else "after the first step"))
    parts.append(f"{s['rollouts']} rollouts")
    if s["before"] is not None or s["after"] is not None:
        parts.append(f"held-out accuracy {pct(s['before'])} → {pct(s['after'])}")
    parts.append(f"{html.escape(str(s['model']))} on {html.escape(str(s['task']))}")
    if s.get("cost"):
        c = s["cost"]
        unit = html.escape(str(c.get("unit") or "device"))
        parts.append(f'<span class="wb-cost" title="{html.escape(cost.describe(c))}">{c["device_hours"]:.3g} '
                     f'{unit}-hours · ${c["cost_usd"]:.3g} at ${c["price_per_hour"]:g}/{unit}-hour</span>')
    out = " · ".join(parts)
    warnings = [f"{s['corrupt']} corrupt line(s) skipped"] if s["corrupt"] else []
    if s["partial"]:
        warnings.append("an incomplete last line was ignored (the run ended while writing it)")
    if s["error"]:
        warnings.append("training error: " + html.escape(str(s["error"])[:300]))
    if warnings:
        out += '<div class="wb-warn">' + "; ".join(warnings) + "</div>"
    return f'<div class="wb-statusline">{out}</div>'


def message_html(text: str, kind: str = "info") -> str:
    """A boxed message (kind: info, warn, error) for empty or bad states."""
    return f'<div class="wb-msg wb-msg-{kind}">{html.escape(text)}</div>'
