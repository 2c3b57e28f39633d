"""The behaviour detectors' pattern table (``workbench.analysis.traces`` applies it): one ``Pattern``
per phrase that signals a cognitive behaviour (Gandhi et al. 2025: verification, backtracking,
subgoal setting, backward chaining), with the reason it is there. Another language is one more
table, named in ``traces.PATTERNS``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pattern:
    name: str
    behaviour: str
    regex: str  # lower case, no leading \b (see the table below)
    why: str


_LET = r"(?:let's|let me|let us)"
_WE = r"(?:i|we)"

# Written in lower case, matched against the lower-cased text. A match must start at a word boundary:
# detect() checks that, instead of a leading \b, so the regex engine can jump to each pattern's first
# literal (4-10x faster). A group named "m", if any, is the span reported.
# fmt: off
ENGLISH = (
    # --- verification: checking one's own intermediate or final result -------------------------------
    Pattern("let_me_check", "verification",
            rf"(?:{_LET}|{_WE}(?:'ll| will| should| can| could)) (?:(?:just|quickly|now|also|first|then) )?"
            r"(?:re-?check|check|verify|confirm|double[- ]?check|make sure|re-?examine|re-?evaluate|test (?:this|it|that))\b",
            "the model announces a check of its own work"),
    Pattern("verify_word", "verification", r"verif(?:y|ying|ied|ies|ication)\b",
            "explicit verification vocabulary"),
    Pattern("double_check", "verification", r"(?:double|sanity|cross)[- ]?check(?:s|ed|ing)?\b",
            "a second look at a result"),
    Pattern("check_object", "verification",
            r"check(?:s|ed|ing)? (?:that|if|whether|again|our|my|this|the (?:answer|result|solution|calculation|sum|work|math))\b",
            "'check' used as a verb on a claim; 'checkbox', 'paycheck' never match"),
    Pattern("plug_back", "verification",
            r"(?:plug(?:s|ged|ging)?|substitut(?:e|es|ed|ing)|put(?:ting)?)\b[^.\n]{0,40}?\bback in(?:to)?\b",
            "substituting a solution back to confirm it"),
    Pattern("which_matches", "verification",
            r"(?:which|this|that|it)(?: (?:indeed|also|exactly))? (?:matches|confirms|checks out|agrees with|is consistent with)\b",
            "a result compared against a known value"),
    Pattern("is_it_right", "verification", r"(?:is|was) (?:this|that|it) (?:correct|right)\s*\?",
            "the model questions its own result"),
    # --- backtracking: abandoning a line of reasoning and going back -----------------------------------
    Pattern("wait", "backtracking", r"wait\b(?=\s*[,.!?;:\u2026\u2014\u2013-])|wait (?:a )?(?:moment|minute|second|sec)\b",
            "R1's 'aha' marker; needs punctuation after, so 'wait for', 'await', 'waiter' never match"),
    Pattern("hold_on", "backtracking", r"hold on\b(?=\s*[,.!\u2026\u2014-])", "an interruption of the current line"),
    Pattern("actually", "backtracking", r"actually(?=\s*[,!\u2014])", "'Actually, ...' introduces a correction"),
    Pattern("thats_wrong", "backtracking",
            r"(?:that|this|it|which)(?:'s| is| was| seems| looks)(?: (?:definitely|clearly|actually))? "
            r"(?:wrong|incorrect|not (?:right|correct)|a mistake|an error)\b",
            "rejects a result just produced"),
    Pattern("doesnt_work", "backtracking",
            r"(?:that|this|it) (?:doesn't|does not|didn't|did not|can't|cannot)(?: (?:seem|look)(?: to)?)? "
            r"(?:work|right|correct|be right|be correct|add up)\b",
            "rejects an approach"),
    Pattern("try_again", "backtracking",
            rf"{_LET} (?:try|start|think|do (?:this|it)|work (?:this|it) out)(?: (?:this|it))? (?:again|over)\b|start over\b",
            "restarts the attempt"),
    Pattern("another_approach", "backtracking",
            r"(?:try|use|take|consider) (?:a different|another|a new|an alternative) (?:approach|way|method|strategy|tack)\b",
            "switches to another approach"),
    Pattern("let_me_redo", "backtracking",
            rf"{_LET} (?:re-?think|re-?consider|re-?calculate|re-?compute|re-?do|re-?try)\b|on second thought\b|scratch that\b",
            "redoes a step it no longer trusts"),
    Pattern("made_mistake", "backtracking",
            rf"{_WE}(?:'ve| have| must have| must've)? (?:made|make) (?:a|an|another|some|the same)(?: \w+)? (?:mistake|error|miscalculation)s?\b"
            r"|my (?:mistake|bad)\b|i (?:was wrong|miscalculated|misread|misunderstood|messed up)\b",
            "admits an error"),
    # --- subgoal setting: splitting the problem into ordered parts -------------------------------------
    Pattern("first_then", "subgoal_setting",
            r"[\n.!?:;>][ \t*#>-]*(?P<m>first(?:ly| of all)?\b,?[^\n]{1,200}?\b(?:then|next|after that|second(?:ly)?)\b)",
            "an ordered plan: a sentence (or <think>) opening with 'First' and a later 'then'; 'the first number' never matches"),
    Pattern("do_first", "subgoal_setting",
            rf"(?:{_LET}|{_WE}(?:'ll| will| need to| should| must| have to| can))\s+first\b",
            "'let's first subtract ...': names the first subgoal"),
    Pattern("need_first", "subgoal_setting",
            rf"(?:{_WE}|you) (?:need|have|must|should) to (?:find|compute|calculate|determine|figure out|work out|know|get|solve|simplify)\b"
            r"[^.\n]{1,80}?\b(?<!the )first\b(?=\s*(?:[,.;:!?)]|$))",
            "'we need to find x first': a prerequisite subgoal ('... and the first' is an ordinal: no)"),
    Pattern("step_n", "subgoal_setting", r"step (?:[1-9]|one|two|three|four|five)\b(?=\s*[:.)\u2014\u2013-])",
            "numbered steps ('Step 1:'); 'repeat step 1' without punctuation does not count"),
    Pattern("break_down", "subgoal_setting",
            r"break(?:s|ing)? (?:this|it|the (?:problem|task|question|calculation|expression)) (?:down|up|into)\b",
            "decomposition announced"),
    Pattern("first_step", "subgoal_setting", rf"the (?:first|next) step is\b|{_LET} start by\b|sub-?(?:problems?|goals?)\b",
            "names a first step or subproblems"),
    # --- backward chaining: reasoning from the goal back to what is needed -----------------------------
    Pattern("working_backwards", "backward_chaining",
            r"(?:work(?:s|ed|ing)?|reason(?:s|ed|ing)?|go(?:ing)?|think(?:ing)?) backwards?\b|backwards? from\b",
            "names the strategy"),
    Pattern("from_target", "backward_chaining",
            r"start(?:s|ed|ing)? (?:from|with|at) the (?:target|goal|answer|result|end|desired (?:result|answer|value|number))\b",
            "starts from the goal"),
    Pattern("to_get_need", "backward_chaining",
            r"(?:to|in order to) (?:get|reach|obtain|make|arrive at|end up with) [^.,;:\n]{0,40}?(?:\d|\btarget\b|\bgoal\b)[^.,;:\n]{0,20}?,? "
            rf"(?:{_WE}|you) (?:would )?(?:need|must|have to|require)\b",
            "'to get 24, we need ...': the goal (a number or the target) dictates the inputs"),
    Pattern("for_target_need", "backward_chaining",
            r"for (?:the|this|our) (?:sum|product|total|result|difference|equation|expression) to (?:be|equal|reach|give|make) "
            rf"[^.,;:\n]{{1,40}}?,? (?:{_WE}|you) (?:would )?(?:need|must|have to|require)\b",
            "'for the sum to be 10, we need ...'"),
    Pattern("what_gives_target", "backward_chaining",
            r"(?:what|which) (?:numbers?|values?|combination|pairs?)(?: \w+)? (?:gives?|makes?|yields?|adds? up to|sums? to|multipl(?:y|ies) to)\b",
            "asks which inputs produce the goal"),
)
# fmt: on
