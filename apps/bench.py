"""How the run readers scale: a synthetic run of N rollouts built from the recorded demo, then the
app's data layer and the notebook reader timed on it. A benchmark that prints numbers, not a test.

    workbench bench-app --rollouts 1000000          (or: python -m apps.bench --rollouts 1000000)

The synthetic run repeats the demo's 20 steps (32 rollouts each, with their logged traces) with
steps renumbered, its metrics likewise, and writes the rollout index as a training run does
(``RunWriter.rollouts(..., summarize=traces.step_summary)``: here one summary per demo step, reused,
since a repeated step has the same rollouts). Each measurement runs in a fresh process, so its peak
resident memory is the reader's own. Printed: seconds to open a run (the run table row, the status
line, the latest step's rollouts: the app's first paint), to show one step, for the behaviour
curves (and aha events, and the training curves), for a refresh after 100 new steps, and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "tests" / "data" / "runs" / "demo_chain_sum"
TARGETS = {"open": 5.0, "one step": 0.5, "behaviour curves": 2.0, "refresh +100 steps": 1.0}  # seconds (issue 15)


def _demo_steps():
    from workbench.analysis import traces

    # With traces, as the trainer logs them now (the recorded demo predates logged traces).
    rows = [json.loads(line) for line in (DEMO / "rollouts.jsonl").read_text().splitlines()]
    rows = [{**r, "traces": r.get("traces") or traces.tag(r["completion"], r["prompt"])} for r in rows]
    metrics = [json.loads(line) for line in (DEMO / "metrics.jsonl").read_text().splitlines()]
    steps = sorted({r["step"] for r in rows})
    by_step = {s: [r for r in rows if r["step"] == s] for s in steps}
    # Each demo step's lines without their step (it is the first key): the synthetic step is put in front.
    bodies = {s: [json.dumps(r, ensure_ascii=False)[len(json.dumps({"step": s})) - 1:] for r in by_step[s]]
              for s in steps}
    summaries = {s: traces.step_summary(by_step[s]) for s in steps}
    return steps, bodies, summaries, {m["step"]: m for m in metrics}


def append_steps(run_dir: Path, first: int, count: int, demo=None) -> None:
    """Append steps ``first`` .. ``first + count - 1`` (demo steps repeated) to the run at ``run_dir``:
    rollouts, their index lines and metrics, as the trainer writes them."""
    steps, bodies, summaries, metrics = demo or _demo_steps()
    rollouts, index, metric_lines = [], [], []
    offset = (run_dir / "rollouts.jsonl").stat().st_size if (run_dir / "rollouts.jsonl").exists() else 0
    for step in range(first, first + count):
        src = steps[(step - 1) % len(steps)]
        lines = [f'{{"step": {step}{body}\n'.encode() for body in bodies[src]]
        nbytes = sum(len(line) for line in lines)
        rollouts += lines
        index.append(json.dumps({"step": step, "offset": offset, "bytes": nbytes, "n": len(lines),
                                 "summary": summaries[src]}) + "\n")
        offset += nbytes
        metric_lines.append(json.dumps({**metrics[src], "step": step, "time": time.time()}) + "\n")
    with open(run_dir / "rollouts.jsonl", "ab") as f:
        f.writelines(rollouts)
    with open(run_dir / "rollouts.index.jsonl", "a") as f:
        f.writelines(index)
    with open(run_dir / "metrics.jsonl", "a") as f:
        f.writelines(metric_lines)


def build(root: Path, rollouts: int) -> Path:
    """A finished run of about ``rollouts`` rollouts under ``root``/synthetic (demo steps repeated)."""
    demo = _demo_steps()
    per_step = len(demo[1][demo[0][0]])
    n_steps = max(1, rollouts // per_step)
    run_dir = root / "synthetic"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    config = (DEMO / "config.yaml").read_text().replace("max_steps: 20", f"max_steps: {n_steps + 100}")
    (run_dir / "config.yaml").write_text(config)
    events = [json.loads(line) for line in (DEMO / "events.jsonl").read_text().splitlines()]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events if e["event"] != "end"))
    chunk = 2000
    for first in range(1, n_steps + 1, chunk):
        append_steps(run_dir, first, min(chunk, n_steps - first + 1), demo)
    with open(run_dir / "events.jsonl", "a") as f:  # finished, so no process check
        f.write(json.dumps({"time": time.time(), "event": "end", "status": "finished", "seconds": 1.0}) + "\n")
    return run_dir


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def measure_app(run_dir: Path) -> dict:
    """The app's data layer (apps.data) on the run, as the app calls it."""
    from apps import data as D

    store = D.RunStore(run_dir.parent)
    out = {}

    def first_paint():
        data = store.get(run_dir.name)
        D.run_table(store)
        D.status_html(D.summary(data))
        D.rollouts_html(data)  # the latest step
        return data

    out["open"], data = _timed(first_paint)
    steps = D.rollout_steps(data)
    out["one step"], _ = _timed(lambda: D.rollouts_html(data, steps[len(steps) // 2], "incorrect"))
    out["behaviour curves"], _ = _timed(lambda: (D.behaviour_figure(data), D.aha_html(data)))
    out["training curves"], _ = _timed(lambda: D.curves_figure([data]))
    last = steps[-1]
    append_steps(run_dir, last + 1, 100)

    def refresh():
        fresh = store.get(run_dir.name)
        D.status_html(D.summary(fresh))
        D.behaviour_figure(fresh)
        D.curves_figure([fresh])
        return fresh

    out["refresh +100 steps"], data = _timed(refresh)
    assert D.rollout_steps(data)[-1] == last + 100
    out["rollouts"] = data.rollout_count
    return out


def measure_notebook(run_dir: Path) -> dict:
    """The notebook reader (workbench.runlog.Run, RolloutLog) on the run."""
    from workbench.analysis import traces
    from workbench.runlog import RolloutLog, Run

    out = {}

    def open_run():
        run = Run(run_dir)
        log = RolloutLog(run, traces.step_summary, traces.merge_summaries)
        log.refresh()
        run.metrics()
        return run, log

    out["open"], (run, log) = _timed(open_run)
    steps = log.steps()
    out["one step"], _ = _timed(lambda: log.step_rollouts(steps[len(steps) // 2]))
    out["behaviour curves"], _ = _timed(lambda: traces.curves_from_summaries(log.summaries()))
    append_steps(run_dir, steps[-1] + 1, 100)
    out["refresh +100 steps"], _ = _timed(lambda: (log.refresh(), traces.curves_from_summaries(log.summaries())))
    try:  # the documented out-of-core query (workbench.analysis.query), over the whole log
        from workbench.analysis.query import VERIFIED_BUT_WRONG, rollouts_table

        out["DuckDB query"], _ = _timed(lambda: rollouts_table(run_dir).sql(VERIFIED_BUT_WRONG).fetchall())
    except ImportError:
        pass
    out["rollouts"] = log.count
    return out


def _measure(kind: str, run_dir: str) -> None:
    out = (measure_app if kind == "app" else measure_notebook)(Path(run_dir))
    out["peak RSS GB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # Linux: kilobytes
    print(json.dumps(out))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="workbench bench-app", description=__doc__.split("\n\n")[0])
    p.add_argument("--rollouts", type=int, default=1_000_000, help="size of the synthetic run")
    p.add_argument("--root", default="/tmp/workbench-bench-app", help="where the synthetic run is built (removed after)")
    p.add_argument("--keep", action="store_true", help="keep the synthetic run")
    p.add_argument("--measure", nargs=2, metavar=("KIND", "RUN_DIR"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.measure:
        _measure(*a.measure)
        return 0
    root = Path(a.root)
    t, run_dir = _timed(lambda: build(root, a.rollouts))
    size = (run_dir / "rollouts.jsonl").stat().st_size
    print(f"synthetic run: {a.rollouts:,} rollouts requested, {size / 1e6:.0f} MB of rollouts.jsonl, built in {t:.1f} s")
    results = {}
    for kind in ("app", "notebook"):
        done = subprocess.run([sys.executable, "-m", "apps.bench", "--measure", kind, str(run_dir)],
                              capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        if done.returncode:
            print(done.stdout + done.stderr, file=sys.stderr)
            return 1
        results[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\n{'':22s}{'app data layer':>16s}{'notebook reader':>17s}{'target':>9s}")
    for key in ("open", "one step", "behaviour curves", "training curves", "refresh +100 steps", "DuckDB query",
                "peak RSS GB"):
        cells = [results[k].get(key) for k in ("app", "notebook")]
        target = TARGETS.get(key, 1.5 if key == "peak RSS GB" else None)
        unit = " GB" if key == "peak RSS GB" else " s"
        row = "".join(f"{c:>14.2f}{unit}" if c is not None else f"{'–':>16s}" for c in cells)
        print(f"{key:22s}{row}{'' if target is None else f'< {target:g}':>9s}")
    print(f"rollouts read: {results['app']['rollouts']:,} (app), {results['notebook']['rollouts']:,} (notebook)")
    if not a.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
