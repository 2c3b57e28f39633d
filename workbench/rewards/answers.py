"""Answer normalisation and equality: one layer for every place an answer is checked.

GRPO's accuracy reward, ``workbench eval``, rejection sampling, cold-start filtering, cons@k voting
and ``workbench audit`` all read a final answer with ``extract.extract_answer`` and compare it
with a gold answer through a task's checker, which normalises both sides here. Tagged
(``<answer>...</answer>``) and untagged answers go through the same steps.

Characters (``clean_chars``): Unicode NFKC (full-width digits and letters, non-breaking and thin
spaces), every minus sign and dash (U+2212, U+2012-U+2015, U+FE63, U+FF0D, U+02D7) becomes "-",
"×" and "·" become "*", "÷" and the fraction slash "⁄" become "/".

Wrappers (``unwrap``), peeled until none is left: the last ``\\boxed{...}`` or ``\\fbox{...}``
(balanced braces, so ``\\boxed{\\frac{63}{400}}`` keeps its fraction), ``$...$``, ``$$...$$``,
``\\(...\\)``, ``\\[...\\]``, ``**...**`` and ``*...*``, ``\\text{...}``, and one trailing period.

Answer kinds (``ANSWER_KINDS``; a task declares one, a JSONL file's gold answers each get one by
``kind_of``):

- ``number`` (integer or decimal; a fraction like 3/4 or ``\\frac{3}{4}`` is a number too): equal
  when the values are equal as exact fractions (0.5 = 1/2 = ``\\frac12``; 2 != -2).
  Thousands separators are read only where they form real groups ("1,250" and "12,345,678" are
  numbers; "0,1" and "1,25" are not: that is a list). **Percentages**: a trailing "%" is dropped,
  so "50%" is the number 50 (the golds of GSM-style tasks are the percentage's number; a task
  whose gold is 0.5 for "50%" must say so in its own checker). **Units**: currency signs before
  the number ($, €, £, ¥) and words after it ("12 apples", "5 cm", "3 dollars") are dropped; the
  answer is the number. A text that holds more than one number ("7-3", "between 2 and 4") is not
  a number answer: its last number is what the number-kind extraction falls back on.
- ``list`` (tuple, set or interval; top-level commas): math-verify on both sides as LaTeX
  (``$-3, 4$`` is the set {-3, 4}, ``$(0, 1)$`` the open interval): "4" is not "-3, 4". A task
  that declares its lists ordered (a JSONL row's ``"ordered": true``) compares item by item.
- ``expression`` (fractions, roots, symbols): math-verify on both sides as LaTeX
  (``x+1`` = ``1+x``), else equal normalised text.
- ``choice`` (a multiple-choice letter): "B", "(B)", "B)", "B.", "**B**", "Option B",
  "B: the text" all read as B.
- ``text``: equal after casefolding and collapsing whitespace.
- ``code``: not compared here (a code task runs its tests).

math-verify is used as its documentation says: both strings are parsed (gold too), each wrapped in
``$...$`` so that its LaTeX extractor reads them, then ``verify(gold, answer)``.

    answers_equal("\\\\frac{63}{400}", "0.1575", "expression")   # True
    answers_equal("-2", "\u22122", "number")                     # True (U+2212 minus)
    answers_equal("-3, 4", "4", "list")                          # False
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from fractions import Fraction

ANSWER_KINDS = ("number", "expression", "list", "choice", "text", "code")

_CHAR_MAP = {
    **dict.fromkeys(map(ord, "\u2212\u2012\u2013\u2014\u2015\ufe63\uff0d\u02d7"), "-"),
    ord("\u00d7"): "*", ord("\u00b7"): "*", ord("\u22c5"): "*",
    ord("\u3002"): ".", ord("\u00f7"): "/", ord("\u2044"): "/", ord("\u2215"): "/",
}


# A thin or narrow no-break space between digit groups is a thousands separator (SI style: 1 250);
# NFKC would turn it into a plain space, which separates two numbers.
_THIN_GROUP = re.compile(r"(?<=\d)[\u2009\u202f](?=\d{3}(?!\d))")


def clean_chars(text: str) -> str:
    """``text`` with Unicode forms reduced to the ASCII ones answers are compared in (see module)."""
    return unicodedata.normalize("NFKC", _THIN_GROUP.sub("", str(text))).translate(_CHAR_MAP)


_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` / ``\\fbox{...}`` in ``text`` (braces balanced, so
    nested ``{}`` stay inside), or None. An unclosed last box (a truncated completion) is skipped
    in favour of the one before it. One pass over the text (linear in its length)."""
    # Written by hand: a regex cannot balance braces, and math-verify's own boxed extraction
    # returns its parse, not the text that the other checkers (and the logs) need.
    opens = {m.end() - 1 for m in _BOX.finditer(text)}  # positions of the boxes' own "{"
    if not opens:
        return None
    stack: list[tuple[bool, int]] = []  # (is a box's brace, where its content starts)
    found: tuple[int, str] | None = None
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append((i in opens, i + 1))
        elif ch == "}" and stack:
            is_box, start = stack.pop()
            if is_box and (found is None or start > found[0]):
                found = (start, text[start:i])
    return found[1] if found else None


_WRAPPERS = (
    re.compile(r"^\$\$(.*)\$\$$", re.DOTALL),
    re.compile(r"^\$(.*)\$$", re.DOTALL),
    re.compile(r"^\\\((.*)\\\)$", re.DOTALL),
    re.compile(r"^\\\[(.*)\\\]$", re.DOTALL),
    re.compile(r"^\*\*(.*)\*\*$", re.DOTALL),
    re.compile(r"^\*(.*)\*$", re.DOTALL),
    re.compile(r"^\\text\{([^{}]*)\}$"),
)


def unwrap(answer: str) -> str:
    """``answer`` without the wrappers of the module docstring (boxed, math delimiters, bold,
    ``\\text``, one trailing period), peeled until none is left; characters cleaned first."""
    text = clean_chars(answer).strip()
    for _ in range(8):  # each pass peels one layer; real answers have two or three
        before = text
        boxed = last_boxed(text)
        if boxed is not None:
            text = boxed.strip()
        for pattern in _WRAPPERS:
            m = pattern.match(text)
            if m:
                text = m.group(1).strip()
        if len(text) > 1 and text.endswith("."):
            text = text[:-1].rstrip()
        if text == before:
            break
    return text


# A number: optional sign, digits with real thousands groups (or plain digits), optional decimals
# or exponent. The minus counts as a sign only when it does not follow a word character or a
# closing bracket ("7-3" ends in 3; "= -4" ends in -4).
NUMBER = re.compile(r"(?:(?<![\w)\]])-)?(?:\d{1,3}(?:,\d{3})+(?!\d|,\d)|\d+|(?=\.\d))(?:\.\d+)?(?:[eE][-+]?\d+)?")
# What number-kind extraction falls back on: the last number, a fraction written with a slash or
# as \frac{a}{b} counted whole ("x = 3/4" answers 3/4, not 4).
_LAST = re.compile(r"-?\\[dt]?frac\s*\{\s*-?\d+\s*\}\s*\{\s*-?\d+\s*\}|(?:" + NUMBER.pattern + r")(?:\s*/\s*\d+(?![\d.,]))?")
_FRACTION = re.compile(r"^(-?)\\[dt]?frac\s*\{\s*(-?\d+)\s*\}\s*\{\s*(-?\d+)\s*\}$|^(-?)\\[dt]?frac(\d)(\d)$")
_SLASH = re.compile(r"^(-?\d+)\s*/\s*(-?\d+)$")
_WHOLE_NUMBER = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+|(?=\.\d))(?:\.\d+)?(?:[eE][-+]?\d+)?$")
# A unit after a number: "%", or a word after a space ("12 apples", "25 cm2", "3 m^2"), or a word
# of two or more letters written on ("10kg"); never "pi", and never one letter written on ("5x"
# is an expression, not 5).
_UNIT_WORD = r"[A-Za-z]+(?:\^?[23])?"
_UNIT_TAIL = re.compile(r"^(?P<number>[-+]?(?:\d[\d.,/]*|\\[dt]?frac\{[^{}]*\}\{[^{}]*\}))"
                        r"(?:[ \t]*(?:%|\\%)|[ \t]+percent"
                        rf"|[ \t]+(?!pi\b){_UNIT_WORD}(?:[ ./'-]+{_UNIT_WORD})*\.?"
                        rf"|(?!pi\b)[A-Za-z]{{2,}}(?:\^?[23])?(?:[./]{_UNIT_WORD})*)$")


def _plain_number(text: str) -> Fraction | None:
    if not _WHOLE_NUMBER.match(text):
        return None
    return Fraction(text.replace(",", "").lstrip("+"))


def parse_number(answer: str) -> Fraction | None:
    """The exact value of a number answer (integer, decimal, fraction, percentage or number with a
    unit, by the module's policy), or None when ``answer`` is not one number."""
    text = unwrap(answer).replace("\\!", "").replace("{,}", ",").replace("\\$", "$").strip()
    text = re.sub(r"^([-+]?)[ \t]*[$€£¥][ \t]*", r"\1", text)  # "-$5" is -5
    for candidate in (text, _strip_unit(text)):
        if candidate is None:
            continue
        value = _plain_number(candidate)
        if value is not None:
            return value
        m = _FRACTION.match(candidate)
        if m:
            sign, num, den = (m.group(1), m.group(2), m.group(3)) if m.group(2) else (m.group(4), m.group(5), m.group(6))
            return _ratio(num, den, sign)
        m = _SLASH.match(candidate)
        if m:
            return _ratio(m.group(1), m.group(2), "")
    return None


def _ratio(num: str, den: str, sign: str) -> Fraction | None:
    if int(den) == 0:
        return None
    value = Fraction(int(num), int(den))
    return -value if sign == "-" else value


def _strip_unit(text: str) -> str | None:
    m = _UNIT_TAIL.match(text)
    return m.group("number") if m else None


def last_number(text: str) -> str | None:
    """The last number in ``text`` (characters cleaned; thousands commas of real groups removed;
    a fraction "3/4" or ``\\frac{3}{4}`` counted whole), or None. The fallback of number-kind
    extraction."""
    matches = [m.group(0) for m in _LAST.finditer(clean_chars(text))]
    return matches[-1].replace(",", "") if matches else None


def number_answer(text: str) -> str | None:
    """A number-kind answer read from ``text`` (an answer tag's content, a boxed value, a marker's
    line): the whole text when it is one number (with its unit or %, by the module's policy),
    else its last number; None when it has no number."""
    value = parse_number(text)
    if value is not None:
        return unwrap(text)
    return last_number(unwrap(text))


_CHOICE = re.compile(r"^(?:(?:option|choice|answer)[ \t]*[:\-]?[ \t]*)?(?:\(([A-Za-z])\)|([A-Za-z])(?=[.):]|\s*$))",
                     re.IGNORECASE)


def parse_choice(answer: str) -> str | None:
    """The letter of a multiple-choice answer ("B", "(B) text", "B.", "B: text", "Option B"),
    upper-cased; None when the answer does not start with one ("I think B", "A and B")."""
    text = unwrap(answer)
    m = _CHOICE.match(text)
    return (m.group(1) or m.group(2)).upper() if m else None


def normalize_text(text: str) -> str:
    """Casefolded, whitespace collapsed: how free-text answers are compared."""
    return " ".join(unwrap(text).split()).casefold()


def list_items(text: str) -> list[str]:
    """The items of a list answer: split at top-level commas, inside one pair of enclosing
    brackets if it has them ("(1, [2, 3])" -> ["1", "[2, 3]"])."""
    text = unwrap(text)
    for opening, closing in (("\\{", "\\}"), ("(", ")"), ("[", "]"), ("{", "}")):
        if text.startswith(opening) and text.endswith(closing):
            text = text[len(opening): -len(closing)]
            break
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    return items + [text[start:].strip()]


def kind_of(gold: str) -> str:
    """The answer kind of a gold answer, for tasks (JSONL files) that do not declare one:
    ``number`` if it is one number by ``parse_number`` ("1,250" is; "0,1" is not), ``list`` if it
    has top-level commas or is bracketed with commas inside, ``choice`` for a single letter A-J,
    ``expression`` if it holds LaTeX, operators or digits, else ``text``."""
    text = unwrap(gold)
    if parse_number(text) is not None:
        return "number"
    if len(list_items(text)) > 1:  # top-level commas, inside one pair of brackets or none
        return "list"
    if re.fullmatch(r"[A-J]", text):
        return "choice"
    if re.search(r"[\\^_=+*/()\d]", text):
        return "expression"
    return "text"


def math_equal(gold: str, answer: str) -> bool:
    """math-verify's equivalence of two answers, both parsed as LaTeX (each wrapped in ``$...$``);
    False when either side does not parse. Source: math-verify ``parse`` / ``verify``."""
    from math_verify import parse, verify

    # math-verify times out with signal.alarm, which only works in the main thread (reward
    # functions may run elsewhere, e.g. an async rollout worker), so elsewhere go without.
    main = threading.current_thread() is threading.main_thread()
    if not main:
        logging.getLogger("math_verify").setLevel(logging.ERROR)
    timeout = 5 if main else None
    gold_parsed = parse(f"${unwrap(gold)}$", parsing_timeout=timeout)
    answer_parsed = parse(f"${unwrap(answer)}$", parsing_timeout=timeout)
    if not gold_parsed or not answer_parsed:
        return False
    return bool(verify(gold_parsed, answer_parsed, timeout_seconds=timeout))


def answers_equal(gold: str, answer: str | None, kind: str, ordered: bool = False) -> bool:
    """Whether ``answer`` equals ``gold`` for an answer of ``kind`` (module docstring's rules).

    ``ordered`` (lists only): the items must match one by one in order, each compared by its own
    kind, rather than as math-verify's set or interval. None or blank answers are never equal.
    Raises ValueError for an unknown kind or for ``code`` (a code answer is checked by running
    its tests, not by comparison)."""
    if kind not in ANSWER_KINDS or kind == "code":
        raise ValueError(f"answers of kind {kind!r} cannot be compared; valid kinds: "
                         f"{', '.join(k for k in ANSWER_KINDS if k != 'code')}")
    if answer is None or not str(answer).strip():
        return False
    if kind == "number":
        g, a = parse_number(gold), parse_number(answer)
        if g is not None:
            return a is not None and g == a
        kind = "expression"  # a gold that is not one number: compare it as mathematics
    if kind == "choice":
        g = parse_choice(gold)
        return g is not None and g == parse_choice(answer)
    if kind == "text":
        return normalize_text(gold) == normalize_text(answer)
    if normalize_text(gold) == normalize_text(answer):
        return True
    if kind == "list":
        golds, answers = list_items(gold), list_items(answer)
        if len(golds) != len(answers):
            return False  # math-verify reads "0.1" against the set {0, 1} as a number: never a list
        if ordered:
            return all(answers_equal(g, a, kind_of(g)) for g, a in zip(golds, answers))
    return math_equal(gold, answer)
