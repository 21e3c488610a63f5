r"""Multi-line derivations: consecutive lines about one quantity are one derivation, checked
step by step; the first wrong step is named, and later steps that only carry it on say so.

A derivation is a run of consecutive equations (same ``% spec:``, no ``% at:``) where each
line either starts with ``=`` (it continues the line above: its left side is that line's) or
has the same left side as the line above.  :func:`annotate` runs after every equation has
its verdict (one call from :func:`backprop.verify.check_document`):

* a continuation line is checked with the derivation's left side put in front of it (its
  verdict, otherwise an "unparsable: nothing before the relation" error, is replaced);
* the first wrong line of a derivation gets "line N is where it goes wrong: …";
* a later wrong line whose claim equals the wrong line's claim (it follows from the wrong
  step) is marked ``follows_from`` = N and says so, instead of reading as a new error.
"""
from __future__ import annotations

import re
from dataclasses import replace

from .latex_input import BAD_INPUT, Equation

_CONTINUES = re.compile(r"^\s*&?\s*=")


def left_side(source: str) -> str | None:
    """The text before the first '=' (None if the line has none or starts with it)."""
    head, eq, _ = source.partition("=")
    head = head.replace("&", "").strip()
    return head if eq and head else None


def _key(text: str | None) -> str | None:
    return re.sub(r"[\s{}]|\\left|\\right", "", text) if text else None


def derivations(equations) -> list[list[int]]:
    """Indices (into ``equations``) of each derivation of two or more lines."""
    groups: list[list[int]] = []
    head = None
    for n, eq in enumerate(equations):
        same = groups and n - 1 == groups[-1][-1] and eq.at is None and eq.count is None and \
            eq.spec_text == equations[n - 1].spec_text
        mine = left_side(eq.source)
        if same and (_CONTINUES.match(eq.source) or (mine is not None and _key(mine) == _key(head))):
            groups[-1].append(n)
            continue
        groups.append([n])
        head = mine
    return [g for g in groups if len(g) > 1]


def _claim(source: str) -> str:
    """The last segment of an equation (what a step concludes)."""
    return re.split(r"=", source)[-1].strip()


def annotate(equations, verdicts, checker_for) -> None:
    """Check continuation lines with their derivation's left side, then name the first
    wrong step of every derivation (in place; ``checker_for(eq)`` gives the Checker)."""
    for group in derivations(equations):
        head = left_side(equations[group[0]].source)
        for n in group[1:]:
            eq = equations[n]
            if _CONTINUES.match(eq.source) and head is not None:
                joined = replace(eq, source=f"{head} {eq.source.strip().lstrip('&')}")
                checker = checker_for(joined)
                v = checker.check(joined)
                v.source, v.spec = eq.source, verdicts[n].spec or checker.spec.describe()
                verdicts[n] = v
        first = next((n for n in group if verdicts[n].verdict == "wrong"), None)
        if first is None:
            continue
        bad = verdicts[first]
        bad.message = f"line {bad.line} is where it goes wrong: {bad.message}"
        checker = checker_for(equations[first])
        for n in group[group.index(first) + 1:]:
            v = verdicts[n]
            if v.verdict != "wrong":
                continue
            if _same_claim(checker, equations[first].source, equations[n].source, head):
                v.follows_from = bad.line
                v.misconception = bad.misconception
                v.message = (f"follows from line {bad.line}, where it goes wrong (this step carries that "
                             f"error on; it is not a new one): {v.message}")
            else:
                v.message = f"a new error after line {bad.line}: {v.message}"


def _same_claim(checker, first: str, later: str, head: str | None) -> bool:
    """Whether the conclusions of two lines are the same expression (checked as an equation)."""
    if head is None:
        return False
    probe = Equation(0, f"{head} = {_claim(first)} = {_claim(later)}", 0)
    try:
        rels, exprs, aliases, _ = checker.parse(probe.source)
        a, b = (checker.resolve(e, aliases) for e in exprs[1:3])
        cx, _ = checker.compare(a, b, probe.source)
    except BAD_INPUT:  # an unreadable step is simply not 'the same'
        return False
    return cx is None
