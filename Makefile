# Two commands for a fresh machine: `make train` and `make test` (each creates .venv on first use).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=
WORKERS ?= auto

$(BIN)/vaelab-installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1 || $(BIN)/pip install -q torch torchvision
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

.PHONY: install train test lint format
install: $(BIN)/vaelab-installed

train: install
	$(BIN)/python train.py $(ARGS)

# pytest-xdist: one worker per CPU, each test file on one worker (its module fixtures built once)
test: install
	$(BIN)/python -m pytest -n $(WORKERS) --dist loadfile $(ARGS)

lint: install
	$(BIN)/ruff check .

format: install
	$(BIN)/ruff format .
