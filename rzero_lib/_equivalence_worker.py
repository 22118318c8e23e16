"""Worker process for `rzero_lib.answers.EquivalenceChecker`.

Reads JSON lines `[index, a, b]` on stdin, answers `[index, bool]` on stdout.
The first line it writes is `["ready", null]`, after math-verify is imported.
It runs math-verify on the main thread of its own process, so the parent can
enforce a hard per-item deadline by stopping it.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    import math_verify  # noqa: F401  (pay the import before saying ready)

    from rzero_lib.answers import _math_verify_pair

    out = sys.stdout
    out.write(json.dumps(["ready", None]) + "\n")
    out.flush()
    for line in sys.stdin:
        index, a, b = json.loads(line)
        try:
            result = _math_verify_pair(a, b)
        except Exception:  # math-verify raising is "not equivalent"
            result = False
        out.write(json.dumps([index, result]) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
