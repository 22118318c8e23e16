"""Oracles: trusted reference answers used to measure pseudo-label accuracy.

What it does
- `Oracle`: the interface every oracle implements, `answer(question)` ->
  reference answer string or None ("I cannot answer this one"), plus a default
  `answer_many` that batched oracles may override.
- `arithmetic_answer(question_text)`: the exact answer of a question that
  states an arithmetic computation ("What is 47 + 38?", "Compute (12 - 5) * 3.",
  "$3 \\times 4$", "\\frac{1}{2} + 3", "17 * 6 - 25 = ?"), as "19", "-3" or a
  reduced fraction "7/2"; None when the question is not such a computation.
  `ArithmeticOracle` wraps it.
- `extract_expression(question_text)`: the plain ASCII expression the oracle
  would evaluate (for inspection and debugging).
- `coverage(answers)`: the share of questions an oracle could answer.

How a question becomes an expression
1. Bound the input (at most 2,000 characters, no control characters).
2. Normalise notation: unicode operators and minus signs, superscript powers,
   LaTeX (`$`, `\\(`, `\\times`, `\\cdot`, `\\div`, `\\frac{a}{b}`, `^{..}`,
   `\\left(`), words ("plus", "minus", "times", "multiplied by", "divided by",
   "to the power of") and thousands separators ("1,234,567"; a comma group is
   only read as thousands when every group after the first has exactly three
   digits and the first does not start with 0).
3. Refuse questions whose meaning is not the bare value: words such as
   "remainder", "round", "digits", "squared", "sqrt", "percent", "mod", and
   the characters % | ! (factorial) and the like.
4. All digits of the question must sit in one run of arithmetic characters
   (digits . + - * / ^ ( ) and spaces) holding at least two numbers; that run is
   the expression. A number glued to a letter ("3x", "1e5", "x_2") refuses the
   question, and so does an expression that starts with a sign or "(" right
   after a lone letter or a closed group ("x - 5", "f(x) - 5", "x (3 + 4)") or
   is followed by a lone letter ("3 + 4 y").
5. `rzero_lib.arithmetic.evaluate_expression`, the project's one safe exact
   evaluator, computes it (ast whitelist, exact fractions, size bounds; never
   eval/exec).

Simplifications
- Conservative by design: a wrong reference answer is worse than none. Any
  other number in the question ("Problem 1: ...", "round to 2 places", "2 + 2
  = 5") makes it not evaluable, as do several expressions, words between
  numbers ("3 apples and 4 pears") and story problems, including the word
  problems of `arithmetic.generate_problems(style="word")`.
- No implicit multiplication ("2(3+4)", "3 x 4"), no % or mod, no roots or
  functions, integer exponents only.

Model- and API-backed oracles
- `ModelOracle`: a (stronger) model spec run through the generation backend
  (`rzero_lib.generation.make_generator`, the run's engine settings) with a
  Solver-style prompt; greedy when `samples == 1`, otherwise the majority of
  k samples (`rzero_lib.voting.majority_vote_many`, math equivalence) at
  `MODEL_ORACLE_TEMPERATURE` / `MODEL_ORACLE_TOP_P`. The model loads lazily on
  the first question, so a fully cached analysis never loads it.
- `OpenAIOracle`: any OpenAI-compatible chat endpoint (a local vLLM server of a
  larger model, or a hosted model as the paper used GPT-4o), through
  `rzero_lib.openai_client.chat_completion`; the key comes from the
  environment variable named by `api_key_env`, never from a file. The prompt
  asks for the final answer in `\\boxed{}` and the last box is the answer; a
  reply without a box is "cannot answer" (None). Requests run on a few
  threads; an unreachable endpoint raises `EndpointError` (answers already
  obtained are kept by the cache).
- `make_oracle(params, oracle_params)`: the oracle a run's parameters ask for.
  `kind: none` means the domain's default: `arithmetic` -> `ArithmeticOracle`;
  the `math` domain has no exact oracle, so `make_oracle` raises
  `NoOracleError` (a `ValueError` that says how to configure one). The
  analysis catches it and reports "no oracle configured"; the
  `solver_training.label_source: oracle` ablation fails early with the message.
- `cached_oracle_answers(oracle, questions, cache_path)`: answers through a
  Parquet cache (`report/oracle.parquet` in a run: question, oracle_kind,
  oracle_key, oracle_answer, created_at). Rows are keyed by (question,
  `oracle.cache_key`), so changing the oracle model never reuses another
  oracle's answers; "cannot answer" (None) is cached too. Missing questions
  are asked in chunks and the table is rewritten atomically after every
  chunk, so an interruption loses at most one chunk and a re-run never asks
  twice.

This module imports neither torch nor transformers (the model oracle loads
them through the generation backend only when it first generates).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import ClassVar

from rzero_lib.arithmetic import evaluate_expression, format_answer

__all__ = [
    "MAX_QUESTION_CHARS",
    "ArithmeticOracle",
    "ModelOracle",
    "NoOracleError",
    "OpenAIOracle",
    "Oracle",
    "arithmetic_answer",
    "cached_oracle_answers",
    "coverage",
    "evaluate_expression",
    "extract_expression",
    "format_answer",
    "make_oracle",
]

# ----------------------------------------------------------------------------
# Interface
# ----------------------------------------------------------------------------


class Oracle(ABC):
    """A source of trusted reference answers. `answer` returns None when it cannot answer."""

    name: ClassVar[str] = "oracle"
    exact: ClassVar[bool] = False  # True when the answers are exact by construction (no model involved)

    @abstractmethod
    def answer(self, question: str) -> str | None:
        """The reference answer to one question, or None."""

    def answer_many(self, questions: Iterable[str]) -> list[str | None]:
        """Reference answers in the order of `questions`; oracles that batch override this."""
        return [self.answer(question) for question in questions]

    @property
    def cache_key(self) -> str:
        """What identifies this oracle's answers in a cache (kind plus model and settings)."""
        return self.name

    def describe(self) -> str:
        """One line for reports and figure captions."""
        return self.cache_key

    def close(self) -> None:
        """Release what the oracle holds (a loaded model); it reloads on the next question."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def coverage(answers: Sequence[str | None]) -> float:
    """Share of answers that are not None (0.0 for no answers)."""
    return sum(answer is not None for answer in answers) / len(answers) if answers else 0.0


# ----------------------------------------------------------------------------
# Exact arithmetic oracle
# ----------------------------------------------------------------------------

MAX_QUESTION_CHARS = 2_000


class ArithmeticOracle(Oracle):
    """Exact answers for questions that state an arithmetic computation; None for everything else."""

    name: ClassVar[str] = "arithmetic"
    exact: ClassVar[bool] = True

    def answer(self, question: str) -> str | None:
        return arithmetic_answer(question)


def arithmetic_answer(question_text: str) -> str | None:
    """Exact value of the computation a question states ("7/2", "-3", "19"), or None if not evaluable."""
    expression = extract_expression(question_text)
    if expression is None:
        return None
    value = evaluate_expression(expression)
    return None if value is None else format_answer(value)


def extract_expression(question_text: str) -> str | None:
    """The plain ASCII arithmetic expression a question states, or None (see the module docstring)."""
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


# ----------------------------------------------------------------------------
# Model- and endpoint-backed oracles
# ----------------------------------------------------------------------------

MODEL_ORACLE_TEMPERATURE = 0.6  # sampling settings for the majority of k > 1 samples
MODEL_ORACLE_TOP_P = 0.95
ORACLE_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."


class NoOracleError(ValueError):
    """No oracle is configured and the run's domain has no default one."""


def _prompt_digest(prompt) -> str:
    import hashlib
    import json

    text = json.dumps([prompt.system, prompt.user, [list(d) for d in prompt.demonstrations]])
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _default_prompt():
    from rzero_lib.prompts import PromptSpec

    return PromptSpec(ORACLE_SYSTEM_PROMPT, "{question}")


def _final_answers(groups: list[list[str | None]], timeout_s: float | None) -> list[str | None]:
    """One answer per question: the only sample's, or the majority of several (ties: first seen)."""
    from rzero_lib.voting import majority_vote_many

    if all(len(g) == 1 for g in groups):
        return [g[0] for g in groups]
    return [vote.answer for vote in majority_vote_many(groups, timeout_s=timeout_s)]


class ModelOracle(Oracle):
    """A (stronger) model answering with a Solver-style prompt: greedy, or the majority of k samples.

    `generator_factory(spec)` builds the generator (default: `make_generator(spec)`;
    `make_oracle` passes one with the run's engine settings). The model loads on
    the first question and stays loaded until `close()`.
    """

    name: ClassVar[str] = "model"

    def __init__(self, spec: str, *, prompt=None, samples: int = 1, max_new_tokens: int = 1024,
                 temperature: float = MODEL_ORACLE_TEMPERATURE, top_p: float = MODEL_ORACLE_TOP_P, seed: int = 0,
                 generator_factory=None, equivalence_timeout_s: float | None = None) -> None:
        if not spec:
            raise ValueError("ModelOracle needs a model spec (analysis.oracle.model)")
        if samples < 1:
            raise ValueError(f"ModelOracle samples must be >= 1, got {samples}")
        self.spec = spec
        self.prompt = prompt or _default_prompt()
        self.samples = samples
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.seed = seed
        self.equivalence_timeout_s = equivalence_timeout_s
        self._factory = generator_factory
        self._generator = None
        self.generate_calls = 0  # how often the model was asked (tests, reports)

    @property
    def cache_key(self) -> str:
        decoding = "greedy" if self.samples == 1 else f"T={self.temperature:g},top_p={self.top_p:g}"
        return (f"model:{self.spec}|k={self.samples}|{decoding}|max_new_tokens={self.max_new_tokens}"
                f"|prompt={_prompt_digest(self.prompt)}")

    def _get_generator(self):
        if self._generator is None:
            if self._factory is not None:
                self._generator = self._factory(self.spec)
            else:
                from rzero_lib.generation import make_generator

                self._generator = make_generator(self.spec)
        return self._generator

    def answer(self, question: str) -> str | None:
        return self.answer_many([question])[0]

    def answer_many(self, questions: Iterable[str]) -> list[str | None]:
        from rzero_lib.answers import extract_boxed
        from rzero_lib.generation import SamplingConfig
        from rzero_lib.prompts import solver_messages

        questions = list(questions)
        if not questions:
            return []
        greedy = self.samples == 1
        sampling = SamplingConfig(n=self.samples, temperature=0.0 if greedy else self.temperature,
                                  top_p=1.0 if greedy else self.top_p, max_new_tokens=self.max_new_tokens,
                                  seed=self.seed)
        generator = self._get_generator()
        self.generate_calls += 1
        outputs = generator.generate([solver_messages(self.prompt, q) for q in questions], sampling,
                                     progress=f"oracle ({self.spec}) answering")
        return _final_answers([[extract_boxed(t) for t in group] for group in outputs], self.equivalence_timeout_s)

    def close(self) -> None:
        if self._generator is not None:
            self._generator.close()
            self._generator = None


class OpenAIOracle(Oracle):
    """Any OpenAI-compatible chat endpoint; the last `\\boxed{}` of the reply is the answer.

    `samples == 1`: one reply at temperature 0; otherwise `n=samples` replies at
    `temperature` and their majority. Questions are sent on `max_workers` threads.
    """

    name: ClassVar[str] = "openai"

    def __init__(self, base_url: str, model: str, *, api_key_env: str = "OPENAI_API_KEY", prompt=None,
                 samples: int = 1, max_tokens: int = 1024, temperature: float = MODEL_ORACLE_TEMPERATURE,
                 max_workers: int = 8, timeout_s: float = 120.0, equivalence_timeout_s: float | None = None) -> None:
        if not base_url or not model:
            raise ValueError("OpenAIOracle needs base_url and model (analysis.oracle.base_url, analysis.oracle.model),"
                             " e.g. base_url: http://127.0.0.1:8000/v1, model: Qwen/Qwen3-32B")
        if samples < 1:
            raise ValueError(f"OpenAIOracle samples must be >= 1, got {samples}")
        self.base_url = base_url
        self.model = model
        self.api_key_env = api_key_env
        self.prompt = prompt or _default_prompt()
        self.samples = samples
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_workers = max(1, max_workers)
        self.timeout_s = timeout_s
        self.equivalence_timeout_s = equivalence_timeout_s
        self.requests = 0  # chat-completion requests sent (tests, reports)

    @property
    def cache_key(self) -> str:
        decoding = "greedy" if self.samples == 1 else f"T={self.temperature:g}"
        return (f"openai:{self.model}@{self.base_url}|k={self.samples}|{decoding}|max_tokens={self.max_tokens}"
                f"|prompt={_prompt_digest(self.prompt)}")

    def _ask(self, question: str) -> list[str]:
        from rzero_lib.openai_client import chat_completion
        from rzero_lib.prompts import solver_messages

        self.requests += 1
        replies = chat_completion(self.base_url, self.model, self.api_key_env, solver_messages(self.prompt, question),
                                  max_tokens=self.max_tokens, temperature=0.0 if self.samples == 1 else self.temperature,
                                  n=self.samples, timeout_s=self.timeout_s)
        return [replies] if isinstance(replies, str) else list(replies)

    def answer(self, question: str) -> str | None:
        return self.answer_many([question])[0]

    def answer_many(self, questions: Iterable[str]) -> list[str | None]:
        from concurrent.futures import ThreadPoolExecutor

        from rzero_lib.answers import extract_boxed

        questions = list(questions)
        if not questions:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(questions))) as pool:
            replies = list(pool.map(self._ask, questions))
        return _final_answers([[extract_boxed(t) for t in group] for group in replies], self.equivalence_timeout_s)


def make_oracle(params, oracle_params=None, *, generator_factory=None) -> Oracle:
    """The oracle a run's parameters ask for (`oracle_params` defaults to `params.analysis.oracle`).

    `kind: none` takes the domain's default oracle; the `math` domain has none and
    this raises `NoOracleError`. A `model` oracle uses the run's Solver prompt and
    engine settings (`generator_factory(spec)` overrides how its generator is built).
    """
    from rzero_lib.domains import get_domain, resolve_prompts

    op = oracle_params if oracle_params is not None else params.analysis.oracle
    kind = op.kind
    if kind == "none":
        kind = get_domain(params.domain).default_oracle
        if kind == "none":
            raise NoOracleError(
                f"no oracle is configured and the '{params.domain}' domain has no exact one: set "
                "analysis.oracle.kind to 'model' (a stronger model: analysis.oracle.model) or 'openai' "
                "(analysis.oracle.base_url and analysis.oracle.model; the key from analysis.oracle.api_key_env)")
    timeout = params.voting.equivalence_timeout_s
    if kind == "arithmetic":
        return ArithmeticOracle()
    if kind == "model":
        if not op.model:
            raise ValueError("analysis.oracle.kind is 'model' but analysis.oracle.model is not set "
                             "(a model spec: hub id, local folder or builtin:...)")
        if generator_factory is None:
            from types import SimpleNamespace

            from rzero_lib.stages import _generator

            def generator_factory(spec: str):
                return _generator(SimpleNamespace(params=params), spec)

        _, solver_prompt = resolve_prompts(params)
        return ModelOracle(op.model, prompt=solver_prompt, samples=op.samples, max_new_tokens=op.max_new_tokens,
                           seed=params.seed, generator_factory=generator_factory, equivalence_timeout_s=timeout)
    if kind == "openai":
        if not op.base_url or not op.model:
            raise ValueError("analysis.oracle.kind is 'openai' but analysis.oracle.base_url and/or "
                             "analysis.oracle.model are not set (e.g. http://127.0.0.1:8000/v1 and Qwen/Qwen3-32B)")
        return OpenAIOracle(op.base_url, op.model, api_key_env=op.api_key_env, samples=op.samples,
                            max_tokens=op.max_new_tokens, equivalence_timeout_s=timeout)
    raise ValueError(f"analysis.oracle.kind must be one of none, arithmetic, model, openai; got {kind!r}")


# ----------------------------------------------------------------------------
# Cache
# ----------------------------------------------------------------------------

ORACLE_CACHE_FILE = "oracle.parquet"
ORACLE_CACHE_COLUMNS = ["question", "oracle_kind", "oracle_key", "oracle_answer", "created_at"]


def read_oracle_cache(cache_path):
    """The cache table (empty with the right columns when the file does not exist)."""
    from pathlib import Path

    import pandas as pd

    path = Path(cache_path)
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ORACLE_CACHE_COLUMNS})
    table = pd.read_parquet(path)
    missing = [c for c in ("question", "oracle_key", "oracle_answer") if c not in table.columns]
    if missing:
        raise ValueError(f"{path} is not an oracle cache (missing columns {missing}); delete it to rebuild")
    return table


def _clean_answer(value) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return str(value)


def cached_oracle_answers(oracle: Oracle, questions: Sequence[str | None], cache_path, *,
                          chunk_size: int = 64) -> list[str | None]:
    """`oracle`'s answers to `questions` (in order), asking only for those not in the cache.

    The cache is a Parquet table rewritten atomically after every chunk of
    `chunk_size` new questions. A None question gets None without asking.
    """
    import time

    import pandas as pd

    from rzero_lib.rundir import write_parquet_atomic

    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    table = read_oracle_cache(cache_path)
    key = oracle.cache_key
    mine = table[table["oracle_key"] == key]
    known: dict[str, str | None] = {str(q): _clean_answer(a) for q, a in zip(mine["question"], mine["oracle_answer"])}
    wanted = [None if q is None or (isinstance(q, float) and q != q) else str(q) for q in questions]
    missing = [q for q in dict.fromkeys(wanted) if q is not None and q not in known]
    for start in range(0, len(missing), chunk_size):
        chunk = missing[start:start + chunk_size]
        answers = [_clean_answer(a) for a in oracle.answer_many(chunk)]
        if len(answers) != len(chunk):
            raise RuntimeError(f"oracle {key} returned {len(answers)} answers for {len(chunk)} questions")
        rows = pd.DataFrame({"question": chunk, "oracle_kind": oracle.name, "oracle_key": key,
                             "oracle_answer": pd.Series(answers, dtype=object),
                             "created_at": time.strftime("%Y-%m-%dT%H:%M:%S")}, columns=ORACLE_CACHE_COLUMNS)
        table = rows if table.empty else pd.concat([table, rows], ignore_index=True)
        write_parquet_atomic(table, cache_path)
        known.update(zip(chunk, answers))
    return [None if q is None else known[q] for q in wanted]
