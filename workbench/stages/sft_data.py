"""The SFT data format (JSONL) that cold start and rejection sampling write and SFT reads.

One JSON object per line, in either of TRL's SFT shapes:

- conversational: ``{"messages": [{"role": "system", "content": ...}, {"role": "user", ...},
  {"role": "assistant", "content": ...}]}``; the last turn must be a non-empty assistant turn
  (it is what SFT trains on), roles are system / user / assistant / tool, contents are strings;
- prompt-completion: ``{"prompt": str, "completion": str}`` with a non-empty completion.

Any other key (``provenance``: where the row came from) is allowed and kept.

    from workbench.stages.sft_data import read_sft_jsonl, write_jsonl
    write_jsonl(rows, "data/cold_start.jsonl")
    rows = read_sft_jsonl("data/cold_start.jsonl")                     # WorkbenchError on a bad row
    rows = read_sft_jsonl("mixed.jsonl", skip_invalid=True)            # ... or skip it
    rows.skipped                                                       # [(line, what is wrong), ...]

A bad file names itself, the line numbers and what is wrong with each, so a 600k-row file with
three broken rows is fixable without a debugger. Stdlib only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from workbench.errors import WorkbenchError

ROLES = ("system", "user", "assistant", "tool")
# How many bad lines an error message spells out before it says "and N more".
_SHOWN = 5


class SftRows(list):
    """The rows of an SFT file: a list, plus ``path`` and ``skipped`` ([(line, reason)])."""

    def __init__(self, rows=(), path: Path | None = None, skipped: list[tuple[int, str]] | None = None):
        super().__init__(rows)
        self.path = path
        self.skipped = skipped or []


def _check_messages(messages, key: str) -> str | None:
    if not isinstance(messages, list) or not messages:
        return f"{key!r} must be a non-empty list of {{'role', 'content'}} turns"
    for i, turn in enumerate(messages):
        if not isinstance(turn, dict):
            return f"{key}[{i}] is a {type(turn).__name__}, not a {{'role', 'content'}} object"
        if turn.get("role") not in ROLES:
            return f"{key}[{i}] has role {turn.get('role')!r}; valid roles: {', '.join(ROLES)}"
        if not isinstance(turn.get("content"), str):
            return f"{key}[{i}] ({turn['role']}) has no string 'content'"
    return None


def row_problem(row) -> str | None:
    """What is wrong with one SFT row, or None for a valid one."""
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    if "messages" in row:
        problem = _check_messages(row["messages"], "messages")
        if problem:
            return problem
        last = row["messages"][-1]
        if last["role"] != "assistant":
            return f"messages end with a {last['role']!r} turn; the last turn must be the assistant's (what SFT trains on)"
        if not last["content"].strip():
            return "the final assistant turn is empty"
        return None
    if "prompt" in row or "completion" in row:
        prompt, completion = row.get("prompt"), row.get("completion")
        if not isinstance(prompt, (str, list)):
            return "a prompt-completion row needs a 'prompt' (a string or a list of turns)"
        if isinstance(prompt, list) and (problem := _check_messages(prompt, "prompt")):
            return problem
        if isinstance(completion, list):
            if problem := _check_messages(completion, "completion"):
                return problem
            if completion[-1]["role"] != "assistant" or not completion[-1]["content"].strip():
                return "the completion must end with a non-empty assistant turn"
            return None
        if not isinstance(completion, str) or not completion.strip():
            return "a prompt-completion row needs a non-empty 'completion' string"
        return None
    return "no 'messages' and no 'prompt'/'completion': not an SFT row"


def read_sft_jsonl(path: str | Path, skip_invalid: bool = False) -> SftRows:
    """Every row of the SFT file at ``path`` (blank lines ignored).

    A malformed line or invalid row raises one WorkbenchError naming the file and every bad line
    (1-based) with its problem; with ``skip_invalid`` such rows are left out and listed in
    ``.skipped`` instead.
    """
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"no SFT data file at {str(path)!r}")
    from workbench.tasks.jsonl import iter_jsonl

    rows, bad = [], []
    for lineno, row, error in iter_jsonl(path):
        problem = error or row_problem(row)
        if problem:
            bad.append((lineno, problem))
        else:
            rows.append(row)
    if bad and not skip_invalid:
        shown = "; ".join(f"line {n}: {why}" for n, why in bad[:_SHOWN])
        more = f"; and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else ""
        raise WorkbenchError(f"{path}: {len(bad)} invalid SFT row(s) ({shown}{more}); "
                             "fix them or read with skip_invalid=True")
    return SftRows(rows, path=path, skipped=bad)


def write_jsonl(rows, path: str | Path) -> Path:
    """Write ``rows`` as JSONL (UTF-8, one object per line) to ``path``, creating its folder.

    Written to a temporary file and renamed into place, so a reader never sees half a file and an
    interrupted write leaves the old file intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A plain open (not mkstemp) so the file gets the usual permissions, not 0600.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
