"""What the app shows, as pure functions of run directories: tables, figures and HTML.

One module per view (runs table, curves, rollouts, behaviours, playground, audit);
this package re-exports them. No gradio import here, so all of it is tested without a server (tests/test_app_data.py). Runs are
read through ``workbench.runlog`` only. torch/transformers are imported only when the playground
generates (``play``); everything else stays light enough to refresh every two seconds.

    store = RunStore("runs")
    data = store.get("demo1")          # RunDirError for a name that would leave "runs"
    data.refresh()                     # reads only the bytes appended since the last call
    summary(data), curves_figure([data]), rollouts_html(data, step=3), aha_html(data)

All model text is untrusted: it reaches HTML only through ``html.escape``.
"""

from apps.data.audit import audit_html
from apps.data.behaviours import aha_html, behaviour_curves, behaviour_figure
from apps.data.curves import CURVE_PANELS, PALETTE, curves_figure, empty_figure, smooth
from apps.data.playground import load_policy, play, play_html, playable_model, task_questions
from apps.data.rollouts import (OUTCOMES, completion_html, groups_html, highlight, is_correct, question_of,
                                rollout_card, rollout_groups, rollout_steps, rollouts_html)
from apps.data.runs import (FILES, KNOWN_STATUSES, RUN_COLUMNS, RunData, RunStore, message_html, run_table,
                            status_html, summary)

__all__ = [
    'audit_html', 'aha_html', 'behaviour_curves', 'behaviour_figure', 'CURVE_PANELS', 'PALETTE', 'curves_figure',
    'empty_figure', 'smooth', 'load_policy', 'play', 'play_html', 'playable_model', 'task_questions',
    'OUTCOMES', 'completion_html', 'groups_html', 'highlight', 'is_correct', 'question_of',
    'rollout_card', 'rollout_groups', 'rollout_steps', 'rollouts_html',
    'FILES', 'KNOWN_STATUSES', 'RUN_COLUMNS', 'RunData', 'RunStore', 'message_html', 'run_table',
    'status_html', 'summary'
]
