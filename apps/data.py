"""What the app shows, as pure functions of run directories: tables, figures and HTML.

No gradio import here, so all of it is tested without a server (tests/test_app_data.py). Runs are
read through ``workbench.runlog`` only. torch/transformers are imported only when the playground
generates (``play``); everything else stays light enough to refresh every two seconds.

    store = RunStore("runs")
    data = store.get("demo1")          # RunDirError for a name that would leave "runs"
    data.refresh()                     # reads only the bytes appended since the last call
    summary(data), curves_figure([data]), rollouts_html(data, step=3), aha_html(data)

All model text is untrusted: it reaches HTML only through ``html.escape``.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
from pathlib import Path

from workbench import runlog, traces
from workbench.runlog import RunDirError

FILES = (runlog.EVENTS, runlog.METRICS, runlog.ROLLOUTS)
RUN_COLUMNS = ["run", "status", "step", "elapsed", "ETA", "last reward", "held-out acc. before → after", "bad lines"]
OUTCOMES = ("all", "correct", "incorrect")
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d")


# --- Reading runs --------------------------------------------------------------------------------


class RunData:
    """A run's records, kept in memory and extended incrementally (files are append-only).

    ``version`` increases whenever new records arrive, so callers can skip re-rendering.
    ``corrupt`` counts complete lines that were not JSON; ``partial`` the bytes of a last line
    without its newline (still being written, or cut off if the run is over).
    """

    def __init__(self, run: runlog.Run):
        self.run = run
        self.records: dict[str, list[dict]] = {f: [] for f in FILES}
        self.offsets = dict.fromkeys(FILES, 0)
        self.corrupt = dict.fromkeys(FILES, 0)
        self.partial = dict.fromkeys(FILES, 0)
        self.version = 0
        self._status: tuple | None = None
        self._derived: dict[str, tuple[int, object]] = {}
        self._tags: list[dict] = []  # traces.tag of each rollout, in order (see _tagged)
        self._lock = threading.RLock()

    name = property(lambda self: self.run.name)
    events = property(lambda self: self.records[runlog.EVENTS])
    metrics = property(lambda self: self.records[runlog.METRICS])
    rollouts = property(lambda self: self.records[runlog.ROLLOUTS])

    def refresh(self, files=FILES) -> bool:
        """Read what was appended since the last call; True when anything new arrived."""
        changed = False
        with self._lock:
            for name in files:
                try:
                    path = self.run.file(name)
                except RunDirError:  # a link out of the run directory: read nothing from it
                    continue
                size = path.stat().st_size if path.exists() else 0
                if size < self.offsets[name]:  # the file was replaced or cut: read it again
                    self.records[name], self.offsets[name], self.corrupt[name] = [], 0, 0
                    self._tags, self._derived = [], {}
                    changed = True
                new, offset, bad = runlog.read_jsonl(path, self.offsets[name])
                self.records[name].extend(new)
                self.corrupt[name] += bad
                self.offsets[name], self.partial[name] = offset, size - offset
                changed |= bool(new or bad)
            if changed:
                self.version += 1
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


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "–"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h {m:02d}m" if h else (f"{m}m {sec:02d}s" if m else f"{sec}s")


def _pct(x) -> str:
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
        "elapsed": elapsed, "eta": eta, "rollouts": len(data.rollouts),
        "last_reward": rewards[-1] if rewards else None,
        "before": (evals.get("before") or {}).get("accuracy"), "after": (evals.get("after") or {}).get("accuracy"),
        "corrupt": sum(data.corrupt.values()),
        # A last line with no newline in a run that is over will never be completed.
        "partial": sum(data.partial.values()) if status != "running" else 0,
        "error": next((e.get("error") for e in reversed(events) if e.get("event") == "error"
                       and e.get("where") == "train"), None),
        "model": cfg.get("model"), "task": cfg.get("task"),
    }


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
            name, s["status"], f"{s['step']}/{s['max_steps'] or '?'}", _fmt_seconds(s["elapsed"]),
            _fmt_seconds(s["eta"]) if s["status"] == "running" else "–",
            "–" if s["last_reward"] is None else f"{s['last_reward']:.3f}",
            f"{_pct(s['before'])} → {_pct(s['after'])}", s["corrupt"] + (1 if s["partial"] else 0),
        ])
    return rows


KNOWN_STATUSES = ("running", "finished", "crashed", "empty")


def status_html(s: dict) -> str:
    """The status line of the selected run; the text "step N" is what tests watch grow."""
    # Every value here comes from files a run directory holds, which may be copied from anywhere.
    status = s["status"] if s["status"] in KNOWN_STATUSES else "unknown"
    parts = [f"<b>{html.escape(s['name'])}</b>", f'<span class="wb-status wb-{status}">{status}</span>',
             f"step {html.escape(str(s['step']))}/{html.escape(str(s['max_steps'] or '?'))}",
             f"elapsed {_fmt_seconds(s['elapsed'])}"]
    if s["status"] == "running":
        parts.append("ETA " + (_fmt_seconds(s["eta"]) if s["eta"] is not None else "after the first step"))
    parts.append(f"{s['rollouts']} rollouts")
    if s["before"] is not None or s["after"] is not None:
        parts.append(f"held-out accuracy {_pct(s['before'])} → {_pct(s['after'])}")
    parts.append(f"{html.escape(str(s['model']))} on {html.escape(str(s['task']))}")
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


# --- Curves --------------------------------------------------------------------------------------


def smooth(values: list, weight: float) -> list:
    """TensorBoard's debiased exponential moving average; None values stay None."""
    if not weight or weight <= 0:
        return list(values)
    out, acc, n = [], 0.0, 0
    for v in values:
        if v is None:
            out.append(None)
            continue
        n += 1
        acc = acc * weight + (1 - weight) * v
        out.append(acc / (1 - weight ** n))
    return out


def empty_figure(text: str = "no run selected"):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(template="plotly_white", height=300, xaxis_visible=False, yaxis_visible=False)
    return fig


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


CURVE_PANELS = ("reward (mean ± std) · SFT loss · held-out accuracy ◆", "completion length (tokens): mean, max ┄",
                "truncation rate", "KL to the reference", "entropy", "step time (s): step, generation ┄")


def curves_figure(runs: list[RunData], smoothing: float = 0.0):
    """Training curves of one or more runs, overlaid (one colour per run)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=3, cols=2, subplot_titles=CURVE_PANELS, vertical_spacing=0.09, horizontal_spacing=0.07)
    any_steps, any_kl = False, False
    for i, data in enumerate(runs):
        colour, name = PALETTE[i % len(PALETTE)], data.name
        ms = sorted((m for m in data.metrics if isinstance(m.get("step"), (int, float))), key=lambda m: m["step"])
        x = [m["step"] for m in ms]
        any_steps |= bool(x)

        def series(key, ms=ms):
            v = [m.get(key) if isinstance(m.get(key), (int, float)) else None for m in ms]
            return smooth(v, smoothing)

        def line(key, row, col, label, dash=None, legend=False, x=x, series=series, colour=colour, name=name):
            y = series(key)
            if all(v is None for v in y):
                return False
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers" if len(x) < 3 else "lines",
                                     name=f"{name} · {label}", legendgroup=name, showlegend=legend,
                                     line=dict(color=colour, dash=dash, width=1.5 if dash else 2.2)), row=row, col=col)
            return True

        mean, std = series("reward_mean"), series("reward_std")
        band = [(m, s) for m, s in zip(mean, std) if m is not None and s is not None]
        if band and len(band) == len(x):
            fig.add_trace(go.Scatter(x=x + x[::-1], y=[m + s for m, s in band] + [m - s for m, s in band][::-1],
                                     fill="toself", fillcolor=_rgba(colour, 0.12), line=dict(width=0),
                                     hoverinfo="skip", showlegend=False, legendgroup=name), row=1, col=1)
        line("reward_mean", 1, 1, "reward", legend=True)
        line("loss", 1, 1, "SFT loss", legend=True)  # SFT stages (workbench.sft) log a loss, not a reward
        reward_keys = sorted({k for m in ms for k in m if k.startswith("rewards/") and k.endswith("/mean")})
        if len(reward_keys) > 1:  # with a single reward its mean is the total again
            for k in reward_keys:
                line(k, 1, 1, k.split("/")[1], dash="dot", legend=True)
        # Held-out accuracy: "before" is step 0, "after" the last step.
        evals = [e for e in data.events if e.get("event") == "eval" and e.get("phase") in ("before", "after")]
        if evals:
            last = x[-1] if x else (data.config().get("max_steps") or 0)
            fig.add_trace(go.Scatter(
                x=[0 if e["phase"] == "before" else last for e in evals], y=[e.get("accuracy") for e in evals],
                mode="markers", marker=dict(symbol="diamond", size=12, color=colour, line=dict(color="white", width=1)),
                error_y=dict(type="data", array=[e.get("stderr") or 0 for e in evals], color=colour),
                name=f"{name} · held-out acc.", legendgroup=name, hoverinfo="text",
                text=[f"held-out {e['phase']}: {_pct(e.get('accuracy'))} of {e.get('n')}" for e in evals]),
                row=1, col=1)
        line("completion_length_mean", 1, 2, "length mean")
        line("completion_length_max", 1, 2, "length max", dash="dot")
        line("truncation_rate", 2, 1, "truncation rate")
        any_kl |= line("kl", 2, 2, "KL")
        line("entropy", 3, 1, "entropy")
        line("step_seconds", 3, 2, "step s")
        line("generation_seconds", 3, 2, "generation s", dash="dot")
    if not any_kl:
        xd, yd = fig.layout.xaxis4.domain, fig.layout.yaxis4.domain
        fig.add_annotation(text="not computed (beta = 0: no reference model)", showarrow=False, xref="paper",
                           yref="paper", x=sum(xd) / 2, y=sum(yd) / 2, font=dict(color="#6b7280"))
    if not any_steps:
        fig.add_annotation(text="no training steps logged yet", showarrow=False, xref="paper", yref="paper",
                           x=0.5, y=1.08, font=dict(size=14, color="#b45309"))
    fig.update_xaxes(title_text="step", row=3)
    fig.update_layout(height=760, margin=dict(l=40, r=20, t=60, b=40), template="plotly_white",
                      legend=dict(orientation="h", y=-0.08), hovermode="x unified")
    return fig


# --- Rollouts ------------------------------------------------------------------------------------

_QUESTION_PATTERNS = (
    re.compile(r"<\|im_start\|>user\s*(.*?)<\|im_end\|>", re.S),  # ChatML (SmolLM, Qwen)
    re.compile(r"<\|start_header_id\|>user<\|end_header_id\|>\s*(.*?)<\|eot_id\|>", re.S),  # Llama 3
    re.compile(r"<start_of_turn>user\s*(.*?)<end_of_turn>", re.S),  # Gemma
    re.compile(r"\bUser:\s*(.*?)\s*Assistant:", re.S),  # R1-Zero template
)


def question_of(prompt: str) -> str:
    """The user's question inside a rendered prompt (the last user turn), else the prompt."""
    for pattern in _QUESTION_PATTERNS:
        found = pattern.findall(prompt or "")
        if found:
            return found[-1].strip()
    return (prompt or "").strip()


def is_correct(r: dict) -> bool | None:
    acc = (r.get("rewards") or {}).get("accuracy")
    return None if acc is None else acc >= 1.0 - 1e-9


def _tagged(data: RunData) -> list[dict]:
    """The trace summary of every rollout, computed once per rollout as rollouts arrive (a record
    that carries its own "traces" of the current pattern version is trusted)."""
    with data._lock:
        tags = data._tags
        for r in data.rollouts[len(tags):]:
            t = r.get("traces")
            ok = isinstance(t, dict) and t.get("version") == traces.VERSION
            tags.append(t if ok else traces.tag(r.get("completion") or "", r.get("prompt")))
        return tags


def _with_traces(data: RunData) -> list[dict]:
    # Hand traces' step functions records that carry their tags, so nothing is tagged twice.
    return [{**r, "traces": t} for r, t in zip(data.rollouts, _tagged(data))]


def rollout_steps(data: RunData) -> list[int]:
    return sorted({r["step"] for r in data.rollouts if isinstance(r.get("step"), int)})


def rollout_groups(data: RunData, step: int | None = None, outcome: str = "all",
                   behaviour: str | None = None) -> list[dict]:
    """The groups of ``step`` (default: the latest), keeping completions that pass the filters.

    Each group: {"step", "group", "prompt", "question", "answer", "completions": [rollout + "tag"],
    "size"} where size is the group's full size before filtering. Groups with nothing left drop out.
    """
    steps = rollout_steps(data)
    if not steps:
        return []
    step = steps[-1] if step is None else step
    tags = _tagged(data)
    groups: dict = {}
    for r, t in zip(data.rollouts, tags):
        if r.get("step") != step:
            continue
        g = groups.setdefault(r.get("group"), {"step": step, "group": r.get("group"), "prompt": r.get("prompt") or "",
                                               "question": question_of(r.get("prompt") or ""),
                                               "answer": r.get("answer"), "completions": [], "size": 0})
        g["size"] += 1
        ok = is_correct(r)
        if outcome == "correct" and ok is not True or outcome == "incorrect" and ok is not False:
            continue
        if behaviour and not t["behaviours"].get(behaviour):
            continue
        g["completions"].append({**r, "tag": t})
    out = [g for g in groups.values() if g["completions"]]
    for g in out:
        g["completions"].sort(key=lambda r: r.get("index") or 0)
    return sorted(out, key=lambda g: g["group"] if isinstance(g["group"], int) else 1 << 30)


def _css_name(label) -> str:
    # exemplar matches label a reflective term "term:<word>"; behaviours by name
    return "term" if str(label).startswith("term:") else re.sub(r"[^a-z_]", "", str(label).lower())


def highlight(text: str, matches, offset: int = 0) -> str:
    """``text`` HTML-escaped, with each match (``Match`` or ``[start, end, behaviour]`` in the
    coordinates of the full completion; ``text`` starts at ``offset``) wrapped in a <mark>."""
    spans = []
    for m in matches or []:
        s, e, b = (m.span[0], m.span[1], m.behaviour) if hasattr(m, "span") else (m[0], m[1], m[2])
        s, e = max(s - offset, 0), min(e - offset, len(text))
        if s < e:
            spans.append((s, e, b))
    out, pos = [], 0
    for s, e, b in sorted(spans):
        if s < pos:  # overlapping matches: the first one wins
            continue
        out += [html.escape(text[pos:s]),
                f'<mark class="wb-b wb-b-{_css_name(b)}" title="{html.escape(str(b))}">{html.escape(text[s:e])}</mark>']
        pos = e
    out.append(html.escape(text[pos:]))
    return "".join(out)


def completion_html(text: str, matches=None, prompt: str | None = None) -> str:
    """A completion with its <think> and <answer> parts in their own boxes, behaviours marked
    (default: those ``traces`` counts, echoes of ``prompt`` left out)."""
    text = text or ""
    if matches is None:
        matches = traces.exemplar_matches(text, prompt)
    parts = traces.split_think_answer(text)
    blocks = []
    for kind in ("think", "answer"):
        part = parts.get(kind)
        if part:
            at = text.find(part)
            blocks.append(f'<div class="wb-{kind}"><span class="wb-label">{kind}</span>'
                          f"{highlight(part, matches, at) if at >= 0 else html.escape(part)}</div>")
    if not blocks:
        blocks.append(f'<div class="wb-text">{highlight(text, matches)}</div>')
    return "".join(blocks)


def _adv_style(adv) -> str:
    if not isinstance(adv, (int, float)):
        return "border-left-color:#9ca3af"
    a = min(abs(adv) / 2.0, 1.0) * 0.35 + 0.05
    colour = "22,163,74" if adv > 0 else ("220,38,38" if adv < 0 else "156,163,175")
    return f"border-left-color:rgb({colour});background:rgba({colour},{a:.2f})"


def _num(x, fmt=".2f") -> str:
    return format(x, fmt) if isinstance(x, (int, float)) else "–"


def rollout_card(r: dict) -> str:
    rewards = " ".join(f"{html.escape(str(k))} {_num(v)}" for k, v in (r.get("rewards") or {}).items())
    flags = ['<span class="wb-flag wb-trunc">truncated</span>'] if r.get("truncated") else []
    flags += [f'<span class="wb-flag wb-b-{_css_name(b)}">{html.escape(str(b))} ×{html.escape(str(n))}</span>'
              for b, n in (r.get("tag") or {}).get("behaviours", {}).items() if n]
    adv = r.get("advantage")
    adv_text = f" advantage <b>{adv:+.2f}</b> ·" if isinstance(adv, (int, float)) else ""
    return (f'<div class="wb-card" style="{_adv_style(adv)}"><div class="wb-meta">'
            f'<b>#{html.escape(str(r.get("index")))}</b>{adv_text} total {_num(r.get("reward"))}'
            f" ({rewards}) · {html.escape(str(r.get('tokens')))} tokens {''.join(flags)}</div>"
            f"{completion_html(r.get('completion') or '', None, r.get('prompt'))}</div>")


def groups_html(groups: list[dict]) -> str:
    out = []
    for g in groups:
        mean = [c.get("reward") for c in g["completions"] if isinstance(c.get("reward"), (int, float))]
        shown = len(g["completions"])
        count = str(shown) if shown == g["size"] else f"{shown} of {g['size']}"
        out.append(
            f'<div class="wb-group"><div class="wb-ghead">step {g["step"]} · group {html.escape(str(g["group"]))}'
            f" · <b>{html.escape(g['question'])}</b> · gold answer <code>{html.escape(str(g['answer']))}</code>"
            f" · {count} shown"
            f" · mean reward {_num(sum(mean) / len(mean) if mean else None)}</div>"
            f'<details class="wb-prompt"><summary>full prompt</summary><pre>{html.escape(g["prompt"])}</pre></details>'
            + '<div class="wb-cards">' + "".join(rollout_card(c) for c in g["completions"]) + "</div></div>")
    return "".join(out)


def rollouts_html(data: RunData, step: int | None = None, outcome: str = "all", behaviour: str | None = None) -> str:
    if not data.rollouts:
        return message_html(f"No rollouts yet in {data.name}: the first ones appear after the first GRPO step.")
    steps = rollout_steps(data)
    if step is not None and step not in steps:
        step = max([s for s in steps if s <= step], default=steps[0])
    groups = rollout_groups(data, step, outcome, behaviour or None)
    if not groups:
        return message_html(f"No completion at step {step if step is not None else steps[-1]} passes the filters "
                            f"(outcome: {outcome}, behaviour: {behaviour or 'any'}).")
    return groups_html(groups)


# --- Self-verification ---------------------------------------------------------------------------


def behaviour_curves(data: RunData) -> list[dict]:
    return data.derived("curves", lambda d: traces.step_curves(_with_traces(d)) if d.rollouts else [])


def behaviour_figure(data: RunData):
    """Reflective-term and behaviour shares per step, each with its first-step baseline (dotted)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = behaviour_curves(data)
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08, subplot_titles=(
        "reflective terms: share of completions containing each", "behaviours: share of completions showing each"))
    keys = [(f"term_share/{t}", t, 1) for t in traces.REFLECTIVE_TERMS] + [("any_reflective_share", "any term", 1)]
    keys += [(f"behaviour_share/{b}", b, 2) for b in traces.BEHAVIOURS]
    x = [r["step"] for r in rows]
    for i, (key, label, col) in enumerate(keys):
        y = [r.get(key) for r in rows]
        if not rows or all(not v for v in y):
            continue  # a term that never occurs only clutters the legend
        colour = "#111827" if label == "any term" else PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=label, legendgroup=label,
                                 line=dict(color=colour, width=2.5 if label == "any term" else 1.6)), row=1, col=col)
        fig.add_trace(go.Scatter(x=[x[0], x[-1]], y=[y[0], y[0]], mode="lines", legendgroup=label, showlegend=False,
                                 line=dict(color=colour, dash="dot", width=1), hoverinfo="skip"), row=1, col=col)
    if not fig.data:
        fig.add_annotation(text="no reflective terms or behaviours in any completion yet" if rows else
                           "no rollouts yet", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(height=380, margin=dict(l=40, r=20, t=50, b=40), template="plotly_white")
    return fig


def aha_html(data: RunData) -> str:
    """Aha events (a term or behaviour jumping above its baseline) with exemplar traces, then how
    each behaviour relates to reward."""
    if not data.rollouts:
        return message_html(f"No rollouts yet in {data.name}.")
    events = data.derived("aha", lambda d: traces.aha_events(_with_traces(d)))
    if events:
        out = [f"<h4>Aha events ({len(events)})</h4>"]
        for ev in events:
            ex = ev.get("exemplar") or {}
            out.append(
                f'<div class="wb-group"><div class="wb-ghead">step {html.escape(str(ev.get("step")))} · '
                f"{html.escape(str(ev.get('kind')))} "
                f"<b>{html.escape(str(ev.get('name')))}</b> in {_pct(ev.get('share'))} of completions "
                f"(baseline {_pct(ev.get('baseline_share'))}, z = {_num(ev.get('z'), '.1f')})</div>"
                f'<div class="wb-card" style="{_adv_style(ex.get("advantage"))}"><div class="wb-meta">exemplar: '
                f"step {html.escape(str(ex.get('step')))} · {html.escape(str(ex.get('prompt_id')))} · reward "
                f"{_num(ex.get('reward'))} · advantage {_num(ex.get('advantage'), '+.2f')}</div>"
                f"{completion_html(ex.get('completion') or '', ex.get('matches') or [])}</div></div>")
    else:
        out = [message_html("No aha event yet: no reflective term or behaviour has risen clearly (z ≥ 3, at least "
                            "3 completions) above its first-step share.")]
    corr = data.derived("corr", lambda d: traces.reward_correlation(_with_traces(d)))
    if corr:
        rows = "".join(
            f"<tr><td>{html.escape(b)}</td><td>{c.get('n_with')}</td><td>{c.get('n_without')}</td>"
            f"<td>{_num(c.get('reward_with'))}</td><td>{_num(c.get('reward_without'))}</td>"
            f"<td>{_num(c.get('r'))}</td></tr>"
            for b, c in corr.items())
        out.append("<h4>Behaviour and reward, all steps</h4><table class='wb-table'><tr><th>behaviour</th>"
                   "<th>completions with</th><th>without</th><th>mean reward with</th><th>without</th>"
                   f"<th>correlation r</th></tr>{rows}</table>")
    return "".join(out)


# --- Playground ----------------------------------------------------------------------------------

_MODELS: dict[tuple, tuple] = {}
_MODELS_LOCK = threading.Lock()


def _task(config: dict):
    from workbench.tasks import get_task

    return get_task(config.get("task", "chain_sum"), seed=config.get("seed", 0), **(config.get("task_kwargs") or {}))


def task_questions(config: dict, n: int = 24) -> list[dict]:
    """Held-out (eval split) items of the run's task: {"id", "question", "answer", "metadata"}."""
    return _task(config).items("eval", n)


def load_policy(model: str, adapter_dir: str | Path | None = None, precision: str = "auto",
                quantization: str = "auto", seed: int = 0):
    """(model, tokenizer), the base model or base + LoRA adapter; cached (the last two)."""
    key = (model, str(adapter_dir) if adapter_dir else None, precision, quantization, seed)
    with _MODELS_LOCK:
        if key not in _MODELS:
            from workbench.models import load_policy as load

            policy, tokenizer = load(model, adapter_dir, precision, quantization, seed)
            while len(_MODELS) >= 2:
                _MODELS.pop(next(iter(_MODELS)))
            _MODELS[key] = (policy, tokenizer)
        return _MODELS[key]


def playable_model(model: str, runs_root: str | Path | None) -> str:
    """``model`` if the app may load it for a run's config, else ValueError.

    A run directory may come from elsewhere, so its config.yaml is not trusted to name files: a
    local path is loaded only inside the runs root (where a pipeline stage leaves its merged policy);
    otherwise only the workbench's own model names and hub ids ('org/name', nothing local read).
    """
    from workbench.models import EMBEDDED_MODEL, RANDOM_05B, TINY_MODEL

    if model in (EMBEDDED_MODEL, TINY_MODEL, RANDOM_05B):
        return model
    path = Path(model)
    if path.exists():
        if runs_root is not None and path.resolve().is_relative_to(Path(runs_root).resolve()):
            return model
        raise ValueError(f"the run's model {model!r} is a local path outside the runs root; the app loads "
                         "local models only from inside it")
    if re.fullmatch(r"[\w.-]+/[\w.-]+", model) and ".." not in model:
        return model
    raise ValueError(f"the run's model {model!r} is neither a workbench model name, a hub id nor a model "
                     "directory inside the runs root")


def play(config: dict, question: str, answer: str | None = None, metadata: dict | None = None,
         n: int = 4, max_new_tokens: int | None = None, temperature: float = 1.0,
         adapter_dir: str | Path | None = None, runs_root: str | Path | None = None) -> list[dict]:
    """Sample ``n`` answers to ``question`` and score each with the run's rewards.

    Returns [{"completion", "tokens", "truncated", "rewards": {name: value or None}, "reward"}]; a
    reward that cannot apply (no gold answer for your own question) is None. The run's model must
    pass ``playable_model`` (local paths only inside ``runs_root``).
    """
    from workbench.evaluate import generate
    from workbench.rewards import build_rewards
    from workbench.templates import render_prompt

    if not (question or "").strip():
        raise ValueError("enter a question first")
    model = playable_model(config.get("model", "smollm2-135m-instruct"), runs_root)
    policy, tokenizer = load_policy(model, adapter_dir,
                                    config.get("precision", "auto"), config.get("quantization", "auto"),
                                    config.get("seed", 0))
    max_new = int(max_new_tokens or config.get("max_completion_length") or 64)
    prompt = render_prompt(config.get("template", "chat_concise"), question, tokenizer)
    outs = generate(policy, tokenizer, [prompt] * n, max_new, do_sample=True, temperature=temperature,
                    top_p=config.get("top_p", 1.0), progress=False)
    funcs, weights = build_rewards(config.get("rewards") or {"accuracy": 1.0}, _task(config), max_new,
                                   on_error=lambda *a: None)
    completions = [o["completion"] for o in outs]
    columns = dict(question=[question] * n, metadata=[json.dumps(metadata or {})] * n,
                   completion_ids=[tokenizer(c, add_special_tokens=False)["input_ids"] for c in completions])
    if answer not in (None, ""):
        columns["answer"] = [str(answer)] * n
    scores = {getattr(fn, "__name__", type(fn).__name__): fn(completions, **columns) for fn in funcs}
    results = []
    for i, o in enumerate(outs):
        rewards = {name: vals[i] for name, vals in scores.items()}
        results.append({**o, "rewards": rewards,
                        "reward": sum(w * v for w, v in zip(weights, rewards.values()) if v is not None)})
    return results


def play_html(results: list[dict], question: str, answer: str | None, model: str = "") -> str:
    gold = html.escape(str(answer)) if answer not in (None, "") else "none given (accuracy not scored)"
    head = (f'<div class="wb-ghead">{html.escape(model)} · <b>{html.escape(question)}</b> · gold answer '
            f"<code>{gold}</code></div>")
    cards = [rollout_card({**r, "index": i, "advantage": None, "tag": traces.tag(r["completion"])})
             for i, r in enumerate(results)]
    return f'<div class="wb-group">{head}<div class="wb-cards">{"".join(cards)}</div></div>'
