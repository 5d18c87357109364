# Attention, Step by Step. Two commands for learners: `make lab` and `make test`.
# The environment (.venv) is created from uv.lock on first use; uv itself is
# bootstrapped into .tools/ when it is not installed.

SHELL := /bin/bash
UV_VERSION := 0.13.8
PYTHON ?= python3
VENV := .venv
UV := $(shell command -v uv 2>/dev/null || echo .tools/uv/bin/uv)
LAB_ARGS ?=
# the folder JupyterLab serves (tests point it at a temporary copy)
CHAPTERS ?= chapters
PYTEST_ARGS ?=
# uv must use the machine's Python 3.11, never download one
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# compile .pyc files at install time: every notebook kernel imports torch, and without a
# bytecode cache (PYTHONDONTWRITEBYTECODE is set on some machines) each import recompiles it
export UV_COMPILE_BYTECODE := 1

.PHONY: lab test lint unit notebooks release env lock doctor clean

# Jupyter refuses to run as root without --allow-root (containers, CI machines)
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: env  ## open JupyterLab on the course
	$(VENV)/bin/jupyter lab --notebook-dir=$(CHAPTERS) $(ROOT_FLAG) $(LAB_ARGS)

test: env lint  ## lint, unit tests, and nbval over solutions/ and chapters/ (smoke profile)
	COURSE_PROFILE=smoke OMP_NUM_THREADS=1 $(VENV)/bin/pytest -n 2 --dist loadfile \
	  --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
	  --nbval-cell-timeout 120 $(PYTEST_ARGS) tests solutions chapters

lint: env
	$(VENV)/bin/ruff check .

release: env  ## re-run the solutions, then write chapters/ from them
	$(VENV)/bin/attn release --execute-solutions

doctor: env
	$(VENV)/bin/attn doctor

env: $(VENV)/.installed

$(VENV)/.installed: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python 3.11
	@touch $@

.tools/uv/bin/uv:
	$(PYTHON) -m venv .tools/uv
	.tools/uv/bin/python -m pip install --quiet uv==$(UV_VERSION)

lock: | $(UV)  ## after editing pyproject.toml: update uv.lock and requirements.txt
	$(UV) lock
	$(UV) export --frozen --no-emit-project --no-header --format requirements-txt -o requirements.txt

clean:
	rm -rf $(VENV) .tools
