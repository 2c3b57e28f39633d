"""The R1 Workbench app: watch GRPO runs train, compare them, read rollouts, try the model.

    workbench app --runs runs [--port 7860] [--host 127.0.0.1]
    python -m apps.app --runs runs

    from apps.app import build_app, launch
    url = launch("runs", block=False)      # serves in the background, returns the URL

It only re-reads run directories (through ``apps.data``, which reads them through
``workbench.runlog``), so live, finished, crashed and copied runs all look the same. A timer
refreshes the page every ``REFRESH_SECONDS``; each refresh reads only the appended bytes and
re-renders only the parts whose data changed. Binds 127.0.0.1 unless told otherwise: model
text is escaped, but the app is a local tool, not a public server.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path

import gradio as gr

from apps import data as D
from workbench.analysis import traces
from workbench.errors import WorkbenchError
from workbench.runlog import safe_run_dir

REFRESH_SECONDS = 2.0
ANY = "any"
log = logging.getLogger(__name__)

CSS = """
.wb-statusline { font-size: 15px; padding: 6px 2px; }
.wb-status { padding: 1px 8px; border-radius: 10px; color: white; font-weight: 600; }
.wb-running { background: #2563eb; } .wb-finished { background: #16a34a; }
.wb-crashed { background: #dc2626; } .wb-empty { background: #6b7280; }
.wb-warn { color: #b45309; margin-top: 4px; }
.wb-msg { padding: 10px 14px; border-radius: 6px; margin: 6px 0; }
.wb-msg-info { background: #eff6ff; color: #1e3a8a; } .wb-msg-warn { background: #fffbeb; color: #92400e; }
.wb-msg-error { background: #fef2f2; color: #991b1b; font-weight: 600; }
.wb-group { border: 1px solid #e5e7eb; border-radius: 8px; padding: 8px 10px; margin: 10px 0; }
.wb-ghead { margin-bottom: 6px; }
.wb-prompt pre { white-space: pre-wrap; font-size: 12px; background: #f9fafb; padding: 6px; }
.wb-cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 0 10px; }
.wb-card { border-left: 5px solid #9ca3af; border-radius: 4px; padding: 4px 8px; margin: 5px 0; }
.wb-meta { font-size: 12px; color: #374151; margin-bottom: 2px; }
.wb-text, .wb-think, .wb-answer { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 13px; }
.wb-think { color: #4b5563; border-left: 2px dashed #9ca3af; padding-left: 6px; }
.wb-answer { font-weight: 600; }
.wb-label { font-size: 10px; text-transform: uppercase; color: #6b7280; margin-right: 6px; }
.wb-flag { font-size: 11px; padding: 0 6px; border-radius: 8px; margin-left: 4px; background: #e5e7eb; }
.wb-trunc { background: #fde68a; }
mark.wb-b { padding: 0 2px; border-radius: 3px; }
.wb-b-verification { background: #b7e4c7 !important; } .wb-b-backtracking { background: #ffadad !important; }
.wb-b-subgoal_setting { background: #a0c4ff !important; } .wb-b-backward_chaining { background: #ffd6a5 !important; }
.wb-b-term { background: #fdffb6 !important; }
.wb-table td, .wb-table th { padding: 2px 10px; text-align: right; }
"""


def _default_config() -> dict:
    from workbench.config import WorkbenchConfig

    return WorkbenchConfig().to_dict()


def build_app(runs_root: str | Path = "runs", run: str | None = None,
              refresh_seconds: float = REFRESH_SECONDS) -> gr.Blocks:
    """The Blocks UI over ``runs_root``, showing ``run`` first (default: the newest run) and
    re-reading the runs every ``refresh_seconds``.

    ``launch`` serves it with its CSS (``build_app(...).launch(css=CSS)`` does the same)."""
    store = D.RunStore(runs_root)
    root_text = str(Path(runs_root).resolve())

    def open_run(name):
        """(RunData or None, message HTML or None)."""
        if not name:
            if not store.names():
                return None, D.message_html(
                    f"No runs under {root_text} yet. Start one, and it appears here within seconds: "
                    f"workbench train --runs_root {root_text} --model tiny-random --max_steps 6", "warn")
            return None, D.message_html("Choose a run above.")
        try:
            return store.get(name), None
        except WorkbenchError as e:  # RunDirError: '..', an absolute path, a missing directory
            try:
                safe_run_dir(runs_root, name)
            except WorkbenchError:
                return None, D.message_html(str(e), "error")
            return None, D.message_html(f"No run {name!r} under {root_text} (yet): it shows here as soon as "
                                        "its directory is created.", "warn")

    def update(name, compare, smoothing, step, follow, outcome, behaviour, seen):
        """Every output, re-rendering only what changed since this session last saw it."""
        seen = dict(seen or {})
        skip = gr.skip()
        out = dict.fromkeys(("run", "compare", "table", "status", "curves", "slider", "rollouts", "sv", "aha"), skip)
        try:
            names = store.names()
            if names != seen.get("names"):
                seen["names"] = names
                out["compare"] = gr.Dropdown(choices=names)
                out["run"] = gr.Dropdown(choices=names, value=name if name or not names else names[-1])
            if not name and names:  # nothing chosen yet: follow the newest run
                name = names[-1]
                out["run"] = gr.Dropdown(choices=names, value=name)
            out["table"] = D.run_table(store)
            data, msg = open_run(name)
            if data is None:
                if seen.get("shown") != ("msg", name, msg):
                    seen["shown"] = ("msg", name, msg)
                    out.update(status=msg, curves=D.empty_figure(), rollouts=msg, aha=msg, sv=D.empty_figure())
                    for part in ("curves", "slider", "rollouts", "sv"):  # a run chosen again renders afresh
                        seen.pop(part, None)
                return [*out.values(), seen]
            seen["shown"] = ("run", name)
            out["status"] = D.status_html(D.summary(data))
            others = []
            for other in compare or []:
                if other != name:
                    try:
                        others.append(store.get(other))
                    except WorkbenchError:
                        pass
            key = (name, data.version, tuple((o.name, o.version) for o in others), smoothing)
            if key != seen.get("curves"):
                seen["curves"] = key
                out["curves"] = D.curves_figure([data, *others], smoothing or 0.0)
            steps = D.rollout_steps(data)
            if steps:
                step = steps[-1] if follow or not step else min(max(int(step), steps[0]), steps[-1])
                if (steps[0], steps[-1], step) != seen.get("slider"):
                    seen["slider"] = (steps[0], steps[-1], step)
                    out["slider"] = gr.Slider(minimum=steps[0], maximum=max(steps[-1], steps[0] + 1), value=step)
            key = (name, data.version, step, outcome, behaviour)
            if key != seen.get("rollouts"):
                seen["rollouts"] = key
                out["rollouts"] = D.rollouts_html(data, step if steps else None, outcome,
                                                  None if behaviour in (None, ANY) else behaviour)
            key = (name, data.version)
            if key != seen.get("sv"):
                seen["sv"] = key
                out["sv"], out["aha"] = D.behaviour_figure(data), D.aha_html(data)
        except Exception as e:  # never let one bad file take the page down
            log.error("refresh failed: %s", traceback.format_exc())
            out["status"] = D.message_html(f"could not read run {name!r}: {type(e).__name__}: {e}", "error")
            for part in ("shown", "curves", "slider", "rollouts", "sv"):
                seen.pop(part, None)
        return [*out.values(), seen]

    with gr.Blocks(title="R1 Workbench", analytics_enabled=False) as demo:
        gr.Markdown("## R1 Workbench: GRPO runs, live")
        with gr.Row(equal_height=True):
            run_dd = gr.Dropdown(label="run", choices=store.names(), value=run, allow_custom_value=True,
                                 scale=2, elem_id="run-select")
            compare_dd = gr.Dropdown(label="overlay other runs (compare)", choices=store.names(),
                                     multiselect=True, scale=3, elem_id="compare-select")
            smoothing = gr.Slider(0, 0.95, value=0.0, step=0.05, label="curve smoothing (EMA)", scale=2)
        status = gr.HTML(elem_id="run-status")
        with gr.Accordion(f"all runs under {runs_root}/", open=True):
            table = gr.Dataframe(headers=D.RUN_COLUMNS, interactive=False, elem_id="run-table")
        with gr.Tabs():
            with gr.Tab("Curves", id="curves"):
                curves = gr.Plot(show_label=False, elem_id="curves")
            with gr.Tab("Rollouts", id="rollouts"):
                with gr.Row(equal_height=True):
                    step_sl = gr.Slider(1, 2, value=1, step=1, label="step", scale=4, elem_id="step-slider")
                    follow = gr.Checkbox(value=True, label="follow the latest step", scale=1)
                    outcome = gr.Radio(list(D.OUTCOMES), value="all", label="outcome", scale=2)
                    behaviour = gr.Dropdown([ANY, *traces.BEHAVIOURS], value=ANY, label="has behaviour", scale=2)
                rollouts = gr.HTML(elem_id="rollouts")
            with gr.Tab("Self-verification", id="self-verification"):
                gr.Markdown("Reflective words R1 tracked and the four behaviours of Gandhi et al. (2025) per step; "
                            "dotted: the first step's share (the untrained policy's baseline).")
                sv_plot = gr.Plot(show_label=False, elem_id="sv-plot")
                aha = gr.HTML(elem_id="aha")
            with gr.Tab("Audit", id="audit"):
                gr.Markdown("The run's rollouts re-scored with today's checkers (no regeneration), gold answers "
                            "the checker cannot read, and alarms; `workbench audit RUN` prints the same and "
                            "writes audit.json.")
                audit_btn = gr.Button("Audit this run", elem_id="audit-button")
                audit_out = gr.HTML(elem_id="audit")
            with gr.Tab("Playground", id="playground") as play_tab:
                _playground(run_dd, open_run, play_tab, runs_root)
        seen = gr.State({})
        timer = gr.Timer(refresh_seconds)

        inputs = [run_dd, compare_dd, smoothing, step_sl, follow, outcome, behaviour, seen]
        outputs = [run_dd, compare_dd, table, status, curves, step_sl, rollouts, sv_plot, aha, seen]
        common = dict(fn=update, inputs=inputs, outputs=outputs, show_progress="hidden")
        timer.tick(**common, trigger_mode="once")
        demo.load(**common)
        for comp in (run_dd, compare_dd, follow, outcome, behaviour):
            comp.change(**common)
        smoothing.input(**common, trigger_mode="always_last")
        def audit(name):
            data, msg = open_run(name)
            return D.audit_html(data) if data is not None else msg

        audit_btn.click(audit, run_dd, audit_out)
        # Browsing history (dragging the slider or typing a step) stops following the latest step.
        step_sl.input(lambda: False, None, follow, show_progress="hidden", trigger_mode="always_last").then(**common)
    return demo


def _playground(run_dd, open_run, tab, runs_root) -> None:
    """Sample answers from the base model or a run's adapter, scored by the run's rewards."""
    gr.Markdown("Ask the selected run's model a held-out question of its task, or your own. Loads the model "
                "on first use (seconds for the small models).")
    items = gr.State([])
    with gr.Row():
        source = gr.Radio(["base model", "the run's trained adapter"], value="the run's trained adapter",
                          label="model", scale=2)
        pick = gr.Dropdown([], label="held-out question of the run's task", scale=3)
    with gr.Row():
        question = gr.Textbox(label="question", scale=4)
        gold = gr.Textbox(label="gold answer (optional)", scale=1)
    with gr.Row():
        n = gr.Slider(1, 8, value=4, step=1, label="answers")
        max_new = gr.Slider(8, 512, value=64, step=8, label="max new tokens")
        temperature = gr.Slider(0.1, 1.5, value=1.0, step=0.1, label="temperature")
    go = gr.Button("Sample", variant="primary")
    result = gr.HTML(elem_id="playground-out")

    def load_questions(name):
        data, _ = open_run(name)
        cfg = (data.config() if data else None) or _default_config()
        try:
            its = D.task_questions(cfg)
        except Exception as e:
            return [], gr.Dropdown(choices=[], value=None, label=f"no questions: {e}"), gr.skip()
        choices = [f"{it['question']}  (gold {it['answer']})" for it in its]
        return its, gr.Dropdown(choices=choices, value=None), cfg.get("max_completion_length") or 64

    def choose(label, its):
        for it in its:
            if label and label.startswith(it["question"]):
                return it["question"], str(it["answer"])
        return gr.skip(), gr.skip()

    def sample(name, src, q, g, k, m, t, its):
        data, msg = open_run(name)
        cfg = (data.config() if data else None) or _default_config()
        adapter = None
        if src != "base model":
            if data is None:
                return msg or D.message_html("choose a run, or pick the base model", "warn")
            adapter = data.run.adapter_dir
            if not adapter.is_dir():
                return D.message_html(f"run {data.name} has no saved adapter yet (it is saved when training "
                                      "ends); pick the base model instead", "warn")
        meta = next((it["metadata"] for it in its if it["question"] == q), None)
        try:
            res = D.play(cfg, q, g or None, meta, int(k), int(m), float(t), adapter, runs_root=runs_root)
        except Exception as e:
            log.error("playground failed: %s", traceback.format_exc())
            return D.message_html(f"{type(e).__name__}: {e}", "error")
        label = f"{cfg.get('model')} + adapter of {data.name}" if adapter else f"{cfg.get('model')} (base)"
        return D.play_html(res, q, g, label)

    run_dd.change(load_questions, run_dd, [items, pick, max_new], show_progress="hidden")
    # The first visit loads them too (a run chosen at start-up fires no change).
    tab.select(lambda name, its: load_questions(name) if not its else (gr.skip(),) * 3, [run_dd, items],
               [items, pick, max_new], show_progress="hidden")
    pick.change(choose, [pick, items], [question, gold], show_progress="hidden")
    go.click(sample, [run_dd, source, question, gold, n, max_new, temperature, items], result)


def launch(runs_root: str | Path = "runs", host: str = "127.0.0.1", port: int | None = None,
           block: bool = True, run: str | None = None, refresh_seconds: float = REFRESH_SECONDS) -> str:
    """Serve the app and return its URL; with ``block`` serve until Ctrl-C first. ``run``: the
    run to show first (default: the newest)."""
    demo = build_app(runs_root, run, refresh_seconds)
    demo.queue(default_concurrency_limit=4)
    _, url, _ = demo.launch(server_name=host, server_port=port, prevent_thread_lock=True, quiet=True,
                            share=False, inbrowser=False, show_error=True, css=CSS, footer_links=[])
    if block:
        print(f"R1 Workbench app: {url} (runs in {Path(runs_root).resolve()}); Ctrl-C stops it", flush=True)
        try:
            demo.block_thread()
        except KeyboardInterrupt:
            pass
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workbench app", description="Watch runs train, compare them, try a model.")
    parser.add_argument("--runs", default="runs", help="directory that holds run directories (default: runs)")
    parser.add_argument("--port", type=int, default=None, help="port (default: the first free from 7860)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    args = parser.parse_args(argv)
    launch(args.runs, args.host, args.port, block=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
