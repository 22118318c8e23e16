"""Benchmark tasks (rzero_lib.evaluation): loaders, gold extraction and response scoring.

The offline-file tests read the evaluation sets from `$RZERO_BENCHMARKS_DIR`
or `<repo>/../shared/benchmarks` and are skipped (with the reason) when
neither exists. The hub-only sets are tested on a few hand-written rows in the
hub datasets' schema under tests/fixtures/hub_benchmarks/ (as `<name>.hub.jsonl`).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from rzero_lib.evaluation import answer_forms
from rzero_lib.evaluation.registry import (
    BENCHMARKS,
    GENERAL_BENCHMARKS,
    MATH_BENCHMARKS,
    OFFLINE_BENCHMARKS,
    load_benchmark,
)
from rzero_lib.evaluation.scoring import extract_answer, gold_response, score_response, score_responses
from rzero_lib.evaluation.tasks import ANSWER_TYPES, ENV_DATA_DIR, BenchmarkItem, subsample
from tests.support import REPO_ROOT

HUB_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hub_benchmarks"
EXPECTED_ROWS = {  # offline copies (README of the benchmarks folder; aime25 has 30 lines)
    "gsm8k": 1319, "math500": 500, "aime24": 30, "aime25": 30, "amc23": 40,
    "minerva_math": 272, "olympiadbench": 675, "gpqa_diamond": 198, "mmlu_stem": 3018,
}


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture
def hub_dir(tmp_path_factory):
    """The hand-written hub-schema rows under the file names the loader looks for (`<name>.jsonl`).

    They are stored as `<name>.hub.jsonl` so that nothing in the repository looks like a copy of a benchmark."""
    folder = tmp_path_factory.mktemp("hub_schema")
    for f in HUB_FIXTURES.glob("*.hub.jsonl"):
        shutil.copy(f, folder / f.name.replace(".hub.jsonl", ".jsonl"))
    return folder
# --------------------------------------------------------------------------


def _find_offline_dir() -> Path | None:
    candidates = []
    if os.environ.get(ENV_DATA_DIR):
        candidates.append(Path(os.environ[ENV_DATA_DIR]))
    candidates.append(REPO_ROOT.parent / "shared" / "benchmarks")
    for c in candidates:
        if (c / "gsm8k.jsonl").is_file():
            return c
    return None


@pytest.fixture(scope="module")
def offline_dir() -> Path:
    d = _find_offline_dir()
    if d is None:
        pytest.skip(f"offline benchmark copies not found: set ${ENV_DATA_DIR} or provide "
                    f"{REPO_ROOT.parent / 'shared' / 'benchmarks'}")
    return d


@pytest.fixture(scope="module")
def offline_items(offline_dir) -> dict[str, list[BenchmarkItem]]:
    return {name: load_benchmark(name, data_dir=str(offline_dir)) for name in OFFLINE_BENCHMARKS}


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv(ENV_DATA_DIR, raising=False)


def _mc(gold="C", n=4, choices=None) -> BenchmarkItem:
    choices = choices or [f"option {k}" for k in range(n)]
    return BenchmarkItem(id="t-1", benchmark="test", prompt="Q?", gold=gold, answer_type="choice",
                         choices=tuple(choices))


def _item(gold, answer_type="math", **metadata) -> BenchmarkItem:
    return BenchmarkItem(id="t-1", benchmark="test", prompt="Q?", gold=gold, answer_type=answer_type,
                         metadata=metadata)


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------


def test_registry_lists_and_defaults():
    assert MATH_BENCHMARKS == ("amc23", "minerva_math", "math500", "gsm8k", "olympiadbench",
                               "aime25", "aime24")
    assert set(GENERAL_BENCHMARKS) == {"mmlu_pro", "supergpqa", "bbeh", "gpqa_diamond", "mmlu_stem"}
    for name in (*MATH_BENCHMARKS, *GENERAL_BENCHMARKS, "arithmetic"):
        spec = BENCHMARKS[name]
        assert spec.name == name
        assert spec.answer_type in ANSWER_TYPES
        assert spec.max_new_tokens > 0
    for name in ("amc23", "aime24", "aime25"):
        assert BENCHMARKS[name].num_samples == 32 and not BENCHMARKS[name].greedy
    for name in ("gsm8k", "math500", "minerva_math", "olympiadbench", *GENERAL_BENCHMARKS):
        assert BENCHMARKS[name].num_samples == 1 and BENCHMARKS[name].greedy
    for name in ("mmlu_pro", "supergpqa", "bbeh"):
        assert BENCHMARKS[name].hub_id and BENCHMARKS[name].hub_revision


def test_unknown_benchmark_lists_known_names():
    with pytest.raises(ValueError, match="known benchmarks:.*gsm8k.*mmlu_pro"):
        load_benchmark("gsm9k")


def test_module_imports_no_torch_or_transformers():
    code = ("import sys, rzero_lib.evaluation.registry, rzero_lib.evaluation.scoring; "
            "print(','.join(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO_ROOT)
    assert out.stdout.strip() == ""


def test_old_import_path_still_works():
    from rzero_lib import benchmarks

    assert benchmarks.load_benchmark is load_benchmark and benchmarks.score_response is score_response


# --------------------------------------------------------------------------
# hub-schema fixtures and hub loading
# --------------------------------------------------------------------------


def test_mmlu_pro_hub_schema(no_env, hub_dir):
    items = load_benchmark("mmlu_pro", data_dir=str(hub_dir))
    assert [it.id for it in items] == ["mmlu_pro-101", "mmlu_pro-102", "mmlu_pro-103", "mmlu_pro-104"]
    assert [it.gold for it in items] == ["C", "E", "C", "B"]
    first = items[0]
    assert first.answer_type == "choice" and len(first.choices) == 10 and first.letters == "ABCDEFGHIJ"
    assert first.prompt.startswith("A car travels 120 km")
    assert "\n(C) 60 km/h\n" in first.prompt and first.prompt.endswith("(J) 240 km/h")
    assert first.metadata["category"] == "physics"
    assert len(items[1].choices) == 6
    assert items.source.endswith("mmlu_pro.jsonl") and items.total == 4


def test_supergpqa_hub_schema(no_env, hub_dir):
    items = load_benchmark("supergpqa", data_dir=str(hub_dir))
    assert [it.gold for it in items] == ["D", "C", "C", "B"]
    for it in items:  # the gold letter points at the answer text
        row = next(r for r in map(json.loads, (hub_dir / "supergpqa.jsonl").read_text().splitlines())
                   if f"supergpqa-{r['uuid']}" == it.id)
        assert it.choices[it.letters.index(it.gold)] == row["answer"]
    assert items[0].metadata["discipline"] == "Science"


def test_bbeh_hub_schema_and_text_scoring(no_env, hub_dir):
    items = load_benchmark("bbeh", data_dir=str(hub_dir))
    assert len(items) == 5 and all(it.answer_type == "text" for it in items)
    by_task = {it.metadata["task"]: it for it in items}
    assert by_task["word sorting"].gold == "apple mango pear" and by_task["word sorting"].metadata["mini"]
    cases = [
        ("word sorting", "So the list is \\boxed{apple mango pear}.", True),
        ("word sorting", "\\boxed{apple pear mango}", False),
        ("temporal sequence", "Ten days after Monday is \\boxed{\\text{thursday}}", True),
        ("temporal sequence", "The final answer is: Thursday.", True),
        ("temporal sequence", "\\boxed{Friday}", False),
        ("object counting", "\\boxed{3.0}", True),
        ("object counting", "\\boxed{2}", False),
        ("boolean expressions", "2 is prime and even. \\boxed{false}", True),
        ("multistep reasoning", "Dolphins are mammals. \\boxed{B}", True),
        ("multistep reasoning", "\\boxed{(C)}", False),
    ]
    got = score_responses([by_task[t] for t, _, _ in cases], [r for _, r, _ in cases])
    assert got == [want for _, _, want in cases]


def test_gpqa_hub_schema_shuffles_choices(no_env, hub_dir):
    items = load_benchmark("gpqa_diamond", data_dir=str(hub_dir))
    assert len(items) == 3
    for it, correct in zip(items, ["Ohm", "4", "tRNA"]):
        assert it.choices[it.letters.index(it.gold)] == correct
        assert sorted(it.choices) == sorted(set(it.choices)) and len(it.choices) == 4
    again = load_benchmark("gpqa_diamond", data_dir=str(hub_dir))
    assert [it.choices for it in again] == [it.choices for it in items]  # fixed permutation


def test_mmlu_hub_schema_filters_to_stem(no_env, hub_dir):
    items = load_benchmark("mmlu_stem", data_dir=str(hub_dir))
    assert [it.gold for it in items] == ["B", "C"]
    assert [it.metadata["subject"] for it in items] == ["elementary_mathematics", "high_school_physics"]


def test_minerva_and_olympiad_hub_schema(no_env, hub_dir):
    minerva = load_benchmark("minerva_math", data_dir=str(hub_dir))
    assert [it.gold for it in minerva] == ["10", "4e33"]
    assert score_responses(list(minerva), ["\\boxed{10}", "L \\approx \\boxed{4 \\times 10^{33}}"]) == [True, True]
    oly = load_benchmark("olympiadbench", data_dir=str(hub_dir))
    assert [it.gold for it in oly] == ["2,-2", "\\frac{5}{6}"]
    assert oly[0].metadata["multiple_answers"] is True


def test_env_var_is_used(monkeypatch, hub_dir):
    monkeypatch.setenv(ENV_DATA_DIR, str(hub_dir))
    assert len(load_benchmark("mmlu_pro")) == 4


def test_hub_fallback_error_names_file_and_dataset(no_env, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")

    def offline(*args, **kwargs):
        raise ConnectionError("no network here")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(FileNotFoundError) as err:
        load_benchmark("mmlu_pro", data_dir=str(tmp_path))
    msg = str(err.value)
    assert str(tmp_path / "mmlu_pro.jsonl") in msg and "TIGER-Lab/MMLU-Pro" in msg
    assert "no network here" in msg
    with pytest.raises(FileNotFoundError, match=r"no data directory given.*SuperGPQA"):
        load_benchmark("supergpqa")


def test_hub_loading_calls_load_dataset_with_pinned_revision(no_env, tmp_path, monkeypatch, hub_dir):
    datasets = pytest.importorskip("datasets")
    calls = []
    rows = [json.loads(line) for line in (hub_dir / "bbeh.jsonl").read_text().splitlines()]

    def fake_load_dataset(path, name=None, split=None, revision=None, **kwargs):
        calls.append((path, name, split, revision))
        return rows

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    items = load_benchmark("bbeh", data_dir=str(tmp_path))
    spec = BENCHMARKS["bbeh"]
    assert calls == [(spec.hub_id, spec.hub_config, spec.hub_split, spec.hub_revision)]
    assert len(items) == 5 and items.source.startswith("hub:BBEH/bbeh@")


def test_bad_row_gives_schema_error(no_env, tmp_path):
    (tmp_path / "mmlu_pro.jsonl").write_text(json.dumps({"question": "Q", "answer": "A"}) + "\n")
    with pytest.raises(ValueError, match="mmlu_pro: row 0 .* expected schema"):
        load_benchmark("mmlu_pro", data_dir=str(tmp_path))


# --------------------------------------------------------------------------
# limit
# --------------------------------------------------------------------------


def test_limit_is_deterministic_order_free_and_reported(no_env, tmp_path):
    rows = [{"question_id": k, "question": f"Question {k}?", "options": ["x", "y", "z"], "answer": "B",
             "answer_index": 1, "category": "math"} for k in range(60)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "mmlu_pro.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    shuffled = rows[:]
    random.Random(5).shuffle(shuffled)
    (tmp_path / "b" / "mmlu_pro.jsonl").write_text("".join(json.dumps(r) + "\n" for r in shuffled))

    a1 = load_benchmark("mmlu_pro", data_dir=str(tmp_path / "a"), limit=10, seed=3)
    a2 = load_benchmark("mmlu_pro", data_dir=str(tmp_path / "a"), limit=10, seed=3)
    b = load_benchmark("mmlu_pro", data_dir=str(tmp_path / "b"), limit=10, seed=3)
    other_seed = load_benchmark("mmlu_pro", data_dir=str(tmp_path / "a"), limit=10, seed=4)
    bigger = load_benchmark("mmlu_pro", data_dir=str(tmp_path / "a"), limit=20, seed=3)
    ids = [it.id for it in a1]
    assert len(ids) == 10 and ids == [it.id for it in a2]
    assert sorted(ids) == sorted(it.id for it in b)  # independent of the file's line order
    assert set(ids) != {it.id for it in other_seed}
    assert set(ids) <= {it.id for it in bigger}
    assert a1.total == 60 and a1.limit == 10 and a1.seed == 3 and a1.subsampled
    assert "10 of 60 items (limit=10, seed=3)" in a1.describe()
    assert len(load_benchmark("mmlu_pro", data_dir=str(tmp_path / "a"), limit=1000)) == 60
    assert len(load_benchmark("mmlu_pro", data_dir=str(tmp_path / "a"), limit=0)) == 0
    with pytest.raises(ValueError, match="limit"):
        load_benchmark("mmlu_pro", data_dir=str(tmp_path / "a"), limit=-1)


# --------------------------------------------------------------------------
# multiple-choice extraction
# --------------------------------------------------------------------------

MC_CASES = [
    ("Let me work through it.\n\nThe answer is (C).", "C"),
    ("**Answer: B**", "B"),
    ("Comparing the options, the correct option is D.", "D"),
    ("So the final answer is $\\boxed{A}$.", "A"),
    ("\\boxed{(B)}", "B"),
    ("\\boxed{\\text{C}}", "C"),
    ("\\boxed{\\textbf{(D)}}", "D"),
    ("\\boxed{C. option 2}", "C"),
    ("The resolution needs a larger gap, hence \\boxed{option 1}", "B"),  # the option's text, boxed
    ("A careful look at the lifetimes shows the gap must exceed 10^-8 eV, so the answer is B.", "B"),
    ("A is wrong because the energy is too small. B is also wrong.\nThe answer is C", "C"),
    ("Working...\n\nFinal answer: **D**", "D"),
    ("Working...\n\n**C**", "C"),
    ("Working...\n\n(C)", "C"),
    ("Working...\n\nC", "C"),
    ("Working...\n\nC. option 2", "C"),
    ("Working...\n\n(B) option 1", "B"),
    ("Thus we pick (D) as the best fit.", "D"),
    ("Answer: A", "A"),
    ("I first thought the answer is (B), but on reflection the answer is (D).", "D"),
    ("The answer is A.\n\nWait, let me box it: \\boxed{B}", "B"),
    ("A photon is emitted in the transition.", None),
    ("The answer is a bit unclear to me.", None),
    ("A detailed derivation is given above.\nA reasonable estimate follows.", None),
    ("\\boxed{F}", None),  # not an option of a 4-choice item
    ("", None),
]


@pytest.mark.parametrize("response,expected", MC_CASES)
def test_choice_extraction(response, expected):
    assert extract_answer(_mc(), response) == expected


def test_choice_boxed_option_text_beats_article_letter():
    item = _mc(choices=["An electron", "A proton", "A photon", "A neutron"])
    assert extract_answer(item, "The emitted particle is \\boxed{A photon}") == "C"
    assert extract_answer(item, "\\boxed{a photon.}") == "C"


def test_choice_scoring_uses_gold_letter_and_ten_options():
    item = _mc(gold="J", n=10)
    assert score_response(item, "The answer is (J).")
    assert not score_response(item, "The answer is (I).")
    assert not score_response(_mc(gold="C"), "no letter at all")


# --------------------------------------------------------------------------
# number and math scoring
# --------------------------------------------------------------------------


@pytest.mark.parametrize("gold,response,expected", [
    ("1000", "\\boxed{1,000}", True),
    ("1000", "\\boxed{1{,}000}", True),
    ("18", "\\boxed{18.0}", True),
    ("18", "She makes \\boxed{\\$18} a day.", True),
    ("18", "\\boxed{18 \\text{ dollars}}", True),
    ("18", "\\boxed{x = 18}", True),
    ("18", "\\boxed{19}", False),
    ("18", "\\boxed{18.5}", False),
    ("18", "The answer is 18.", False),  # no box: not read
    ("-3/4", "\\boxed{-\\frac{3}{4}}", True),
    ("-3/4", "\\boxed{-0.75}", True),
    ("-3/4", "\\boxed{3/4}", False),
    ("25", "\\boxed{025}", True),
    ("6", "\\boxed{2 \\cdot 3}", True),  # not a plain number: math-verify decides
    ("6", "\\boxed{2x}", False),
])
def test_number_scoring(gold, response, expected):
    assert score_response(_item(gold, "number"), response) is expected


def test_math_scoring_cases():
    cases = [
        (_item("4.5e33"), "\\boxed{4.5 \\times 10^{33}}", True),
        (_item("4.5e33"), "\\boxed{4.5e33}", True),
        (_item("4.5e33"), "\\boxed{4.6 \\times 10^{33}}", False),
        (_item("-1./3"), "\\boxed{-\\frac{1}{3}}", True),
        (_item("\\frac{2}{5}"), "\\boxed{0.4}", True),
        (_item("\\left( 3, \\frac{\\pi}{2} \\right)"), "\\boxed{(3, \\pi/2)}", True),
        (_item("10,\\!080"), "\\boxed{10080}", True),
        (_item("\\text{(C)}"), "\\boxed{C}", True),
        (_item("2,-1,-18", multiple_answers=True), "\\boxed{-18, 2, -1}", True),
        (_item("2,-1,-18", multiple_answers=True), "\\boxed{2, -1}", False),
        (_item("2,-1,-18", multiple_answers=True), "So $x=2$, giving \\boxed{2}, \\boxed{-1}, \\boxed{-18}", True),
        (_item("\\sqrt{2}-1, \\frac{3-\\sqrt{2}}{7}", multiple_answers=True),
         "\\boxed{\\frac{3-\\sqrt{2}}{7}, \\sqrt{2}-1}", True),
        (_item("4.2", tolerance=0.1), "\\boxed{4.25}", True),
        (_item("4.2", tolerance=0.1), "\\boxed{4.5}", False),
        (_item("3"), "no box here, 3", False),
    ]
    got = score_responses([c[0] for c in cases], [c[1] for c in cases])
    assert got == [c[2] for c in cases], [(c[0].gold, c[1]) for c, g in zip(cases, got) if g != c[2]]


def test_score_responses_checks_lengths():
    with pytest.raises(ValueError):
        score_responses([_item("1")], [])


def test_arithmetic_builtin_set():
    pytest.importorskip("rzero_lib.arithmetic")
    items = load_benchmark("arithmetic")
    assert len(items) == 100 and items.total == 100
    assert all(it.answer_type == "number" and it.prompt and it.gold for it in items)
    assert [it.id for it in items] == [it.id for it in load_benchmark("arithmetic")]
    assert all(score_responses(list(items), [gold_response(it) for it in items]))
    wrong = [f"\\boxed{{{Fraction(it.gold) + 1}}}" for it in items]
    assert not any(score_responses(list(items), wrong))
    assert len(load_benchmark("arithmetic", limit=10, seed=1)) == 10


# --------------------------------------------------------------------------
# offline files: schema, gold round trip, wrong answers
# --------------------------------------------------------------------------


def _count_lines(path: Path) -> int:
    return sum(1 for line in path.read_text(encoding="utf-8").split("\n") if line.strip())


@pytest.mark.parametrize("name", OFFLINE_BENCHMARKS)
def test_offline_schema(name, offline_dir, offline_items):
    items = offline_items[name]
    spec = BENCHMARKS[name]
    assert len(items) == _count_lines(offline_dir / spec.offline_file) == EXPECTED_ROWS[name]
    assert items.total == len(items) and not items.subsampled
    assert len({it.id for it in items}) == len(items)
    for it in items:
        assert it.benchmark == name and it.id.startswith(name + "-")
        assert it.answer_type == spec.answer_type
        assert isinstance(it.prompt, str) and len(it.prompt) > 10
        assert isinstance(it.gold, str) and it.gold.strip() == it.gold and it.gold
        if it.answer_type == "choice":
            assert it.choices and len(it.choices) == 4 and it.gold in it.letters
            for letter, choice in zip(it.letters, it.choices):
                assert f"({letter}) {choice}" in it.prompt
            assert "Please reason step-by-step" not in it.prompt
        else:
            assert it.choices is None
        if it.answer_type == "number":
            assert answer_forms.parse_number(it.gold) is not None, it.gold
            assert it.gold == str(Fraction(it.gold)), it.gold  # canonical: "27", not "27.0" / "025"


def test_offline_specific_golds(offline_items):
    first = {name: items[0] for name, items in offline_items.items()}
    assert first["gsm8k"].gold == "18"
    assert first["amc23"].gold == "27"
    assert first["aime24"].gold == "204"
    assert "\\boxed" not in first["minerva_math"].gold and first["minerva_math"].gold == "1.6"
    assert first["mmlu_stem"].gold == "C"  # answer index 2
    gsm = {it.gold for it in offline_items["gsm8k"]}
    assert "70000" in gsm and not any("," in g for g in gsm)
    assert "25" in {it.gold for it in offline_items["aime24"]}  # "025" in the file
    oly = offline_items["olympiadbench"]
    assert not any("$" in it.gold.replace("\\$", "") for it in oly)
    assert sum(bool(it.metadata.get("multiple_answers")) for it in oly) == 94
    assert any(it.metadata.get("tolerance") == 0.1 for it in oly)


def test_gpqa_offline_gold_is_spread_and_correct(offline_dir, offline_items):
    items = offline_items["gpqa_diamond"]
    letters = {it.gold for it in items}
    assert letters == set("ABCD")  # the file always says "A"; the loader re-orders the choices
    rows = [json.loads(line) for line in (offline_dir / "gpqa.jsonl").read_text(encoding="utf-8").split("\n") if line.strip()]
    for it, row in zip(items, rows):
        original_a = row["question"].split("\nA. ", 1)[1].split("\nB. ", 1)[0].strip()
        assert it.choices[it.letters.index(it.gold)] == original_a


def _response(item: BenchmarkItem, answer: str, style: int = 0) -> str:
    if item.answer_type == "choice":
        return [f"Reasoning...\nThe answer is ({answer}).", f"\\boxed{{{answer}}}"][style % 2]
    return f"Reasoning... so the final answer is \\boxed{{{answer}}}."


def _equivalent_form(item: BenchmarkItem) -> str:
    """The gold written differently but equivalently (tests the cleaning and the comparison)."""
    g = item.gold
    if item.answer_type == "number":
        v = Fraction(g)
        return f"{int(v):,}" if v.denominator == 1 and abs(v) >= 1000 else f"{g}.0"
    if item.answer_type == "math":
        m = answer_forms.E_NOTATION_RE.fullmatch(g)
        if m:
            return f"{m.group(1)} \\times 10^{{{int(m.group(2))}}}"
        if item.metadata.get("multiple_answers"):
            parts = answer_forms.split_top_level(g)
            if len(parts) > 1:
                return ", ".join(reversed(parts))
        raw = item.metadata.get("raw_answer")
        if isinstance(raw, str) and raw.strip() != g:
            return raw
        return f"${g}$" if "$" not in g else g
    return g


def _round_trip_failures(items, forms) -> list[str]:
    responses = [_response(it, f, k) for k, (it, f) in enumerate(zip(items, forms))]
    ok = score_responses(items, responses)
    return [f"{it.id}: gold={it.gold!r} sent={f!r}" for it, f, o in zip(items, forms, ok) if not o]


@pytest.mark.parametrize("name", OFFLINE_BENCHMARKS)
def test_offline_gold_round_trip(name, offline_items):
    items = list(offline_items[name])
    bad = _round_trip_failures(items, [it.gold for it in items])
    assert len(bad) <= 0.01 * len(items), f"{len(bad)}/{len(items)} golds not recognised:\n" + "\n".join(bad[:40])
    forms = [_equivalent_form(it) for it in items]
    changed = [(it, f) for it, f in zip(items, forms) if f != it.gold]
    if changed:
        bad = _round_trip_failures([c[0] for c in changed], [c[1] for c in changed])
        assert len(bad) <= 0.01 * len(items), (
            f"{len(bad)}/{len(changed)} equivalent gold forms not recognised:\n" + "\n".join(bad[:40]))


def _numeric_shape(s: str) -> bool:
    return answer_forms.parse_number(s) is not None  # "4.5e33" counts as a number


def _wrong_answers(items: list[BenchmarkItem], seed: int = 0) -> list[tuple[BenchmarkItem, str]]:
    """A wrong answer per item: another letter, gold + 1, or another item's (different) gold."""
    rng = random.Random(seed)
    out = []
    for it in items:
        if it.answer_type == "choice":
            out.append((it, rng.choice([x for x in it.letters if x != it.gold])))
        elif it.answer_type == "number":
            out.append((it, str(Fraction(it.gold) + 1)))
        else:
            # another gold of the same shape (number vs expression): the harder case
            shape = _numeric_shape(it.gold)
            pool = [o.gold for o in items if o.gold.replace(" ", "") != it.gold.replace(" ", "")
                    and _numeric_shape(o.gold) == shape]
            if shape:
                value = answer_forms.parse_number(it.gold)
                pool = [p for p in pool if answer_forms.parse_number(p) != value]
            if pool:
                out.append((it, rng.choice(pool)))
    return out


def _check_wrong(items: list[BenchmarkItem], limit: int | None):
    if limit is not None and len(items) > limit:
        items = subsample(items, limit, seed=0)
    pairs = _wrong_answers(items)
    ok = score_responses([p[0] for p in pairs], [_response(p[0], p[1]) for p in pairs])
    bad = [f"{it.id}: gold={it.gold!r} wrong={w!r}" for (it, w), o in zip(pairs, ok) if o]
    assert len(pairs) >= 0.9 * len(items)
    assert len(bad) <= 0.01 * len(pairs), (
        f"{len(bad)}/{len(pairs)} wrong answers scored correct:\n" + "\n".join(bad[:40]))


@pytest.mark.parametrize("name", OFFLINE_BENCHMARKS)
def test_offline_wrong_answers_are_wrong(name, offline_items):
    # free-form math goes through math-verify (up to ~1 s a pair for long expressions): a fixed
    # subsample here, every item in the slow test below
    _check_wrong(list(offline_items[name]), limit=60 if BENCHMARKS[name].answer_type == "math" else None)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in OFFLINE_BENCHMARKS if BENCHMARKS[n].answer_type == "math"])
def test_offline_wrong_answers_are_wrong_full(name, offline_items):
    _check_wrong(list(offline_items[name]), limit=None)
