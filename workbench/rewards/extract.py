"""Pull the final answer out of a completion.

Rules, in order (tagged and untagged answers are read the same way once the region is chosen):
1. The region: the content of the LAST `<answer>...</answer>` pair if the text has one (the R1
   format says that is the answer, whatever else the text contains); else the text after the
   last `</think>` if there is any, else the whole text.
2. In the region, the content of the last `\\boxed{...}` / `\\fbox{...}` (balanced braces).
3. Else the last answer marker in the region: a line "Answer: X" / "Final Answer: X" (bold or
   heading marks and the colon optional; a marker alone on its line, like "**Final Answer**",
   takes the next non-empty line), or a phrase "(final) answer is X" (rest of the line); else, for
   a tagged region, the region itself.
4. For `answer_kind` "number": the answer found by 2-3 if it is one number (with a unit or %,
   see `answers`), else the last number in it; with no marker at all, the last number in the
   region. Numbers are read by `answers.NUMBER`: integers, decimals and negatives; thousands
   commas only in real groups ("1,234" -> "1234"; "0,1" is two numbers); a minus counts as a
   sign only when it does not follow a word character or a closing bracket, so "7-3" ends in "3"
   while "= -4" ends in "-4".
5. Any kind: the answer loses its wrappers (`answers.unwrap`: `$...$`, bold, `\\text`, a trailing
   period) and Unicode forms (`answers.clean_chars`: U+2212 minus, dashes, full-width digits).
   None when nothing qualifies or the answer is empty: free text is not guessed at.

For `answer_kind` "code" the rules differ (`extract_code`): the code of the LAST fenced block
(```python, ```py, ```python3 or a bare ```), looked for inside the last `<answer>...</answer>` if
the text has one, else in the whole text; None when there is no such block. Fences are read line
by line as in Markdown: a fence line is three or more backticks, a closing fence is backticks
alone, and an unclosed block runs to the end (a truncated completion still yields its code; a
stray fence with nothing after it is ignored).

    extract_answer("<think>..</think><answer>\\boxed{1,250}</answer>")  # "1,250" (the checker reads 1250)
    extract_code("<answer>```python\\ndef f():\\n    return 1\\n```</answer>")  # "def f():\\n    return 1"
"""

from __future__ import annotations

import re

from workbench.rewards.answers import last_boxed, last_number, number_answer, unwrap  # noqa: F401 (last_number: API)

_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
# Possessive quantifiers (*+) and greedy captures stripped afterwards: no backtracking blow-up on
# long runs of spaces or blank lines (a truncated completion can end in thousands of them).
_MARKERS = (
    # "Answer: X", "**Final Answer:** X", "### Final answer: X"
    re.compile(r"^[ \t*#>]*+(?:the[ \t]++)?(?:final[ \t]++)?answer[ \t]*+(?:\*\*)?[ \t]*+[:：][ \t]*+(\S[^\n]*)",
               re.IGNORECASE | re.MULTILINE),
    # "**Final Answer**" (or "Final Answer:") alone on its line: the answer is the next non-empty line
    re.compile(r"^[ \t*#>]*+(?:final[ \t]++)?answer[ \t]*+(?:\*\*)?[ \t]*+[:：]?[ \t]*+(?:\*\*)?[ \t]*+\n\s*+(\S[^\n]*)",
               re.IGNORECASE | re.MULTILINE),
    re.compile(r"\b(?:final[ \t]++)?answer[ \t]++is[ \t]*+:?[ \t]*+(\S[^\n]*)", re.IGNORECASE),
)


def completion_text(completion) -> str:
    """A completion as text: TRL passes str for text prompts, [{"content": ...}] for chat ones."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    return "" if completion is None else str(completion)


def prompt_opens_think(prompt) -> bool:
    """True when ``prompt`` (text, or TRL's chat messages) ends with an opening ``<think>`` tag, so
    the completion continues inside the think block (R1-Distill templates end with "<think>\\n")."""
    return completion_text(prompt).rstrip().endswith("<think>")


def with_prompt_tag(completion, prompt=None) -> str:
    """The completion's text, with "<think>" put back in front when the prompt opened it."""
    text = completion_text(completion)
    return "<think>" + text if prompt is not None and prompt_opens_think(prompt) else text


def _marked_answer(text: str) -> str | None:
    """The answer after the last answer marker in ``text`` (rule 3), or None."""
    best: tuple[int, str] | None = None
    for pattern in _MARKERS:
        for m in pattern.finditer(text):
            if best is None or m.start() >= best[0]:
                best = (m.start(), m.group(1))
    if best is None:
        return None
    answer = best[1].strip()
    # A bold mark split by the marker ("**Final Answer:** X", "**Answer: X**") leaves one "**".
    return answer.replace("**", "", 1).strip() if answer.count("**") % 2 else answer


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
        region = tagged[-1]
    else:
        # Without an answer tag, what follows the chain of thought is the answer's place: a draft
        # boxed inside <think> must not beat "The answer is 7" after it.
        after = text.rsplit("</think>", 1)[1] if "</think>" in text else ""
        region = after if after.strip() else text
    found = last_boxed(region)
    if found is None:
        marked = _marked_answer(region)
        found = marked if marked is not None else (region if tagged else None)
    if answer_kind == "number":
        return number_answer(region if found is None else found)
    answer = unwrap(found) if found is not None else ""
    return answer or None


# R1's format: one <think> block, then one <answer> block, nothing around them, and something in
# each ("the reasoning process and answer are enclosed within" the tags: an empty pair encloses
# neither). FormatReward (rules.py), evaluation's format validity and the traces' split all read
# it from here (``r1_format_ok``).
TAGS = ("<think>", "</think>", "<answer>", "</answer>")
STRICT_FORMAT = re.compile(r"^\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*$", re.DOTALL)
_THINK_BLOCK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


def r1_format_ok(text: str) -> bool:
    """R1's strict format: ``<think>reasoning</think> <answer>answer</answer>`` with each tag exactly
    once, only whitespace around the blocks, and text that is not whitespace inside both. An empty
    template ("<think> </think> <answer> </answer>") is not the format: a base model trained with a
    format reward that paid for it learned to write nothing else (README, R1-Zero from a base model)."""
    if not all(text.count(t) == 1 for t in TAGS):
        return False
    m = STRICT_FORMAT.match(text)
    return bool(m and m.group(1).strip() and m.group(2).strip())


def split_think_answer(text: str, prompt=None) -> dict:
    """{"think", "answer", "format_ok"} of a completion (``prompt``: the prompt it continues, whose
    opening ``<think>``, if it ends with one, counts as the completion's; see ``prompt_opens_think``).

    think: the contents of all <think>...</think> blocks, stripped, joined by a blank line; failing
    a complete block, the text before a lone "</think>" (the prompt opened the tag) or after a lone
    "<think>" up to "<answer>" (a truncated trace); None when there is no think tag.
    answer: the contents of the LAST <answer>...</answer> pair, stripped (as the accuracy reward
    reads it); None without one. format_ok: the strict R1 format, exactly as the format reward.
    """
    text = with_prompt_tag(text, prompt)
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
    format_ok = r1_format_ok(text)
    return {"think": think, "answer": answers[-1].strip() if answers else None, "format_ok": format_ok}
