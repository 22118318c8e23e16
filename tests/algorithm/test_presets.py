"""The presets: every row of the paper-vs-code table is set by its preset, explicit values win, bad
combinations fail naming both sides, and the README shows the table the code uses."""

from __future__ import annotations

import pytest
import yaml

from rzero_lib import presets
from rzero_lib.config import ParamsError, RunParams, params_from_dict, params_to_dict
from rzero_lib.presets import DIFFERENCES, PRESETS, SHARED
from tests.support import PARAMS, REPO_ROOT

BASE = {"run_name": "t", "model": "builtin:tiny-random"}


def value_at(params: RunParams, dotted: str):
    node = params
    for key in dotted.split("."):
        node = getattr(node, key)
    return node


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("row", DIFFERENCES, ids=lambda d: d.parameter)
def test_each_preset_sets_each_difference(row, preset):
    params = params_from_dict({**BASE, "preset": preset})
    assert value_at(params, row.parameter) == row.value(preset)
    assert row.paper != row.code, "a row of the table is a difference"


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("row", SHARED, ids=lambda s: s.parameter)
def test_shared_values_hold_in_both_presets(row, preset):
    assert value_at(params_from_dict({**BASE, "preset": preset}), row.parameter) == row.value


def test_class_defaults_are_the_paper_column():
    """Without any preset machinery the parameter classes give the paper's values (and paper is the default)."""
    plain = RunParams.model_validate(BASE)
    assert plain.preset == "paper" and params_from_dict(BASE).preset == "paper"
    for row in DIFFERENCES:
        assert value_at(plain, row.parameter) == row.paper, row.parameter


def test_explicit_values_win_over_the_preset():
    p = params_from_dict({**BASE, "preset": "authors_code", "voting": {"num_samples": 10},
                          "solver_training": {"loss_type": "dapo"}}, ["challenger_training.epsilon_high=0.25"])
    assert p.voting.num_samples == 10 and p.solver_training.loss_type == "dapo"
    assert p.challenger_training.epsilon_high == 0.25
    assert p.voting.band_bounds == (0.3, 0.8) and p.challenger_training.reward_form == "code"  # the rest: code
    # an explicit null is a value too
    assert params_from_dict({**BASE, "preset": "authors_code"}, ["solver_training.delta=null"]).solver_training.delta is None


def test_the_reward_keeps_its_own_m():
    code = params_from_dict({**BASE, "preset": "authors_code"})
    assert (code.voting.num_samples, code.challenger_training.solver_samples) == (9, 10)
    assert params_from_dict(BASE, ["voting.num_samples=9"]).challenger_training.solver_samples == 10


def test_unknown_preset_names_the_field_and_the_choices():
    with pytest.raises(ParamsError) as e:
        params_from_dict({**BASE, "preset": "authors"})
    assert "preset" in str(e.value) and "paper" in str(e.value) and "authors_code" in str(e.value)


def test_contradiction_the_preset_cannot_honour_names_both():
    with pytest.raises(ParamsError) as e:
        params_from_dict({**BASE, "preset": "authors_code", "voting": {"band_delta": 0.2}})
    assert "voting.band_delta" in str(e.value) and "voting.band_low" in str(e.value)
    assert "authors_code" in str(e.value)
    # the paper preset has no bounds to contradict; explicit bounds with the paper preset are honoured
    assert params_from_dict({**BASE, "voting": {"band_delta": 0.2}}).voting.band_delta == 0.2
    assert params_from_dict({**BASE, "voting": {"band_low": 0.1, "band_high": 0.9}}).voting.band_bounds == (0.1, 0.9)
    # bounds given explicitly together with band_delta are the user's own choice, not a preset conflict
    both = {**BASE, "preset": "authors_code", "voting": {"band_delta": 0.2, "band_low": 0.3, "band_high": 0.7}}
    assert params_from_dict(both).voting.band_bounds == (0.3, 0.7)


def test_a_validation_error_caused_by_a_preset_value_names_it():
    with pytest.raises(ParamsError) as e:
        params_from_dict({**BASE, "preset": "authors_code", "solver_training": {"batch_size": 4}})
    message = str(e.value)
    assert "batch_size (4)" in message and "solver_training.mini_batch_size=128" in message
    assert "solver_training.format_weight" not in message  # only the values involved


@pytest.mark.parametrize("preset", PRESETS)
def test_resolved_parameters_round_trip(preset):
    """A run freezes the resolved parameters; reading them back changes nothing (resume compares them)."""
    resolved = params_to_dict(params_from_dict({**BASE, "preset": preset}))
    assert params_to_dict(params_from_dict(resolved)) == resolved


def test_paper_recipe_file_leaves_every_preset_key_to_the_preset():
    """So that one `preset` switch changes all of them."""
    data = yaml.safe_load((PARAMS / "paper_qwen3_4b.yaml").read_text())
    assert data["preset"] == "paper"
    set_here = [row.parameter for row in DIFFERENCES if presets.has_key(data, row.parameter)]
    assert not set_here
    p = params_from_dict(data)
    assert p.evaluation.benchmarks == ["amc23", "minerva_math", "math500", "gsm8k", "olympiadbench", "aime25",
                                       "aime24", "mmlu_pro", "supergpqa", "bbeh"]
    assert p.evaluation.judge.model == "gpt-4o" and p.evaluation.judge.temperature == 0.1


def test_readme_shows_the_tables_the_code_uses():
    readme = (REPO_ROOT / "README.md").read_text()
    assert presets.differences_markdown() in readme
    assert presets.shared_markdown() in readme
