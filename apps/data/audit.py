"""The Audit view: ``workbench audit`` for the selected run, as HTML (``workbench.analysis.audit``).

Computed on request (a button), never on the refresh timer: re-scoring reads every rollout. The
app does not write ``audit.json`` (it only reads run directories); ``workbench audit RUN`` does.
"""

from __future__ import annotations

import html

from apps.data.runs import RunData, message_html


def audit_html(data: RunData | None) -> str:
    """The audit of ``data``'s run: re-scoring table, unreadable golds, alarms (escaped HTML)."""
    from workbench.analysis.audit import audit_run, reward_text
    from workbench.errors import WorkbenchError

    if data is None:
        return message_html("Choose a run above.")
    try:
        report = audit_run(data.run.path, write=False)
    except WorkbenchError as e:
        return message_html(str(e), "warn")
    esc = html.escape
    rows = "".join(
        f"<tr><td style='text-align:left'>{esc(name)}</td><td>{report['changed'][name]}</td>"
        f"<td>{_cell(report['means'][name][0])}</td><td>{_cell(report['means'][name][1])}</td></tr>"
        for name in report["rescored"])
    parts = [f"<p>{report['rollouts']} rollouts over {report['steps']} steps of <b>{esc(report['run'])}</b> re-scored "
             f"with today's checkers (task {esc(str(report['task']))}; correct = {esc(str(report['checker']))}).</p>",
             "<table class='wb-table' id='audit-rescored'><tr><th style='text-align:left'>reward</th><th>changed</th>"
             f"<th>mean before</th><th>mean after</th></tr>{rows}</table>"]
    if report["left_as_logged"]:
        parts.append(f"<p>not re-scored (kept as logged): {esc(', '.join(report['left_as_logged']))}</p>")
    if report["changes"]:
        items = "".join(f"<li>step {c['step']} · {esc(str(c['prompt_id']))} #{c['index']}: {esc(c['reward'])} "
                        f"{reward_text(c['before'])} → {reward_text(c['after'])} <code>…{esc(c['completion'][-80:])}</code></li>"
                        for c in report["changes"][:20])
        parts.append(f"<details><summary>rollouts whose reward would change</summary><ul>{items}</ul></details>")
    parts.append(f"<p>gold answers the checker cannot read: {report['unreadable_golds']} of {report['golds_checked']}</p>")
    share = report["no_signal_share"]
    if share is not None:
        parts.append(f"<p>groups with no learning signal (all rewards equal): {share:.0%}, averaged over steps</p>")
    alarms = "".join(message_html(f"{a['alarm']}: {a['message']}", "warn") for a in report["alarms"])
    parts.append(f"<div id='audit-alarms'><b>alarms</b>{alarms or message_html('none')}</div>")
    return "".join(parts)


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}"
