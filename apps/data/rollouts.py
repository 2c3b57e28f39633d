"""The rollouts view: one step's groups of rollouts with their rewards and advantages, text highlighted
where a behaviour was detected. All model text reaches HTML only through ``html.escape``."""

from __future__ import annotations

import html
import re

from workbench.analysis import traces
from apps.data.runs import RunData, message_html

OUTCOMES = ("all", "correct", "incorrect")


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


def rollout_steps(data: RunData) -> list[int]:
    return data.rollout_steps()


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
    groups: dict = {}
    for r in data.step_rollouts(step):  # this step's rollouts only, read from its byte range
        t = r["tag"]
        g = groups.setdefault(r.get("group"), {"step": step, "group": r.get("group"), "prompt": r.get("prompt") or "",
                                               "question": question_of(r.get("prompt") or ""),
                                               "answer": r.get("answer"), "completions": [], "size": 0})
        g["size"] += 1
        ok = is_correct(r)
        if outcome == "correct" and ok is not True or outcome == "incorrect" and ok is not False:
            continue
        if behaviour and not t["behaviours"].get(behaviour):
            continue
        g["completions"].append(r)
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
    parts = traces.split_think_answer(text, prompt)
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


def advantage_style(adv) -> str:
    if not isinstance(adv, (int, float)):
        return "border-left-color:#9ca3af"
    a = min(abs(adv) / 2.0, 1.0) * 0.35 + 0.05
    colour = "22,163,74" if adv > 0 else ("220,38,38" if adv < 0 else "156,163,175")
    return f"border-left-color:rgb({colour});background:rgba({colour},{a:.2f})"


def num(x, fmt=".2f") -> str:
    return format(x, fmt) if isinstance(x, (int, float)) else "–"


def rollout_card(r: dict) -> str:
    rewards = " ".join(f"{html.escape(str(k))} {num(v)}" for k, v in (r.get("rewards") or {}).items())
    flags = ['<span class="wb-flag wb-trunc">truncated</span>'] if r.get("truncated") else []
    flags += [f'<span class="wb-flag wb-b-{_css_name(b)}">{html.escape(str(b))} ×{html.escape(str(n))}</span>'
              for b, n in (r.get("tag") or {}).get("behaviours", {}).items() if n]
    adv = r.get("advantage")
    adv_text = f" advantage <b>{adv:+.2f}</b> ·" if isinstance(adv, (int, float)) else ""
    return (f'<div class="wb-card" style="{advantage_style(adv)}"><div class="wb-meta">'
            f'<b>#{html.escape(str(r.get("index")))}</b>{adv_text} total {num(r.get("reward"))}'
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
            f" · mean reward {num(sum(mean) / len(mean) if mean else None)}</div>"
            f'<details class="wb-prompt"><summary>full prompt</summary><pre>{html.escape(g["prompt"])}</pre></details>'
            + '<div class="wb-cards">' + "".join(rollout_card(c) for c in g["completions"]) + "</div></div>")
    return "".join(out)


def rollouts_html(data: RunData, step: int | None = None, outcome: str = "all", behaviour: str | None = None) -> str:
    if not data.rollout_count:
        return message_html(f"No rollouts yet in {data.name}: the first ones appear after the first GRPO step.")
    steps = rollout_steps(data)
    if step is not None and step not in steps:
        step = max([s for s in steps if s <= step], default=steps[0])
    groups = rollout_groups(data, step, outcome, behaviour or None)
    if not groups:
        return message_html(f"No completion at step {step if step is not None else steps[-1]} passes the filters "
                            f"(outcome: {outcome}, behaviour: {behaviour or 'any'}).")
    return groups_html(groups)
