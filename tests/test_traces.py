"""Reasoning traces: reflective terms, behaviour detectors, the echo rule, step curves, aha events."""

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.analysis import traces
from workbench.runlog import Run
from workbench.analysis.traces import (BEHAVIOURS, REFLECTIVE_TERMS, aha_events, detect, reflective_terms, reward_correlation,
                              split_think_answer, step_curves, tag)

DEMO_RUN = Path(__file__).parent / "data" / "runs" / "demo_chain_sum"

# (text, pattern name, behaviour, the exact text it must match)
POSITIVES = [
    ("So 3 + 4 = 7. Let me check that.", "let_me_check", "verification", "Let me check"),
    ("We can verify this by adding.", "let_me_check", "verification", "We can verify"),
    ("To verify, 7 - 4 = 3.", "verify_word", "verification", "verify"),
    ("Double-checking: 7 - 4 = 3.", "double_check", "verification", "Double-checking"),
    ("A quick sanity check: 2 * 6 = 12.", "double_check", "verification", "sanity check"),
    ("Now check whether 3 + 4 = 7.", "check_object", "verification", "check whether"),
    ("Plugging x = 3 back in gives 9.", "plug_back", "verification", "Plugging x = 3 back in"),
    ("3 * 4 = 12, which matches the target.", "which_matches", "verification", "which matches"),
    ("This confirms the result.", "which_matches", "verification", "This confirms"),
    ("So the answer is 12. Is that correct?", "is_it_right", "verification", "Is that correct?"),
    ("Wait, 3 + 4 is 7, not 8.", "wait", "backtracking", "Wait"),
    ("Wait a second: the sign is wrong.", "wait", "backtracking", "Wait a second"),
    ("Hold on, that can't be.", "hold_on", "backtracking", "Hold on"),
    ("Actually, the sum is 7.", "actually", "backtracking", "Actually"),
    ("The sum is 8. That's wrong.", "thats_wrong", "backtracking", "That's wrong"),
    ("So x = 2, but this is not right.", "thats_wrong", "backtracking", "this is not right"),
    ("That doesn't work, since 5 is odd.", "doesnt_work", "backtracking", "That doesn't work"),
    ("Let me try again.", "try_again", "backtracking", "Let me try again"),
    ("Let's try another approach.", "another_approach", "backtracking", "try another approach"),
    ("Let me recalculate: 6 * 7 = 42.", "let_me_redo", "backtracking", "Let me recalculate"),
    ("I made a mistake in the second line.", "made_mistake", "backtracking", "I made a mistake"),
    ("I miscalculated the product.", "made_mistake", "backtracking", "I miscalculated"),
    ("First, add 3 and 4. Then double it.", "first_then", "subgoal_setting", "First, add 3 and 4. Then"),
    ("We have two numbers.\nFirst we add them, next we halve.", "first_then", "subgoal_setting", "First we add them, next"),
    ("Let's first subtract 6 from both sides.", "do_first", "subgoal_setting", "Let's first"),
    ("We need to find the sum first.", "need_first", "subgoal_setting", "We need to find the sum first"),
    ("Step 1: add the numbers.", "step_n", "subgoal_setting", "Step 1"),
    ("Let's break this down into parts.", "break_down", "subgoal_setting", "break this down"),
    ("The first step is to add.", "first_step", "subgoal_setting", "The first step is"),
    ("Working backwards, 24 = 4 * 6.", "working_backwards", "backward_chaining", "Working backwards"),
    ("Starting from the target 24, divide by 6.", "from_target", "backward_chaining", "Starting from the target"),
    ("To get 24, we need 4 and 6.", "to_get_need", "backward_chaining", "To get 24, we need"),
    ("For the sum to be 10, we need 3 more.", "for_target_need", "backward_chaining", "For the sum to be 10, we need"),
    ("Which numbers multiply to 24?", "what_gives_target", "backward_chaining", "Which numbers multiply to"),
]

# (text, behaviour that must NOT be detected): near misses, chosen to be conservative.
NEGATIVES = [
    ("Click the checkbox and cash the paycheck.", "verification"),
    ("This is a check for 5 dollars.", "verification"),
    ("We need to check the weather.", "verification"),
    ("Please wait for the bus.", "backtracking"),
    ("We await the result; the waiter came.", "backtracking"),
    ("I actually like sums.", "backtracking"),
    ("Let's try it.", "backtracking"),
    ("There is no mistake here, the error term is small.", "backtracking"),
    ("The first number is 3, then add 4.", "subgoal_setting"),
    ("First, add the", "subgoal_setting"),  # no "then": not yet a plan
    ("Repeat step 1", "subgoal_setting"),
    ("Go to step 10: done.", "subgoal_setting"),
    ("we need to find the 8 behind the 1 between the 1 and the first", "subgoal_setting"),
    ("To get started, we need a pencil.", "backward_chaining"),
    ("I went back to the shop.", "backward_chaining"),
    ("The answer is 24.", "backward_chaining"),
]


def test_public_names():
    assert REFLECTIVE_TERMS == ("wait", "mistake", "however", "but", "retry", "error", "verify", "wrong", "evaluate", "check")
    assert BEHAVIOURS == ("verification", "backtracking", "subgoal_setting", "backward_chaining")
    assert {p.behaviour for p in traces.PATTERNS["en"]} == set(BEHAVIOURS)


@pytest.mark.parametrize("text,pattern,behaviour,expected", POSITIVES, ids=[f"{p[1]}:{p[0][:25]}" for p in POSITIVES])
def test_pattern_positive(text, pattern, behaviour, expected):
    matches = detect(text)
    hits = [m for m in matches if m.pattern == pattern]
    assert hits, f"{pattern} did not fire on {text!r}: {matches}"
    m = hits[0]
    assert m.behaviour == behaviour and m.text == expected
    assert text[m.span[0]:m.span[1]] == m.text


def test_every_pattern_has_a_positive_example():
    names = [p.name for p in traces.PATTERNS["en"]]
    assert len(names) == len(set(names))
    assert set(names) == {p[1] for p in POSITIVES}
    assert {row["name"] for row in traces.pattern_table()} == set(names)


@pytest.mark.parametrize("text,behaviour", NEGATIVES, ids=[n[0][:30] for n in NEGATIVES])
def test_pattern_negative(text, behaviour):
    assert [m for m in detect(text) if m.behaviour == behaviour] == []


def test_words_inside_words_are_not_terms():
    text = "Press the button, tick the checkbox, cash the paycheck, await the waiter, check-in, rebuttal."
    counts = reflective_terms(text)
    assert counts["but"] == 0 and counts["wait"] == 0
    assert counts["check"] == 1  # only "check-in": a hyphen ends a word
    assert detect("Press the button; tick the checkbox; await the waiter.") == []


def test_reflective_terms_whole_words_any_case_exact_forms():
    counts = reflective_terms("Wait, WAIT. But however... but checking, checked, check! Error errors wrong; re-evaluate verify")
    assert list(counts) == list(REFLECTIVE_TERMS)
    assert counts == {"wait": 2, "mistake": 0, "however": 1, "but": 2, "retry": 0, "error": 1, "verify": 1,
                      "wrong": 1, "evaluate": 1, "check": 1}
    assert reflective_terms("") == dict.fromkeys(REFLECTIVE_TERMS, 0)


def test_spans_are_exact_on_mixed_text():
    text = ("Hmm. First, 3 + 4 = 7, then 7 * 2 = 14.\nWait, that’s wrong — let’s verify: 7 * 2 = 14, "
            "which matches. İstanbul aside, I made a mistake.")
    matches = detect(text)
    assert matches == sorted(matches, key=lambda m: m.span)
    for m in matches:
        assert text[m.span[0]:m.span[1]] == m.text
    got = [(m.behaviour, m.text) for m in matches]
    assert ("backtracking", "that’s wrong") in got  # curly apostrophe, original characters kept
    assert ("verification", "let’s verify") in got
    assert ("backtracking", "I made a mistake") in got  # after "İ", whose lower case is two characters
    first = next(m for m in matches if m.pattern == "first_then")
    assert first.span == (text.index("First"), text.index("then") + 4)


def test_overlapping_matches_of_one_behaviour_count_once():
    matches = detect("Let me double-check my answer.")
    assert [(m.behaviour, m.pattern, m.text) for m in matches] == [("verification", "let_me_check", "Let me double-check")]
    # different behaviours may sit side by side
    assert {m.behaviour for m in detect("Wait, let me check.")} == {"backtracking", "verification"}


def test_unknown_language_names_the_valid_ones():
    with pytest.raises(ValueError, match="'xx'.*en"):
        detect("Attendez, c'est faux.", language="xx")


def test_split_think_answer():
    ok = split_think_answer("<think> 3 + 4 = 7 </think>\n<answer> 7 </answer>")
    assert ok == {"think": "3 + 4 = 7", "answer": "7", "format_ok": True}
    assert split_think_answer("The answer is 7.") == {"think": None, "answer": None, "format_ok": False}
    truncated = split_think_answer("<think> adding 3 and 4 gives")
    assert truncated["think"] == "adding 3 and 4 gives" and truncated["answer"] is None and not truncated["format_ok"]
    opened_by_prompt = split_think_answer("so 7 </think><answer>7</answer>")
    assert opened_by_prompt["think"] == "so 7" and opened_by_prompt["answer"] == "7" and not opened_by_prompt["format_ok"]
    multiple = split_think_answer("<think>a</think><answer>1</answer><think>b</think><answer>2</answer>")
    assert multiple == {"think": "a\n\nb", "answer": "2", "format_ok": False}
    assert split_think_answer("<answer>7</answer><think>x</think>")["format_ok"] is False  # wrong order
    assert split_think_answer("<think>x</think> text <answer>7</answer>")["format_ok"] is False


def test_format_ok_agrees_with_the_format_reward():
    from workbench.rewards.rules import FormatReward

    texts = ["<think>a</think><answer>1</answer>", " <think>a</think>\n<answer>1</answer>\n", "<think>a<think>b</think><answer>1</answer>",
             "<think>a</think>x<answer>1</answer>", "<answer>1</answer>", "", "<think></think><answer></answer>"]
    assert [float(split_think_answer(t)["format_ok"]) for t in texts] == FormatReward()(texts)


def test_tag_summary_is_json_serialisable():
    t = tag("<think>First, add 3 and 4. Then check. Wait, that's wrong.</think><answer>7</answer>")
    assert json.loads(json.dumps(t)) == t
    assert set(t) >= {"behaviours", "terms", "words", "think_words", "format_ok"}
    assert list(t["behaviours"]) == list(BEHAVIOURS) and list(t["terms"]) == list(REFLECTIVE_TERMS)
    assert t["behaviours"] == {"verification": 0, "backtracking": 2, "subgoal_setting": 1, "backward_chaining": 0}
    assert t["terms"]["wait"] == 1 and t["terms"]["wrong"] == 1 and t["terms"]["check"] == 1
    assert t["format_ok"] is True
    assert t["think_words"] == 11 and t["words"] == 12  # the tags are not words; "7" is


def test_echo_of_the_question_does_not_count():
    prompt = "Is 91 prime? Check whether 91 is prime and answer yes or no."
    completion = "We need to check whether 91 is prime. Let me check: 91 = 7 * 13, so no."
    bare, echoed = tag(completion), tag(completion, prompt=prompt)
    assert bare["behaviours"]["verification"] == 2 and bare["terms"]["check"] == 2
    assert echoed["behaviours"]["verification"] == 1 and echoed["terms"]["check"] == 1  # "Let me check" is its own
    # The question's own words in a copied stretch: a "Wait," that merely repeats the question.
    assert tag("Wait, is 3 + 4 = 8? No, it is 7.", prompt="Wait, is 3 + 4 = 8? Explain.")["behaviours"]["backtracking"] == 0
    assert tag("Wait, is 3 + 4 = 8? No, it is 7.")["behaviours"]["backtracking"] == 1
    # An instruction to check is not an echo of the model checking: no four words in a row are shared.
    own = tag("Let me double-check my answer: 3 + 4 = 7.", prompt="Double-check your answer before you reply.")
    assert own["behaviours"]["verification"] == 1


def _records(n_steps=10, per_step=32, from_step=5, share=0.5, baseline_share=0.0, same_prompts=False):
    """Synthetic rollouts: a reflective completion in `share` of each step's rollouts from `from_step`
    on (`baseline_share` before), the rest plain; reflective ones get reward 1."""
    out = []
    for step in range(1, n_steps + 1):
        s = share if step >= from_step else baseline_share
        for i in range(per_step):
            reflective = i < round(s * per_step)
            group = i // 8
            out.append({
                "step": step, "prompt_id": f"syn/train/{group if same_prompts else step * 100 + group}",
                "prompt": "What is 3 + 4?", "answer": "7", "group": group, "index": i % 8,
                "completion": "Wait, that's wrong. Let me check again: 3 + 4 = 7." if reflective else "3 + 4 = 7.",
                "tokens": 12, "truncated": False, "rewards": {"accuracy": float(reflective)},
                "reward": float(reflective), "advantage": 0.0,
            })
    return out


def test_step_curves_on_synthetic_records():
    curves = step_curves(_records())
    assert [c["step"] for c in curves] == list(range(1, 11))
    for c in curves:
        expected = 0.5 if c["step"] >= 5 else 0.0
        assert c["n"] == 32
        assert c["behaviour_share/backtracking"] == expected and c["behaviour_share/verification"] == expected
        assert c["term_share/wait"] == expected and c["term_share/but"] == 0.0
        assert c["any_reflective_share"] == expected and c["format_ok_share"] == 0.0 and c["think_words_mean"] == 0.0
    late = curves[-1]
    # 16 rollouts of 11 words (1 wait, 2 backtracking matches) + 16 of 3 words
    assert late["words"] == 16 * 11 + 16 * 3 and late["completion_words_mean"] == (16 * 11 + 16 * 3) / 32
    assert math.isclose(late["term_rate/wait"], 1000 * 16 / late["words"])
    assert math.isclose(late["behaviour_rate/backtracking"], 1000 * 32 / late["words"])
    assert curves[0]["term_rate/wait"] == 0.0


def test_step_curves_uses_stored_traces_and_recomputes_stale_ones():
    stored = tag("Let me check: 7.")
    plain = {"step": 1, "completion": "7", "traces": stored}
    assert step_curves([plain])[0]["behaviour_share/verification"] == 1.0  # trusted, not recomputed
    stale = {"step": 1, "completion": "7", "traces": {**stored, "version": -1}}
    assert step_curves([stale])[0]["behaviour_share/verification"] == 0.0
    assert step_curves([{"step": 2, "completion": "Let me check: 7."}])[0]["behaviour_share/verification"] == 1.0


def test_aha_event_where_the_behaviour_appears():
    events = aha_events(_records())
    assert {(e["kind"], e["name"], e["step"]) for e in events} == {
        ("behaviour", "backtracking", 5), ("behaviour", "verification", 5),
        ("term", "wait", 5), ("term", "wrong", 5), ("term", "check", 5)}
    e = next(e for e in events if e["name"] == "backtracking")
    assert e["baseline_share"] == 0.0 and e["share"] == 0.5 and e["z"] > 3
    assert e["same_prompts"] is None  # new prompts every step
    ex = e["exemplar"]
    assert ex["step"] == 5 and ex["reward"] == 1.0 and "Wait" in ex["completion"]
    assert [m[2] for m in ex["matches"]] == ["backtracking", "backtracking", "verification"]
    for s, end, _ in ex["matches"]:
        assert 0 <= s < end <= len(ex["completion"])
    term = next(e for e in events if e["name"] == "wait")
    assert [ex_m for ex_m in term["exemplar"]["matches"] if ex_m[2] == "term:wait"] == [[0, 4, "term:wait"]]
    assert json.loads(json.dumps(events)) == events


def test_no_aha_event_on_a_flat_series():
    assert aha_events(_records(from_step=1, share=0.25)) == []
    assert aha_events(_records(share=0.0)) == []
    assert aha_events(_records(n_steps=1)) == []


def test_aha_event_needs_min_count_and_z():
    recs = _records(per_step=100, share=0.02)  # 2 of 100 from step 5, 0 before
    assert aha_events(recs, z=0.5, min_count=3) == []
    assert {e["step"] for e in aha_events(recs, z=0.5, min_count=2)} == {5}
    assert aha_events(recs, z=3.0, min_count=2) == []


def test_aha_event_reports_the_baseline_on_recurring_prompts():
    events = aha_events(_records(same_prompts=True))
    sp = next(e for e in events if e["name"] == "backtracking")["same_prompts"]
    assert sp == {"prompt_ids": 4, "n_baseline": 32, "baseline_share": 0.0, "n": 6 * 32, "share": 0.5}


def test_reward_correlation():
    corr = reward_correlation(_records())
    bt = corr["backtracking"]
    assert bt["n_with"] == 6 * 16 and bt["n_without"] == 320 - 96
    assert bt["reward_with"] == 1.0 and bt["reward_without"] == 0.0 and math.isclose(bt["r"], 1.0)
    assert corr["backward_chaining"]["r"] is None and corr["backward_chaining"]["reward_with"] is None
    constant = [{**r, "reward": 1.0} for r in _records()]
    assert reward_correlation(constant)["backtracking"]["r"] is None
    # against a direct Pearson correlation on a mixed case
    recs = _records()
    for i, r in enumerate(recs):
        r["reward"] = (i % 3) / 2
    xs = [float("Wait" in r["completion"]) for r in recs]
    ys = [r["reward"] for r in recs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    pearson = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / math.sqrt(
        sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys))
    assert math.isclose(reward_correlation(recs)["backtracking"]["r"], pearson)


def test_highlight_marks_spans_and_escapes():
    text = "Wait, <b> that's wrong."
    out = traces.highlight(text, detect(text) + [[0, 4, "term:wait"]])
    assert out.count("<mark") == 2 and "&lt;b&gt;" in out
    assert 'title="backtracking, term:wait">Wait</mark>' in out
    assert "that&#x27;s wrong</mark>" in out


def _demo_rollouts():
    return Run(DEMO_RUN).rollouts()


def test_recorded_run_curves():
    rollouts = _demo_rollouts()
    assert len(rollouts) == 640
    curves = step_curves(rollouts)
    assert [c["step"] for c in curves] == list(range(1, 21))
    for c in curves:
        assert c["n"] == 32
        shares = {k: v for k, v in c.items() if "share" in k}
        assert len(shares) == len(REFLECTIVE_TERMS) + len(BEHAVIOURS) + 3  # + any_reflective, any_behaviour, format_ok
        assert all(0.0 <= v <= 1.0 for v in shares.values())
    # the demo learns to answer tersely: completions shrink
    assert curves[-1]["completion_words_mean"] < curves[0]["completion_words_mean"]
    for e in aha_events(rollouts):
        assert e["step"] > 1 and e["share"] > e["baseline_share"]
    corr = reward_correlation(rollouts)
    assert set(corr) == set(BEHAVIOURS)


def test_recorded_run_tagging_speed_and_json():
    rollouts = _demo_rollouts()
    start = time.perf_counter()
    tags = [tag(r["completion"], r["prompt"]) for r in rollouts]
    seconds = time.perf_counter() - start
    print(f"tag(): {len(rollouts) / seconds:,.0f} rollouts/s on the recorded run")
    assert seconds < 2.0
    assert json.loads(json.dumps(tags)) == tags
    # long completions: no pathological regex backtracking
    long = ("Let me think. First, 3 + 4 = 7, then 7 * 2 = 14. Wait, that's wrong, let me check again. "
            "So the sum is 14 and we can go on with the product of the numbers here. ") * 13
    start = time.perf_counter()
    for _ in range(100):
        tag(long, rollouts[0]["prompt"])
    seconds = time.perf_counter() - start
    print(f"tag(): {100 / seconds:,.0f} rollouts/s at {len(long.split())} words")
    assert seconds < 2.0


def test_import_is_light():
    code = ("import sys, time; t = time.perf_counter(); import workbench.analysis.traces; "
            "print(time.perf_counter() - t); print(any(m in sys.modules for m in ('torch', 'numpy', 'transformers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    print(f"import workbench.analysis.traces: {float(out[0]) * 1000:.0f} ms")
    assert out[1] == "False"
    assert float(out[0]) < 0.5  # ~30 ms unloaded; generous for a busy CI machine
