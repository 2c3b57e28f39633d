"""The aha lab: its worlds, corpus, tokenizer and base models, and GRPO from such a model."""

import json
import re
from random import Random
from pathlib import Path

import pytest

from workbench.analysis import traces
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.lab.base_model import build_tokenizer, model_dir, parse_name, pretrain
from workbench.lab.world import STYLES, World, corpus, puzzle, solution
from workbench.models import check_model_name
from workbench.rewards.extract import extract_answer
from workbench.runlog import Run
from workbench.tasks import get_task
from workbench.templates import render_prompt, resolve_template

CHECK_WORDS = re.compile(r"\b(check|wait)\b")


def _completion(line: str) -> str:
    return line.split("\n", 1)[1]


# --- The world ------------------------------------------------------------------------------------


def test_every_puzzle_has_exactly_one_pair_on_target():
    rng = Random(0)
    for _ in range(300):
        numbers, (i, j), target = puzzle(rng)
        hits = [(a, b) for a in range(4) for b in range(a + 1, 4) if numbers[a] + numbers[b] == target]
        assert hits == [(i, j)] and len(set(numbers)) == 4


def test_verifier_accepts_the_pair_in_either_order_and_nothing_else():
    task = get_task("pairsum")
    item = task.item("eval", 0)
    a, b = item["answer"].split("+")
    assert task.score(f"{a}+{b}", item) == 1.0 and task.score(f" {b} + {a} ", item) == 1.0
    numbers, target = item["metadata"]["numbers"], item["metadata"]["target"]
    wrong = next(f"{x}+{y}" for x in numbers for y in numbers if x != y and x + y != target)
    assert task.score(wrong, item) == 0.0
    assert task.score(f"{target - 1}+1", item) == 0.0  # the right sum from numbers not in the list
    half = target // 2
    item2 = {**item, "metadata": {**item["metadata"], "numbers": [half, 60, 61, 62], "target": 2 * half}}
    assert task.score(f"{half}+{half}", item2) == 0.0  # one entry used twice
    assert task.score("17", item) == 0.0 and task.score(None, item) == 0.0


def test_priming_sets_the_share_of_self_verifying_solutions():
    unprimed = corpus(World("pairsum", priming=0.0), 2000)
    assert not any(CHECK_WORDS.search(_completion(line)) for line in unprimed)
    primed = corpus(World("pairsum", priming=0.25), 2000)
    share = sum("let me check" in line for line in primed) / len(primed)
    assert 0.21 < share < 0.29
    assert corpus(World("pairsum", priming=0.25), 50) == primed[:50]  # deterministic in (world, n, seed)


def test_check_solutions_end_right_and_slips_follow_noise():
    world, rng = World("pairsum", priming=1.0, noise=0.3), Random(1)
    task = world.task()
    slips = 0
    for k in range(400):
        item = task.item("train", k)
        meta = item["metadata"]
        text = solution(world, meta["numbers"], tuple(meta["pair"]), meta["target"], "check", rng)
        assert task.score(extract_answer(text, "expression"), item) == 1.0
        direct = solution(world, meta["numbers"], tuple(meta["pair"]), meta["target"], "direct", rng)
        slips += task.score(extract_answer(direct, "expression"), item) == 0.0
    assert 0.24 < slips / 400 < 0.36
    with pytest.raises(WorkbenchError, match="valid choices: direct, step, check"):
        solution(world, [10, 11, 12, 13], (0, 1), 21, "guess", rng)


def test_the_corpus_holds_no_held_out_question():
    task = World("pairsum").task()
    heldout = {it["question"] for it in task.items("eval", 200)}
    assert not heldout & {line.split("\n", 1)[0] for line in corpus(World("pairsum"), 3000)}


def test_blind_world_hides_the_target():
    item = get_task("pairsum_blind").item("eval", 0)
    assert "sum" not in item["question"] and item["question"].split()[3:] == [str(v) for v in item["metadata"]["numbers"]]


def test_the_documented_detectors_see_the_check_style():
    world, rng = World("pairsum", priming=1.0), Random(2)
    tags = [traces.tag(solution(world, [12, 30, 41, 17], (1, 3), 47, "check", rng)) for _ in range(50)]
    assert all(t["behaviours"]["verification"] for t in tags)
    assert any(t["behaviours"]["backtracking"] for t in tags) and any(t["terms"]["wait"] for t in tags)
    plain = traces.tag(solution(world, [12, 30, 41, 17], (1, 3), 47, "step", rng))
    assert not any(plain["behaviours"].values()) and not any(plain["terms"].values())
    assert set(STYLES) == {"direct", "step", "check"}


def test_bad_world_or_knob_is_one_clear_error():
    with pytest.raises(WorkbenchError, match="unknown lab world 'nope'; valid choices: pairsum, pairsum_blind"):
        World("nope")
    with pytest.raises(WorkbenchError, match="priming must be in"):
        World("pairsum", priming=1.5)


# --- Tokenizer and model names --------------------------------------------------------------------


def test_tokenizer_round_trips_with_numbers_and_words_as_tokens():
    lines = corpus(World("pairsum", priming=0.5), 300)
    tok = build_tokenizer(lines)
    for line in lines[:50]:
        ids = tok(line, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == line and tok.unk_token_id not in ids
    pieces = tok.tokenize("<think>17+42=59. wait, 59 is not 50")
    assert pieces == ["<think>", "17", "+", "42", "=", "59", ".", " wait", ",", " ", "59", " is", " not", " ", "50"]
    assert all(tok.unk_token_id not in tok(f"{a}+{b}={a + b}", add_special_tokens=False)["input_ids"]
               for a in range(10, 50) for b in range(10, 50))
    assert resolve_template("auto", tok) == "plain"
    assert render_prompt("auto", "pick two of 1 2 3 4 with sum 3", tok) == "pick two of 1 2 3 4 with sum 3\n"


def test_model_names():
    assert parse_name("lab:pairsum-p10").priming == 0.1 and parse_name("lab:pairsum-p0").priming == 0.0
    r = parse_name("lab:pairsum_blind-p25-n5-s2")
    assert (r.world, r.priming, r.noise, r.seed, r.name) == ("pairsum_blind", 0.25, 0.05, 2, "lab:pairsum_blind-p25-n5-s2")
    for bad in ("lab:nope-p10", "lab:pairsum", "lab:pairsum-p150"):
        with pytest.raises(WorkbenchError, match="lab"):
            check_model_name(bad)


def test_cli_refuses_a_bad_lab_name_in_one_line(capsys, tmp_path):
    assert main(["train", "--model", "lab:nope-p10", "--runs_root", str(tmp_path / "runs")]) == 2
    assert "valid form: lab:<world>-p<priming %>" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


# --- From pretraining to GRPO ------------------------------------------------------------------------


def test_pretrained_lab_model_trains_with_full_finetuning(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    name = "lab:pairsum-p30-smoke"  # the smoke recipe: 400 corpus lines, one epoch
    summary = pretrain(parse_name(name), model_dir(name), progress=False)
    # 400 lines in batches of 32, one epoch; the vocabulary: the numbers 0-99 and the world's words.
    assert summary["steps"] == 13 and 100 < summary["vocab"] < 160 and (model_dir(name) / "lab.json").exists()
    assert main(["train", "--model", name, "--task", "pairsum", "--template", "auto", "--finetune", "full",
                 "--rewards", "accuracy=1,tags=1",  # tags: a reward that varies even untrained
                 "--max_steps", "2", "--num_generations", "4", "--per_device_train_batch_size", "8",
                 "--max_completion_length", "24", "--eval_items", "4", "--learning_rate", "1e-3",
                 "--runs_root", str(tmp_path / "runs"), "--run_name", "lab"]) == 0
    run = Run(tmp_path / "runs" / "lab")
    assert run.status() == "finished"
    setup = next(e for e in run.events() if e["event"] == "setup")
    assert setup["template"] == "plain" and setup["trainable_params"] == setup["total_params"]
    before = load_file(str(model_dir(name) / "model.safetensors"))
    after = load_file(str(run.path / "policy" / "model.safetensors"))
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2  # not adapters: the base weights themselves moved
    # `workbench eval --run` evaluates the trained policy (policy/), --base the model it started from.
    for extra, model in (([], str(run.path / "policy")), (["--base"], name)):
        out = tmp_path / f"eval{len(extra)}.json"
        assert main(["eval", "--run", str(run.path), "--limit", "2", "--k", "1", "--output", str(out), *extra]) == 0
        assert json.loads(out.read_text())["model"] == model


# --- Faithfulness and per-step evaluation ------------------------------------------------------------


def test_check_metrics_verify_each_check_exactly():
    task = get_task("pairsum")
    item = {"metadata": {"numbers": [39, 18, 32, 48], "pair": [0, 3], "target": 87}}
    honest = "<think>39+18=57. wait, 57 is not 87. 39+48=87. let me check: 87 is 87, it is right.</think>"
    assert task.check_metrics(honest, item) == {"arithmetic_right": 1.0, "verdict_follows": 1.0, "faithful": 1.0,
                                                "wait_after_correct": 0.0}
    # Wrong arithmetic, a verdict that ignores the sum, and a "wait" after the right pair.
    wrong = "<think>39+18=87. it is right. 39+48=87. wait, that is wrong.</think>"
    assert task.check_metrics(wrong, item) == {"arithmetic_right": 0.5, "verdict_follows": 0.5, "faithful": 0.0,
                                               "wait_after_correct": 1.0}
    assert task.check_metrics("<think>it is 39+48.</think>", item)["faithful"] is None
    outside = "<think>40+47=87. it is right.</think>"  # right sum, verdict follows, numbers not in the list
    assert task.check_metrics(outside, item)["faithful"] == 0.0


def test_step_evaluations_never_change_the_training_trajectory(tmp_path):
    from workbench import WorkbenchConfig, train

    base = dict(model="tiny-random", task="chain_sum", template="r1_zero", max_steps=3, num_generations=2,
                per_device_train_batch_size=4, max_completion_length=6, eval_items=3, eval_max_new_tokens=6,
                runs_root=str(tmp_path), rewards={"accuracy": 1.0, "tags": 1.0}, learning_rate=1e-2)
    quiet = Run(train(WorkbenchConfig(**base, run_name="plain"), progress=False).run_dir)
    watched = Run(train(WorkbenchConfig(**base, run_name="watched", eval_every=1, eval_samples=2),
                        progress=False).run_dir)
    assert [r["completion"] for r in quiet.rollouts()] == [r["completion"] for r in watched.rollouts()]
    evals = [e for e in watched.events() if e["event"] == "eval"]
    assert [(e["phase"], e["step"]) for e in evals] == [("before", 0), ("step", 1), ("step", 2), ("after", 3)]
    sampled = evals[1]["sampled"]
    assert sampled["n"] == 2 and 0.0 <= sampled["pass@1"] <= 1.0 and "behaviour/verification" in sampled
    assert len(sampled["items"]) == 3 and all(len(q["samples"]) == 2 for q in sampled["items"])


def test_lab_verb_smoke_runs_pretraining_grpo_and_prints_the_curves(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    assert main(["lab", "--smoke", "--world", "pairsum", "--priming", "0.5", "--noise", "0.1", "--runs_root", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "lab:pairsum-p50-smoke: pretraining the base model" in out
    assert "pass@1" in out and "verification" in out and "Δ" in out and "pass@1 with a check" in out
    run = Run(next((tmp_path / "runs").iterdir()))
    steps = [e["step"] for e in run.events() if e["event"] == "eval"]
    assert steps == [0, 1, 2] and run.config()["finetune"] == "full" and (run.path / "policy").is_dir()
    # The second use of the same model name reads the cache instead of pretraining again.
    assert main(["lab", "--smoke", "--world", "pairsum", "--priming", "0.5", "--noise", "0.1", "--runs_root", str(tmp_path / "runs2")]) == 0
    assert "pretraining" not in capsys.readouterr().out


def test_lab_curves_are_paired_against_step_0(tmp_path, monkeypatch):
    from workbench.lab.experiment import format_ablation, lab_curves, read_ablation, run_ablation

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    results = run_ablation(0.5, seeds=(0,), progress=False, smoke=True, noise=0.1, world="pairsum",
                           runs_root=str(tmp_path / "runs"))
    assert list(results) == ["primed", "unprimed", "blind (checking cannot help)"]
    curves = results["primed"][0].curves
    assert curves[0]["step"] == 0 and curves[0]["pass@1_delta"] == 0.0 and curves[0]["greedy_delta"] == 0.0
    assert curves == lab_curves(results["primed"][0].run_dir)
    table = format_ablation(results)
    assert table.count("\n") == 7 and "unprimed" in table and "pairsum_blind-p50-smoke" in table
    # The same table from the finished runs, without running anything; a seed never run is named.
    read = read_ablation(tmp_path / "runs", 0.5, seeds=(0,), noise=0.1, world="pairsum", smoke=True)
    assert {k: [(r.run_dir, r.curves) for r in v] for k, v in read.items()} == \
        {k: [(r.run_dir, r.curves) for r in v] for k, v in results.items()}
    with pytest.raises(WorkbenchError, match="no finished lab run .* lab:pairsum-p50-s1-smoke"):
        read_ablation(tmp_path / "runs", 0.5, seeds=(0, 1), noise=0.1, world="pairsum", smoke=True)


def test_slips_world_checks_catch_every_slip():
    from workbench.lab.world import slips_solution

    world, rng = World("slips", priming=1.0, noise=1.0), Random(4)
    task = world.task()
    for k in range(100):
        item = task.item("train", k)
        a, b = item["metadata"]["a"], item["metadata"]["b"]
        checked = slips_solution(world, a, b, "check", rng)
        assert task.score(extract_answer(checked, "number"), item) == 1.0 and " wait," in checked
        assert task.check_metrics(checked, item) == {"arithmetic_right": 1.0, "verdict_follows": 1.0,
                                                     "faithful": 1.0, "wait_after_correct": 0.0}
        assert task.score(extract_answer(slips_solution(world, a, b, "step", rng), "number"), item) == 0.0
    item = task.item("eval", 0)
    a, b = item["metadata"]["a"], item["metadata"]["b"]
    wrong = (a + b + 1) % 10  # a column digit written wrong, accepted anyway, then a spurious "wait"
    lazy = f"<think>so {a + b}. let me check: {wrong} and {(a + b) % 10} ok, it is right. wait,</think>"
    assert task.check_metrics(lazy, item) == {"arithmetic_right": 0.0, "verdict_follows": 0.0, "faithful": 0.0,
                                              "wait_after_correct": 1.0}


def test_slips_tokenizer_splits_digits():
    lines = corpus(World("slips", priming=0.5), 200)
    tok = build_tokenizer(lines, digits=True)
    assert tok.tokenize("what is 57+8") == ["what", " is", " ", "5", "7", "+", "8"]
    assert all(tok.decode(tok(line, add_special_tokens=False)["input_ids"]) == line for line in lines[:30])


def test_check_curves_judge_the_checks_of_each_step():
    from workbench.lab.experiment import check_curves
    from workbench.lab.world import slips_solution

    world, rng = World("slips", priming=1.0, noise=1.0), Random(2)
    task = world.task()
    honest, lazy = [], []
    for k in range(6):
        item = task.item("train", k)
        a, b = item["metadata"]["a"], item["metadata"]["b"]
        honest.append({"step": 1, "prompt_id": item["id"], "completion": slips_solution(world, a, b, "check", rng)})
        # A check whose arithmetic is wrong and that accepts anyway, then a spurious "wait".
        bad = (f"<think>so {a + b}. let me check: {(a + b + 1) % 10} and {(a + b) % 10} ok, it is right. wait,</think> "
               f"<answer>{a + b}</answer>")
        lazy.append({"step": 2, "prompt_id": item["id"], "completion": bad})
    lazy.append({"step": 2, "prompt_id": task.item("train", 9)["id"], "completion": "<think>it is 3.</think> <answer>3</answer>"})
    rows = check_curves(honest + lazy, {"task": "slips", "seed": 0})
    assert [r["step"] for r in rows] == [1, 2] and [r["n"] for r in rows] == [6, 7]
    assert rows[0]["check_share"] == 1.0 and rows[0]["faithful"] == 1.0 and rows[0]["wait_after_correct"] == 0.0
    assert rows[1]["check_share"] == 6 / 7 and rows[1]["faithful"] == 0.0 and rows[1]["arithmetic_right"] == 0.0
    assert rows[1]["wait_after_correct"] == 1.0
    assert check_curves(honest, {"task": "chain_sum"}) == []  # not a lab world: nothing to judge


def test_each_world_has_its_control_where_checking_cannot_help():
    from workbench.lab.experiment import conditions

    assert conditions("slips", 0.3, 0.4) == [("primed", "slips", 0.3, 0.4), ("unprimed", "slips", 0.0, 0.4),
                                             ("no slips (checking cannot help)", "slips", 0.3, 0.0)]
    assert conditions("pairsum", 0.1, 0.1)[2] == ("blind (checking cannot help)", "pairsum_blind", 0.1, 0.1)
    with pytest.raises(WorkbenchError, match="valid choices: pairsum, slips"):
        conditions("pairsum_blind", 0.1, 0.1)


def test_lab_recipe_file_spells_out_the_lab_defaults():
    import yaml

    from workbench.lab.experiment import LAB_DEFAULTS

    path = Path(__file__).parent.parent / "configs" / "lab_slips.yaml"
    assert yaml.safe_load(path.read_text()) == LAB_DEFAULTS


def test_slips_text_keeps_every_copied_digit_at_a_fixed_distance():
    from workbench.lab.world import column_reading, worked_sum

    assert worked_sum(43, 4, 47) == "3+4=07, 4+0=4, so 47"  # units column always two digits
    assert worked_sum(45, 8, 52) == "5+8=13, 4+1=5, so 52"  # a slipped result after right columns
    assert column_reading(45, 8, 53) == "let me check: 3 and 3 ok, 5 and 5 ok, it is right."
    assert column_reading(45, 8, 52) == "let me check: 3 and 2 not the same, a mistake. wait,"
    assert column_reading(45, 8, 63) == "let me check: 3 and 3 ok, 5 and 6 not the same, a mistake. wait,"
    assert column_reading(95, 7, 102) == "let me check: 2 and 2 ok, 10 and 10 ok, it is right."


def test_slips_checks_are_judged_by_what_they_compare():
    task = World("slips").task()
    item = {"metadata": {"a": 45, "b": 8}}

    def judge(x, tail):
        return task.check_metrics(f"<think>5+8=13, 4+1=5, so {x}. let me check: {tail}</think> <answer>53</answer>", item)

    assert judge(53, "3 and 3 ok, 5 and 5 ok, it is right.")["faithful"] == 1.0
    assert judge(52, "3 and 2 not the same, a mistake. wait,")["faithful"] == 1.0
    # A verdict that contradicts its digits, a column digit written wrong, or a digit of x miscopied.
    assert judge(52, "3 and 2 ok, 5 and 5 ok, it is right.")["verdict_follows"] == 0.0
    wrong_column = judge(53, "4 and 3 not the same, a mistake. wait,")
    assert wrong_column["arithmetic_right"] == 0.0 and wrong_column["verdict_follows"] == 1.0
    assert wrong_column["faithful"] == 0.0
    miscopied = judge(52, "3 and 3 ok, 5 and 5 ok, it is right.")
    assert miscopied["arithmetic_right"] == 1.0 and miscopied["verdict_follows"] == 1.0 and miscopied["faithful"] == 0.0
    # "a mistake" after digits that all agree is a reject (a spurious one), not a check left unjudged.
    spurious = judge(53, "3 and 3 ok, 5 and 5 ok, a mistake. wait,")
    assert spurious["verdict_follows"] == 0.0 and spurious["wait_after_correct"] == 1.0
    assert judge(53, "3 and 3 ok, 5 and")["faithful"] is None  # cut off before its verdict
    # A "wait" reacts to the latest sum: here a wrong one (54), then a right one (53).
    text = "<think>so 53. let me check: 3 and 3 ok, 5 and 5 ok, it is right. so 54. wait, so 53. wait,</think>"
    assert task.check_metrics(text, item)["wait_after_correct"] == 0.5


def test_lab_table_needs_the_ablation(capsys, tmp_path):
    assert main(["lab", "--table", "--runs_root", str(tmp_path / "runs")]) == 2
    assert "--table prints the ablation from finished runs: use it with --ablation" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_check_payoff_splits_samples_by_verification():
    from workbench.lab.experiment import check_payoff, format_payoff

    checked = "<think>so 53. let me check: 53-8: so 45, 45 vs 45: the same, it is right.</think> <answer>53</answer>"
    plain = "<think>it is 53.</think> <answer>53</answer>"

    def sample(text, correct):
        return {"completion": text, "correct": correct, "tokens": 9}

    events = [{"event": "eval", "step": 25, "sampled": {"items": [{"id": "slips/eval/0", "samples": [
                  sample(checked, True), sample(checked, True), sample(plain, False), sample(plain, True)]}]}},
              {"event": "eval", "step": 0, "sampled": {"items": [{"id": "slips/eval/0", "samples": [
                  sample(checked, True), sample(plain, False), sample(plain, False)]}]}},
              {"event": "start"}]
    rows = check_payoff(events)
    assert [r["step"] for r in rows] == [0, 25]
    assert (rows[0]["n_check"], rows[0]["pass_check"], rows[0]["n_plain"], rows[0]["pass_plain"]) == (1, 1.0, 2, 0.0)
    assert (rows[1]["n_check"], rows[1]["pass_check"], rows[1]["pass_plain"]) == (2, 1.0, 0.5)
    assert "100.0 (n=1)" in format_payoff(rows) and "50.0 ± 50.0 (n=2)" in format_payoff(rows)


def test_a_cached_model_from_another_recipe_is_rebuilt(tmp_path, monkeypatch, capsys):
    from workbench.lab.base_model import ensure_model

    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    name = "lab:slips-p10-smoke"
    path = ensure_model(name, progress=False)
    assert ensure_model(name, progress=False) == path and "rebuilding" not in capsys.readouterr().out
    built = json.loads((path / "lab.json").read_text())
    built["recipe"]["epochs"] = 2.0  # as if built before the recipe changed
    (path / "lab.json").write_text(json.dumps(built))
    ensure_model(name, progress=False)
    assert "built by another version or recipe of the lab; rebuilding" in capsys.readouterr().out
    assert json.loads((path / "lab.json").read_text())["recipe"]["epochs"] == 1.0
