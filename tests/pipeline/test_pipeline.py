"""The whole chain on params/smoke.yaml through the real driver and papermill.

One session-scoped run serves every assertion: it is first made to fail at
iter_01/voting on purpose (RZERO_FAIL_STAGE), then resumed, so the resume
behaviour and the finished artifacts are checked on the same run.
"""

import json
import re
import subprocess
import sys

import pandas as pd
import pytest
import torch

from rzero_lib.config import load_params
from rzero_lib.pipeline.driver import plan, prepare_run_dir
from rzero_lib.pipeline.resume import ResumeError
from rzero_lib.pipeline.stages.tables import TRAIN_COLUMNS, VOTE_COLUMNS
from rzero_lib.pipeline.status import status_rows
from tests.support import SMOKE, file_mtimes


def test_failed_stage_is_reported_with_its_notebook(smoke_run):
    msg = smoke_run["failure"]
    assert "iter_01/voting" in msg and "notebook.ipynb" in msg and "on purpose" in msg
    nb = json.loads((smoke_run["dir"] / "iter_01" / "voting" / "notebook.ipynb").read_text())
    # The failed attempt's notebook was saved with its error (it was overwritten by the resumed run
    # since; the resumed run's notebook has no error).
    assert nb["cells"]


def test_resume_skips_finished_stages(smoke_run):
    before, run_dir = smoke_run["before"], smoke_run["dir"]
    finished_before = [k for k in before if k.endswith("manifest.json")]
    assert {"iter_00/evaluation/manifest.json", "iter_01/challenger_training/manifest.json",
            "iter_01/question_generation/manifest.json"} <= set(finished_before)
    assert "iter_01/voting/manifest.json" not in finished_before
    after = file_mtimes(run_dir)
    for key in finished_before:  # not re-executed: manifests and notebooks untouched
        assert after[key] == before[key], key
        nb = key.replace("manifest.json", "notebook.ipynb")
        assert after[nb] == before[nb], nb


def test_every_manifest_and_table(smoke_run):
    run_dir = smoke_run["dir"]
    for stage in plan(smoke_run["params"]):
        folder = run_dir / ("report" if stage.stage == "analysis" else stage.key)
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["stage"] == stage.stage and manifest["params_hash"] and manifest["versions"]["trl"]
        assert (folder / "notebook.ipynb").exists()
    votes = pd.read_parquet(run_dir / "iter_01/voting/votes.parquet")
    assert list(votes.columns) == VOTE_COLUMNS and len(votes) > 0
    assert set(votes["drop_reason"].dropna()) <= {"no_answer", "empty_majority", "proof_question", "text_answer",
                                                  "outside_band"}
    train = pd.read_parquet(run_dir / "iter_01/voting/solver_train.parquet")
    assert list(train.columns) == TRAIN_COLUMNS and len(train) == int(votes["kept"].sum()) > 0
    questions = pd.read_parquet(run_dir / "iter_01/question_generation/questions.parquet")
    assert len(questions) == smoke_run["params"].question_generation.num_questions
    assert {"question", "challenger_answer", "parse_failure", "drop_reason", "kept"} <= set(questions.columns)
    scores = pd.read_parquet(run_dir / "iter_01/evaluation/scores.parquet")
    assert {"benchmark", "n", "accuracy", "stderr", "limit", "decoding"} <= set(scores.columns)
    samples = pd.read_parquet(run_dir / "iter_01/evaluation/samples.parquet")
    assert {"id", "response", "extracted", "gold", "correct", "timed_out"} <= set(samples.columns)
    state = json.loads((run_dir / "state.json").read_text())
    assert state["stages"]["iter_01/voting"]["done"]
    assert not list(run_dir.rglob("*.partial"))


def test_solver_of_iteration_one_differs_from_base(smoke_run):
    from rzero_lib.engine.models import load_model

    base, _ = load_model("builtin:tiny-random")
    solver, _ = load_model(str(smoke_run["dir"] / "iter_01/solver_training/model"))
    assert any(not torch.equal(a, b) for a, b in zip(base.parameters(), solver.parameters()))


def test_analysis_report_exists(smoke_run):
    report = smoke_run["dir"] / "report"
    pngs = list(report.glob("*.png"))
    assert pngs, "the analysis writes its figures as PNG"
    assert all(p.stat().st_size > 2000 for p in pngs)
    assert (report / "report.html").exists() and (report / "summary.json").exists()


def test_report_html_reads_as_a_report(smoke_run):
    """A title, figures with their titles as alt text, no code or script, no machine path, no explorer."""
    from html import unescape

    html = (smoke_run["dir"] / "report" / "report.html").read_text()
    summary = json.loads((smoke_run["dir"] / "report" / "summary.json").read_text())
    assert "<title>R-Zero run report: smoke</title>" in html
    alts = [unescape(a) for a in re.findall(r'<img [^>]*alt="([^"]*)"', html)]
    assert alts == [f["title"] for f in summary["figures"].values()]
    assert "<script" not in html and not re.search(r'class="[^"]*(jp-InputArea-editor|hl-ipython3)', html)
    assert str(smoke_run["dir"]) not in html and "Interactive explorer" not in html
    assert "The label sample" in html and "Oracle</strong>: arithmetic (exact)" in html


def test_stage_notebooks_show_each_figure_once(smoke_run):
    def images(stage: str) -> list[int]:
        nb = json.loads((smoke_run["dir"] / "iter_01" / stage / "notebook.ipynb").read_text())
        return [i for i, c in enumerate(nb["cells"]) for o in c.get("outputs", []) if "image/png" in o.get("data", {})]

    for stage in ("challenger_training", "voting", "solver_training"):
        shown = images(stage)
        assert len(shown) == 1, f"{stage}: figures in cells {shown}"


def test_status_table(smoke_run):
    rows = status_rows(smoke_run["dir"])
    assert all(r["state"] == "done" for r in rows)
    out = subprocess.run([sys.executable, "-m", "rzero_lib.pipeline.cli", "status", str(smoke_run["dir"])],
                         capture_output=True, text=True, check=True).stdout
    assert "iter_01/voting" in out and "in band" in out


def test_manifests_record_the_engines_and_the_measured_resources(smoke_run):
    """What `rzero status --engines` (and `make rehearsal`) prints: the engine each stage used, from its
    manifest, and the driver's measurements of the stage's process tree."""
    run_dir = smoke_run["dir"]
    manifests = {s.key: json.loads((run_dir / ("report" if s.stage == "analysis" else s.key) / "manifest.json")
                                   .read_text()) for s in plan(smoke_run["params"])}
    for key, manifest in manifests.items():
        resources = manifest["resources"]
        assert resources["wall_seconds"] >= manifest["seconds"] > 0, key
        assert resources["cpu_seconds"] > 0 and resources["peak_memory_mib"] > 100, (key, resources)  # a torch kernel
    for key in ("iter_00/evaluation", "iter_01/question_generation", "iter_01/voting", "iter_01/evaluation"):
        assert manifests[key]["summary"]["generation"]["engine"] == {"backend": "transformers"}, key
    for key in ("iter_01/challenger_training", "iter_01/solver_training"):
        engine = manifests[key]["summary"]["engine"]
        assert (engine["rollouts"], engine["weight_sync"], engine["launcher"], engine["processes"], engine["lora"],
                engine["device"]) == ("transformers", None, "in_process", 1, False, "cpu"), key
    assert manifests["iter_01/challenger_training"]["summary"]["engine"]["solver"] == {"service": "in_process",
                                                                                        "backend": "transformers"}
    out = subprocess.run([sys.executable, "-m", "rzero_lib.pipeline.cli", "status", str(run_dir), "--engines"],
                         capture_output=True, text=True, check=True).stdout
    assert "rollouts transformers, in-process x1 on cpu, full, Solver transformers (in-process)" in out
    assert "iter_01/voting" in out and out.strip().splitlines()[-1].startswith("total")


def test_changed_parameters_are_refused_naming_the_stage(smoke_run):
    changed = load_params(SMOKE, ["voting.num_samples=6"])
    with pytest.raises(ResumeError, match="iter_01/voting: it ran with other parameters: voting.num_samples: 4 -> 6"):
        prepare_run_dir(changed, smoke_run["dir"])


def test_fresh_starts_a_new_directory(smoke_run, tmp_path):
    changed = load_params(SMOKE, ["voting.num_samples=6"])
    run = prepare_run_dir(changed, smoke_run["dir"], fresh=True)
    assert run.path != smoke_run["dir"] and run.path.name.startswith("smoke-") and run.exists()
    import shutil

    shutil.rmtree(run.path)


def test_cli_rejects_bad_parameters_naming_the_field(tmp_path):
    r = subprocess.run([sys.executable, "-m", "rzero_lib.pipeline.cli", "run", str(SMOKE), "--run-dir", str(tmp_path / "x"),
                        "--set", "voting.band_delta=0.9"], capture_output=True, text=True)
    assert r.returncode == 2 and "voting.band_delta" in r.stderr
    assert not (tmp_path / "x").exists(), "nothing is created before the parameters validate"


def test_export_html_false_writes_no_report_html(smoke_run, tmp_path):
    """`analysis.export_html: false`: the report stage commits its notebook without report.html (an earlier
    report.html, which would not match the new notebook, is removed)."""
    import shutil

    from rzero_lib.pipeline.driver import run_pipeline

    run_dir = tmp_path / "copy"
    shutil.copytree(smoke_run["dir"], run_dir)
    (run_dir / "report" / "manifest.json").unlink()  # the report is the one stage left to run
    assert (run_dir / "report" / "report.html").exists()
    run_pipeline(load_params(SMOKE, ["analysis.export_html=false"]), run_dir, progress=False)
    manifest = json.loads((run_dir / "report" / "manifest.json").read_text())
    assert "report.html" not in manifest["outputs"] and not (run_dir / "report" / "report.html").exists()
    assert (run_dir / "report" / "summary.json").exists()
