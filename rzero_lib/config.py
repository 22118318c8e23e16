"""Typed run parameters (pydantic), loaded from YAML and validated before anything loads.

`RunParams` holds every section the stages use; `load_params(path, overrides)`
applies `key.path=value` overrides through the same validation, and a bad field
fails at once naming the dotted field and what is allowed. Model specs are
checked without loading (`rzero_lib.model_specs`). Defaults are the paper's;
the authors' code variants are parameters (docs/algorithm.md, "Paper and code").
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rzero_lib.labelled_data import check_dataset_spec
from rzero_lib.model_specs import validate_model_spec


class ParamsError(ValueError):
    """Invalid parameters; the message names every bad field."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------
# shared pieces
# --------------------------------------------------------------------------


class LoraParams(Section):
    enabled: bool = False
    r: int = Field(16, ge=1, le=1024)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class PromptParams(Section):
    """A role's prompt. `None` fields take the domain's default."""

    system: str | None = None
    user: str | None = None
    # Explicit (user, assistant) demonstrations, or generated ones from the
    # domain's problem generator when `num_demonstrations` > 0.
    demonstrations: list[tuple[str, str]] | None = None
    num_demonstrations: int = Field(0, ge=0, le=16)


class PromptsParams(Section):
    challenger: PromptParams = PromptParams()
    solver: PromptParams = PromptParams()


class EngineParams(Section):
    backend: Literal["auto", "transformers", "vllm"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    generation_batch_size: int = Field(64, ge=1, description="sequences per transformers generate() call")
    # vLLM (GPU) settings
    tensor_parallel_size: int = Field(1, ge=1)
    data_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=1.0)
    max_model_len: int | None = Field(None, ge=128)
    enforce_eager: bool = False
    # More than one node: vLLM's own multi-node execution (a Ray cluster spanning the nodes; pipeline stages
    # across nodes, tensor parallelism inside a node). "auto" leaves the choice to vLLM.
    pipeline_parallel_size: int = Field(1, ge=1)
    distributed_executor_backend: Literal["auto", "mp", "ray"] = "auto"


class GRPOParams(Section):
    """GRPO settings shared by both roles (TRL GRPOTrainer underneath)."""

    steps: int = Field(5, ge=1, description="generation rounds (paper 'steps')")
    batch_size: int = Field(16, ge=1, description="prompts per step")
    mini_batch_size: int | None = Field(None, ge=1, description="prompts per optimizer update (None: batch_size)")
    group_size: int = Field(4, ge=2, description="completions per prompt (GRPO group)")
    micro_batch_size: int | None = Field(None, ge=1, description="completions per forward pass (None: group_size)")
    learning_rate: float = Field(1e-6, gt=0.0, le=1.0)
    beta: float = Field(0.01, ge=0.0, description="KL coefficient; the reference is the phase's start model")
    temperature: float = Field(1.0, gt=0.0, le=5.0)
    top_p: float = Field(0.99, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0)
    max_new_tokens: int = Field(512, ge=1)
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] = "grpo"
    epsilon: float = Field(0.2, gt=0.0, le=1.0, description="PPO clip range")
    scale_rewards: Literal["group", "batch", "none"] = "group"
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    gradient_checkpointing: bool = False
    lora: LoraParams = LoraParams()
    # Scale path: vLLM rollouts inside TRL, and multi-GPU launch.
    use_vllm: bool = False
    vllm_mode: Literal["colocate", "server"] = "colocate"
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0.0, le=1.0)
    launcher: Literal["auto", "in_process", "accelerate"] = "auto"
    accelerate_config: str | None = Field(None, description="zero2 | zero3 | fsdp | multinode | a path")
    num_processes: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _batch_shapes(self):
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
    enabled: bool = Field(True, description="false: the untrained-Challenger baseline (base weights)")
    reward_form: Literal["paper", "code"] = "paper"
    penalty_weight: float = Field(1.0, ge=0.0, description="λ of the repetition penalty (0 disables it)")
    penalty_threshold: float = Field(0.5, gt=0.0, le=1.0, description="τ, BLEU-distance clustering threshold")
    # The frozen Solver that scores the Challenger's questions.
    solver_samples: int | None = Field(None, ge=1, description="m for the reward (None: voting.num_samples)")
    solver_temperature: float = Field(1.0, ge=0.0)
    solver_top_p: float = Field(1.0, gt=0.0, le=1.0)
    solver_top_k: int | None = Field(40, ge=0)
    solver_max_new_tokens: int = Field(512, ge=1)
    solver_service: Literal["in_process", "vllm_server"] = "in_process"
    solver_server_gpus: str | None = Field(None, description="CUDA_VISIBLE_DEVICES for the Solver server")
    solver_server_gpu_memory_utilization: float | None = Field(
        None, gt=0.0, le=1.0, description="GPU memory share of the Solver server (None: engine's); set it when "
                                          "the server shares a GPU with training")


class SolverTrainingParams(GRPOParams):
    format_weight: float = Field(0.0, ge=0.0, le=1.0, description="authors' code: 0.1")
    label_source: Literal["majority", "oracle"] = "majority"
    max_questions: int | None = Field(None, ge=1)


class QuestionGenerationParams(Section):
    num_questions: int = Field(8000, ge=1, description="N candidates")
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0)
    max_new_tokens: int = Field(1024, ge=1)
    drop_duplicates: bool = Field(True, description="mark exact duplicate questions as dropped")


class VotingParams(Section):
    num_samples: int = Field(10, ge=1, description="m Solver samples per question")
    band_delta: float = Field(0.25, ge=0.0, le=0.5, description="keep |p̂ − ½| ≤ δ")
    band_low: float | None = Field(None, ge=0.0, le=1.0, description="authors' code: 0.3 (overrides δ)")
    band_high: float | None = Field(None, ge=0.0, le=1.0, description="authors' code: 0.8")
    apply_band: bool = Field(True, description="false: the no-band-filter ablation")
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int | None = Field(40, ge=0)
    max_new_tokens: int = Field(1024, ge=1)
    drop_proof_questions: bool = True
    drop_empty_majority: bool = True
    drop_text_answers: bool = True
    equivalence_timeout_s: float = Field(5.0, gt=0.0)

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


class EvaluationParams(Section):
    enabled: bool = True
    benchmarks: list[str] = Field(default_factory=lambda: ["arithmetic"])
    data_dir: str | None = Field(None, description="offline benchmark JSONL folder (else $RZERO_BENCHMARKS_DIR, "
                                                   "else the hub)")
    limit: int | None = Field(None, ge=1, description="fixed-seed subsample per benchmark")
    max_new_tokens: int | None = Field(None, ge=1, description="None: each benchmark's default")
    num_samples: dict[str, int] = Field(default_factory=dict, description="per-benchmark samples (paper: 32 "
                                                                          "for AMC/AIME)")
    sample_temperature: float = Field(0.6, gt=0.0)
    sample_top_p: float = Field(0.95, gt=0.0, le=1.0)
    judge: JudgeParams = JudgeParams()


class OracleParams(Section):
    kind: Literal["none", "arithmetic", "model", "openai"] = "none"
    model: str | None = Field(None, description="model spec (kind=model) or model name (kind=openai)")
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    samples: int = Field(1, ge=1, description="kind=model: majority of k samples (1 = greedy)")
    max_new_tokens: int = Field(1024, ge=1)


class AnalysisParams(Section):
    oracle: OracleParams = OracleParams()
    label_sample_size: int = Field(200, ge=1)
    solver_difficulty_samples: int = Field(4, ge=1, description="samples per question for difficulty accuracy")
    export_html: bool = True


class VerifierParams(Section):
    enabled: bool = False
    kind: Literal["self", "model"] = "self"
    model: str | None = None
    samples: int = Field(4, ge=1, description="k verification samples; the yes-fraction is the confidence")
    policy: Literal["threshold", "weight"] = "threshold"
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    temperature: float = Field(1.0, ge=0.0)
    max_new_tokens: int = Field(256, ge=1)
    # The verification prompt; None = rzero_lib.verifier's (an empty system prompt sends no system turn).
    system: str | None = None
    user: str | None = Field(None, description="must contain {question} and {solution}")

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


class SupervisedTrainingParams(GRPOParams):
    """The optional supervised stage after the last iteration (docs/supervised.md): GRPO with the gold answers as
    labels (the Solver's GRPO and reward) or SFT on worked solutions, then the iterations' evaluation."""

    enabled: bool = False
    dataset: LabelledDatasetParams = LabelledDatasetParams()
    start_from: Literal["last_solver", "base"] = Field(
        "last_solver", description="base: the labelled-only control (R-Zero's iterations are not run)")
    method: Literal["grpo", "sft"] = "grpo"
    format_weight: float = Field(0.0, ge=0.0, le=1.0, description="GRPO: the Solver's format term")
    max_questions: int | None = Field(None, ge=1, description="a seeded subsample of the usable rows")
    evaluation_overlap: Literal["drop", "refuse"] = Field(
        "drop", description="training questions that are evaluation questions: dropped (counted) or refused")
    sft_max_length: int = Field(2048, ge=8, description="SFT: tokens per prompt + solution (longer is cut)")

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
    run_name: str = Field(..., min_length=1, max_length=100)
    seed: int = Field(0, ge=0)
    iterations: int = Field(3, ge=1, le=100)
    model: str
    domain: Literal["math", "arithmetic"] = "math"
    kernel_name: str = "python3"
    engine: EngineParams = EngineParams()
    prompts: PromptsParams = PromptsParams()
    challenger_training: ChallengerTrainingParams = ChallengerTrainingParams()
    question_generation: QuestionGenerationParams = QuestionGenerationParams()
    voting: VotingParams = VotingParams()
    solver_training: SolverTrainingParams = SolverTrainingParams(group_size=5, batch_size=128, steps=15)
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
        return validate_model_spec(v)

    @property
    def solver_samples_for_reward(self) -> int:
        return self.challenger_training.solver_samples or self.voting.num_samples


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
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ParamsError(f"override '{text}': value is not valid YAML ({e})") from e
    return key, value


def params_from_dict(data: dict, overrides: list[str] | None = None) -> RunParams:
    data = json.loads(json.dumps(data or {}))  # deep copy, plain types
    for text in overrides or []:
        key, value = parse_override(text)
        _set_dotted(data, key, value)
    try:
        return RunParams.model_validate(data)
    except ValidationError as e:
        raise ParamsError(_format_errors(e)) from None


def load_params(path: str | Path, overrides: list[str] | None = None) -> RunParams:
    """Read a YAML parameter file, apply `key=value` overrides, validate."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"parameter file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {e}") from e
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

