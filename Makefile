# Three verbs: make demo, make test, make check.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install demo test check bench wandb-conformance clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/runbase demo

test: install
	bash scripts/with-postgres.sh bash scripts/with-chromium.sh $(PY) -m pytest

check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: install
	bash benchmarks/setup_peers.sh
	.bench-venv/bin/python benchmarks/bench_ingest.py
	.bench-venv/bin/python benchmarks/bench_query.py
	bash scripts/with-postgres.sh .bench-venv/bin/python benchmarks/bench_server.py
	.bench-venv/bin/python benchmarks/bench_history.py
	.bench-venv/bin/python benchmarks/bench_curves.py
	.bench-venv/bin/python benchmarks/bench_export.py
	.bench-venv/bin/python benchmarks/bench_wandb_logging.py
	.bench-venv/bin/python benchmarks/bench_wandb_reads.py
	bash scripts/with-chromium.sh .venv/bin/python benchmarks/bench_ui.py

# the wandb client's own system tests against a fresh runbase server (not part of make test)
wandb-conformance: install
	bash scripts/wandb-conformance.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
