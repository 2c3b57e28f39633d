"""workbench eval: R1's sampled protocol, wired to the real verifier and the estimators."""

import json

import pytest

from workbench.cli import main
from workbench.analysis.estimators import majority_vote, pass_at_k
from workbench.tasks import get_task


def test_eval_cli_on_a_run_directory(tmp_path, capsys):
    from workbench import WorkbenchConfig, train

    cfg = WorkbenchConfig(model="tiny-random", max_steps=1, num_generations=4, per_device_train_batch_size=8,
                          max_completion_length=6, eval_items=0, runs_root=str(tmp_path), run_name="r")
    run_dir = train(cfg, progress=False).run_dir
    out = tmp_path / "eval.json"
    assert main(["eval", "--run", run_dir, "--k", "2", "--n", "3", "--limit", "5", "--greedy",
                 "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["adapter"].endswith("adapter")  # the run's trained adapter was applied
    assert json.loads((tmp_path / "r" / "eval_k2.json").read_text())["pass@1"] == result["pass@1"]
    assert result["questions"] == len(result["items"]) == 5 and result["n"] == 3
    task = get_task("chain_sum", seed=0)
    eval_items = {it["id"]: it for it in task.items("eval", 5)}
    flags = []
    for q in result["items"]:
        assert len(q["samples"]) == 3
        for s in q["samples"]:  # each verdict is the task's verifier on the extracted answer
            assert s["correct"] == (task.score(s["extracted"], eval_items[q["id"]]) >= 1.0)
            assert s["tokens"] <= 6
        flags.append([s["correct"] for s in q["samples"]])
    assert result["pass@1"] == pytest.approx(sum(sum(f) / 3 for f in flags) / 5)
    assert result["pass@2"] == pytest.approx(sum(pass_at_k(3, sum(f), 2) for f in flags) / 5)
    votes = [majority_vote([s["extracted"] for s in q["samples"][:2]]) for q in result["items"]]
    cons = [v is not None and task.score(v, eval_items[q["id"]]) >= 1.0 for v, q in zip(votes, result["items"])]
    assert result["cons@2"] == pytest.approx(sum(cons) / 5)
    printed = capsys.readouterr().out
    assert "pass@1" in printed
    # The training run's cost beside its scores: the run's own device-hours (workbench.cost).
    assert result["run_cost"]["device"] == "cpu" and result["run_cost"]["device_hours"] > 0
    assert "training cost" in printed and "core-hours" in printed


def test_eval_refuses_k_larger_than_samples(capsys):
    assert main(["eval", "--model", "tiny-random", "--k", "5", "--n", "2", "--limit", "2"]) == 2
    assert "k (5) larger than samples taken (n=2)" in capsys.readouterr().err
