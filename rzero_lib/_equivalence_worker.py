"""Worker process for `rzero_lib.answers.EquivalenceChecker`.

Reads JSON lines `[index, a, b]` on stdin, answers `[index, bool]` on stdout.
The first line it writes is `["ready", null]`, after math-verify is imported.
It runs math-verify on the main thread of its own process, so the parent can
enforce a hard per-item deadline by stopping it. Parsed answers are cached:
parsing dominates math-verify's cost, and one answer meets many others.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import OrderedDict

PARSE_CACHE_SIZE = 20_000


def main() -> None:
    import math_verify  # noqa: F401  (pay the import before saying ready)

    from rzero_lib.answers import _math_verify_parse, _math_verify_parsed

    logging.disable(logging.WARNING)  # math-verify warns on every call that we disabled its signal timeouts
    cache: OrderedDict[str, object] = OrderedDict()

    def parsed(answer: str):
        if answer in cache:
            cache.move_to_end(answer)
            return cache[answer]
        value = _math_verify_parse(answer)
        cache[answer] = value
        if len(cache) > PARSE_CACHE_SIZE:
            cache.popitem(last=False)
        return value

    out = sys.stdout
    out.write(json.dumps(["ready", None]) + "\n")
    out.flush()
    for line in sys.stdin:
        index, a, b = json.loads(line)
        try:
            result = _math_verify_parsed(parsed(a), parsed(b))
        except Exception:  # math-verify raising is "not equivalent"
            result = False
        out.write(json.dumps([index, result]) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
