"""Scoring a response against a benchmark item: answer extraction per answer type, then comparison.

Math and number answers are the last `\\boxed{}` (a response without one is
wrong), compared exactly when both sides are plain numbers and with
`rzero_lib.answers.equivalent_many` (math-verify in workers, one batch per call)
otherwise; multiple choice is a letter (boxed, else an explicit "the answer is
(C)", else a standalone letter on the last line); text answers (BBEH) are
compared after a light normalisation, approximating BBEH's own matcher.
Details: docs/evaluation.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rzero_lib.answers import (
    MAX_ANSWER_CHARS,
    MAX_TEXT_CHARS,
    default_checker,
    equivalent_many,
    extract_boxed,
)
from rzero_lib.evaluation.answer_forms import (
    clean_math,
    norm_text,
    parse_number,
    split_top_level,
    unwrap_text,
)
from rzero_lib.evaluation.tasks import LETTERS, BenchmarkItem

# --------------------------------------------------------------------------
# Answer extraction
# --------------------------------------------------------------------------

_BOX_START_RE = re.compile(r"\\(?:boxed|fbox)(?=[{ ])")


def _all_boxed(text: str) -> list[tuple[int, str]]:
    """(position, content) of every complete box, in order."""
    starts = [m.start() for m in _BOX_START_RE.finditer(text)]
    out = []
    for k, s in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(text)
        c = extract_boxed(text[s:end])
        if c is None:  # nested box: let the longer span decide
            c = extract_boxed(text[s:])
        if c is not None:
            out.append((s, c))
    return out



def _choice_from_content(content: str, item: BenchmarkItem) -> str | None:
    """A letter from a box's content: "C", "(C)", "C.", "\\text{C}", "C) 4.5 eV", or an option's text."""
    letters = item.letters or LETTERS[:10]
    full = unwrap_text(content).strip().strip("$*").strip()

    def by_text(cand: str) -> str | None:  # the option's text was boxed instead of its letter
        norm = norm_text(cand)
        hits = [letters[k] for k, c in enumerate(item.choices or ()) if norm and norm == norm_text(c)]
        return hits[0] if len(hits) == 1 else None

    if len(full) > 3 and (hit := by_text(full)):
        return hit
    s = re.sub(r"^(?:option|choice|answer)\s*[:\-]?\s*", "", full, flags=re.IGNORECASE)
    m = re.match(r"^\(?([A-Z])\)?(?:[.:)\]]|\s|$)", s)
    prose = re.match(r"^[AI]\s+[a-z]", s)  # "A photon ...", "I think ...": words, not letters
    if m and not prose:
        return m.group(1) if m.group(1) in letters else None
    return by_text(full) or by_text(s)


_MARKUP = r"(?:\*\*|\*|__|\$|\\text\{|\\textbf\{|\\mathrm\{|\\boxed\{)*"
_ANSWER_CUE_RE = re.compile(
    r"(?i:\banswer\s*(?:is|:|would\s+be|should\s+be|must\s+be|=)|"
    r"\b(?:correct|right|best|final)\s+(?:option|choice|answer)\s*(?:is|:|would\s+be|should\s+be)?|"
    r"\b(?:I|we)\s+(?:choose|select|pick))"
    r"\s*[:\-]?\s*(?i:(?:option|choice)\s*)?" + _MARKUP + r"\s*\(?([A-Z])\)?(?![A-Za-z0-9])"
)
_PAREN_LETTER_RE = re.compile(r"\(([A-Z])\)")


def _extract_choice(item: BenchmarkItem, text: str) -> str | None:
    letters = item.letters or LETTERS[:10]
    boxed = extract_boxed(text)
    if boxed is not None:
        letter = _choice_from_content(boxed, item)
        if letter is not None:
            return letter
    cues = [m.group(1) for m in _ANSWER_CUE_RE.finditer(text) if m.group(1) in letters]
    if cues:
        return cues[-1]
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return None
    last = re.sub(r"^[#>\-\s]+", "", lines[-1])
    bare = re.sub(r"[*_$]", "", last).strip()
    m = (re.fullmatch(r"\(?([A-Z])\)?[.:)]?", bare)
         or re.match(r"^\(([A-Z])\)", bare)
         or re.match(r"^([A-Z])[.:)](?:\s|$)", bare)
         or re.match(r"^(?i:option|choice)\s+\(?([A-Z])\)?(?![A-Za-z0-9])", bare))
    if m and m.group(1) in letters:
        return m.group(1)
    found = {x for x in _PAREN_LETTER_RE.findall(bare) if x in letters}
    if len(found) == 1:
        return found.pop()
    return None


_TEXT_CUE_RE = re.compile(r"(?i:\b(?:final\s+)?answer\s*(?:is\s*:?|:))\s*(.+)")


def _extract_text(text: str) -> str | None:
    boxed = extract_boxed(text)
    if boxed is not None:
        return boxed
    cues = _TEXT_CUE_RE.findall(text)
    if cues:
        ans = cues[-1].strip().strip("*").strip()
        return ans if 0 < len(ans) <= MAX_ANSWER_CHARS else None  # too long is no answer, as for a box
    return None


def extract_answer(item: BenchmarkItem, response_text: str) -> str | None:
    """The answer a response gives for `item`, or None.

    choice: a letter (boxed, else an explicit "answer is (C)", else a
    standalone letter on the last line); math / number: the last `\\boxed{}`
    (for a multi-answer item, all boxes of the last paragraph joined by ", "
    when the last box alone holds fewer answers than the gold); text: the last
    box, else the rest of the line after the last "answer is" / "Answer:".
    """
    text = str(response_text or "")[-MAX_TEXT_CHARS:]
    if not text.strip():
        return None
    if item.answer_type == "choice":
        return _extract_choice(item, text)
    if item.answer_type == "text":
        return _extract_text(text)
    boxed = extract_boxed(text)
    if boxed is None:
        return None
    if item.metadata.get("multiple_answers"):
        need = len(split_top_level(item.gold))
        if len(split_top_level(boxed)) < need:
            boxes = _all_boxed(text)
            para_start = text.rfind("\n\n", 0, boxes[-1][0]) if boxes else -1
            tail = [c for pos, c in boxes if pos > para_start]
            if len(tail) > 1:
                return ", ".join(tail)
    return boxed



def _text_equal(gold: str, pred: str) -> bool:
    g, p = norm_text(gold), norm_text(pred)
    if not g or not p:
        return False
    if g == p:
        return True
    gn, pn = parse_number(gold), parse_number(pred)
    return gn is not None and pn is not None and gn == pn


def _bipartite_match(ok: list[list[bool]]) -> bool:
    """True when every row can be matched to a distinct column."""
    n = len(ok)
    match_col: dict[int, int] = {}

    def try_row(r: int, seen: set[int]) -> bool:
        for c in range(n):
            if ok[r][c] and c not in seen:
                seen.add(c)
                if c not in match_col or try_row(match_col[c], seen):
                    match_col[c] = r
                    return True
        return False

    return all(try_row(r, set()) for r in range(n))



# --------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------


def score_response(item: BenchmarkItem, response_text: str) -> bool:
    """True when `response_text` answers `item` correctly (see the module docstring)."""
    return score_responses([item], [response_text])[0]


@dataclass(frozen=True)
class Score:
    """One scored response: correctness, the extracted answer, and whether math-verify timed out."""

    correct: bool
    extracted: str | None
    timed_out: bool = False


def score_responses(items: Sequence[BenchmarkItem], responses: Sequence[str],
                    timeout_s: float | None = None) -> list[bool]:
    """`score_response` for many (item, response) pairs; all math-verify pairs go in one batch."""
    return [s.correct for s in score_responses_detailed(items, responses, timeout_s=timeout_s)]


def score_responses_detailed(items: Sequence[BenchmarkItem], responses: Sequence[str],
                             timeout_s: float | None = None) -> list[Score]:
    """Like `score_responses`, with the extracted answer and the timeout flag of each response."""
    if len(items) != len(responses):
        raise ValueError(f"{len(items)} items but {len(responses)} responses")
    results: list[bool | None] = [None] * len(items)
    pairs: list[tuple[str, str]] = []
    owners: list[int] = []
    preds: list[str | None] = []
    for k, (item, resp) in enumerate(zip(items, responses)):
        pred = extract_answer(item, resp)
        preds.append(pred)
        if pred is None:
            results[k] = False
            continue
        kind = item.answer_type
        if kind == "choice":
            results[k] = pred.strip().upper() == item.gold.strip().upper()
        elif kind == "text":
            results[k] = _text_equal(item.gold, pred)
        elif kind == "number":
            g, p = parse_number(item.gold), parse_number(pred)
            if g is not None and p is not None:
                results[k] = g == p
            else:
                pairs.append((clean_math(item.gold), clean_math(pred)))
                owners.append(k)
        elif kind == "math":
            tol = item.metadata.get("tolerance")
            g, p = parse_number(clean_math(item.gold)), parse_number(clean_math(pred))
            if tol is not None and g is not None and p is not None:
                results[k] = abs(float(g) - float(p)) <= float(tol) + 1e-12
                continue
            pairs.append((clean_math(item.gold), clean_math(pred)))
            owners.append(k)
        else:
            raise ValueError(f"unknown answer_type {kind!r} for item {item.id}")
    if pairs:
        for k, verdict in zip(owners, equivalent_many(pairs, timeout_s=timeout_s)):
            results[k] = verdict
    # Multi-answer items that failed as a whole: match the comma-separated parts one to one.
    retry: list[tuple[int, int]] = []  # (item index, number of parts)
    part_pairs: list[tuple[str, str]] = []
    for k, item in enumerate(items):
        if results[k] or not item.metadata.get("multiple_answers") or preds[k] is None:
            continue
        gparts = split_top_level(clean_math(item.gold))
        pparts = split_top_level(clean_math(preds[k]))
        if len(gparts) < 2 or len(gparts) != len(pparts):
            continue
        retry.append((k, len(gparts)))
        part_pairs.extend((g, p) for g in gparts for p in pparts)
    if part_pairs:
        verdicts = equivalent_many(part_pairs, timeout_s=timeout_s)
        pos = 0
        for k, n in retry:
            flat = verdicts[pos : pos + n * n]
            pos += n * n
            results[k] = _bipartite_match([flat[r * n : (r + 1) * n] for r in range(n)])
    checker = default_checker()
    timed_out = {k for k, (g, p) in zip(owners, pairs) if checker.timed_out(g, p)}
    return [Score(bool(r), preds[k], k in timed_out) for k, r in enumerate(results)]


def gold_response(item: BenchmarkItem) -> str:
    """A response that states the gold answer the way the Solver is asked to (for checks)."""
    return f"Reasoning omitted. The final answer is \\boxed{{{item.gold}}}."
