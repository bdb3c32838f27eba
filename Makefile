# Two entry points for a fresh machine (see README):
#   make demo   set up, generate a demo project on offline defaults and preview its environments
#   make test   set up and run this repository's tests (what .ci/run runs)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e . --group dev
	touch $@

setup: $(VENV)/.installed

demo: setup
	rm -rf demo
	$(VENV)/bin/blueprint new demo --defaults --data project_name="Demo Churn" --data 'environments=[dev, preprod, prod]'
	$(VENV)/bin/blueprint plan demo

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest

bench: setup
	$(PY) benchmarks/bench.py

clean:
	rm -rf $(VENV) demo .bench
