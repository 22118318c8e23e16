"""Model- and API-backed oracles, and the oracle a run's parameters ask for.

`ModelOracle` runs a (stronger) model through the generation backends with a
Solver-style prompt: greedy when `samples == 1`, else the majority of k samples
(math equivalence). It loads lazily on the first question, so a fully cached
analysis never loads it. `OpenAIOracle` asks any OpenAI-compatible chat
endpoint (the paper used GPT-4o); the key comes from the environment variable
named by `api_key_env`, never from a file; a reply without `\\boxed{}` is
"cannot answer". `make_oracle(params)` picks the oracle: `kind: none` means the
domain's default (the arithmetic domain's exact oracle; the math domain has
none and this raises `NoOracleError`).
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from rzero_lib.answers import extract_boxed
from rzero_lib.domains import get_domain, resolve_prompts
from rzero_lib.engine.generation import engine_generator, make_generator
from rzero_lib.engine.openai_client import chat_completion
from rzero_lib.oracle import ArithmeticOracle, NoOracleError, Oracle
from rzero_lib.prompts import PromptSpec, prompt_digest, solver_messages
from rzero_lib.sampling import SamplingConfig
from rzero_lib.voting import majority_vote_many

MODEL_ORACLE_TEMPERATURE = 0.6  # sampling settings for the majority of k > 1 samples
MODEL_ORACLE_TOP_P = 0.95
ORACLE_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."



def default_oracle_prompt() -> PromptSpec:
    return PromptSpec(ORACLE_SYSTEM_PROMPT, "{question}")


def final_answers(groups: list[list[str | None]], timeout_s: float | None) -> list[str | None]:
    """One answer per question: the only sample's, or the majority of several (ties: first seen)."""
    if all(len(g) == 1 for g in groups):
        return [g[0] for g in groups]
    return [vote.answer for vote in majority_vote_many(groups, timeout_s=timeout_s)]


class BatchOracle(Oracle):
    """An oracle that answers in batches: one question is a batch of one."""

    def answer(self, question: str) -> str | None:
        return self.answer_many([question])[0]


class ModelOracle(BatchOracle):
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
        self.prompt = prompt or default_oracle_prompt()
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
                f"|prompt={prompt_digest(self.prompt)}")

    def _get_generator(self):
        if self._generator is None:
            if self._factory is not None:
                self._generator = self._factory(self.spec)
            else:
                self._generator = make_generator(self.spec)
        return self._generator

    def answer_many(self, questions: Iterable[str]) -> list[str | None]:
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
        return final_answers([[extract_boxed(t) for t in group] for group in outputs], self.equivalence_timeout_s)

    def close(self) -> None:
        if self._generator is not None:
            self._generator.close()
            self._generator = None


class OpenAIOracle(BatchOracle):
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
        self.prompt = prompt or default_oracle_prompt()
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
                f"|prompt={prompt_digest(self.prompt)}")

    def _ask(self, question: str) -> list[str]:
        self.requests += 1
        replies = chat_completion(self.base_url, self.model, self.api_key_env, solver_messages(self.prompt, question),
                                  max_tokens=self.max_tokens, temperature=0.0 if self.samples == 1 else self.temperature,
                                  n=self.samples, timeout_s=self.timeout_s)
        return [replies] if isinstance(replies, str) else list(replies)

    def answer_many(self, questions: Iterable[str]) -> list[str | None]:
        questions = list(questions)
        if not questions:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(questions))) as pool:
            replies = list(pool.map(self._ask, questions))
        return final_answers([[extract_boxed(t) for t in group] for group in replies], self.equivalence_timeout_s)


def make_oracle(params, oracle_params=None, *, generator_factory=None) -> Oracle:
    """The oracle a run's parameters ask for (`oracle_params` defaults to `params.analysis.oracle`).

    `kind: none` takes the domain's default oracle; the `math` domain has none and
    this raises `NoOracleError`. A `model` oracle uses the run's Solver prompt and
    engine settings (`generator_factory(spec)` overrides how its generator is built).
    """
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
            def generator_factory(spec: str):
                return engine_generator(spec, params.engine, seed=params.seed)

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
