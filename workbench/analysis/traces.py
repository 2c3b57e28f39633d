"""Reasoning traces: which reflective words and cognitive behaviours a completion shows, per step.

DeepSeek-R1 tracked ten reflective words chosen by experts (``REFLECTIVE_TERMS``, Extended Data
Fig. 1) and saw them rise during RL ("wait" sharply, the "aha moment"). Gandhi et al. (2025,
"Cognitive behaviors that enable self-improving reasoners") name four behaviours behind such
traces (``BEHAVIOURS``): verification, backtracking, subgoal setting and backward chaining. This
module counts both, cheaply enough to run on every rollout as it is logged:

    from workbench.analysis import traces
    rec["traces"] = traces.tag(rec["completion"], prompt=rec["prompt"])   # stored in rollouts.jsonl
    curves = traces.step_curves(run.rollouts())        # one dict per step: rates, shares
    events = traces.aha_events(run.rollouts())         # first step each one rises above step 1
    traces.reward_correlation(run.rollouts())          # does showing it go with a higher reward?

Decisions, each tested in tests/test_traces.py:

- Reflective terms are counted as exact word forms, whole words, case-insensitive: "checking"
  does not count as "check", "but" in "button" and "wait" in "await" do not count, "Wait" does.
  R1 reports word frequencies of exactly these ten words; matching inflections would make our
  curves incomparable with its figure. Inflections and phrasing are the behaviour detectors' job.
- Behaviour detectors are regular expressions (the table ``PATTERNS["en"]``, in patterns.py: name,
  behaviour, regex, why). They are conservative: each needs a phrase that signals the behaviour,
  not a bare keyword ("wait" counts only when followed by punctuation, "first" only with a later
  "then"). Overlapping matches of one behaviour count once; different behaviours may overlap.
  Another language is one more entry in ``PATTERNS``.
- Echo rule (``tag(..., prompt=...)``): a match, or a reflective term, does not count when every
  word it covers lies inside a run of at least ``ECHO_MIN_WORDS`` consecutive words that also occur
  in that order in the prompt (lower-cased, punctuation ignored). So a completion that repeats the
  question's "check whether 91 is prime" scores nothing for it, while "Let me check: 91 = 7 x 13"
  still counts, and so does "double-check my answer" after a system prompt saying "double-check
  your answer" (no four words in a row are shared).
- Baseline of ``aha_events``: the FIRST logged step, whose rollouts the untrained policy sampled
  (the Dr. GRPO critique: base models already show some "aha"; measure before claiming emergence).
  GRPO draws new prompts every step, so each event also reports, where prompt ids recur, the
  first-step share on exactly the prompts that came back.

Pure stdlib; imports in a few milliseconds; tag() runs at thousands of rollouts per second.
"""

from __future__ import annotations

import bisect
import html
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from workbench.analysis.patterns import ENGLISH, Pattern
from workbench.errors import WorkbenchError
from workbench.rewards.extract import completion_text, split_think_answer  # noqa: F401 (part of this module's API)

REFLECTIVE_TERMS: tuple[str, ...] = ("wait", "mistake", "however", "but", "retry", "error", "verify", "wrong", "evaluate", "check")
BEHAVIOURS: tuple[str, ...] = ("verification", "backtracking", "subgoal_setting", "backward_chaining")

# Bump when a pattern changes: stored record["traces"] of another version are recomputed.
VERSION = 1
ECHO_MIN_WORDS = 4

_WORD = re.compile(r"\w+")
# Matched against the lower-cased text (see _lowered); a term must also start a word (_starts_word).
_TERM = re.compile("(?:" + "|".join(REFLECTIVE_TERMS) + r")\b")
_WORDCHAR = re.compile(r"\w")
# Same-length replacements only, so spans found in the normalised text index the original.
_NORMALISE = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


class UnknownLanguageError(WorkbenchError):
    pass


@dataclass(frozen=True)
class Match:
    behaviour: str  # one of BEHAVIOURS
    span: tuple[int, int]  # character offsets into the text passed in
    text: str  # text[span[0]:span[1]]
    pattern: str  # name of the pattern that matched


PATTERNS: dict[str, tuple[Pattern, ...]] = {"en": ENGLISH}
_COMPILED: dict[tuple[str, int], list[tuple[Pattern, re.Pattern]]] = {}


def _compiled(language: str, flags: int = 0) -> list[tuple[Pattern, re.Pattern]]:
    compiled = _COMPILED.get((language, flags))
    if compiled is None:
        if language not in PATTERNS:
            raise UnknownLanguageError(f"unknown language {language!r}; valid languages: {', '.join(PATTERNS)}")
        compiled = _COMPILED[language, flags] = [(p, re.compile(p.regex, flags)) for p in PATTERNS[language]]
    return compiled


def pattern_table(language: str = "en") -> list[dict]:
    """The detector table as rows {name, behaviour, regex, why} (for docs and notebooks)."""
    _compiled(language)
    return [{"name": p.name, "behaviour": p.behaviour, "regex": p.regex, "why": p.why} for p in PATTERNS[language]]




def _lowered(text: str) -> tuple[str, int]:
    """A newline (so that every match has a character before it) + the lower-cased text, and the regex
    flags to match it with. Offsets into it are offsets into `text` plus one."""
    low = "\n" + text.translate(_NORMALISE).lower()
    if len(low) == len(text) + 1:
        return low, 0
    # A character whose lower case is longer ("\u0130"): keep the case, match case-insensitively.
    return "\n" + text.translate(_NORMALISE), re.IGNORECASE


def _starts_word(low: str, s: int) -> bool:
    # \b at a match start, checked here rather than in the regex (see the pattern table).
    return not (_WORDCHAR.match(low, s) and _WORDCHAR.match(low, s - 1))


def _search_all(rx: re.Pattern, low: str):
    pos = 0
    while (m := rx.search(low, pos)) is not None:
        if _starts_word(low, m.start()):
            yield m
            pos = max(m.end(), m.start() + 1)
        else:
            pos = m.start() + 1


def _term_spans(low: str, flags: int) -> list[tuple[str, int, int]]:
    rx = _TERM if not flags else re.compile(_TERM.pattern, flags)
    return [(m.group().lower(), m.start() - 1, m.end() - 1) for m in _search_all(rx, low)]


def reflective_terms(text: str) -> dict[str, int]:
    """Every R1 reflective term -> its count in `text`: exact word forms, whole words, any case."""
    counts = dict.fromkeys(REFLECTIVE_TERMS, 0)
    for term, _, _ in _term_spans(*_lowered(completion_text(text))):
        counts[term] += 1
    return counts


def detect(text: str, language: str = "en") -> list[Match]:
    """Behaviour matches in `text`, sorted by span. Overlapping matches of one behaviour count once
    (the one that starts first, the longer on a tie)."""
    text = completion_text(text)
    low, flags = _lowered(text)
    return _detect(text, low, flags, language)


def _detect(text: str, low: str, flags: int, language: str) -> list[Match]:
    found = []
    for p, rx in _compiled(language, flags):
        group = "m" if "m" in rx.groupindex else 0
        for m in _search_all(rx, low):
            s, e = m.span(group)
            if e > s:
                found.append((s - 1, 1 - e, p.behaviour, p.name))
    found.sort()
    matches, last_end = [], {}
    for s, neg_e, behaviour, name in found:
        if s < last_end.get(behaviour, -1):
            continue  # overlaps an earlier match of the same behaviour
        last_end[behaviour] = -neg_e
        matches.append(Match(behaviour, (s, -neg_e), text[s:-neg_e], name))
    return matches


_TAG = re.compile(r"</?(?:think|answer)>")


@lru_cache(maxsize=512)
def _prompt_ngrams(prompt: str) -> tuple[frozenset, frozenset]:
    """The prompt's words and its runs of ECHO_MIN_WORDS words, lower-cased."""
    words = _WORD.findall(prompt.translate(_NORMALISE).lower())
    n = ECHO_MIN_WORDS
    return frozenset(words), frozenset(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


class _Echo:
    """Which spans of a completion lie in stretches of ECHO_MIN_WORDS+ words copied from the prompt."""

    def __init__(self, low: str, prompt: str):
        self.low = low
        self.vocab, self.ngrams = _prompt_ngrams(prompt)
        self.words = None

    def _index(self) -> None:
        found = list(_WORD.finditer(self.low))
        self.words = [m.group().lower() for m in found]  # already lower unless _lowered kept the case
        self.starts = [m.start() - 1 for m in found]
        self.ends = [m.end() - 1 for m in found]

    def _copied(self, k: int) -> bool:
        n, words = ECHO_MIN_WORDS, self.words
        return any(tuple(words[i:i + n]) in self.ngrams for i in range(max(0, k - n + 1), min(k, len(words) - n) + 1))

    def covers(self, s: int, e: int) -> bool:
        # Fast path: a word the prompt never uses cannot be an echo (most matches end here).
        if not self.ngrams or not all(w.lower() in self.vocab for w in _WORD.findall(self.low, s + 1, e + 1)):
            return False
        if self.words is None:
            self._index()
        i = bisect.bisect_right(self.ends, s)  # the first word ending after s
        j = bisect.bisect_left(self.starts, e)  # words i .. j-1 overlap [s, e)
        return j > i and all(self._copied(k) for k in range(i, j))


def _tag_parts(text: str, prompt: str | None, language: str):
    low, flags = _lowered(text)
    matches = _detect(text, low, flags, language)
    terms = _term_spans(low, flags)
    if prompt and (matches or terms):
        echo = _Echo(low, completion_text(prompt))
        matches = [m for m in matches if not echo.covers(*m.span)]
        terms = [t for t in terms if not echo.covers(t[1], t[2])]
    return matches, terms


def tag(completion: str, prompt: str | None = None, language: str = "en") -> dict:
    """The JSON-serialisable trace summary stored in each rollout record under "traces".

    {"behaviours": {b: count}, "terms": {t: count}, "words", "think_words", "format_ok", "version"}.
    Words are runs of letters/digits (regex \\w+), the tags themselves not counted. With `prompt`,
    echoes of it do not count (module docstring).
    """
    text = completion_text(completion)
    matches, terms = _tag_parts(text, prompt, language)
    behaviours = dict.fromkeys(BEHAVIOURS, 0)
    for m in matches:
        behaviours[m.behaviour] += 1
    term_counts = dict.fromkeys(REFLECTIVE_TERMS, 0)
    for t, _, _ in terms:
        term_counts[t] += 1
    think = split_think_answer(text, prompt)
    return {"behaviours": behaviours, "terms": term_counts, "words": len(_WORD.findall(_TAG.sub(" ", text))),
            "think_words": len(_WORD.findall(think["think"])) if think["think"] else 0,
            "format_ok": think["format_ok"], "version": VERSION}


def _traces(record: dict) -> dict:
    # Stored traces are trusted unless they carry another pattern version and can be recomputed.
    t = record.get("traces")
    if isinstance(t, dict) and (t.get("version", VERSION) == VERSION or "completion" not in record):
        return t
    return tag(record.get("completion") or "", record.get("prompt"))


# (kind, name) of every series a step summary counts: behaviours, then R1's reflective terms.
SERIES: tuple[tuple[str, str], ...] = tuple(("behaviour", b) for b in BEHAVIOURS) + tuple(("term", t) for t in REFLECTIVE_TERMS)


def _by_step(rollouts: list[dict]) -> dict:
    steps = defaultdict(list)
    for r in rollouts:
        if r.get("step") is not None:
            steps[r["step"]].append(r)
    return dict(sorted(steps.items()))


def _has(tr: dict, kind: str, name: str) -> bool:
    return (tr.get("behaviours" if kind == "behaviour" else "terms") or {}).get(name, 0) > 0


def _reward(r: dict) -> float | None:
    v = r.get("reward")
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def step_summary(rollouts: list[dict]) -> dict:
    """What the curves, aha events and reward correlation need from one step's rollouts, as counts
    and sums that merge (``merge_summaries``) and fit on one JSON line: the rollout log's index keeps
    one per step, so readers draw a million-rollout run without reading its rollouts.

    {"n", "words", "think_words", "format_ok", "any_term", "any_behaviour" (rollouts showing any),
    "series": {"<kind>:<name>": [occurrences, rollouts showing it]}, "scored", "reward_sum",
    "reward_sumsq" (rollouts with a numeric reward), "behaviour_reward": {b: [scored rollouts with b,
    their reward sum]}, "prompts": {prompt_id: [rollouts, showing series 1, ...]} (series in
    ``SERIES`` order), "best": {"<kind>:<name>": [reward or None, count, index]}: the best-rewarded
    rollout showing it (then the one showing it most), ``index`` its position in ``rollouts``}.
    Uses record["traces"] where logged (see _traces)."""
    out = {"n": 0, "words": 0, "think_words": 0, "format_ok": 0, "any_term": 0, "any_behaviour": 0,
           "series": {f"{k}:{n}": [0, 0] for k, n in SERIES}, "scored": 0, "reward_sum": 0.0, "reward_sumsq": 0.0,
           "behaviour_reward": {b: [0, 0.0] for b in BEHAVIOURS}, "prompts": {}, "best": {}}
    for i, r in enumerate(rollouts):
        tr, x = _traces(r), _reward(r)
        out["n"] += 1
        out["words"] += tr.get("words", 0)
        out["think_words"] += tr.get("think_words", 0)
        out["format_ok"] += bool(tr.get("format_ok"))
        out["any_term"] += any(_has(tr, "term", t) for t in REFLECTIVE_TERMS)
        out["any_behaviour"] += any(_has(tr, "behaviour", b) for b in BEHAVIOURS)
        shows = []
        for kind, name in SERIES:
            count = (tr.get("behaviours" if kind == "behaviour" else "terms") or {}).get(name, 0)
            key = f"{kind}:{name}"
            out["series"][key][0] += count
            out["series"][key][1] += count > 0
            shows.append(int(count > 0))
            if count > 0:
                best = out["best"].get(key)
                if best is None or _better((x, count), best):
                    out["best"][key] = [x, count, i]
        if x is not None:
            out["scored"] += 1
            out["reward_sum"] += x
            out["reward_sumsq"] += x * x
            for b in BEHAVIOURS:
                if _has(tr, "behaviour", b):
                    out["behaviour_reward"][b][0] += 1
                    out["behaviour_reward"][b][1] += x
        pid = r.get("prompt_id")
        if pid is not None:
            row = out["prompts"].setdefault(str(pid), [0] * (1 + len(SERIES)))
            row[0] += 1
            for j, v in enumerate(shows, start=1):
                row[j] += v
    return out


def _better(candidate: tuple, best: list) -> bool:
    """Whether (reward, count) beats the kept [reward, count, index]: a higher reward (None lowest),
    then more occurrences; a tie keeps the earlier rollout."""
    return ((-math.inf if candidate[0] is None else candidate[0], candidate[1])
            > (-math.inf if best[0] is None else best[0], best[1]))


def merge_summaries(a: dict, b: dict) -> dict:
    """The summary of one step's rollouts ``a`` followed in the log by ``b`` (each summarised from
    its own first rollout, index 0)."""
    out = {k: a[k] + b[k] for k in ("n", "words", "think_words", "format_ok", "any_term", "any_behaviour", "scored",
                                     "reward_sum", "reward_sumsq")}
    for field in ("series", "behaviour_reward", "prompts"):  # lists of counts and sums, added element-wise
        out[field] = {k: [x + y for x, y in zip(a[field].get(k, [0] * len(v)), v)] for k, v in b[field].items()}
        out[field].update({k: list(v) for k, v in a[field].items() if k not in b[field]})
    best = dict(a["best"])
    for k, v in b["best"].items():
        if k not in best or _better((v[0], v[1]), best[k]):
            best[k] = [v[0], v[1], v[2] + a["n"]]  # b's positions count from its own first rollout
    out["best"] = best
    return out


def summarize_steps(rollouts: list[dict]) -> dict:
    """{step: step_summary} of a list of rollouts, in step order (each step's rollouts in log order)."""
    return {step: step_summary(items) for step, items in _by_step(rollouts).items()}


def curves_from_summaries(summaries: dict) -> list[dict]:
    """``step_curves`` from per-step summaries ({step: step_summary}), without the rollouts."""
    return [curve_row(step, sm) for step, sm in sorted(summaries.items()) if sm["n"]]


_CURVE_KEYS = tuple((f"{k}:{n}", f"{k}_rate/{n}", f"{k}_share/{n}") for k, n in SERIES)  # built once, not per step


def curve_row(step, sm: dict) -> dict:
    """One step's row of ``step_curves`` from its summary (``step_summary``, n > 0)."""
    n, words = sm["n"], sm["words"]
    row = {"step": step, "n": n, "words": words}
    series = sm["series"]
    for key, rate, share in _CURVE_KEYS:
        occ, showing = series[key]
        row[rate] = 1000.0 * occ / words if words else None
        row[share] = showing / n
    row["any_reflective_share"] = sm["any_term"] / n
    row["any_behaviour_share"] = sm["any_behaviour"] / n
    row["think_words_mean"] = sm["think_words"] / n
    row["format_ok_share"] = sm["format_ok"] / n
    row["completion_words_mean"] = words / n
    row["reward_mean"] = sm["reward_sum"] / sm["scored"] if sm["scored"] else None
    return row


def step_curves(rollouts: list[dict]) -> list[dict]:
    """One dict per step, sorted by step: {"step", "n" (rollouts), "words" (total), "term_rate/<t>" and
    "behaviour_rate/<b>" (occurrences per 1,000 words; None when the step has no words),
    "term_share/<t>" and "behaviour_share/<b>" (share of the step's rollouts showing it),
    "any_reflective_share" (any R1 term), "any_behaviour_share", "think_words_mean", "format_ok_share",
    "completion_words_mean", "reward_mean" (None without rewards)}.

    Uses record["traces"] where logged (see _traces), else tags each record with its prompt."""
    return curves_from_summaries(summarize_steps(rollouts))


def _z_two_proportions(x0: int, n0: int, x1: int, n1: int) -> float | None:
    """One-sided two-proportion z statistic for p1 > p0 (pooled standard error); None if undefined."""
    if not n0 or not n1:
        return None
    p = (x0 + x1) / (n0 + n1)
    se = math.sqrt(p * (1 - p) * (1 / n0 + 1 / n1))
    return (x1 / n1 - x0 / n0) / se if se > 0 else None


def exemplar_matches(completion: str, prompt: str | None = None, term: str | None = None) -> list[list]:
    """[[start, end, label], ...] for highlighting: behaviour matches (label: the behaviour) and, with
    `term`, that term's occurrences (label "term:<term>"); echoes of `prompt` left out."""
    text = completion_text(completion)
    matches, terms = _tag_parts(text, prompt, "en")
    out = [[m.span[0], m.span[1], m.behaviour] for m in matches]
    out += [[s, e, f"term:{t}"] for t, s, e in terms if t == term]
    return sorted(out)


def aha_events(rollouts: list[dict], z: float = 3.0, min_count: int = 3) -> list[dict]:
    """For each behaviour and reflective term, the first step whose share of rollouts showing it rises
    clearly above the first logged step's share: one-sided two-proportion z > `z` and at least
    `min_count` rollouts showing it. With 14 series and tens of steps, z = 3 (p ~ 0.0013 each) keeps
    false alarms rare. "same_prompts" compares, where prompt ids recur, the first-step share on the
    recurring prompts with the share on them from the event step on (None when none recur).
    """
    steps = _by_step(rollouts)
    return aha_from_summaries({s: step_summary(items) for s, items in steps.items()}, steps.__getitem__, z, min_count)


def aha_from_summaries(summaries: dict, step_rollouts, z: float = 3.0, min_count: int = 3) -> list[dict]:
    """``aha_events`` from per-step summaries ({step: step_summary}); ``step_rollouts(step)`` returns a
    step's rollouts in log order, read only for the steps whose exemplar an event shows."""
    steps = {s: sm for s, sm in sorted(summaries.items()) if sm["n"]}
    if len(steps) < 2:
        return []
    first, *later = steps
    base = steps[first]
    base_ids = set(base["prompts"])
    events = []
    for kind, names in (("behaviour", BEHAVIOURS), ("term", REFLECTIVE_TERMS)):
        for name in names:
            key = f"{kind}:{name}"
            x0 = base["series"][key][1]
            for step in later:
                sm = steps[step]
                x1 = sm["series"][key][1]
                if x1 < min_count:  # the common case on a long run: no z to compute
                    continue
                zs = _z_two_proportions(x0, base["n"], x1, sm["n"])
                if zs is None or zs <= z:
                    continue
                r = step_rollouts(step)[sm["best"][key][2]]
                events.append({
                    "kind": kind, "name": name, "step": step, "baseline_step": first,
                    "baseline_share": x0 / base["n"], "n_baseline": base["n"],
                    "share": x1 / sm["n"], "n": sm["n"], "count": x1, "z": zs,
                    "same_prompts": _same_prompts(steps, base, base_ids, step, key),
                    "exemplar": {"step": step, "prompt_id": r.get("prompt_id"), "completion": completion_text(r.get("completion")),
                                 "reward": r.get("reward"), "advantage": r.get("advantage"),
                                 "matches": exemplar_matches(r.get("completion") or "", r.get("prompt"),
                                                             name if kind == "term" else None)},
                })
                break
    return sorted(events, key=lambda e: (e["step"], e["kind"], e["name"]))


def _same_prompts(steps: dict, base: dict, base_ids: set, from_step, key: str) -> dict | None:
    j = 1 + [f"{k}:{n}" for k, n in SERIES].index(key)
    again = [row for s, sm in steps.items() if s >= from_step for pid, row in sm["prompts"].items() if pid in base_ids]
    if not again:
        return None
    ids = {pid for s, sm in steps.items() if s >= from_step for pid in sm["prompts"]} & base_ids
    before = [base["prompts"][pid] for pid in ids]
    n_before = sum(row[0] for row in before)
    return {"prompt_ids": len(ids), "n_baseline": n_before,
            "baseline_share": sum(row[j] for row in before) / n_before,
            "n": sum(row[0] for row in again), "share": sum(row[j] for row in again) / sum(row[0] for row in again)}


def reward_correlation(rollouts: list[dict]) -> dict[str, dict]:
    """Per behaviour: {"n_with", "n_without", "reward_with", "reward_without", "r"}: mean total reward of
    rollouts showing it and not, and the point-biserial correlation of the indicator with the reward
    (None when undefined: an empty side or a constant reward). Rollouts without a numeric reward are skipped."""
    return correlation_from_summaries(summarize_steps(rollouts))


def correlation_from_summaries(summaries: dict) -> dict[str, dict]:
    """``reward_correlation`` from per-step summaries ({step: step_summary}), without the rollouts."""
    n, total, sumsq = (sum(sm[k] for sm in summaries.values()) for k in ("scored", "reward_sum", "reward_sumsq"))
    out = {}
    for b in BEHAVIOURS:
        n1 = sum(sm["behaviour_reward"][b][0] for sm in summaries.values())
        s1 = sum(sm["behaviour_reward"][b][1] for sm in summaries.values())
        n0, s0 = n - n1, total - s1
        m1, m0 = (s1 / n1 if n1 else None), (s0 / n0 if n0 else None)
        r = None
        if n1 and n0:
            mean = total / n
            sd = math.sqrt(max(sumsq / n - mean * mean, 0.0))
            if sd > 1e-12:
                r = (m1 - m0) / sd * math.sqrt(n1 * n0 / n**2)
        out[b] = {"n_with": n1, "n_without": n0, "reward_with": m1, "reward_without": m0, "r": r}
    return out


_COLOURS = {"verification": "#b7e4c7", "backtracking": "#ffadad", "subgoal_setting": "#a0c4ff", "backward_chaining": "#ffd6a5"}


def highlight(text: str, matches) -> str:
    """HTML of `text` with each span of `matches` (Match objects or [start, end, label]) in a <mark>,
    coloured by behaviour, labelled in its title; overlapping spans are split at their boundaries."""
    spans = [(m.span[0], m.span[1], m.behaviour) if isinstance(m, Match) else (int(m[0]), int(m[1]), str(m[2])) for m in matches]
    cuts = sorted({0, len(text)} | {p for s, e, _ in spans for p in (s, e) if 0 <= p <= len(text)})
    out = []
    for a, b in zip(cuts, cuts[1:]):
        piece = html.escape(text[a:b])
        labels = [lab for s, e, lab in spans if s <= a and b <= e]
        if labels:
            colour = next((_COLOURS[lab] for lab in labels if lab in _COLOURS), "#fdffb6")
            piece = f'<mark style="background:{colour}" title="{html.escape(", ".join(labels))}">{piece}</mark>'
        out.append(piece)
    return '<pre style="white-space:pre-wrap">' + "".join(out) + "</pre>"
