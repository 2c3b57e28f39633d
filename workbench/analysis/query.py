"""A run's rollouts as a SQL table, queried out of core with DuckDB (``pip install -e ".[notebook]"``).

DuckDB reads rollouts.jsonl as the query runs, column by column, and never loads the log into
Python, so a million-rollout run is queried in seconds with flat memory. Nested fields are structs:
``rewards.accuracy``, ``traces.behaviours.verification``, ``traces.terms.wait``. ``traces`` is there
in runs logged by the trainer (rollouts written since traces were recorded at logging time).

    from workbench.analysis.query import rollouts_table, VERIFIED_BUT_WRONG
    con = rollouts_table("runs/demo")
    con.sql(VERIFIED_BUT_WRONG).df()     # by step: rollouts that verify and still answer wrongly
"""

from __future__ import annotations

from pathlib import Path

# The documented example: per step, how many rollouts show verification and still get the answer
# wrong, out of how many (a check that does not catch the mistake).
VERIFIED_BUT_WRONG = """
SELECT step,
       count(*) FILTER (WHERE traces.behaviours.verification > 0 AND rewards.accuracy < 1) AS verified_but_wrong,
       count(*) FILTER (WHERE traces.behaviours.verification > 0) AS verified,
       count(*) AS rollouts
FROM rollouts
GROUP BY step
ORDER BY step
"""


def rollouts_table(run_dir: str | Path, con=None):
    """A DuckDB connection (``con``, or a new in-memory one) with the view ``rollouts`` over the run's
    rollouts.jsonl: one row per rollout, the columns of runlog's rollout records. A partial last line
    (a run still writing) or a corrupt line is skipped (``ignore_errors``). Raises RunDirError for a
    missing run directory; ImportError (naming the extra) without duckdb."""
    try:
        import duckdb
    except ImportError as e:
        raise ImportError('querying rollouts needs duckdb: pip install -e ".[notebook]"') from e
    from workbench.runlog import ROLLOUTS, Run

    path = str(Run(run_dir).file(ROLLOUTS)).replace("'", "''")  # a SQL string literal
    con = con or duckdb.connect()
    con.execute(f"CREATE OR REPLACE VIEW rollouts AS SELECT * FROM read_json('{path}', "
                "format = 'newline_delimited', union_by_name = true, ignore_errors = true)")
    return con
