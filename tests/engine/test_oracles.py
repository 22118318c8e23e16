"""Tests for the model and OpenAI-compatible oracles, `make_oracle` and the oracle cache.

The model oracle runs the real (random) tiny model, so the tests check the
plumbing: k-sample majority, lazy loading, caching in `oracle.parquet` and no
second query. The OpenAI oracle talks to a small HTTP server started here with
the standard library, returning canned chat-completion JSON (a real HTTP
round trip on 127.0.0.1).
"""

from __future__ import annotations

import pytest

from rzero_lib.config import OracleParams, params_from_dict
from rzero_lib.engine.openai_client import EndpointError
from rzero_lib.engine.oracles import ModelOracle, OpenAIOracle, make_oracle
from rzero_lib.oracle import ArithmeticOracle, NoOracleError, Oracle
from rzero_lib.prompts import PromptSpec
from rzero_lib.report.oracle_cache import cached_oracle_answers, read_oracle_cache
from tests.support import TINY, ChatEndpoint, EchoHeadersEndpoint, ScriptedGenerator


def _params(domain: str = "arithmetic", **oracle):
    return params_from_dict({"run_name": "t", "model": TINY, "domain": domain,
                             "engine": {"backend": "transformers", "device": "cpu"},
                             "analysis": {"oracle": oracle}})


# --------------------------------------------------------------------------
# model oracle
# --------------------------------------------------------------------------


def test_model_oracle_majority_of_k_samples():
    gen = ScriptedGenerator(["so \\boxed{4}", "\\boxed{5}", "it is \\boxed{4.0}", "no box"])
    oracle = ModelOracle("some/model", samples=4, generator_factory=lambda spec: gen)
    assert oracle.answer_many(["What is 2+2?", "Again?"]) == ["4", "4"]  # 4 ≡ 4.0: 2 of 4, first seen
    n, sampling = gen.calls[0]
    assert n == 2 and sampling.n == 4 and sampling.temperature > 0
    oracle.close()
    assert gen.closed


def test_model_oracle_greedy_and_no_answer():
    gen = ScriptedGenerator(["I cannot box this"])
    oracle = ModelOracle("some/model", samples=1, generator_factory=lambda spec: gen)
    assert oracle.answer("What is 2+2?") is None
    assert gen.calls[0][1].greedy
    assert "greedy" in oracle.cache_key and "k=1" in oracle.cache_key
    assert ModelOracle("some/model", samples=3).cache_key != oracle.cache_key


def test_model_oracle_on_the_tiny_model_with_cache(tmp_path):
    oracle = ModelOracle(TINY, samples=3, max_new_tokens=8)
    assert oracle._generator is None  # nothing loads until the first question
    questions = ["What is 1 + 2?", "What is 3 * 4?", "What is 1 + 2?", None, "What is 9 - 1?"]
    cache = tmp_path / "oracle.parquet"
    first = cached_oracle_answers(oracle, questions, cache)
    assert len(first) == 5 and first[3] is None and first[0] == first[2]
    assert all(a is None or isinstance(a, str) for a in first)
    assert oracle.generate_calls == 1
    table = read_oracle_cache(cache)
    assert len(table) == 3 and set(table["oracle_kind"]) == {"model"}
    assert set(table["oracle_key"]) == {oracle.cache_key}
    # a second call, even from a fresh oracle object, never generates again
    again = ModelOracle(TINY, samples=3, max_new_tokens=8)
    assert cached_oracle_answers(again, questions, cache) == first
    assert again.generate_calls == 0 and again._generator is None
    # a different oracle (greedy) does not reuse those answers
    greedy = ModelOracle(TINY, samples=1, max_new_tokens=8)
    cached_oracle_answers(greedy, questions[:2], cache)
    assert greedy.generate_calls == 1
    assert len(read_oracle_cache(cache)) == 5
    oracle.close()
    greedy.close()


# --------------------------------------------------------------------------
# OpenAI-compatible oracle against a local server
# --------------------------------------------------------------------------


@pytest.fixture()
def endpoint():
    def reply(body):
        question = body["messages"][-1]["content"]
        if "unanswerable" in question:
            return ["I do not know."] * body["n"]
        if body["n"] > 1:
            return ["\\boxed{7}", "\\boxed{8}", "so \\boxed{7}"][: body["n"]]
        return [f"<think>hmm \\boxed{{1}}</think> The answer is \\boxed{{{len(question)}}}."]

    server = ChatEndpoint(reply)
    yield server
    server.close()


def test_openai_oracle_round_trip(endpoint, monkeypatch):
    monkeypatch.setenv("RZERO_TEST_KEY", "sk-test-123")
    oracle = OpenAIOracle(endpoint.url, "big-model", api_key_env="RZERO_TEST_KEY", max_tokens=64)
    questions = ["What is 2+2?", "an unanswerable one", "Why?"]
    assert oracle.answer_many(questions) == [str(len(questions[0])), None, "4"]
    assert oracle.requests == 3
    body = next(b for b in endpoint.requests if b["messages"][-1]["content"] == "What is 2+2?")
    assert body["model"] == "big-model" and body["temperature"] == 0.0 and body["n"] == 1
    assert body["max_tokens"] == 64
    assert "boxed" in body["messages"][0]["content"]  # the prompt asks for a boxed answer
    assert all(h.get("Authorization") == "Bearer sk-test-123" for h in endpoint.headers)


def test_openai_oracle_majority_and_cache(endpoint, tmp_path):
    oracle = OpenAIOracle(endpoint.url, "big-model", samples=3, api_key_env="RZERO_NO_SUCH_KEY")
    cache = tmp_path / "oracle.parquet"
    questions = ["Q1?", "Q2?", "Q1?"]
    assert cached_oracle_answers(oracle, questions, cache) == ["7", "7", "7"]
    assert oracle.requests == 2 and endpoint.requests[0]["n"] == 3 and endpoint.requests[0]["temperature"] > 0
    assert "Authorization" not in endpoint.headers[0]  # no key in the environment: no header
    assert cached_oracle_answers(oracle, questions, cache) == ["7", "7", "7"]
    assert oracle.requests == 2  # nothing re-queried
    assert set(read_oracle_cache(cache)["oracle_kind"]) == {"openai"}


def test_openai_oracle_reports_endpoint_errors():
    server = ChatEndpoint(lambda body: ["\\boxed{1}"], status=400)
    try:
        oracle = OpenAIOracle(server.url, "m")
        with pytest.raises(EndpointError, match="400"):
            oracle.answer_many(["What is 1+1?"])
    finally:
        server.close()


# --------------------------------------------------------------------------
# make_oracle
# --------------------------------------------------------------------------


def test_make_oracle_domain_defaults():
    oracle = make_oracle(_params("arithmetic"), OracleParams())
    assert isinstance(oracle, ArithmeticOracle) and oracle.name == "arithmetic"
    assert oracle.answer_many(["What is 2 + 3?"]) == ["5"]
    with pytest.raises(NoOracleError, match="analysis.oracle.kind"):
        make_oracle(_params("math"), OracleParams())
    assert isinstance(make_oracle(_params("math", kind="arithmetic")), ArithmeticOracle)


def test_make_oracle_model_kind_uses_the_run_prompt_and_engine():
    params = _params("arithmetic", kind="model", model=TINY, samples=2, max_new_tokens=6)
    oracle = make_oracle(params, params.analysis.oracle)
    assert isinstance(oracle, ModelOracle) and oracle.name == "model"
    assert oracle.samples == 2 and oracle.max_new_tokens == 6 and oracle._generator is None
    assert "Put your final answer within \\boxed{}" in oracle.prompt.system  # the domain's Solver prompt
    answers = oracle.answer_many(["What is 1 + 1?", "What is 2 + 2?"])
    assert len(answers) == 2 and oracle._generator.backend_name == "transformers"
    oracle.close()
    with pytest.raises(ValueError, match="analysis.oracle.model"):
        make_oracle(_params(kind="model"))


def test_make_oracle_openai_kind():
    oracle = make_oracle(_params("math", kind="openai", base_url="http://127.0.0.1:9/v1", model="m",
                                 api_key_env="MY_KEY", samples=5))
    assert isinstance(oracle, OpenAIOracle) and oracle.samples == 5 and oracle.api_key_env == "MY_KEY"
    assert oracle.cache_key.startswith("openai:m@http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="base_url"):
        make_oracle(_params(kind="openai", model="m"))


def test_oracle_contract_used_by_the_label_source_ablation():
    for oracle in (ArithmeticOracle(), ModelOracle("x", generator_factory=lambda s: ScriptedGenerator(["\\boxed{1}"])),
                   OpenAIOracle("http://127.0.0.1:9/v1", "m")):
        assert isinstance(oracle, Oracle) and isinstance(oracle.name, str)
        assert callable(oracle.answer_many) and isinstance(oracle.cache_key, str)
    custom = ModelOracle("x", prompt=PromptSpec("sys", "Q: {question}"))
    assert custom.cache_key != ModelOracle("x").cache_key  # the prompt is part of the cache key


def test_endpoint_errors_never_show_the_key(monkeypatch):
    from rzero_lib.engine.openai_client import chat_completion

    endpoint = EchoHeadersEndpoint()
    key = "sk-test-" + "S3cr3tValue" * 3
    monkeypatch.setenv("RZERO_TEST_KEY", key)
    try:
        with pytest.raises(EndpointError) as err:
            chat_completion(endpoint.url, "m", "RZERO_TEST_KEY", [{"role": "user", "content": "hi"}], retries=1)
    finally:
        endpoint.close()
    message = str(err.value)
    assert "401" in message and "[REDACTED]" in message
    assert key not in message and "S3cr3t" not in message and "sk-test" not in message
