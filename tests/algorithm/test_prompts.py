"""The math prompts are the authors' strings, byte for byte, compared with a fixture of the source text."""

from __future__ import annotations

import hashlib
import json

import pytest

from rzero_lib import prompts
from rzero_lib.domains import get_domain
from tests.support import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "authors_prompts"
SOURCES = json.loads((FIXTURES / "sources.json").read_text())


@pytest.mark.parametrize("name, prompt", [
    ("challenger_system.txt", prompts.CHALLENGER_SYSTEM_PAPER),
    ("challenger_user.txt", prompts.CHALLENGER_USER_PAPER),
    ("solver_system.txt", prompts.SOLVER_SYSTEM_PAPER),
])
def test_prompt_equals_the_source_text(name, prompt):
    data = (FIXTURES / name).read_bytes()
    recorded = SOURCES["files"][name]
    assert hashlib.sha256(data).hexdigest() == recorded["sha256"], "the fixture is the recorded source text"
    assert prompt == data.decode("utf-8")
    assert len(prompt) == recorded["characters"]


def test_the_math_domain_uses_them():
    math = get_domain("math")
    assert (math.challenger.system, math.challenger.user) == (prompts.CHALLENGER_SYSTEM_PAPER,
                                                              prompts.CHALLENGER_USER_PAPER)
    assert (math.solver.system, math.solver.user) == (prompts.SOLVER_SYSTEM_PAPER, "{question}")
    assert SOURCES["commit"].startswith("5699329")
