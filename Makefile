# Attention, Step by Step. Two commands for learners: `make lab` and `make test`.
# The environment (.venv) is created from uv.lock on first use; uv itself is
# bootstrapped into .tools/ when it is not installed.

SHELL := /bin/bash
UV_VERSION := 0.13.8
# The course's Python: a version (`make lab PYTHON=3.13`) or an interpreter's path. Empty: any
# installed 3.11-3.13 (pyproject's requires-python). uv uses an installed interpreter when one
# matches and downloads one of its own when none does; a different PYTHON rebuilds .venv.
PYTHON ?=
# the interpreter that bootstraps uv into .tools/ when uv is not installed (any Python 3)
BOOTSTRAP_PYTHON ?= python3
VENV := .venv
UV := $(shell command -v uv 2>/dev/null || echo .tools/uv/bin/uv)
LAB_ARGS ?=
# the folder JupyterLab serves (tests point it at a temporary copy)
CHAPTERS ?= chapters
PYTEST_ARGS ?=
# requirements.txt: the lock, hashed, without d2l (its hard pins stop pip: README, pip route)
EXPORT_ARGS := --frozen --no-emit-project --no-header --no-group reference --format requirements-txt
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

# the stamp names the PYTHON it was built for, so that choosing another one re-syncs
# (uv recreates .venv when its interpreter does not match the request)
STAMP := $(VENV)/.installed$(if $(PYTHON),-$(subst /,_,$(PYTHON)))

env: $(STAMP)

$(STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen $(if $(PYTHON),--python $(PYTHON))
	@rm -f $(VENV)/.installed*
	@touch $@

# from PyPI with any Python 3; on a machine without one, uv's standalone installer
.tools/uv/bin/uv:
	if command -v $(BOOTSTRAP_PYTHON) >/dev/null; then \
	  $(BOOTSTRAP_PYTHON) -m venv .tools/uv && \
	  .tools/uv/bin/python -m pip install --quiet uv==$(UV_VERSION); \
	else \
	  curl -LsSf https://astral.sh/uv/$(UV_VERSION)/install.sh | \
	    env UV_UNMANAGED_INSTALL=$(CURDIR)/.tools/uv/bin sh; \
	fi

lock: | $(UV)  ## after editing pyproject.toml: update uv.lock and requirements.txt
	$(UV) lock
	$(UV) export $(EXPORT_ARGS) -o requirements.txt

clean:
	rm -rf $(VENV) .tools
