"""Answer extraction and math equivalence.

`extract_boxed` takes the last complete `\\boxed{...}` of a model's output,
`parse_challenger_output` the last `<question>...</question>` and the boxed
answer after it, and `equivalent` decides math equivalence: a cheap normalised
string / exact-rational fast path answers most pairs, the rest go to
math-verify in worker processes (`rzero_lib.math_verify_worker`) with a per-item
timeout, because math-verify can hang and its own timeout only works on a main
thread; a timeout counts as "not equivalent" and is counted. Symmetry comes
from ordering each pair. Model output is untrusted: it is bounded in length and
only parsed, never executed. Details: docs/algorithm.md, "Answers".
"""

from __future__ import annotations

import atexit
import json
import os
import re
import subprocess
import sys
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing.connection import wait as wait_connections

from rzero_lib.processes import tied_child_env

# Bounds for untrusted text. A completion longer than this is cut from the
# front (the answer is at the end); an answer longer than this is no answer.
MAX_TEXT_CHARS = 32_000
MAX_ANSWER_CHARS = 1_000
MAX_QUESTION_CHARS = 4_000

DEFAULT_TIMEOUT_S = 5.0

def _bounded(text: str | None) -> str:
    if not text:
        return ""
    text = str(text)
    return text[-MAX_TEXT_CHARS:] if len(text) > MAX_TEXT_CHARS else text


_BOX_RE = re.compile(r"\\(?:boxed|fbox)")
_BARE_BOX_RE = re.compile(r" +([^\s$]+)")


def _closing_braces(text: str) -> dict[int, int]:
    """Position of each `{` -> position of its matching `}`, in one left-to-right pass.

    `\\{`, `\\}` and `\\\\` are text, not structure (a backslash escapes the next
    character). A box's content starts right after a letter, never inside an
    escape, so this one pass agrees with scanning from any box.
    """
    closing: dict[int, int] = {}
    stack: list[int] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            closing[stack.pop()] = i
        i += 1
    return closing


def extract_boxed(text: str | None) -> str | None:
    """The last complete `\\boxed{...}` / `\\fbox{...}` / `\\boxed x` content, or None.

    Braces are balanced (nested braces are kept); an unclosed box (a truncated
    generation) is skipped in favour of the previous complete one. Empty boxes
    and contents over `MAX_ANSWER_CHARS` count as no answer. Linear in the
    length of the text (one pass for the braces, one for the box commands), so
    degenerate generations such as a thousand unclosed boxes cost milliseconds.
    """
    text = _bounded(text)
    starts = [m.end() for m in _BOX_RE.finditer(text)]
    if not starts:
        return None
    closing = _closing_braces(text)
    for start in reversed(starts):
        content = None
        if start < len(text) and text[start] == "{":
            end = closing.get(start)
            if end is not None:
                content = text[start + 1 : end]
        elif start < len(text) and text[start] == " ":
            # `\\boxed 5`: one token up to whitespace or the end of the math span.
            m = _BARE_BOX_RE.match(text, start)
            content = m.group(1) if m else None
        if content is not None:
            content = content.strip()
            if not content or len(content) > MAX_ANSWER_CHARS:
                return None
            return content
    return None


@dataclass(frozen=True)
class ChallengerParse:
    """Result of parsing one Challenger completion."""

    question: str | None
    answer: str | None  # the Challenger's own boxed answer (recorded, never a label)
    failure: str | None  # None when parsed; else a short reason

    @property
    def ok(self) -> bool:
        return self.failure is None


_OPEN_TAG_RE = re.compile(r"<question>", re.IGNORECASE)
_CLOSE_TAG_RE = re.compile(r"</question>", re.IGNORECASE)


def _last_question_block(text: str) -> tuple[str, int] | None:
    """(content, end) of the last `<question>...</question>` block, or None.

    The blocks are those a lazy `<question>(.*?)</question>` scan would find
    (each open tag is closed by the first close tag after it), found in linear
    time: a text of a thousand unclosed open tags must not cost a rescan each.
    """
    opens = [m.end() for m in _OPEN_TAG_RE.finditer(text)]
    closes = [(m.start(), m.end()) for m in _CLOSE_TAG_RE.finditer(text)]
    last = None
    o = c = 0
    while o < len(opens):
        while c < len(closes) and closes[c][0] < opens[o]:
            c += 1
        if c == len(closes):
            break
        last = (text[opens[o] : closes[c][0]], closes[c][1])
        end = closes[c][1]
        while o < len(opens) and opens[o] - len("<question>") < end:
            o += 1
    return last


def parse_challenger_output(text: str | None, question_form: Callable[[str], bool] | None = None) -> ChallengerParse:
    """Parse the last `<question>...</question>` block and the boxed answer after it.

    Failure reasons: `empty_output`, `no_question_tag`, `empty_question`,
    `question_too_long`, and `off_form` when the domain's `question_form` check
    (e.g. the sandbox's `c + a * b = ?`) rejects the question.
    """
    text = _bounded(text)
    if not text.strip():
        return ChallengerParse(None, None, "empty_output")
    block = _last_question_block(text)
    if block is None:
        return ChallengerParse(None, extract_boxed(text), "no_question_tag")
    question, end = block
    question = question.strip()
    answer = extract_boxed(text[end:])
    if not question:
        return ChallengerParse(None, answer, "empty_question")
    if len(question) > MAX_QUESTION_CHARS:
        return ChallengerParse(None, answer, "question_too_long")
    if question_form is not None and not question_form(question):
        return ChallengerParse(None, answer, "off_form")
    return ChallengerParse(question, answer, None)


_SPACING_RE = re.compile(r"\\[,;:! ]|\\left|\\right|\\displaystyle|\s+")
_INT_RE = re.compile(r"^[+-]?\d+$")


def normalize_answer(answer: str | None) -> str:
    """A cheap canonical string: same string => same answer (not the converse)."""
    if answer is None:
        return ""
    s = str(answer).strip()
    s = s.rstrip(".").strip("$")
    s = _SPACING_RE.sub("", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = s.rstrip(".")
    if s.startswith("{") and s.endswith("}") and _balanced(s[1:-1]):
        s = s[1:-1]
    if len(s) <= MAX_ANSWER_CHARS and _INT_RE.match(s):
        s = str(int(s))  # "+007" -> "7" (bounded: Python refuses int() of over 4300 digits)
    return s


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += ch == "{"
        depth -= ch == "}"
        if depth < 0:
            return False
    return depth == 0


_RATIONAL_RE = re.compile(r"^(-?)(?:(\d+(?:\.\d+)?)|(\d+)/(\d+)|\\frac\{(\d+)\}\{(\d+)\})$")


def _as_rational(s: str) -> Fraction | None:
    """Exact value of `12`, `-0.5`, `3/4`, `\\frac{3}{4}`; None for anything else."""
    m = _RATIONAL_RE.match(s)
    if not m:
        return None
    sign, dec, num, den, fnum, fden = m.groups()
    if dec is not None:
        value = Fraction(dec)
    else:
        n, d = (num, den) if num is not None else (fnum, fden)
        if int(d) == 0:
            return None
        value = Fraction(int(n), int(d))
    return -value if sign else value


def fast_equivalence(a: str | None, b: str | None) -> bool | None:
    """Decide equivalence without math-verify when that is safe; None when it is not.

    Equal normalised strings, and equal exact rationals (integers, decimals,
    `p/q`, `\\frac{p}{q}`), are equivalent. Two unequal exact rationals are
    not, unless a decimal is involved and they are within 1e-4 (relative) of
    each other: math-verify compares decimals after rounding, so those go to
    it, as does everything else.
    """
    if a is None or b is None:
        return False
    na, nb = normalize_answer(a), normalize_answer(b)
    if not na or not nb:
        return False
    if na == nb:
        return True
    if len(na) > MAX_ANSWER_CHARS or len(nb) > MAX_ANSWER_CHARS:
        return False  # too long for math-verify: only an exact match (above) makes them equal
    ra, rb = _as_rational(na), _as_rational(nb)
    if ra is not None and rb is not None:
        if ra == rb:
            return True
        if "." not in na and "." not in nb:
            return False
        # math-verify compares decimals after rounding (6 places): only values
        # this close need it; farther apart they differ under any rounding.
        if abs(ra - rb) > Fraction(1, 10_000) * max(1, abs(ra), abs(rb)):
            return False
    return None


# --------------------------------------------------------------------------
# math-verify in worker processes
# --------------------------------------------------------------------------

WORKER_MODULE = "rzero_lib.math_verify_worker"


class _Worker:
    """One `python -m rzero_lib.math_verify_worker` child speaking JSON lines.

    A plain subprocess rather than multiprocessing: it never re-imports the
    caller's `__main__` (a notebook, stdin, a pytest run) and is stopped by its
    own handle. Items are sent in chunks (one pipe write per chunk) and answered
    one line each, so the per-item cost is math-verify's, not the pipe's.
    """

    def __init__(self) -> None:
        env = tied_child_env(dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
        )
        self._buffer = b""
        self.ready = False
        self.chunk: list[int] = []  # item indices sent and not yet answered, in order
        self.deadline = 0.0  # for the item at the head of `chunk`

    def fileno(self) -> int:
        return self.proc.stdout.fileno()

    def send(self, items: list[tuple[int, str, str]], deadline: float) -> None:
        self.chunk = [i for i, _, _ in items]
        self.deadline = deadline
        payload = "".join(json.dumps([i, a, b]) + "\n" for i, a, b in items)
        self.proc.stdin.write(payload.encode())
        self.proc.stdin.flush()

    def receive(self) -> list:
        """Every complete message available now (never blocks after `wait` said readable)."""
        data = os.read(self.fileno(), 1 << 16)
        if not data:
            raise EOFError("equivalence worker exited")
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass


@dataclass
class EquivalenceStats:
    calls: int = 0
    fast_path: int = 0
    cache_hits: int = 0
    math_verify: int = 0
    timeouts: int = 0


class EquivalenceChecker:
    """Math equivalence with a fast path, a cache and a pool of math-verify workers."""

    MAX_FAILED_STARTS = 3

    def __init__(self, num_workers: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                 cache_size: int = 200_000) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.num_workers = num_workers or max(1, min(4, os.cpu_count() or 1))
        self.timeout_s = timeout_s
        self.stats = EquivalenceStats()
        self._cache: OrderedDict[tuple[str, str], bool] = OrderedDict()
        self._cache_size = cache_size
        self._workers: list[_Worker] = []
        self._failed_starts = 0
        self._timed_out: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    # -- public ---------------------------------------------------------
    def equivalent(self, a: str | None, b: str | None, timeout_s: float | None = None) -> bool:
        return self.equivalent_many([(a, b)], timeout_s=timeout_s)[0]

    def equivalent_many(self, pairs, timeout_s: float | None = None) -> list[bool]:
        """Equivalence of many pairs; the pairs that need math-verify run in parallel."""
        timeout_s = self.timeout_s if timeout_s is None else float(timeout_s)
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        results: list[bool | None] = []
        pending: dict[tuple[str, str], list[int]] = {}
        for i, (a, b) in enumerate(pairs):
            self.stats.calls += 1
            fast = fast_equivalence(a, b)
            if fast is not None:
                self.stats.fast_path += 1
                results.append(fast)
                continue
            key = self._key(a, b)
            cached = self._cache.get(key)
            if cached is not None:
                self.stats.cache_hits += 1
                results.append(cached)
                continue
            results.append(None)
            pending.setdefault(key, []).append(i)
        if pending:
            keys = list(pending)
            with self._lock:
                verdicts = self._run(keys, timeout_s)
            for key, verdict in zip(keys, verdicts):
                self._remember(key, verdict)
                for i in pending[key]:
                    results[i] = verdict
        return [bool(r) for r in results]

    def timed_out(self, a: str | None, b: str | None) -> bool:
        """Whether math-verify ran out of time on this pair (its verdict was "not equivalent")."""
        return a is not None and b is not None and self._key(a, b) in self._timed_out

    def close(self) -> None:
        with self._lock:
            for w in self._workers:
                w.stop()
            self._workers = []

    # -- internals --------------------------------------------------------
    @staticmethod
    def _key(a: str, b: str) -> tuple[str, str]:
        a = str(a).strip()
        b = str(b).strip()
        return (a, b) if a <= b else (b, a)

    def _remember(self, key, verdict: bool) -> None:
        self._cache[key] = verdict
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    CHUNK = 16  # items per pipe write

    def _run(self, keys: list[tuple[str, str]], timeout_s: float) -> list[bool]:
        self.stats.math_verify += len(keys)
        while len(self._workers) < min(self.num_workers, len(keys)):
            self._workers.append(_Worker())
        verdicts: list[bool | None] = [None] * len(keys)
        # Pairs that share their first answer go to the same worker, whose
        # parse cache then parses that answer once; idle workers steal the rest.
        n = len(self._workers)
        queues: list[list[int]] = [[] for _ in range(n)]
        for i in range(len(keys) - 1, -1, -1):  # stacks: pop() gives the lowest index
            queues[zlib.crc32(keys[i][0].encode()) % n].append(i)
        remaining = len(keys)
        chunk = max(1, min(self.CHUNK, len(keys) // (2 * n) or 1))
        while remaining:
            now = time.monotonic()
            for wi, w in enumerate(self._workers):
                if w.ready and not w.chunk:
                    queue = queues[wi] or max(queues, key=len)
                    if queue:
                        items = [queue.pop() for _ in range(min(chunk, len(queue)))]
                        w.send([(i, *keys[i]) for i in items], now + timeout_s)
            deadlines = [w.deadline for w in self._workers if w.chunk]
            wait_s = max(0.0, min(deadlines) - now) if deadlines else 120.0
            ready = wait_connections(self._workers, timeout=wait_s)
            for idx, w in enumerate(list(self._workers)):
                if w not in ready:
                    continue
                try:
                    messages = w.receive()
                except (EOFError, OSError, ValueError):  # died: its current item is "not equivalent"
                    if not w.ready:
                        self._failed_starts += 1
                        if self._failed_starts >= self.MAX_FAILED_STARTS:
                            raise RuntimeError(
                                "math-verify worker processes fail to start; check that "
                                f"`{sys.executable} -m {WORKER_MODULE}` runs"
                            ) from None
                    remaining -= self._fail_and_replace(idx, verdicts, queues[idx], timed_out=False)
                    continue
                for tag, value in messages:
                    if tag == "ready":
                        w.ready = True
                        self._failed_starts = 0
                    elif w.chunk and w.chunk[0] == tag:
                        verdicts[tag] = bool(value)
                        w.chunk.pop(0)
                        w.deadline = time.monotonic() + timeout_s  # the next item's clock starts now
                        remaining -= 1
            now = time.monotonic()
            for idx, w in enumerate(list(self._workers)):
                if w.chunk and now >= w.deadline:
                    self._timed_out.add(keys[w.chunk[0]])
                    remaining -= self._fail_and_replace(idx, verdicts, queues[idx], timed_out=True)
        return [bool(v) for v in verdicts]

    def _fail_and_replace(self, idx: int, verdicts, todo: list[int], timed_out: bool) -> int:
        """Stop worker `idx` (our own child): its current item is False, the rest of
        its chunk goes back on the queue, and a fresh worker takes its place."""
        w = self._workers[idx]
        failed = 0
        if w.chunk:
            head, *rest = w.chunk
            verdicts[head] = False
            failed = 1
            self.stats.timeouts += int(timed_out)
            todo.extend(reversed(rest))
        w.chunk = []
        w.stop()
        self._workers[idx] = _Worker()
        return failed


_DEFAULT_CHECKER: EquivalenceChecker | None = None


def default_checker() -> EquivalenceChecker:
    """The process-wide checker used by `equivalent` (workers start lazily)."""
    global _DEFAULT_CHECKER
    if _DEFAULT_CHECKER is None:
        _DEFAULT_CHECKER = EquivalenceChecker()
        atexit.register(_DEFAULT_CHECKER.close)
    return _DEFAULT_CHECKER


def equivalent(a: str | None, b: str | None, timeout_s: float | None = None) -> bool:
    """True when two answers are mathematically equivalent (symmetric).

    Normalised-string equality answers most pairs instantly; otherwise
    math-verify decides, in a worker process, within `timeout_s` (default 5 s).
    A timeout or a math-verify error counts as not equivalent; see
    `default_checker().stats.timeouts`.
    """
    return default_checker().equivalent(a, b, timeout_s=timeout_s)


def equivalent_many(pairs, timeout_s: float | None = None) -> list[bool]:
    """`equivalent` for many pairs at once (the slow ones in parallel)."""
    return default_checker().equivalent_many(pairs, timeout_s=timeout_s)
