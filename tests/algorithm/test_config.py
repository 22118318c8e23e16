
import pytest

from rzero_lib.config import (
    ParamsError,
    diff_params,
    load_params,
    params_from_dict,
    params_hash,
    params_to_dict,
)
from tests.support import PARAMS

BASE = {"run_name": "t", "model": "builtin:tiny-random"}


def test_defaults_are_the_paper_recipe():
    p = params_from_dict(BASE)
    assert p.voting.num_samples == 10 and p.voting.band_delta == 0.25
    assert p.question_generation.num_questions == 8000
    c, s = p.challenger_training, p.solver_training
    assert (c.group_size, c.learning_rate, c.beta, c.steps, c.temperature, c.top_p) == (4, 1e-6, 0.01, 5, 1.0, 0.99)
    assert (s.group_size, s.learning_rate, s.beta, s.steps, s.batch_size) == (5, 1e-6, 0.01, 15, 128)
    assert c.reward_form == "paper" and s.format_weight == 0.0


@pytest.mark.parametrize("data, field", [
    ({**BASE, "voting": {"num_samples": 0}}, "voting.num_samples"),
    ({**BASE, "voting": {"band_delta": 0.7}}, "voting.band_delta"),
    ({**BASE, "voting": {"num_sample": 3}}, "voting.num_sample"),
    ({**BASE, "solver_training": {"learning_rate": "fast"}}, "solver_training.learning_rate"),
    ({**BASE, "challenger_training": {"reward_form": "mine"}}, "challenger_training.reward_form"),
    ({**BASE, "domain": "chemistry"}, "domain"),
    ({**BASE, "iterations": 0}, "iterations"),
    ({"model": "builtin:tiny-random"}, "run_name"),
    ({**BASE, "model": "builtin:nope"}, "model"),
    ({**BASE, "model": "./no/such/folder"}, "model"),
    ({**BASE, "run_name": "bad name/.."}, "run_name"),
    ({**BASE, "challenger_training": {"batch_size": 6, "mini_batch_size": 4}}, "challenger_training"),
])
def test_errors_name_the_field(data, field):
    with pytest.raises(ParamsError) as e:
        params_from_dict(data)
    assert field in str(e.value)


def test_overrides_go_through_validation():
    p = params_from_dict(BASE, ["voting.num_samples=6", "challenger_training.lora.enabled=true"])
    assert p.voting.num_samples == 6 and p.challenger_training.lora.enabled
    with pytest.raises(ParamsError, match="voting.num_samples"):
        params_from_dict(BASE, ["voting.num_samples=-1"])
    with pytest.raises(ParamsError, match="key.path=value"):
        params_from_dict(BASE, ["voting.num_samples"])
    with pytest.raises(ParamsError, match="nonexistent"):
        params_from_dict(BASE, ["nonexistent.field=1"])


def test_hash_and_diff():
    a = params_to_dict(params_from_dict(BASE))
    b = params_to_dict(params_from_dict(BASE, ["voting.num_samples=6"]))
    assert params_hash(a) != params_hash(b)
    assert diff_params(a, b) == ["voting.num_samples: 10 -> 6"]


@pytest.mark.parametrize("name", sorted(p.name for p in (PARAMS).glob("*.yaml")))
def test_shipped_parameter_files_validate(name):
    load_params(PARAMS / name)


def test_missing_file():
    with pytest.raises(ParamsError, match="not found"):
        load_params("/no/such/params.yaml")


def test_vllm_multinode_settings_reach_the_engine_only_when_set():
    from rzero_lib.config import EngineParams
    from rzero_lib.engine.generation import vllm_cluster_kwargs

    assert vllm_cluster_kwargs(EngineParams()) == {}
    engine = EngineParams(tensor_parallel_size=8, pipeline_parallel_size=2, distributed_executor_backend="ray")
    assert vllm_cluster_kwargs(engine) == {"pipeline_parallel_size": 2, "distributed_executor_backend": "ray"}
    with pytest.raises(ValueError, match="distributed_executor_backend"):
        EngineParams(distributed_executor_backend="slurm")
