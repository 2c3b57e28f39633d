"""R1's cold-start data, offline: worked solutions with a verification step, written by rule.

DeepSeek-R1 fine-tuned its base model on "thousands of long chain-of-thought examples in a
readable, conversational format" before reasoning RL (stage 1), so that RL starts from a policy
that already writes <think>...</think><answer>...</answer> legibly. We have no teacher model
offline, so for the arithmetic tasks a generator writes those examples itself: parse the
expression out of the question, evaluate it one operation at a time, write the steps in one of a
few phrasing styles, and end with an explicit check that works the last operation backwards.

    workbench coldstart --task chain_sum --n 300 --output workbench/stages/data/cold_start_chain_sum.jsonl

    from workbench.stages.cold_start import build_cold_start
    rows = build_cold_start("chain_sum", n=300, seed=0)   # SFT rows (workbench.stages.sft_data format)

Rules:
- Questions come from the task's **train** split only, so no row ever shows a held-out question.
- Every row is verified before it is kept: the task's own verifier scores the extracted answer
  1.0, the strict format reward gives 1.0 and the chain of thought is all English
  (``language_consistency`` 1.0). A row that fails is dropped, never fixed up.
- Rows are unique by (question, assistant text) and a pure function of (task, n, seed).
- chain_sum's train split holds only ~95 distinct questions, so hundreds of rows need several
  styles per question: the generator goes round the questions, each round giving every question
  the next style it supports (``STYLES``) with phrasing drawn from ``Random(seed, question,
  round)``, until it has ``n`` rows or a full round adds nothing new.
- The expression is parsed by a small recursive-descent parser over numbers, + - * /, unary minus
  and brackets; text is never evaluated. A question it cannot read is skipped (and counted).

Styles: "steps" (one operation per sentence, with the sign rule spelled out), "rewrite" (the whole
expression rewritten after each operation; multi-step problems only), "count" (counting on or
back, for a change of at most 9), "tens" (subtract or add the tens, then the ones), "self_correct"
(a - b with b > a: a first guess that drops the minus sign, then "Wait, ..." and the correction;
sign slips such as "1 - 8 = 9" are the errors the embedded 135M model makes on chain_sum, see
FINDINGS), and "recheck" (the answer first, then "let me double-check" working backwards).
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from random import Random

from workbench.errors import WorkbenchError

GENERATOR = "workbench.stages.cold_start"
# Task name -> where the expression sits in its question. Each pattern captures the expression.
QUESTION_PATTERNS: dict[str, re.Pattern] = {
    "chain_sum": re.compile(r"^State the final answer to the following arithmetic problem:\s*(.+?)\s*=\s*$"),
    "chain_sum_2digit": re.compile(r"^State the final answer to the following arithmetic problem:\s*(.+?)\s*=\s*$"),
    "basic_arithmetic": re.compile(r"^Calculate\s+(.+?)\s*\.?\s*$"),
}
SUPPORTED_TASKS = tuple(QUESTION_PATTERNS)
STYLES = ("steps", "count", "tens", "self_correct", "recheck", "rewrite")
MAX_ROUNDS = 64
# Stop walking the train split after this many items in a row bring no new question.
_STALL = 2000
_MAX_TOKENS = 200  # a question longer than this is not one of ours


# --- Parsing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: Fraction


@dataclass(frozen=True)
class Neg:
    operand: "Node"


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * /
    left: "Node"
    right: "Node"


Node = Num | Neg | BinOp
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([-+*/()]))")


def _tokenize(expr: str) -> list[str]:
    tokens, pos = [], 0
    expr = expr.replace("\u2212", "-").replace("\u00d7", "*").replace("\u00f7", "/")
    while pos < len(expr.rstrip()):
        m = _TOKEN.match(expr, pos)
        if not m:
            raise WorkbenchError(f"cannot parse {expr!r}: unexpected {expr[pos:].strip()[:10]!r} at {pos}")
        tokens.append(m.group(1) or m.group(2))
        pos = m.end()
    if len(tokens) > _MAX_TOKENS:
        raise WorkbenchError(f"cannot parse {expr[:40]!r}...: more than {_MAX_TOKENS} tokens")
    return tokens


class _Parser:
    """expr := term (("+"|"-") term)* ; term := unary (("*"|"/") unary)* ;
    unary := "-" unary | atom ; atom := NUMBER | "(" expr ")"."""

    def __init__(self, text: str):
        self.text, self.tokens, self.i = text, _tokenize(text), 0

    def fail(self, what: str):
        raise WorkbenchError(f"cannot parse {self.text!r}: {what}")

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            self.fail("it ends early")
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.expr()
        if self.peek() is not None:
            self.fail(f"unexpected {self.peek()!r}")
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            node = BinOp(self.take(), node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek() in ("*", "/"):
            node = BinOp(self.take(), node, self.unary())
        return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            operand = self.unary()
            # "-29" is a negative number, as the question writes it; "-( ... )" is a negation step.
            return Num(-operand.value) if isinstance(operand, Num) else Neg(operand)
        return self.atom()

    def atom(self) -> Node:
        tok = self.take()
        if tok == "(":
            node = self.expr()
            if self.take() != ")":
                self.fail("unbalanced brackets")
            return node
        if tok[0].isdigit():
            return Num(Fraction(tok))
        self.fail(f"expected a number or '(', got {tok!r}")


def parse_expression(text: str) -> Node:
    """The expression tree of ``text`` (numbers, + - * /, unary minus, brackets); WorkbenchError else."""
    return _Parser(text).parse()


def question_expression(question: str, task_name: str) -> str:
    """The arithmetic expression inside a ``task_name`` question; WorkbenchError if there is none."""
    pattern = QUESTION_PATTERNS.get(task_name)
    if pattern is None:
        raise UnsupportedTaskError(task_name)
    m = pattern.match(question.strip())
    if not m:
        raise WorkbenchError(f"cannot read an arithmetic expression from the {task_name} question {question!r}")
    return m.group(1)


# --- Evaluating one operation at a time -----------------------------------------------------------


@dataclass(frozen=True)
class Step:
    op: str  # + - * / or "neg"
    a: Fraction
    b: Fraction | None
    result: Fraction


def _apply(op: str, a: Fraction, b: Fraction) -> Fraction:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if b == 0:
        raise WorkbenchError("division by zero")
    return a / b


def _reduce_once(node: Node) -> tuple[Node, Step]:
    """Replace the first operation whose operands are numbers (left to right) by its value."""
    if isinstance(node, Neg):
        if isinstance(node.operand, Num):
            v = node.operand.value
            return Num(-v), Step("neg", v, None, -v)
        inner, step = _reduce_once(node.operand)
        return Neg(inner), step
    if not isinstance(node.left, Num):
        left, step = _reduce_once(node.left)
        return BinOp(node.op, left, node.right), step
    if not isinstance(node.right, Num):
        right, step = _reduce_once(node.right)
        return BinOp(node.op, node.left, right), step
    a, b = node.left.value, node.right.value
    r = _apply(node.op, a, b)
    return Num(r), Step(node.op, a, b, r)


def solve(node: Node) -> tuple[list[Step], list[Node]]:
    """The operations in evaluation order and the expression after each (the last is the value)."""
    steps, forms = [], [node]
    while not isinstance(node, Num):
        node, step = _reduce_once(node)
        steps.append(step)
        forms.append(node)
    return steps, forms


# --- Writing ---------------------------------------------------------------------------------------


def fmt(v: Fraction) -> str:
    """A number as the answer should read: "7", "-3", "2.5"; a fraction "1/3" if it does not end."""
    if v.denominator == 1:
        return str(v.numerator)
    d = v.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:
        return format(Decimal(v.numerator) / Decimal(v.denominator), "f")
    return f"{v.numerator}/{v.denominator}"


def _op(v: Fraction) -> str:
    """A number as an operand after an operator: negatives in brackets, "4 - (-7)"."""
    return f"({fmt(v)})" if v < 0 else fmt(v)


_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


def show(node: Node, parent: int = 0, operand: bool = False) -> str:
    """An expression as text, with the brackets its structure needs."""
    if isinstance(node, Num):
        return _op(node.value) if operand else fmt(node.value)
    if isinstance(node, Neg):
        text = f"-({show(node.operand)})"
        return f"({text})" if operand else text
    prec = _PREC[node.op]
    # The right side of - and / keeps its brackets at equal precedence: a - (b - c) != a - b - c.
    right_parent = prec + 1 if node.op in "-/" else prec
    text = f"{show(node.left, prec)} {node.op} {show(node.right, right_parent, operand=True)}"
    return f"({text})" if prec < parent else text


def _eq(step: Step) -> str:
    if step.op == "neg":
        return f"-({fmt(step.a)}) = {fmt(step.result)}"
    return f"{fmt(step.a)} {step.op} {_op(step.b)} = {fmt(step.result)}"


def _explain(step: Step, rng: Random) -> str:
    """One operation as a sentence, with the sign rule where a sign is the hard part."""
    a, b, r, op = step.a, step.b, step.result, step.op
    A, B, R = fmt(a), fmt(b) if b is not None else "", fmt(r)
    if op == "neg":
        return f"The minus sign in front flips the sign: -({A}) = {R}."
    if op == "-" and b < 0:
        return f"Subtracting a negative number is adding: {A} - ({B}) = {A} + {fmt(-b)} = {R}."
    if op == "+" and b < 0:
        return f"Adding a negative number is subtracting: {A} + ({B}) = {A} - {fmt(-b)} = {R}."
    if op == "-" and 0 <= a < b:
        return rng.choice((
            f"{B} is bigger than {A}, so the result is negative: {B} - {A} = {fmt(b - a)}, so {A} - {B} = {R}.",
            f"Taking {B} away from {A} goes below zero. The gap between them is {B} - {A} = {fmt(b - a)}, "
            f"so {A} - {B} = {R}.",
        ))
    if op in "*/" and (a < 0 or b < 0):
        magnitude = f"{fmt(abs(a))} {op} {fmt(abs(b))} = {fmt(abs(r))}"
        if r == 0:
            return f"{magnitude}, so {_eq(step)}."
        rule = "the signs are the same, so the result is positive" if r > 0 else "the signs differ, so the result is negative"
        return f"{magnitude}, and {rule}: {_eq(step)}."
    return f"{_eq(step)}."


def _backwards(step: Step) -> str:
    """The inverse operation that takes the result back to the first operand."""
    a, b, r, op = step.a, step.b, step.result, step.op
    if op == "neg":
        return f"-({fmt(r)}) = {fmt(a)}"
    if op == "+":
        return f"{fmt(r)} - {_op(b)} = {fmt(a)}"
    if op == "-":
        return f"{fmt(r)} + {_op(b)} = {fmt(a)}"
    if op == "*" and b != 0:
        return f"{fmt(r)} / {_op(b)} = {fmt(a)}"
    if op == "*" and a != 0:
        return f"{fmt(r)} / {_op(a)} = {fmt(b)}"
    if op == "*":
        return "0 times any number is 0"
    return f"{fmt(r)} * {_op(b)} = {fmt(a)}"


def _check(step: Step, rng: Random) -> str:
    """Work the last operation backwards: a sentence that ends by confirming the result."""
    eq, R = _backwards(step), fmt(step.result)
    return rng.choice((
        f"Check: {eq}, so {R} is right.",
        f"Let me check: {eq}. Yes, {R} is correct.",
        f"To verify, work backwards: {eq}. That matches, so the answer is {R}.",
        f"Quick check: {eq}. Good, {R} it is.",
    ))


def _opening(expr: str, rng: Random) -> str:
    return rng.choice((f"I need to find {expr}.", f"The problem is {expr}.", f"We want the value of {expr}.",
                       f"Let me work out {expr}."))


def _delta(step: Step) -> Fraction | None:
    """The signed change a + or - step makes to its first operand (None for * / and negation)."""
    if step.op == "+":
        return step.b
    if step.op == "-":
        return -step.b
    return None


def _style_steps(expr, steps, forms, rng) -> str | None:
    lines = [_opening(expr, rng)]
    if len(steps) > 1:
        lines.append(rng.choice(("I will do one operation at a time, brackets first, then * and /, then + and -.",
                                 "Work inside the brackets first, then multiply and divide, then add and subtract.")))
    connectives = ("First,", "Next,", "Then", "After that,")
    for i, step in enumerate(steps):
        sentence = _explain(step, rng)
        if len(steps) > 1:
            word = "Finally," if i == len(steps) - 1 else connectives[min(i, len(connectives) - 1)]
            sentence = f"{word} {sentence[0].lower()}{sentence[1:]}"
        lines.append(sentence)
    lines.append(_check(steps[-1], rng))
    return "\n".join(lines)


def _style_rewrite(expr, steps, forms, rng) -> str | None:
    if len(steps) < 2:
        return None
    lines = [rng.choice((f"Let me simplify {expr} step by step.", f"I'll rewrite {expr} after each operation."))]
    lines.append(f"{show(forms[0])}")
    for step, form in zip(steps, forms[1:]):
        lines.append(f"= {show(form)}    ({_eq(step)})")
    lines.append(f"So the value is {fmt(steps[-1].result)}.")
    lines.append(_check(steps[-1], rng))
    return "\n".join(lines)


def _integer_pm(steps) -> Step | None:
    # count / tens / self_correct only describe a single + or - of whole numbers.
    if len(steps) != 1 or steps[0].op not in "+-":
        return None
    s = steps[0]
    return s if s.a.denominator == 1 and s.b.denominator == 1 else None


def _style_count(expr, steps, forms, rng) -> str | None:
    s = _integer_pm(steps)
    if s is None or abs(_delta(s)) > 9:
        return None
    d = int(_delta(s))
    a = int(s.a)
    if d == 0:
        body = f"{'Adding' if s.op == '+' else 'Subtracting'} 0 changes nothing, so {expr} = {fmt(s.result)}."
    else:
        direction, unit = ("up", 1) if d > 0 else ("down", -1)
        walk = ", ".join(str(a + unit * i) for i in range(1, abs(d) + 1))
        body = rng.choice((
            f"Start at {a} and count {direction} {abs(d)}: {walk}. So {expr} = {fmt(s.result)}.",
            f"Counting {direction} {abs(d)} from {a}: {walk}. That lands on {fmt(s.result)}.",
        ))
        if s.b < 0:  # "4 - -3": say why subtracting moves up
            body = (f"{'Adding' if s.op == '+' else 'Subtracting'} {fmt(s.b)} is the same as "
                    f"{'subtracting' if s.op == '+' else 'adding'} {fmt(-s.b)}. {body}")
    return "\n".join((_opening(expr, rng), body, _check(s, rng)))


def _style_tens(expr, steps, forms, rng) -> str | None:
    s = _integer_pm(steps)
    if s is None or abs(_delta(s)) < 10 or abs(_delta(s)) % 10 == 0:
        return None
    d = int(_delta(s))
    sign, mag = (1, d) if d > 0 else (-1, -d)
    tens, ones = mag - mag % 10, mag % 10
    verb, sym = ("adding", "+") if sign > 0 else ("subtracting", "-")
    mid = int(s.a) + sign * tens
    return "\n".join((
        _opening(expr, rng),
        f"{verb.capitalize()} {mag} is the same as {verb} {tens} and then {ones}.",
        f"{fmt(s.a)} {sym} {tens} = {mid}.",
        f"{mid} {sym} {ones} = {fmt(s.result)}.",
        _check(s, rng),
    ))


def _style_self_correct(expr, steps, forms, rng) -> str | None:
    s = _integer_pm(steps)
    if s is None or s.op != "-" or not (0 <= s.a < s.b):
        return None
    A, B, gap = fmt(s.a), fmt(s.b), fmt(s.b - s.a)
    first = rng.choice((f"At first glance {expr} looks like {gap}.", f"My first thought is {expr} = {gap}."))
    wait = rng.choice((
        f"Wait, that can't be right: {B} is bigger than {A}, so taking {B} away from {A} goes below zero.",
        f"Wait, I dropped the sign. {A} is smaller than {B}, so the result must be negative.",
    ))
    return "\n".join((first, wait, f"The gap is {B} - {A} = {gap}, so {expr} = {fmt(s.result)}.", _check(s, rng)))


def _style_recheck(expr, steps, forms, rng) -> str | None:
    R, back = fmt(steps[-1].result), _backwards(steps[-1])
    return "\n".join((
        f"Working through {expr}: " + ", then ".join(_eq(st) for st in steps) + "." if len(steps) > 1 else f"{_eq(steps[0])}.",
        rng.choice((f"Wait, let me double-check by working backwards: {back}.",
                    f"Hmm, let me verify that. Going backwards: {back}.")),
        rng.choice((f"Yes, {R} is correct.", f"That confirms it: the answer is {R}.")),
    ))


_WRITERS = {
    "steps": _style_steps,
    "count": _style_count,
    "tens": _style_tens,
    "self_correct": _style_self_correct,
    "recheck": _style_recheck,
    "rewrite": _style_rewrite,
}


def format_completion(think: str, answer: str) -> str:
    """The R1 format the chat_think template asks for."""
    return f"<think>\n{think}\n</think>\n<answer>{answer}</answer>"


def worked_solutions(question: str, task_name: str, rng_for) -> dict[str, str]:
    """{style: completion} for every style that fits the question; ``rng_for(style)`` gives each
    style's Random. WorkbenchError when the question cannot be parsed or evaluated."""
    expr_text = question_expression(question, task_name)
    tree = parse_expression(expr_text)
    steps, forms = solve(tree)
    if not steps:
        raise WorkbenchError(f"{question!r} has nothing to compute")
    expr = " ".join(expr_text.split())
    answer = fmt(steps[-1].result)
    out = {}
    for style in STYLES:
        think = _WRITERS[style](expr, steps, forms, rng_for(style))
        if think is not None:
            out[style] = format_completion(think, answer)
    return out


# --- Building the data set -------------------------------------------------------------------------


class UnsupportedTaskError(WorkbenchError):
    def __init__(self, name: str):
        self.name = name
        super().__init__(f"no worked-solution writer for task {name!r}; supported tasks: {', '.join(SUPPORTED_TASKS)}")


def distinct_items(task, n: int, split: str = "train") -> list[dict]:
    """The first ``n`` items of ``split`` with distinct questions, in split order (fewer when the
    question space runs out: ``_STALL`` items in a row with no new question, or the split's end).

    Procedural train splits repeat questions (chain_sum has ~100), and a file task's train split
    wraps around, so "n items" can hold far fewer than n questions."""
    seen, items, stall, i = set(), [], 0, 0
    while len(items) < n and stall < _STALL:
        try:
            item = task.item(split, i)
        except IndexError:  # an eval split has an end
            break
        i += 1
        if item["question"] in seen:
            stall += 1
            continue
        seen.add(item["question"])
        items.append(item)
        stall = 0
    return items


def _verified(text: str, item: dict, task) -> bool:
    from workbench.rewards.extract import extract_answer
    from workbench.rewards.language import language_consistency
    from workbench.rewards.rules import FormatReward

    return (task.score(extract_answer(text, task.answer_kind), item) >= 1.0
            and FormatReward()([text])[0] == 1.0 and language_consistency(text, "en") == 1.0)


def build_cold_start(task, n: int, seed: int = 0, stats: dict | None = None) -> list[dict]:
    """``n`` verified SFT rows of worked solutions for ``task`` (a supported name or Task).

    Fewer than ``n`` (with a warning) when the question space and the styles run out. ``stats``,
    if given, is filled with counts: questions, unparseable, failed_verification, duplicates, by_style.
    """
    from workbench.tasks import get_task
    from workbench.templates import system_prompt

    if isinstance(task, str):
        if task not in SUPPORTED_TASKS:
            raise UnsupportedTaskError(task)
        task = get_task(task, seed=seed)
    elif task.name not in SUPPORTED_TASKS:
        raise UnsupportedTaskError(task.name)
    if n < 1:
        raise WorkbenchError(f"n must be at least 1, got {n}")
    system = system_prompt("chat_think")
    items = distinct_items(task, n)
    counts = Counter()
    solvable = []
    for item in items:
        try:
            worked_solutions(item["question"], task.name, lambda style: Random(0))
        except WorkbenchError:  # not arithmetic we can read, or a division by zero
            counts["unparseable"] += 1
            continue
        solvable.append(item)
    rows: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for rnd in range(MAX_ROUNDS):
        added = 0
        for qi, item in enumerate(solvable):
            q = item["question"]
            texts = worked_solutions(q, task.name, lambda style: Random(f"{seed}|{q}|{style}|{rnd}"))
            styles = list(texts)
            style = styles[(qi + rnd) % len(styles)]  # rotate so each round gives a question a new style
            text = texts[style]
            if (q, text) in seen:
                counts["duplicates"] += 1
                continue
            if not _verified(text, item, task):
                counts["failed_verification"] += 1
                continue
            seen.add((q, text))
            rows.append({
                "messages": [{"role": "system", "content": system}, {"role": "user", "content": q},
                             {"role": "assistant", "content": text}],
                "provenance": {"source": "coldstart", "generator": GENERATOR, "task": task.name,
                               "item_id": item["id"], "style": style, "seed": seed},
            })
            added += 1
            if len(rows) == n:
                break
        if len(rows) == n or added == 0:
            break
    if stats is not None:
        stats.update(questions=len(items), unparseable=counts["unparseable"],
                     failed_verification=counts["failed_verification"], duplicates=counts["duplicates"],
                     rows=len(rows), by_style=dict(Counter(r["provenance"]["style"] for r in rows)))
    if len(rows) < n:
        warnings.warn(f"{task.name}: only {len(rows)} distinct verified rows from {len(solvable)} questions "
                      f"(asked for {n})", stacklevel=2)
    if not rows:
        raise WorkbenchError(f"{task.name}: no question of its train split could be solved by the writer")
    return rows
