"""The arithmetic an exact oracle can trust: the one computation a question states, evaluated exactly.

`extract_expression(question)` finds the plain ASCII expression a question
states ("What is 47 + 38?", "$3 \\times 4$", "\\frac{1}{2} + 3", "17 * 6 - 25 = ?")
or None; `arithmetic_answer(question)` evaluates it with
`rzero_lib.arithmetic.evaluate_expression` ("19", "-3", "7/2"). Conservative by
design: a wrong reference answer is worse than none, so any other number,
word or sign that could change the meaning makes a question not evaluable.
The steps and what is refused: docs/algorithm.md, "The exact arithmetic oracle".
"""

from __future__ import annotations

import re

from rzero_lib.arithmetic import evaluate_expression, format_answer

MAX_QUESTION_CHARS = 2_000


def arithmetic_answer(question_text: str) -> str | None:
    """Exact value of the computation a question states ("7/2", "-3", "19"), or None if not evaluable."""
    expression = extract_expression(question_text)
    if expression is None:
        return None
    value = evaluate_expression(expression)
    return None if value is None else format_answer(value)


def extract_expression(question_text: str) -> str | None:
    """The plain ASCII arithmetic expression a question states, or None (docs/algorithm.md)."""
    if not isinstance(question_text, str) or len(question_text) > MAX_QUESTION_CHARS:
        return None
    if _CONTROL_CHARS.search(question_text):
        return None
    text = _normalise_notation(_MARKUP_TAG.sub(" ", question_text))
    if text is None or _MEANING_CHANGERS.search(text) or _NUMBER_GLUED_TO_LETTER.search(text):
        return None

    runs = [match for match in _ARITHMETIC_RUN.finditer(text) if _ASCII_DIGIT.search(match.group())]
    if len(runs) != 1:
        return None
    run = runs[0]
    # Every digit of the question (any script) must be inside the one run.
    if len(_ANY_DIGIT.findall(text)) != len(_ASCII_DIGIT.findall(run.group())):
        return None

    start, end = _trim(text, run.start(), run.end())
    expression = text[start:end]
    if len(_NUMBER.findall(expression)) < 2:
        return None
    if expression[0] in "+-(" and _is_variable_like(_previous_token(text, start)):
        return None  # "x - 5 + 3", "f(x) - 5": the sign or group belongs to a variable
    if _is_variable_like(_next_token(text, end), closes_group=False):
        return None  # "3 + 4 y": implicit multiplication by a variable
    return expression


# --- normalisation ------------------------------------------------------------

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MARKUP_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9_-]{0,30}>")  # "<question>", "</question>"

_UNICODE_OPERATORS = str.maketrans(
    {
        "\u00d7": "*",  # multiplication sign
        "\u2715": "*",
        "\u2716": "*",
        "\u2a2f": "*",
        "\u2217": "*",  # asterisk operator
        "\u22c5": "*",  # dot operator
        "\u00b7": "*",  # middle dot
        "\u2219": "*",  # bullet operator
        "\u00f7": "/",  # division sign
        "\u2215": "/",  # division slash
        "\u2044": "/",  # fraction slash
        "\u2212": "-",  # minus sign
        "\u2012": "-",
        "\u2013": "-",  # en dash, often typed for minus
        "\u2010": "-",
        "\u2011": "-",
        "\ufe63": "-",
        "\uff0d": "-",
        "\uff0b": "+",
        "\uff0a": "*",
        "\uff0f": "/",
        "\uff08": "(",
        "\uff09": ")",
        "\u00a0": " ",  # no-break and thin spaces
        "\u2007": " ",
        "\u2009": " ",
        "\u202f": " ",
    }
)
_SUPERSCRIPT_DIGITS = str.maketrans(
    "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079\u207b", "0123456789-"
)
_SUPERSCRIPT_POWER = re.compile("\u207b?[\u2070\u00b9\u00b2\u00b3\u2074-\u2079]+")

_LATEX_SIZING = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big)(?![A-Za-z])")
_LATEX_MATH_DELIMITERS = re.compile(r"\\[()\[\]]|\$")
_LATEX_TIMES = re.compile(r"\\(?:times|cdot|ast)(?![A-Za-z])")
_LATEX_DIVIDE = re.compile(r"\\div(?![A-Za-z])")
_LATEX_FRACTION = re.compile(r"\\[dt]?frac(?![A-Za-z])")
_LATEX_THIN_SPACE_IN_NUMBER = re.compile(r"(?<=[0-9])\\,(?=[0-9]{3}(?![0-9]))")
_LATEX_SPACES = re.compile(r"\\[,;:! ]")

_WORD_OPERATORS = (
    (re.compile(r"\bmultiplied\s+by\b", re.IGNORECASE), " * "),
    (re.compile(r"\bdivided\s+by\b", re.IGNORECASE), " / "),
    (re.compile(r"\bto\s+the\s+power\s+of\b", re.IGNORECASE), " ^ "),
    (re.compile(r"\bplus\b", re.IGNORECASE), " + "),
    (re.compile(r"\bminus\b", re.IGNORECASE), " - "),
    (re.compile(r"\btimes\b", re.IGNORECASE), " * "),
)

_THOUSANDS = re.compile(r"(?<![0-9.,])[1-9][0-9]{0,2}(?:,[0-9]{3})+(?![0-9]|,[0-9])")


def _normalise_notation(text: str) -> str | None:
    text = text.translate(_UNICODE_OPERATORS)
    text = _SUPERSCRIPT_POWER.sub(lambda match: "^" + match.group().translate(_SUPERSCRIPT_DIGITS), text)
    text = _LATEX_SIZING.sub("", text)
    text = _LATEX_MATH_DELIMITERS.sub(" ", text)
    text = _LATEX_TIMES.sub("*", text)
    text = _LATEX_DIVIDE.sub("/", text)
    text = _rewrite_latex_fractions(text)
    if text is None:
        return None
    text = text.replace("{,}", ",")
    text = _LATEX_THIN_SPACE_IN_NUMBER.sub(",", text)
    text = _LATEX_SPACES.sub(" ", text)
    text = text.replace("{", "(").replace("}", ")")  # LaTeX groups, e.g. 2^{10}
    for pattern, operator in _WORD_OPERATORS:
        text = pattern.sub(operator, text)
    return _THOUSANDS.sub(lambda match: match.group().replace(",", ""), text)


def _rewrite_latex_fractions(text: str) -> str | None:
    r"""`\frac{a}{b}` (also `\dfrac`, `\tfrac`, `\frac12`) -> `((a)/(b))`, outermost first; None if malformed."""
    for _ in range(text.count("frac")):  # each pass removes one \frac, so this bounds the work
        match = _LATEX_FRACTION.search(text)
        if match is None:
            return text
        numerator, position = _latex_argument(text, match.end())
        if numerator is None:
            return None
        denominator, position = _latex_argument(text, position)
        if denominator is None:
            return None
        text = f"{text[: match.start()]}(({numerator})/({denominator})){text[position:]}"
    return None if _LATEX_FRACTION.search(text) else text


def _latex_argument(text: str, position: int) -> tuple[str | None, int]:
    """A braced group or a single character starting at `position` (after spaces), and the end position."""
    while position < len(text) and text[position] == " ":
        position += 1
    if position >= len(text):
        return None, position
    if text[position] != "{":
        if text[position] in "}\\":
            return None, position
        return text[position], position + 1
    depth = 0
    for index in range(position, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[position + 1 : index], index + 1
    return None, position


# --- deciding what the expression is -------------------------------------------

# Words and signs that mean the asked value is not the bare value of the expression.
_MEANING_CHANGERS = re.compile(
    r"\b(?:squared?|cubed?|cube|roots?|sqrt|remainders?|mod|modulo|modulus|percent|percentage|"
    r"round|rounded|rounding|nearest|binary|hexadecimal|octal|base|digits?|factorial|"
    r"log|ln|exp|sin|cos|tan|cot|sec|csc|primes?|gcd|lcm|absolute|abs|approximately|approx|"
    r"estimate|floor|ceiling|ceil|reciprocal|inverse|opposite|negative|half|double|twice|triple|"
    r"quotient|integer\s+part|mean|average|median|pi|sum\s+of\s+the|product\s+of\s+the|choose|binom)\b"
    r"|\b(?:import|lambda|def|return|print|eval|exec)\b"  # code, not a question
    r"|(?<![\\\w])[^\W\d]\w*\("  # a function call such as f(x) or sqrt(2); not \boxed{..}
    r"|[%|~\u221a\u221b\u2211\u220f\u03c0\u221e\u2248<>]"
    r"|[0-9)]\s*!",  # factorial
    re.IGNORECASE,
)
_NUMBER_GLUED_TO_LETTER = re.compile(r"[^\W\d][0-9]|[0-9][^\W\d]")  # letters and "_"
_ARITHMETIC_RUN = re.compile(r"[0-9.+\-*/()^ \t]+")
_ASCII_DIGIT = re.compile(r"[0-9]")
_ANY_DIGIT = re.compile(r"\d")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
# LaTeX commands that may follow an expression without changing it ("3 + 4 \quad").
_LATEX_LAYOUT_COMMANDS = frozenset({"\\boxed", "\\quad", "\\qquad"})
_VARIABLE_LIKE = re.compile(r"[^\W\d_]|\\[^\W\d_]+")
_GROUP_CLOSERS = frozenset(")]}_")


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink [start, end) past spaces, sentence dots and parentheses that belong to the prose around it."""
    opens = text.count("(", start, end)
    closes = text.count(")", start, end)
    while start < end:
        first, last = text[start], text[end - 1]
        if last in " \t.":  # a trailing dot ends the sentence ("4." is 4 anyway)
            end -= 1
        elif first in " \t" or (first == "." and not text[start + 1 : start + 2].isdigit()):
            start += 1
        elif last == "(" or (last == ")" and closes > opens):
            opens, closes = opens - (last == "("), closes - (last == ")")
            end -= 1
        elif first == ")" or (first == "(" and opens > closes):
            opens, closes = opens - (first == "("), closes - (first == ")")
            start += 1
        else:
            break
    return start, end


# A token is a word (optionally a LaTeX command) or a single other character.
_TOKEN_AT_END = re.compile(r"(\\?[^\W\d_]+|\S)\s*$")
_TOKEN_AT_START = re.compile(r"\s*(\\?[^\W\d_]+|\S)")


def _previous_token(text: str, end: int) -> str:
    match = _TOKEN_AT_END.search(text[max(0, end - 100) : end])
    return match.group(1) if match else ""


def _next_token(text: str, start: int) -> str:
    match = _TOKEN_AT_START.match(text[start : start + 100])
    return match.group(1) if match else ""


def _is_variable_like(token: str, closes_group: bool = True) -> bool:
    """A lone letter ("x"), a LaTeX command ("\\alpha") or, if `closes_group`, a ")" "]" "}" or "_"."""
    if token in _LATEX_LAYOUT_COMMANDS:
        return False
    return bool(_VARIABLE_LIKE.fullmatch(token) or (closes_group and token in _GROUP_CLOSERS))
