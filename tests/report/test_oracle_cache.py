"""The oracle cache (`report/oracle.parquet`): an interrupted run keeps its chunks, "cannot answer" is cached,
and a foreign table is refused. The model and API oracles with the cache: tests/engine/test_oracles.py."""

import pandas as pd
import pytest

from rzero_lib.oracle import ArithmeticOracle
from rzero_lib.report.oracle_cache import cached_oracle_answers, read_oracle_cache


def test_cache_survives_an_interrupted_run(tmp_path):
    class Flaky(ArithmeticOracle):
        def __init__(self, fail_on_call: int | None):
            self.fail_on_call = fail_on_call
            self.calls: list[list[str]] = []

        def answer_many(self, questions):
            self.calls.append(list(questions))
            if len(self.calls) == self.fail_on_call:
                raise ConnectionError("endpoint went away")
            return super().answer_many(questions)

    questions = [f"What is {i} + 1?" for i in range(5)]
    cache = tmp_path / "oracle.parquet"
    with pytest.raises(ConnectionError):
        cached_oracle_answers(Flaky(fail_on_call=2), questions, cache, chunk_size=2)
    assert len(read_oracle_cache(cache)) == 2  # the first chunk was kept
    resumed = Flaky(fail_on_call=None)
    assert cached_oracle_answers(resumed, questions, cache, chunk_size=2) == [str(i + 1) for i in range(5)]
    assert resumed.calls == [questions[2:4], questions[4:]]
    cannot = cached_oracle_answers(resumed, ["How old is Tom?"], cache)
    assert cannot == [None] and len(resumed.calls) == 3
    assert cached_oracle_answers(resumed, ["How old is Tom?"], cache) == [None]  # "cannot answer" is cached too
    assert len(resumed.calls) == 3


def test_cache_rejects_a_foreign_table(tmp_path):
    path = tmp_path / "oracle.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(path)
    with pytest.raises(ValueError, match="not an oracle cache"):
        cached_oracle_answers(ArithmeticOracle(), ["What is 1 + 1?"], path)
