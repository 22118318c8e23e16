"""Typed run parameters (pydantic), loaded from YAML and validated before anything loads.

`RunParams` holds every section the stages use; `load_params(path, overrides)`
applies `key.path=value` overrides through the same validation, and a bad field
fails at once naming the dotted field and what is allowed. Model specs are
checked without loading (`rzero_lib.model_specs`). `preset: paper` (the
default) or `preset: authors_code` fills every parameter a file leaves unset
with that recipe's value before validation (`rzero_lib.presets`: the table of
paper-vs-code differences, README "Paper and code"); explicit values win. The
class defaults are the paper's. A local model folder is resolved once, here,
to an absolute path.

Untrusted input is bounded: YAML aliases are refused (no "billion laughs"),
files are at most `MAX_PARAMS_BYTES`, every count, budget and size has a
generous upper bound (the `MAX_*` constants below, listed in docs/design.md),
and every float must be finite.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rzero_lib.labelled_data import BUILTIN_PREFIX, check_dataset_spec
from rzero_lib.model_specs import resolve_model_spec
from rzero_lib.presets import PRESETS, apply_preset

# Upper bounds: generous (far above any recipe here or in the paper) but finite, so that a typo
# such as `num_samples=1000000000` fails at validation instead of in an out-of-memory kill.
MAX_PARAMS_BYTES = 1 << 20  # a parameter file
MAX_SAMPLES = 1024  # samples per question: votes m, reward samples, verifier k, evaluation samples
MAX_NEW_TOKENS = 131_072  # any token budget
MAX_QUESTIONS = 10_000_000  # questions generated, evaluated, sampled or trained on
MAX_BATCH = 65_536  # prompts or sequences per batch
MAX_GROUP = 1024  # GRPO completions per prompt
MAX_STEPS = 1_000_000  # optimizer steps
MAX_PARALLEL = 4096  # GPUs or processes
MAX_TEMPERATURE = 10.0
MAX_TIMEOUT_S = 3600.0


class ParamsError(ValueError):
    """Invalid parameters; the message names every bad field."""


class Section(BaseModel):
    # allow_inf_nan=False: `.inf` or `.nan` in any float field is an error naming the field.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class NoAliasLoader(yaml.SafeLoader):
    """A SafeLoader that refuses aliases (`*name`), so a few hundred bytes cannot expand to gigabytes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed in parameters; "
                                              "write the values out", event.start_mark)
        return super().compose_node(parent, index)


def read_yaml(text: str, source: str) -> Any:
    """Parse parameter YAML (safe tags only, no aliases, bounded size); ParamsError names `source`."""
    if len(text) > MAX_PARAMS_BYTES:
        raise ParamsError(f"{source}: {len(text)} characters is too large for parameters "
                          f"(at most {MAX_PARAMS_BYTES})")
    try:
        return yaml.load(text, Loader=NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ParamsError(f"{source}: not valid YAML: {e}") from None
    except RecursionError:
        raise ParamsError(f"{source}: not valid YAML: nested too deeply") from None


# --------------------------------------------------------------------------
# shared pieces
# --------------------------------------------------------------------------


class LoraParams(Section):
    enabled: bool = False
    r: int = Field(16, ge=1, le=1024)
    alpha: int = Field(32, ge=1, le=MAX_BATCH)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class PromptParams(Section):
    """A role's prompt. `None` fields take the domain's default."""

    system: str | None = None
    user: str | None = None
    # Explicit (user, assistant) demonstrations, or generated ones from the
    # domain's problem generator when `num_demonstrations` > 0.
    demonstrations: list[tuple[str, str]] | None = Field(None, max_length=64)
    num_demonstrations: int = Field(0, ge=0, le=16)


class PromptsParams(Section):
    challenger: PromptParams = PromptParams()
    solver: PromptParams = PromptParams()


class EngineParams(Section):
    backend: Literal["auto", "transformers", "vllm"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    generation_batch_size: int = Field(64, ge=1, le=MAX_BATCH, description="sequences per transformers generate() call")
    # vLLM (GPU) settings
    tensor_parallel_size: int = Field(1, ge=1, le=MAX_PARALLEL)
    data_parallel_size: int = Field(1, ge=1, le=MAX_PARALLEL)
    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=1.0)
    max_model_len: int | None = Field(None, ge=128, le=16 * MAX_NEW_TOKENS)
    enforce_eager: bool = False
    # More than one node: vLLM's own multi-node execution (a Ray cluster spanning the nodes; pipeline stages
    # across nodes, tensor parallelism inside a node). "auto" leaves the choice to vLLM.
    pipeline_parallel_size: int = Field(1, ge=1, le=MAX_PARALLEL)
    distributed_executor_backend: Literal["auto", "mp", "ray"] = "auto"


class GRPOParams(Section):
    """GRPO settings shared by both roles (TRL GRPOTrainer underneath)."""

    steps: int = Field(5, ge=1, le=MAX_STEPS, description="generation rounds (paper 'steps')")
    batch_size: int = Field(16, ge=1, le=MAX_BATCH, description="prompts per step")
    mini_batch_size: int | None = Field(None, ge=1, le=MAX_BATCH, description="prompts per optimizer update (None: batch_size)")
    group_size: int = Field(4, ge=2, le=MAX_GROUP, description="completions per prompt (GRPO group)")
    micro_batch_size: int | None = Field(None, ge=1, le=MAX_BATCH, description="completions per forward pass (None: group_size)")
    learning_rate: float = Field(1e-6, gt=0.0, le=1.0)
    beta: float = Field(0.01, ge=0.0, le=1000.0, description="KL coefficient; the reference is the phase's start model")
    temperature: float = Field(1.0, gt=0.0, le=5.0)
    top_p: float = Field(0.99, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0, le=1 << 20)
    max_new_tokens: int = Field(512, ge=1, le=MAX_NEW_TOKENS)
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] = "grpo"
    epsilon: float = Field(0.2, gt=0.0, le=1.0, description="PPO clip range")
    epsilon_high: float | None = Field(None, gt=0.0, le=10.0, description="upper clip (None: epsilon); "
                                                                         "authors' code 0.3")
    delta: float | None = Field(None, gt=1.0, le=1000.0, description="dual clip of the ratio (TRL delta; None: off); "
                                                          "authors' code 3.0")
    scale_rewards: Literal["group", "batch", "none"] = "group"
    weight_decay: float = Field(0.01, ge=0.0, le=100.0, description="AdamW weight decay (both references: 0.01)")
    # Both references use the plain k3 KL and no vLLM importance-sampling correction; TRL turns both on.
    kl_bias_correction: bool = Field(False, description="TRL use_bias_correction_kl")
    vllm_importance_sampling_correction: bool = Field(False, description="TRL's correction for vLLM rollouts")
    master_weights: Literal["float32", "engine"] = Field(
        "float32", description="full fine-tune in a half engine dtype: float32 = fp32 weights and optimizer, "
                               "compute under autocast; engine = train in engine.dtype (loses small updates)")
    max_grad_norm: float = Field(1.0, gt=0.0, le=1e6)
    gradient_checkpointing: bool = False
    report_to: Literal["none", "tensorboard", "trackio"] = Field(
        "none", description="live training curves, written into the stage folder (tensorboard/ or trackio/), "
                            "offline; needs the `tracking` extra")
    lora: LoraParams = LoraParams()
    # Scale path: vLLM rollouts inside TRL (their context length is engine.max_model_len), and multi-GPU launch.
    use_vllm: bool = False
    vllm_mode: Literal["colocate", "server"] = Field(
        "colocate", description="colocate: a vLLM engine inside each training process; server: not supported "
                                "(rzero neither starts nor connects a TRL vLLM server; docs/engine.md)")
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0.0, le=1.0)
    vllm_tensor_parallel_size: int = Field(1, ge=1, le=MAX_PARALLEL, description="training processes that share "
                                                                                 "one colocated vLLM engine")
    launcher: Literal["auto", "in_process", "accelerate"] = "auto"
    accelerate_config: str | None = Field(None, description="zero2 | zero3 | fsdp | multinode | cpu | a path")
    num_processes: int | None = Field(None, ge=1, le=MAX_PARALLEL)

    @model_validator(mode="after")
    def _vllm_rollouts(self):
        if self.use_vllm and self.vllm_mode == "server":
            raise ValueError("vllm_mode: server is not supported: rzero neither starts a TRL vLLM server nor "
                             "takes its address, so TRL would wait for http://0.0.0.0:8000 and fail. Use "
                             "vllm_mode: colocate (docs/engine.md, \"TRL's vLLM rollouts\")")
        return self

    @model_validator(mode="after")
    def _batch_shapes(self):
        high = self.epsilon if self.epsilon_high is None else self.epsilon_high
        if self.delta is not None and self.delta <= 1.0 + high:
            raise ValueError(f"delta ({self.delta}) must exceed 1 + epsilon_high ({1.0 + high}), or be null")
        mini = self.mini_batch_size or self.batch_size
        if self.batch_size % mini:
            raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of mini_batch_size ({mini})")
        micro = self.micro_batch_size or self.group_size
        if (mini * self.group_size) % micro:
            raise ValueError(
                f"mini_batch_size*group_size ({mini * self.group_size}) must be a multiple of "
                f"micro_batch_size ({micro})")
        return self


class ChallengerTrainingParams(GRPOParams):
    # The paper's batch (P*: "global batch size 128"); a section's defaults must be the paper's values even
    # when a file sets only some of its keys, so they live here and not in RunParams.
    batch_size: int = Field(128, ge=1, le=MAX_BATCH, description="prompts per step")
    enabled: bool = Field(True, description="false: the untrained-Challenger baseline (base weights)")
    reward_form: Literal["paper", "code"] = "paper"
    penalty_weight: float = Field(1.0, ge=0.0, le=1000.0, description="λ of the repetition penalty (0 disables it)")
    penalty_threshold: float = Field(0.5, gt=0.0, le=1.0, description="τ, BLEU-distance clustering threshold")
    # The frozen Solver that scores the Challenger's questions. Its m is the reward's own (10 in the paper and
    # in the authors' code, whose voting uses 9): independent of voting.num_samples.
    solver_samples: int = Field(10, ge=1, le=MAX_SAMPLES, description="m of the reward's majority vote")
    answer_gate: Literal["none", "authors_2025"] = Field(
        "none", description="authors_2025 reproduces a BUG of the authors' reward server before 2025-12-10: "
                            "score only when the Solver majority equals the last character of the "
                            "Challenger's boxed answer and p̂ > 0.1 (rzero_lib.rewards.authors_2025_gate)")
    solver_temperature: float = Field(1.0, ge=0.0, le=MAX_TEMPERATURE)
    solver_top_p: float = Field(1.0, gt=0.0, le=1.0)
    solver_top_k: int | None = Field(40, ge=0, le=1 << 20)
    solver_max_new_tokens: int = Field(512, ge=1, le=MAX_NEW_TOKENS)
    solver_service: Literal["in_process", "vllm_server"] = "in_process"
    solver_server_gpus: str | None = Field(None, description="CUDA_VISIBLE_DEVICES for the Solver server")
    solver_server_gpu_memory_utilization: float | None = Field(
        None, gt=0.0, le=1.0, description="GPU memory share of the Solver server (None: engine's); set it when "
                                          "the server shares a GPU with training")


class SolverTrainingParams(GRPOParams):
    steps: int = Field(15, ge=1, le=MAX_STEPS, description="generation rounds (paper 'steps')")
    batch_size: int = Field(128, ge=1, le=MAX_BATCH, description="prompts per step")
    group_size: int = Field(5, ge=2, le=MAX_GROUP, description="completions per prompt (GRPO group)")
    format_weight: float = Field(0.0, ge=0.0, le=1.0, description="authors' code: 0.1")
    label_source: Literal["majority", "oracle"] = "majority"
    max_questions: int | None = Field(None, ge=1, le=MAX_QUESTIONS)


class QuestionGenerationParams(Section):
    num_questions: int = Field(8000, ge=1, le=MAX_QUESTIONS, description="N candidates")
    temperature: float = Field(1.0, ge=0.0, le=MAX_TEMPERATURE)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0, le=1 << 20)
    max_new_tokens: int = Field(1024, ge=1, le=MAX_NEW_TOKENS)
    drop_duplicates: bool = Field(False, description="drop exact duplicate questions (neither reference does; "
                                                     "the duplicate rate is reported either way)")
    require_challenger_answer: bool = Field(False, description="drop outputs without the Challenger's boxed "
                                                               "answer (authors' code)")


class VotingParams(Section):
    num_samples: int = Field(10, ge=1, le=MAX_SAMPLES, description="m Solver samples per question")
    band_delta: float = Field(0.25, ge=0.0, le=0.5, description="keep |p̂ − ½| ≤ δ")
    band_low: float | None = Field(None, ge=0.0, le=1.0, description="authors' code: 0.3 (overrides δ)")
    band_high: float | None = Field(None, ge=0.0, le=1.0, description="authors' code: 0.8")
    apply_band: bool = Field(True, description="false: the no-band-filter ablation")
    temperature: float = Field(1.0, ge=0.0, le=MAX_TEMPERATURE)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(40, ge=0, le=1 << 20)
    max_new_tokens: int = Field(1024, ge=1, le=MAX_NEW_TOKENS)
    # The authors' vote and drop rules (rzero_lib.voting; paper silent). The vote rules also apply to the
    # Challenger reward's vote.
    no_answer_vote: Literal["exclude", "none_string"] = "exclude"
    merge_no_answers: bool = False
    proof_rule: Literal["off", "english", "authors"] = "off"
    text_answer_rule: Literal["off", "latex", "authors"] = "off"
    empty_answer_rule: Literal["off", "normalized", "authors"] = "off"
    equivalence_timeout_s: float = Field(5.0, gt=0.0, le=MAX_TIMEOUT_S)

    @model_validator(mode="after")
    def _bounds(self):
        if (self.band_low is None) != (self.band_high is None):
            raise ValueError("band_low and band_high must be set together")
        if self.band_low is not None and self.band_low > self.band_high:
            raise ValueError(f"band_low ({self.band_low}) must be <= band_high ({self.band_high})")
        return self

    @property
    def band_bounds(self) -> tuple[float, float] | None:
        return None if self.band_low is None else (self.band_low, self.band_high)


class JudgeParams(Section):
    """Optional re-check of wrong items by an OpenAI-compatible judge (separate column)."""

    enabled: bool = False
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="paper: 0.1 (GPT-4o)")


class EvaluationParams(Section):
    enabled: bool = True
    benchmarks: list[str] = Field(default_factory=lambda: ["arithmetic"], max_length=256)
    data_dir: str | None = Field(None, description="offline benchmark JSONL folder (else $RZERO_BENCHMARKS_DIR, "
                                                   "else the hub)")
    limit: int | None = Field(None, ge=1, le=MAX_QUESTIONS, description="fixed-seed subsample per benchmark")
    max_new_tokens: int | None = Field(None, ge=1, le=MAX_NEW_TOKENS, description="None: each benchmark's default")
    num_samples: dict[str, Annotated[int, Field(ge=1, le=MAX_SAMPLES)]] = Field(default_factory=dict, description="per-benchmark samples (paper: 32 "
                                                                          "for AMC/AIME)")
    sample_temperature: float = Field(0.6, gt=0.0, le=MAX_TEMPERATURE)
    sample_top_p: float = Field(0.95, gt=0.0, le=1.0)
    judge: JudgeParams = JudgeParams()

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, v: str | None) -> str | None:
        if v is None:
            return None
        path = Path(v).expanduser()
        if not path.is_dir():
            raise ValueError(f"benchmark folder '{v}' does not exist")
        return str(path.resolve())  # resolved where the command runs, not in a stage's folder


class OracleParams(Section):
    kind: Literal["none", "arithmetic", "model", "openai"] = "none"
    model: str | None = Field(None, description="model spec (kind=model) or model name (kind=openai)")
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    samples: int = Field(1, ge=1, le=MAX_SAMPLES, description="kind=model: majority of k samples (1 = greedy)")
    max_new_tokens: int = Field(1024, ge=1, le=MAX_NEW_TOKENS)

    @model_validator(mode="before")
    @classmethod
    def _model_spec(cls, data):
        if isinstance(data, dict) and data.get("kind") == "model" and isinstance(data.get("model"), str):
            data = {**data, "model": resolve_model_spec(data["model"])}  # a model spec only for kind=model
        return data


class AnalysisParams(Section):
    oracle: OracleParams = OracleParams()
    label_sample_size: int = Field(200, ge=1, le=MAX_QUESTIONS)
    solver_difficulty_samples: int = Field(4, ge=1, le=MAX_SAMPLES, description="samples per question for difficulty accuracy")
    export_html: bool = True


class VerifierParams(Section):
    enabled: bool = False
    kind: Literal["self", "model"] = "self"
    model: str | None = None
    samples: int = Field(4, ge=1, le=MAX_SAMPLES, description="k verification samples; the yes-fraction is the confidence")
    policy: Literal["threshold", "weight"] = "threshold"
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    temperature: float = Field(1.0, ge=0.0, le=MAX_TEMPERATURE)
    max_new_tokens: int = Field(256, ge=1, le=MAX_NEW_TOKENS)
    # The verification prompt; None = rzero_lib.verifier's (an empty system prompt sends no system turn).
    system: str | None = None
    user: str | None = Field(None, description="must contain {question} and {solution}")

    @field_validator("model")
    @classmethod
    def _model(cls, v: str | None) -> str | None:
        return None if v is None else resolve_model_spec(v)

    @field_validator("user")
    @classmethod
    def _user(cls, v: str | None) -> str | None:
        if v is not None and not ("{question}" in v and "{solution}" in v):
            raise ValueError("verifier.user must contain both {question} and {solution}")
        return v


class LabelledFieldsParams(Section):
    """Which field of the labelled data is the question, the gold answer and (optional) the worked solution."""

    question: str = "question"
    answer: str = "answer"
    solution: str | None = None


class LabelledDatasetParams(Section):
    source: str | None = Field(None, description="a .jsonl/.parquet path, a datasets folder, a hub id, or "
                                                 "builtin:arith-sandbox-labelled")
    split: str = Field("train", description="split of a hub dataset or datasets folder")
    config: str | None = Field(None, description="hub dataset configuration")
    revision: str = Field("main", description="hub revision (pin a commit to freeze the data)")
    fields: LabelledFieldsParams = LabelledFieldsParams()

    @model_validator(mode="before")
    @classmethod
    def _plain_source(cls, data):
        return {"source": data} if isinstance(data, str) else data  # `dataset: path` is short for its source

    @field_validator("source")
    @classmethod
    def _local_source(cls, v: str | None) -> str | None:
        """A local file or folder as an absolute path, resolved where the command runs (a stage runs in its
        own folder, where a relative path would not exist and would be taken for a hub id)."""
        if v is None or v.startswith(BUILTIN_PREFIX) or not Path(v).expanduser().exists():
            return v
        return str(Path(v).expanduser().resolve())


class SupervisedTrainingParams(GRPOParams):
    """The optional supervised stage after the last iteration (docs/supervised.md): GRPO with the gold answers as
    labels (the Solver's GRPO and reward) or SFT on worked solutions, then the iterations' evaluation."""

    enabled: bool = False
    dataset: LabelledDatasetParams = LabelledDatasetParams()
    start_from: Literal["last_solver", "base"] = Field(
        "last_solver", description="base: the labelled-only control (R-Zero's iterations are not run)")
    method: Literal["grpo", "sft"] = "grpo"
    format_weight: float = Field(0.0, ge=0.0, le=1.0, description="GRPO: the Solver's format term")
    max_questions: int | None = Field(None, ge=1, le=MAX_QUESTIONS,
                                      description="a seeded subsample of the usable rows")
    evaluation_overlap: Literal["drop", "refuse"] = Field(
        "drop", description="training questions that are evaluation questions: dropped (counted) or refused")
    sft_max_length: int = Field(2048, ge=8, le=MAX_NEW_TOKENS,
                                description="SFT: tokens per prompt + solution (longer is cut)")

    @model_validator(mode="after")
    def _dataset(self):
        if self.enabled:
            if not self.dataset.source:
                raise ValueError("supervised_training.enabled needs supervised_training.dataset.source")
            check_dataset_spec(self.dataset.source, self.dataset.split, self.dataset.fields.model_dump(), self.method)
        if self.method == "sft" and self.launcher == "accelerate":
            raise ValueError("supervised_training.launcher: accelerate launches GRPO; SFT runs in one process")
        return self

    def solver_params(self) -> SolverTrainingParams:
        """The GRPO settings as the Solver's (what `train_solver` and its launched entry point take)."""
        shared = set(SolverTrainingParams.model_fields) & set(type(self).model_fields)
        return SolverTrainingParams.model_validate(self.model_dump(include=shared))


class RunParams(Section):
    preset: Literal[PRESETS] = Field("paper", description="the recipe unset parameters take: rzero_lib.presets")
    run_name: str = Field(..., min_length=1, max_length=100)
    seed: int = Field(0, ge=0, le=2**63 - 1)
    iterations: int = Field(3, ge=1, le=100)
    model: str
    # rzero_lib.domains: default prompts, oracle and benchmarks, the difficulty rule, the question form (sandbox)
    domain: Literal["math", "arithmetic", "sandbox"] = "math"
    kernel_name: str = "python3"
    engine: EngineParams = EngineParams()
    prompts: PromptsParams = PromptsParams()
    challenger_training: ChallengerTrainingParams = ChallengerTrainingParams()
    question_generation: QuestionGenerationParams = QuestionGenerationParams()
    voting: VotingParams = VotingParams()
    solver_training: SolverTrainingParams = SolverTrainingParams()
    evaluation: EvaluationParams = EvaluationParams()
    analysis: AnalysisParams = AnalysisParams()
    verifier: VerifierParams = VerifierParams()
    supervised_training: SupervisedTrainingParams = SupervisedTrainingParams()

    @field_validator("run_name")
    @classmethod
    def _run_name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v):
            raise ValueError("run_name may contain only letters, digits, '.', '_' and '-'")
        return v

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        return resolve_model_spec(v)


# --------------------------------------------------------------------------
# loading, overrides, hashing
# --------------------------------------------------------------------------


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown parameter"
        elif e["type"] == "literal_error":
            msg = f"{msg}"
        given = e.get("input")
        shown = "" if isinstance(given, dict) or e["type"] == "missing" else f" (got {given!r})"
        lines.append(f"  {loc}: {msg}{shown}")
    return "invalid parameters:\n" + "\n".join(lines)


def _set_dotted(data: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        if not isinstance(node.get(k, {}), dict):
            raise ParamsError(f"cannot set {dotted}: {k} is not a section")
        node = node.setdefault(k, {})
    node[keys[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`voting.num_samples=6` → ("voting.num_samples", 6); the value is read as YAML."""
    if "=" not in text:
        raise ParamsError(f"override '{text}' must look like key.path=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ParamsError(f"override '{text}' has no key")
    value = read_yaml(raw, f"override '{text}'") if raw.strip() else ""
    return key, value


def _preset_note(err: ValidationError, preset: str, applied: dict[str, Any]) -> str:
    """The values the preset supplied in the sections that failed, so the error names both sides."""
    def involved(key: str, e) -> bool:  # the failing field itself, or a field a section's check names
        loc = ".".join(str(x) for x in e["loc"])
        return key == loc or (key.startswith(loc + ".") and key.rsplit(".", 1)[-1] in e["msg"])

    shown = [f"{k}={v!r}" for k, v in applied.items() if any(involved(k, e) for e in err.errors())]
    if not shown:
        return ""
    return (f"\n  note: preset {preset!r} set {', '.join(shown)} (not in your parameters); explicit values win, "
            "so set them to fit or choose another preset")


def params_from_dict(data: dict, overrides: list[str] | None = None) -> RunParams:
    """Validated parameters: overrides applied, then the preset's values for every key still unset."""
    data = json.loads(json.dumps(data or {}))  # deep copy, plain types
    for text in overrides or []:
        key, value = parse_override(text)
        _set_dotted(data, key, value)
    try:
        resolved, applied = apply_preset(data)
    except ValueError as e:
        raise ParamsError(f"invalid parameters:\n  {e}") from None
    try:
        return RunParams.model_validate(resolved)
    except ValidationError as e:
        raise ParamsError(_format_errors(e) + _preset_note(e, resolved.get("preset", "paper"), applied)) from None


def load_params(path: str | Path, overrides: list[str] | None = None) -> RunParams:
    """Read a YAML parameter file, apply `key=value` overrides, validate."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"parameter file not found: {path}")
    if path.stat().st_size > MAX_PARAMS_BYTES:
        raise ParamsError(f"{path}: {path.stat().st_size} bytes is too large for a parameter file "
                          f"(at most {MAX_PARAMS_BYTES})")
    data = read_yaml(path.read_text(errors="replace"), str(path)) or {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: the top level must be a mapping of parameters")
    return params_from_dict(data, overrides)


def params_to_dict(params: RunParams) -> dict:
    return params.model_dump(mode="json")


def params_hash(params: RunParams | dict) -> str:
    data = params_to_dict(params) if isinstance(params, RunParams) else params
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def diff_params(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted fields whose values differ between two parameter dicts."""
    out = []
    for key in sorted(set(a) | set(b)):
        name = f"{prefix}{key}"
        va, vb = a.get(key, "<missing>"), b.get(key, "<missing>")
        if isinstance(va, dict) and isinstance(vb, dict):
            out.extend(diff_params(va, vb, name + "."))
        elif va != vb:
            out.append(f"{name}: {va!r} -> {vb!r}")
    return out

