# Two commands do everything: `make demo` and `make test` (each sets up what it needs).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.semgalamm-installed

.PHONY: setup demo test test-fast lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m semgalamm.demo

test: $(STAMP)
	$(PY) -m ruff check semgalamm tests benchmarks
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

lint: $(STAMP)
	$(PY) -m ruff check semgalamm tests benchmarks

# `make bench` times our fits beside lme4, galamm and lavaan (live when R has them, else the
# stored figures); options through BENCH, e.g. make bench BENCH="--no-peers --only KYPS".
bench: $(STAMP)
	$(PY) benchmarks/run.py $(BENCH)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
