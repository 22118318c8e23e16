"""Reading answer strings the way benchmark golds and model answers write them.

Plain numbers ("1,000", "18.0", "-3/4", "\\frac{3}{4}", "\\$18", "18 dollars",
"2.5e3"), LaTeX text wrappers, math delimiters, top-level comma lists and a
light text normalisation. Shared by the task normalisers and the scoring.
"""

from __future__ import annotations

import re
from fractions import Fraction


def number_gold(value) -> str:
    """27.0 -> "27", "025" -> "25", "70,000" -> "70000"; other values as stripped strings."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    s = str(value).strip().replace(",", "")
    num = parse_number(s)
    if num is not None and num.denominator == 1 and re.fullmatch(r"[+-]?\d+(\.0*)?", s):
        return str(num.numerator)
    return s



_DOLLAR_RE = re.compile(r"(?<!\\)\$")


def strip_dollars(s: str) -> str:
    """Remove unescaped `$` (math delimiters), keep `\\$` (currency)."""
    return _DOLLAR_RE.sub("", s).strip()



_TEXT_WRAP_RE = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")


def unwrap_text(s: str) -> str:
    prev = None
    while prev != s:
        prev, s = s, _TEXT_WRAP_RE.sub(r"\1", s)
    return s



_NUM_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_THOUSANDS_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_FRAC_RE = re.compile(r"([+-]?)\\[dt]?frac\{\s*([+-]?\d+)\s*\}\{\s*([+-]?\d+)\s*\}")
_SLASH_RE = re.compile(r"([+-]?\d+)\s*/\s*([+-]?\d+)")
# A unit after a number: "%" or whitespace then words ("18 dollars", "5 \text{ cm}").
_UNIT_TAIL_RE = re.compile(r"(?:\s*\\?%|\s+[A-Za-z][A-Za-z./^\d ]*)$")


def plain_number(t: str) -> Fraction | None:
    try:
        if _THOUSANDS_RE.fullmatch(t):
            return Fraction(t.replace(",", ""))
        if _NUM_RE.fullmatch(t):
            return Fraction(t)
        m = _FRAC_RE.fullmatch(t)
        if m:
            sign, p, q = m.groups()
            value = Fraction(int(p), int(q))
            return -value if sign == "-" else value
        m = _SLASH_RE.fullmatch(t)
        if m:
            return Fraction(int(m.group(1)), int(m.group(2)))
    except (ValueError, ZeroDivisionError):
        return None
    return None


def parse_number(s: str | None) -> Fraction | None:
    """A plain number ("1,000", "18.0", "-3/4", "\\frac{3}{4}", "\\$18", "18 dollars", "2.5e3"), else None."""
    if s is None:
        return None
    t = unwrap_text(str(s)[:200]).strip()
    t = re.sub(r"\\[,!;: ]|\{,\}", "", t)  # LaTeX spacing / thousands separators
    t = t.replace("\\$", "").replace("$", "").strip()
    t = re.sub(r"^[A-Za-z]\s*=\s*", "", t)  # "x = 18"
    t = t.rstrip(".").strip()
    if not t:
        return None
    value = plain_number(t)
    if value is None and _UNIT_TAIL_RE.search(t):
        value = plain_number(_UNIT_TAIL_RE.sub("", t).rstrip(".").strip())
    return value


E_NOTATION_RE = re.compile(r"([+-]?\d+(?:\.\d+)?)[eE]([+-]?\d+)")


def clean_math(s: str) -> str:
    """Light surface clean-up before math-verify (applied to both gold and prediction)."""
    t = strip_dollars(str(s))  # never truncated: two long answers that differ must stay different
    t = re.sub(r"(\d)\.(?=[^\d]|$)", r"\1", t) if re.search(r"\d\.(?!\d)", t) else t  # "-1./3" -> "-1/3"
    m = E_NOTATION_RE.fullmatch(t.strip())
    if m:  # math-verify does not read "4.5e33"
        t = f"{m.group(1)}\\times 10^{{{int(m.group(2))}}}"
    return t.strip()


def split_top_level(s: str) -> list[str]:
    """Split at commas outside (), [], {} (a LaTeX `\\!`/`\\,` after a comma is kept out)."""
    parts, depth, cur = [], 0, []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s) and s[i + 1] in "{}":
            cur.append(s[i : i + 2])
            i += 2
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    parts = [re.sub(r"^\\[!,;: ]", "", p.strip()).strip() for p in parts]
    return [p for p in parts if p]


def norm_text(s: str) -> str:
    t = unwrap_text(str(s)).strip()
    t = t.replace("$", "").replace("**", "")
    t = t.strip().strip("\"'`").strip()
    t = t.rstrip(".").strip()
    t = re.sub(r"\s+", " ", t.lower())
    t = re.sub(r"\s*,\s*", ", ", t)
    m = re.fullmatch(r"\(([a-z])\)", t)
    if m:
        t = m.group(1)
    return t
