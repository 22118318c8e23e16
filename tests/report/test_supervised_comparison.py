"""The supervised comparison's numbers: seed means, bootstrap intervals, paired differences, averages, the paper's
Table 4 beside ours (for Qwen3-4B only), and the written files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rzero_lib.atomic_files import write_parquet_atomic
from rzero_lib.pipeline.compare import ARMS_FILE
from rzero_lib.report.paper import PAPER_SUPERVISED_TABLE
from rzero_lib.report.supervised_comparison import (
    benchmark_scopes,
    comparison_tables,
    markdown_tables,
    write_supervised_comparison,
)

RATES = {"rzero_only": 0.5, "labelled_only": 0.6, "rzero_then_labelled": 0.7}


def items(benchmarks=("math500", "gsm8k"), seeds=(0, 1), n: int = 200) -> pd.DataFrame:
    """Exact per-item correctness: in seed s, arm a gets the first round(n * (rate + 0.02 s)) items right."""
    rows = []
    for arm, rate in RATES.items():
        for s in seeds:
            right = round(n * (rate + 0.02 * s))
            rows += [{"arm": arm, "seed": s, "benchmark": b, "id": f"{b}-{i}", "accuracy": float(i < right)}
                     for b in benchmarks for i in range(n)]
    return pd.DataFrame(rows)


def test_scopes_follow_the_paper_order_and_add_averages():
    assert benchmark_scopes(["arith_sandbox"]) == {"arith_sandbox": ["arith_sandbox"]}
    scopes = benchmark_scopes(["mmlu_pro", "gsm8k", "math500", "supergpqa"])
    assert list(scopes) == ["math500", "gsm8k", "mmlu_pro", "supergpqa", "math average", "general average",
                            "average"]
    assert scopes["average"] == ["math500", "gsm8k", "mmlu_pro", "supergpqa"]


def test_accuracy_intervals_seed_spread_and_paired_differences():
    table, diffs = comparison_tables(items(), model="builtin:tiny-random", draws=500)
    row = table[(table["scope"] == "math500") & (table["arm"] == "labelled_only")].iloc[0]
    assert row["accuracy"] == pytest.approx(61.0) and row["per_seed"] == [60.0, 62.0]
    assert row["seed_sd"] == pytest.approx(np.std([60, 62], ddof=1))
    assert row["ci_low"] < 61.0 < row["ci_high"] and row["ci_high"] - row["ci_low"] < 12
    assert row["seeds"] == 2 and row["items"] == 400 and np.isnan(row["paper"])
    d = diffs[(diffs["scope"] == "average") & (diffs["versus"] == "labelled_only")].iloc[0]
    assert d["difference"] == pytest.approx(10.0) and d["per_seed"] == [10.0, 10.0] and d["at_least_zero"]
    # paired draws: the same items are right in both arms, so the difference barely moves under resampling
    assert d["ci_low"] > 5 and d["ci_high"] < 15


def test_paper_values_appear_for_qwen3_4b_with_the_caveat():
    table, diffs = comparison_tables(items(), model="Qwen/Qwen3-4B-Base", draws=200)
    row = table[(table["scope"] == "math500") & (table["arm"] == "rzero_then_labelled")].iloc[0]
    assert row["paper"] == PAPER_SUPERVISED_TABLE["rzero_then_labelled"]["math500"]
    average = table[(table["scope"] == "average") & (table["arm"] == "labelled_only")].iloc[0]
    paper = PAPER_SUPERVISED_TABLE["labelled_only"]
    assert average["paper"] == pytest.approx((paper["math500"] + paper["gsm8k"]) / 2)
    text = markdown_tables(table, diffs)
    assert "paper: R-Zero, then labels" in text and "not follow" in text


def test_a_missing_arm_is_listed_and_the_rest_is_drawn(tmp_path):
    data = items(benchmarks=("arith_sandbox",), seeds=(0,), n=50)
    arms = []
    for arm in ("base", *RATES):
        folder = tmp_path / arm / "evaluation"
        arms.append({"arm": arm, "seed": 0, "run_dir": str(tmp_path / arm), "stage": "evaluation"})
        if arm == "base":
            continue  # never finished
        folder.mkdir(parents=True)
        g = data[data["arm"] == arm]
        write_parquet_atomic(pd.DataFrame({"benchmark": g["benchmark"], "id": g["id"], "sample": 0,
                                           "correct": g["accuracy"].astype(bool)}), folder / "samples.parquet")
        (folder / "manifest.json").write_text("{}")
    (tmp_path / ARMS_FILE).write_text(json.dumps({"model": "builtin:arith-sandbox", "seeds": [0], "arms": arms}))
    result = write_supervised_comparison(tmp_path, draws=200)
    assert [a["arm"] for a in result.missing] == ["base"]
    assert set(result.table["arm"]) == set(RATES)
    assert (tmp_path / "supervised_comparison.png").exists() and (tmp_path / "summary.json").exists()
