"""Pull the final answer out of a completion.

Rules, in order:
1. If the text has an `<answer>...</answer>` pair, the content of the LAST pair, stripped (it may
   be ""): the R1 format says that is the answer, whatever else the text contains.
2. Otherwise a fallback that depends on the task's `answer_kind`:
   - "number": the last number in the text. Integers, decimals and negatives; thousands commas are
     removed ("1,234" -> "1234"); a minus counts as a sign only when it does not follow a word
     character or a closing bracket, so "7-3" ends in "3" while "= -4" ends in "-4". This suits
     chat models told to "end with the final answer as a number".
   - "expression" / "text": the last of: a line "Answer: X" (or "Final answer: X"), a phrase
     "(final) answer is X" (rest of the line), or "\\boxed{X}"; X loses surrounding "*", "$" and
     a trailing period. None if there is no such marker: free text is not guessed at.
3. None when nothing qualifies.

For `answer_kind` "code" the rules differ (`extract_code`): the code of the LAST fenced block
(```python, ```py, ```python3 or a bare ```), looked for inside the last `<answer>...</answer>` if
the text has one, else in the whole text; None when there is no such block. Fences are read line
by line as in Markdown: a fence line is three or more backticks, a closing fence is backticks
alone, and an unclosed block runs to the end (a truncated completion still yields its code; a
stray fence with nothing after it is ignored).

    extract_code("<answer>```python\\ndef f():\\n    return 1\\n```</answer>")  # "def f():\\n    return 1"
"""

from __future__ import annotations

import re

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_NUMBER = re.compile(r"(?:(?<![\w)\]])-)?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_TEXT_MARKERS = (
    re.compile(r"^[ \t*#]*(?:final\s+)?answer\s*\**\s*[:：]\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE),
    re.compile(r"\b(?:final\s+)?answer\s+is\s*:?\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE),
    re.compile(r"\\boxed\{([^{}]*)\}"),
)


def completion_text(completion) -> str:
    """A completion as text: TRL passes str for text prompts, [{"content": ...}] for chat ones."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return "" if completion is None else str(completion)


def last_number(text: str) -> str | None:
    matches = _NUMBER.findall(text)
    return matches[-1].replace(",", "") if matches else None


def _clean(answer: str) -> str:
    # Twice, so that "**3*4+1**." and "$x$." both come out bare.
    for _ in range(2):
        answer = answer.strip().strip("*$").strip()
        answer = answer[:-1] if answer.endswith(".") else answer
    return answer.strip()


_FENCE = re.compile(r"^[ \t]*(`{3,})[ \t]*([^`\s]*)[^`]*$")
_CODE_LANGUAGES = ("", "python", "py", "python3")


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block in `text`, in order."""
    blocks, lines = [], text.split("\n")
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        ticks, language = opening.group(1), opening.group(2).casefold()
        body, i, closed = [], i + 1, False
        while i < len(lines):
            # Only a line of backticks closes the block: "```python" inside it is code, as in Markdown.
            stripped = lines[i].strip()
            i += 1
            if stripped.startswith(ticks) and not stripped.strip("`"):
                closed = True
                break
            body.append(lines[i - 1])
        code = "\n".join(body)
        if not closed:
            if code.rstrip().endswith("```"):
                code = code.rstrip()[:-3]  # small models glue the closing fence to the last line
            if not code.strip():
                continue  # a stray fence at the end, not a block: the one before it stands
        blocks.append((language, code))
    return blocks


def extract_code(text: str) -> str | None:
    """The code of the last Python (or bare) fenced block, by the rules in the module docstring."""
    text = completion_text(text)
    tagged = _ANSWER_TAG.findall(text)
    if tagged:
        # The R1 format says the answer is in the tag; code drafted in <think> is not the answer.
        text = tagged[-1]
    blocks = [code for language, code in _fenced_blocks(text) if language in _CODE_LANGUAGES]
    return blocks[-1].strip("\n") if blocks else None


def extract_answer(text: str, answer_kind: str = "number") -> str | None:
    """The final answer in `text` by the rules in this module's docstring, or None."""
    text = completion_text(text)
    if answer_kind == "code":
        return extract_code(text)
    tagged = _ANSWER_TAG.findall(text)
    if tagged:
        return tagged[-1].strip()
    if answer_kind == "number":
        return last_number(text)
    best: tuple[int, str] | None = None
    for pattern in _TEXT_MARKERS:
        for m in pattern.finditer(text):
            if best is None or m.start() >= best[0]:
                best = (m.start(), m.group(1))
    if best is None:
        return None
    return _clean(best[1]) or None


# R1's format: one <think> block, then one <answer> block, nothing around them. FormatReward
# (rules.py), evaluation's format validity and the traces' split all read it from here.
TAGS = ("<think>", "</think>", "<answer>", "</answer>")
STRICT_FORMAT = re.compile(r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$", re.DOTALL)
_THINK_BLOCK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def split_think_answer(text: str) -> dict:
    """{"think", "answer", "format_ok"} of a completion.

    think: the contents of all <think>...</think> blocks, stripped, joined by a blank line; failing
    a complete block, the text before a lone "</think>" (the prompt opened the tag) or after a lone
    "<think>" up to "<answer>" (a truncated trace); None when there is no think tag.
    answer: the contents of the LAST <answer>...</answer> pair, stripped (as the accuracy reward
    reads it); None without one. format_ok: the strict R1 format, exactly as the format reward.
    """
    text = completion_text(text)
    blocks = _THINK_BLOCK.findall(text)
    if blocks:
        think = "\n\n".join(b.strip() for b in blocks)
    elif "</think>" in text:
        think = text[: text.index("</think>")].strip()
    elif "<think>" in text:
        think = text[text.index("<think>") + len("<think>"):].split("<answer>")[0].strip()
    else:
        think = None
    answers = _ANSWER_TAG.findall(text)
    format_ok = all(text.count(t) == 1 for t in TAGS) and bool(STRICT_FORMAT.match(text))
    return {"think": think, "answer": answers[-1].strip() if answers else None, "format_ok": format_ok}
