"""The two recipes a run can start from: `preset: paper` (the default) and `preset: authors_code`.

`DIFFERENCES` is the table of every place where the authors' public code
(github.com/Chengsong-Huang/R-Zero @5699329, its EasyR1 fork under `verl/`)
differs from the paper (arXiv 2508.05004): the parameter, both values, what it
means and where the code value comes from. A preset is one column of it; its
values are defaults, applied to the keys a parameter file does not set, so an
explicit parameter always wins (`apply_preset`). `SHARED` lists values both
presets share that differ from a library default (TRL's, or rzero's earlier
ones): they are the parameter classes' defaults. `CONFLICTS` names the explicit
parameters a preset cannot honour together with its own values.

Uncertainty: the paper text could not be read here; paper values come from
secondary transcriptions of v1/v4 (marked P* in `paper_note`) and must be
checked against the PDF. Code values are read from the repository at the
commits named in `code_source`. README ("Paper and code") renders this table;
tests/algorithm/test_presets.py checks that each preset sets every row.
Pure Python: no rzero_lib imports, so `config` can import it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

PRESETS = ("paper", "authors_code")
DEFAULT_PRESET = "paper"
AUTHORS_REPO = "Chengsong-Huang/R-Zero@5699329"


@dataclass(frozen=True)
class Difference:
    """One paper-vs-code difference: `parameter` is `paper` in one preset and `code` in the other."""

    parameter: str  # dotted path in the run parameters
    paper: Any
    code: Any
    meaning: str
    code_source: str  # file:line in AUTHORS_REPO unless another commit is named
    paper_note: str = "P*"  # how sure the paper value is ("silent": the paper does not say; rzero's choice)

    def value(self, preset: str) -> Any:
        check_preset(preset)
        return self.paper if preset == "paper" else self.code


@dataclass(frozen=True)
class Shared:
    """A value both presets use that differs from a library default (so it is easy to miss)."""

    parameter: str
    value: Any
    library_default: str
    why: str


@dataclass(frozen=True)
class Conflict:
    """An explicit `explicit` parameter that contradicts values the preset sets for `preset_keys`."""

    preset_keys: tuple[str, ...]
    explicit: str
    reason: str


def clipping_rows(role: str) -> tuple[Difference, ...]:
    """EasyR1's clip 0.2 / 0.3 and dual clip 3.0 (never overridden by the authors' scripts) for one role."""
    source = "verl/workers/actor/config.py:82-84"
    return (Difference(f"{role}.epsilon_high", None, 0.3, "upper PPO clip (None: epsilon, symmetric 0.2)", source,
                       "silent"),
            Difference(f"{role}.delta", None, 3.0,
                       "dual clip of the ratio for negative advantages (TRL delta; None: off)", source, "silent"))


DIFFERENCES: tuple[Difference, ...] = (
    # --- Challenger reward and GRPO ---------------------------------------------------------------
    Difference("challenger_training.reward_form", "paper", "code",
               "uncertainty term and format-failure reward: paper max(0, 1-2|p̂-½| - r_rep), failure 0; "
               "code min(p̂, 1-p̂) - r_rep unclipped, failure -1 - r_rep",
               "examples/reward_function/caller_penalty.py:136-143"),
    Difference("challenger_training.batch_size", 128, 512,
               "Challenger prompts per step (rollout batch)",
               "examples/config.yaml:9 (data.rollout_batch_size)",
               "P*: 'global batch size 128', unit unclear; read as one update of 128 prompts per step"),
    Difference("challenger_training.mini_batch_size", None, 16,
               "Challenger prompts per optimizer update (None: the whole step, one update); code: 32 updates "
               "per step",
               "scripts/questioner_train_penalty.sh:32 (worker.actor.global_batch_size=16)"),
    Difference("challenger_training.micro_batch_size", None, 2,
               "Challenger completions per forward pass (None: group size); with loss_type bnpo this is the "
               "window of the token mean",
               "examples/config.yaml:30 (micro_batch_size_per_device_for_update, not overridden)", "silent"),
    Difference("challenger_training.loss_type", "grpo", "bnpo",
               "loss aggregation: grpo = per-sequence token mean, then mean; bnpo = token mean over the "
               "micro-batch (EasyR1's fork: VF.masked_mean per micro-batch)",
               "verl/trainer/core_algos.py:349, verl/workers/actor/dp_actor.py:231-273",
               "P*: the GRPO objective (per-sequence normalisation)"),
    *clipping_rows("challenger_training"),
    # --- Solver GRPO -------------------------------------------------------------------------------
    Difference("solver_training.batch_size", 128, 512,
               "Solver prompts per step (rollout batch)", "examples/config.yaml:9 (data.rollout_batch_size)",
               "P*: 'global batch size 128' (EasyR1's name for the update batch); rollout batch not stated"),
    Difference("solver_training.mini_batch_size", None, 128,
               "Solver prompts per optimizer update (None: the whole step); code: 4 updates per step",
               "examples/config.yaml:29 (worker.actor.global_batch_size)"),
    *clipping_rows("solver_training"),
    Difference("solver_training.format_weight", 0.0, 0.1,
               "Solver reward = (1-w)·accuracy + w·format (`<think>…</think>` then `\\boxed{}`)",
               "examples/reward_function/math.py:43", "P*: a binary match with the pseudo-label"),
    # --- question generation and voting ------------------------------------------------------------
    Difference("question_generation.require_challenger_answer", False, True,
               "drop Challenger outputs without a boxed answer before voting",
               "question_generate/question_generate.py:112-122", "silent"),
    Difference("voting.num_samples", 10, 9,
               "m Solver samples per question when voting (the reward keeps m = 10: "
               "challenger_training.solver_samples)",
               "question_evaluate/evaluate.py:36 (9 at HEAD and from a25db4d; 10 at 31500ac-75ab66f: which "
               "value produced the published numbers is unknown)"),
    Difference("voting.band_low", None, 0.3,
               "kept band lower bound on p̂ (None: the paper's |p̂-½| <= band_delta)",
               "scripts/solver_train.sh:15 (upload.py --min_score 0.3)", "P*: |p̂-½| <= 0.25"),
    Difference("voting.band_high", None, 0.8,
               "kept band upper bound on p̂", "scripts/solver_train.sh:15 (upload.py --max_score 0.8)",
               "P*: |p̂-½| <= 0.25"),
    Difference("voting.no_answer_vote", "exclude", "none_string",
               "a sample without a boxed answer: no vote (exclude), or the vote 'None' that can win "
               "(none_string); applies to the voting stage and the Challenger reward",
               "question_evaluate/evaluate.py:118-119; vllm_service_init/start_vllm_server.py:164",
               "P*: p̂ is the majority share of the m answers"),
    Difference("voting.merge_no_answers", False, True,
               "answers that both contain 'no ' (case-insensitive) are one group; voting stage and reward",
               "question_evaluate/evaluate.py:130; vllm_service_init/start_vllm_server.py:174", "silent"),
    Difference("voting.proof_rule", "off", "authors",
               "drop questions: authors = containing '证明' or 'box' (any case); english = a prove/show-that "
               "regex; off", "question_evaluate/evaluate.py:169-170", "silent"),
    Difference("voting.text_answer_rule", "off", "authors",
               "drop majority answers: authors = containing 'text' (any case); latex = containing '\\text'; off",
               "question_evaluate/evaluate.py:169-170", "silent"),
    Difference("voting.empty_answer_rule", "off", "authors",
               "drop majority answers: authors = exactly '' or 'None'; normalized = ''/none/null after "
               "normalisation; off", "question_evaluate/upload.py:47", "silent"),
    # --- the loop ------------------------------------------------------------------------------------
    Difference("iterations", 3, 5, "Challenger/Solver iterations", "scripts/main.sh:5-21", "P*: 3"),
)

SHARED: tuple[Shared, ...] = (
    Shared("challenger_training.weight_decay", 0.01, "TRL/transformers 0.0",
           "both references: examples/config.yaml:42 (paper P*: 1e-2). The HF Trainer exempts biases and norm "
           "weights; EasyR1 decays all parameters"),
    Shared("solver_training.weight_decay", 0.01, "TRL/transformers 0.0", "as for the Challenger"),
    Shared("challenger_training.solver_samples", 10, "rzero before: voting.num_samples",
           "m of the reward's vote is 10 in the paper and in every version of the reward server "
           "(vllm_service_init/start_vllm_server.py:49-56), independent of the voting m"),
    Shared("challenger_training.kl_bias_correction", False, "TRL use_bias_correction_kl=True",
           "both references use the plain k3 KL in the loss, not multiplied by the ratio"),
    Shared("solver_training.kl_bias_correction", False, "TRL use_bias_correction_kl=True", "as for the Challenger"),
    Shared("challenger_training.vllm_importance_sampling_correction", False, "TRL True (with use_vllm)",
           "EasyR1 (the paper's trainer) has no vLLM-vs-trainer importance-sampling correction"),
    Shared("solver_training.vllm_importance_sampling_correction", False, "TRL True (with use_vllm)",
           "as for the Challenger"),
    Shared("challenger_training.master_weights", "float32", "rzero before: the engine dtype (bf16 on GPU)",
           "EasyR1 keeps fp32 master weights under bf16 mixed precision; pure-bf16 AdamW loses most updates at "
           "lr 1e-6 (training/grpo.py, training_precision)"),
    Shared("solver_training.master_weights", "float32", "rzero before: the engine dtype", "as for the Challenger"),
    Shared("question_generation.drop_duplicates", False, "rzero before: True",
           "neither reference drops exact duplicates; the duplicate rate is reported instead"),
)

CONFLICTS: tuple[Conflict, ...] = (
    Conflict(("voting.band_low", "voting.band_high"), "voting.band_delta",
             "the preset's band bounds replace band_delta, so an explicit band_delta would be ignored; set "
             "voting.band_low and voting.band_high instead (or null both to use band_delta)"),
)


def check_preset(name: Any) -> str:
    if name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; allowed: {', '.join(PRESETS)}")
    return name


def preset_values(name: str) -> dict[str, Any]:
    """Dotted parameter -> value for every row of `DIFFERENCES` in preset `name`."""
    check_preset(name)
    return {d.parameter: d.value(name) for d in DIFFERENCES}


def has_key(data: dict, dotted: str) -> bool:
    node: Any = data
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def apply_preset(data: dict) -> tuple[dict, dict[str, Any]]:
    """(a copy of `data` with the preset's values for every key it does not set, the values applied).

    The preset is `data["preset"]` (default `paper`). A value whose section is
    not a mapping in `data` is left for validation to report. Raises
    ValueError for an unknown preset and for a `CONFLICTS` case, naming both sides.
    """
    name = check_preset(data.get("preset", DEFAULT_PRESET))
    resolved = copy.deepcopy(data)
    applied: dict[str, Any] = {}
    for dotted, value in preset_values(name).items():
        if has_key(data, dotted):
            continue
        *sections, leaf = dotted.split(".")
        node = resolved
        for key in sections:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                break
        else:
            node[leaf] = value
            applied[dotted] = value
    for conflict in CONFLICTS:
        supplied = {k: applied[k] for k in conflict.preset_keys if applied.get(k) is not None}
        if supplied and has_key(data, conflict.explicit):
            shown = ", ".join(f"{k}={v!r}" for k, v in supplied.items())
            raise ValueError(f"{conflict.explicit} is set explicitly but preset {name!r} sets {shown}: "
                             f"{conflict.reason}")
    return resolved, applied


def _shown(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def differences_markdown() -> str:
    """The README's table of `DIFFERENCES` (a test keeps the README equal to it)."""
    lines = ["| parameter | paper | authors' code | meaning | code source (`" + AUTHORS_REPO + "`) | paper value |",
             "|---|---|---|---|---|---|"]
    for d in DIFFERENCES:
        cells = [f"`{d.parameter}`", f"`{_shown(d.paper)}`", f"`{_shown(d.code)}`", d.meaning, d.code_source,
                 d.paper_note]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def shared_markdown() -> str:
    """The README's table of `SHARED` values."""
    lines = ["| parameter | both presets | library default | why |", "|---|---|---|---|"]
    for s in SHARED:
        cells = [f"`{s.parameter}`", f"`{_shown(s.value)}`", s.library_default, s.why]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
