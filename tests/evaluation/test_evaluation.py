"""Evaluation: decoding settings per benchmark, scoring through the real generator,
the judge as a separate column, and the cross-iteration table."""

import pandas as pd
import pytest

from rzero_lib.config import EvaluationParams
from rzero_lib.evaluation.evaluate import (
    cross_iteration_table,
    decoding_settings,
    evaluate_model,
    table_markdown,
)
from rzero_lib.evaluation.registry import load_benchmark
from rzero_lib.evaluation.scoring import score_response
from rzero_lib.prompts import PromptSpec
from tests.support import ChatEndpoint, ScriptedGenerator

PROMPT = PromptSpec("Solve. Put the answer in \\boxed{}.", "{question}")


def test_decoding_settings_follow_the_paper_and_the_overrides():
    p = EvaluationParams()
    s, label = decoding_settings("amc23", p)
    assert s.n == 32 and s.temperature == 0.6 and label.startswith("mean@32")
    s, label = decoding_settings("gsm8k", p)
    assert s.n == 1 and s.greedy and label == "greedy"
    s, _ = decoding_settings("aime24", EvaluationParams(num_samples={"aime24": 4}, max_new_tokens=64))
    assert s.n == 4 and s.max_new_tokens == 64


def test_evaluate_with_the_tiny_model(tiny_generator):
    params = EvaluationParams(limit=6, max_new_tokens=8)
    scores, samples = evaluate_model(tiny_generator, ["arithmetic"], params, PROMPT, seed=0, progress=False)
    row = scores.iloc[0]
    assert (row.benchmark, row.n, row.limit, row.decoding) == ("arithmetic", 6, 6, "greedy")
    assert bool(row.subsampled) and len(samples) == 6 and set(samples["benchmark"]) == {"arithmetic"}
    items = {it.id: it for it in load_benchmark("arithmetic", limit=6, seed=0)}
    assert set(samples["id"]) == set(items) and list(samples["gold"]) == [items[i].gold for i in samples["id"]]
    # Every stored verdict is the scorer's verdict on the stored response, and the accuracy is their mean.
    rescored = [score_response(items[r.id], r.response) for r in samples.itertuples()]
    assert list(samples["correct"]) == rescored
    assert row.accuracy == pytest.approx(sum(rescored) / len(rescored))
    # Greedy decoding: the same call gives the same responses.
    _, again = evaluate_model(tiny_generator, ["arithmetic"], params, PROMPT, seed=0, progress=False)
    assert list(again["response"]) == list(samples["response"])


class HalfRightGenerator(ScriptedGenerator):
    """Sample 0 states the gold answer, sample 1 a wrong one."""

    def __init__(self, gold_by_prompt: dict[str, str]):
        super().__init__([])
        self.gold = gold_by_prompt

    def generate(self, prompts, sampling, progress=True):
        out = []
        for messages in prompts:
            gold = self.gold[messages[-1]["content"]]
            out.append([f"\\boxed{{{gold}}}", "\\boxed{-99999}"][: sampling.n])
        return out


def test_accuracy_is_the_mean_over_samples_then_items():
    items = load_benchmark("arithmetic", limit=4)
    gen = HalfRightGenerator({it.prompt: it.gold for it in items})
    params = EvaluationParams(limit=4, num_samples={"arithmetic": 2})
    scores, samples = evaluate_model(gen, ["arithmetic"], params, PROMPT, progress=False)
    row = scores.iloc[0]
    assert len(samples) == 8 and samples.groupby("id")["correct"].sum().eq(1).all()
    assert row.accuracy == 0.5 and row.stderr == 0.0 and row.num_samples == 2 and row.decoding.startswith("mean@2")


def test_judge_is_a_separate_column(monkeypatch):
    endpoint = ChatEndpoint(lambda body: ["yes"])
    try:
        params = EvaluationParams(limit=3, judge={"enabled": True, "base_url": endpoint.url, "model": "judge"})
        gen = ScriptedGenerator(["The answer is \\boxed{123456}."])
        scores, samples = evaluate_model(gen, ["arithmetic"], params, PROMPT, progress=False)
    finally:
        endpoint.close()
    assert scores.iloc[0].accuracy == 0.0 and scores.iloc[0].judge_accuracy == 1.0
    assert samples["judge_correct"].all() and not samples["correct"].any()
    assert len(endpoint.requests) == 3 and "123456" in endpoint.requests[0]["messages"][0]["content"]


def test_cross_iteration_table():
    scores = pd.DataFrame([
        {"iteration": 0, "benchmark": "gsm8k", "accuracy": 0.80, "limit": 50},
        {"iteration": 0, "benchmark": "math500", "accuracy": 0.40, "limit": 50},
        {"iteration": 1, "benchmark": "gsm8k", "accuracy": 0.90, "limit": 50},
        {"iteration": 1, "benchmark": "math500", "accuracy": 0.50, "limit": 50},
        {"iteration": 1, "benchmark": "gpqa_diamond", "accuracy": 0.30, "limit": 50},
    ])
    t = cross_iteration_table(scores)
    assert list(t.columns) == ["math500", "gsm8k", "gpqa_diamond", "average", "delta_vs_base"]  # paper order
    assert list(t.index) == ["base", "iter 1"]
    assert t.loc["iter 1", "average"] == pytest.approx(70.0)  # math benchmarks only
    assert t.loc["iter 1", "delta_vs_base"] == pytest.approx(10.0)
    assert "limit=50" in t.attrs["note"] and "limit=50" in table_markdown(t)
