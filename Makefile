# Two entry points for a fresh machine (see README):
#   make demo   set up, generate a demo project on offline defaults and preview its environments
#   make test   set up and run this repository's tests (what .ci/run runs)
VENV ?= .venv
PY := $(VENV)/bin/python
# Renovate's config validator checks the generated projects' renovate.json (tests/template/
# test_renovate.py). npm, under .tools/ (about 340 MB, two minutes, once); skipped without npm.
RENOVATE_VERSION := 44.121.2
TOOLS ?= .tools
VALIDATOR := $(TOOLS)/node_modules/.bin/renovate-config-validator

.PHONY: setup demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -U pip
	$(PY) -m pip install -q -e . --group dev
	touch $@

$(VALIDATOR):
	@if command -v npm >/dev/null; then \
	  npm install --prefix $(TOOLS) --no-audit --no-fund --ignore-scripts --loglevel=error \
	    renovate@$(RENOVATE_VERSION); \
	else echo "npm not found: the Renovate config validation test will be skipped"; fi

setup: $(VENV)/.installed

demo: setup
	rm -rf demo
	$(VENV)/bin/blueprint new demo --defaults --data project_name="Demo Churn" --data 'environments=[dev, preprod, prod]'
	$(VENV)/bin/blueprint plan demo

test: setup $(VALIDATOR)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest

bench: setup
	$(PY) benchmarks/bench.py

clean:
	rm -rf $(VENV) $(TOOLS) demo .bench
