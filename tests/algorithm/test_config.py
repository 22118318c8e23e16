
import time

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
    # TRL's server mode has no server rzero starts or knows of: refused before anything waits on one
    ({**BASE, "solver_training": {"use_vllm": True, "vllm_mode": "server"}}, "vllm_mode: server"),
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


BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9) if p else ', '.join(['lol'] * 9)}]\n"
               for p, c in zip([None, *"abcdefgh"], "abcdefghi"))


def test_yaml_aliases_are_refused_fast_and_small(tmp_path):
    import tracemalloc

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB)  # a billion laughs in a few hundred bytes
    assert len(BOMB) < 500
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(ParamsError, match="aliases"):
        load_params(bomb)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert seconds < 1.0 and peak < 20 << 20
    with pytest.raises(ParamsError, match="aliases"):
        params_from_dict(BASE, ["voting.num_samples=*a"])


def test_deep_or_huge_yaml_is_refused(tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ParamsError, match="deep.yaml"):
        load_params(deep)
    huge = tmp_path / "huge.yaml"
    huge.write_text("run_name: t\n#" + "x" * (2 << 20))
    with pytest.raises(ParamsError, match="too large"):
        load_params(huge)


@pytest.mark.parametrize("override, field", [
    ("voting.num_samples=1000000000", "voting.num_samples"),
    ("voting.temperature=.inf", "voting.temperature"),
    ("voting.temperature=.nan", "voting.temperature"),
    ("question_generation.top_p=.nan", "question_generation.top_p"),
    ("challenger_training.max_new_tokens=100000000", "challenger_training.max_new_tokens"),
    ("question_generation.num_questions=100000000000", "question_generation.num_questions"),
    ("engine.generation_batch_size=10000000", "engine.generation_batch_size"),
    ("solver_training.batch_size=10000000", "solver_training.batch_size"),
    ("iterations=100000", "iterations"),
    ("evaluation.num_samples={aime24: 100000}", "evaluation.num_samples.aime24"),
    ("challenger_training.learning_rate=.inf", "challenger_training.learning_rate"),
    ("voting.equivalence_timeout_s=1e12", "voting.equivalence_timeout_s"),
])
def test_resources_are_bounded_naming_the_field(override, field):
    with pytest.raises(ParamsError) as e:
        params_from_dict(BASE, [override])
    assert field in str(e.value)


def test_python_tags_are_refused(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("run_name: t\nmodel: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ParamsError, match="evil.yaml: not valid YAML"):
        load_params(evil)


def test_rehearsal_sets_every_engine_switch_of_the_gpu_recipes():
    """params/rehearsal.yaml (`make rehearsal`, scripts/gpu_smoke.sh) must keep exercising what the GPU recipes
    switch on: a switch a recipe sets and the rehearsal drops would reach the first GPU hour untested."""
    rehearsal = load_params(PARAMS / "rehearsal.yaml")
    recipes = [load_params(PARAMS / name) for name in ("paper_qwen3_4b.yaml", "single_gpu_qwen3_4b.yaml")]
    assert rehearsal.engine.backend == "vllm" and all(r.engine.backend in ("auto", "vllm") for r in recipes)
    assert rehearsal.iterations >= 2  # iteration 2 starts from iteration 1's adapters: the chain reaches vLLM
    for role in ("challenger_training", "solver_training"):
        ours = getattr(rehearsal, role)
        for recipe in recipes:
            theirs = getattr(recipe, role)
            assert ours.use_vllm or not theirs.use_vllm, role
            assert ours.vllm_mode == theirs.vllm_mode == "colocate", role
            assert ours.lora.enabled or not theirs.lora.enabled, role
    served = [r.challenger_training.solver_service for r in recipes]
    assert rehearsal.challenger_training.solver_service in served
    launched = [getattr(rehearsal, role) for role in ("challenger_training", "solver_training")
                if getattr(rehearsal, role).launcher == "accelerate"]
    assert any(p.num_processes and p.num_processes > 1 and p.accelerate_config == "cpu" for p in launched)
