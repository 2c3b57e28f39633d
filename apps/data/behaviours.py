"""The self-verification view: reflective-term and behaviour shares per step against their first-step
baseline, aha events and exemplar traces."""

from __future__ import annotations

import html

from workbench.analysis import traces
from apps.data.curves import PALETTE, sampled
from apps.data.rollouts import advantage_style, completion_html, num
from apps.data.runs import RunData, message_html, pct


def behaviour_curves(data: RunData) -> list[dict]:
    """``traces.step_curves`` of the run, from the per-step summaries of its rollout index."""
    return data.derived("curves", lambda d: d.curve_rows())


def check_curves(data: RunData) -> list[dict]:
    """A lab world's check faithfulness per step (``workbench.lab.experiment.check_curves``); [] elsewhere.
    A lab run is small: its rollouts are read whole, step by step."""
    from workbench.lab.experiment import WORLDS, check_curves as curves

    def compute(d):
        cfg = d.config()
        if cfg.get("task") not in WORLDS or not d.rollout_count:
            return []
        return curves([r for s in d.rollout_steps() for r in d.log.step_rollouts(s)], cfg)

    return data.derived("checks", compute)


CHECK_COLOURS = ("#111827", "#15803d", "#b45309", "#b91c1c")  # not in PALETTE: the legend is shared
# Check faithfulness series of a lab world's run: (key of check_curves, label).
CHECK_SERIES = (("check_share", "rollouts with a check"), ("faithful", "checks right and followed"),
                ("arithmetic_right", "checks with right arithmetic"), ("wait_after_correct", "'wait's after a right answer"))


def behaviour_figure(data: RunData):
    """Reflective-term and behaviour shares per step, each with its first-step baseline (dotted); for a
    lab world, a third panel: how many rollouts check, and how many of their checks are faithful."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    every = behaviour_curves(data)
    rows = [every[j] for j in sampled(len(every))]  # the first step (the baselines) and the last always kept
    checks = check_curves(data)
    titles = ["reflective terms: share of completions containing each", "behaviours: share of completions showing each"]
    if checks:
        titles.append("checks (lab world): how many, how faithful")
    fig = make_subplots(rows=1, cols=len(titles), horizontal_spacing=0.06, subplot_titles=titles)
    for i, (key, label) in enumerate(CHECK_SERIES if checks else ()):
        fig.add_trace(go.Scatter(x=[r["step"] for r in checks], y=[r.get(key) for r in checks], mode="lines+markers",
                                 name=label, legendgroup="checks", line=dict(color=CHECK_COLOURS[i], width=1.6,
                                                       dash="dash" if key == "wait_after_correct" else None)),
                      row=1, col=3)
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
    if not any(t.legendgroup != "checks" for t in fig.data):  # panels 1-2 empty (panel 3 may have data)
        fig.add_annotation(text="no reflective terms or behaviours in any completion yet" if rows else
                           "no rollouts yet", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(rangemode="tozero")
    fig.update_layout(height=380, margin=dict(l=40, r=20, t=50, b=40), template="plotly_white")
    return fig


def aha_html(data: RunData) -> str:
    """Aha events (a term or behaviour jumping above its baseline) with exemplar traces, then how
    each behaviour relates to reward."""
    if not data.rollout_count:
        return message_html(f"No rollouts yet in {data.name}.")
    # From the index's summaries; only an event's exemplar step is read.
    events = data.derived("aha", lambda d: traces.aha_from_summaries(d.summaries(), d.step_rollouts))
    if events:
        out = [f"<h4>Aha events ({len(events)})</h4>"]
        for ev in events:
            ex = ev.get("exemplar") or {}
            out.append(
                f'<div class="wb-group"><div class="wb-ghead">step {html.escape(str(ev.get("step")))} · '
                f"{html.escape(str(ev.get('kind')))} "
                f"<b>{html.escape(str(ev.get('name')))}</b> in {pct(ev.get('share'))} of completions "
                f"(baseline {pct(ev.get('baseline_share'))}, z = {num(ev.get('z'), '.1f')})</div>"
                f'<div class="wb-card" style="{advantage_style(ex.get("advantage"))}"><div class="wb-meta">exemplar: '
                f"step {html.escape(str(ex.get('step')))} · {html.escape(str(ex.get('prompt_id')))} · reward "
                f"{num(ex.get('reward'))} · advantage {num(ex.get('advantage'), '+.2f')}</div>"
                f"{completion_html(ex.get('completion') or '', ex.get('matches') or [])}</div></div>")
    else:
        out = [message_html("No aha event yet: no reflective term or behaviour has risen clearly (z ≥ 3, at least "
                            "3 completions) above its first-step share.")]
    corr = data.derived("corr", lambda d: traces.correlation_from_summaries(d.summaries()))
    if corr:
        rows = "".join(
            f"<tr><td>{html.escape(b)}</td><td>{c.get('n_with')}</td><td>{c.get('n_without')}</td>"
            f"<td>{num(c.get('reward_with'))}</td><td>{num(c.get('reward_without'))}</td>"
            f"<td>{num(c.get('r'))}</td></tr>"
            for b, c in corr.items())
        out.append("<h4>Behaviour and reward, all steps</h4><table class='wb-table'><tr><th>behaviour</th>"
                   "<th>completions with</th><th>without</th><th>mean reward with</th><th>without</th>"
                   f"<th>correlation r</th></tr>{rows}</table>")
    return "".join(out)
