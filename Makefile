# Two commands on a fresh machine with Python 3.11 and pip:
#   make demo   set up .venv, run the pipeline through Dagster on local stand-ins, print the dashboard
#   make test   set up .venv with the test extras and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster

.PHONY: setup demo test ui dagster-home clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

setup: $(VENV)/.installed

dagster-home:
	@mkdir -p .dagster && ln -sf ../dagster.yaml .dagster/dagster.yaml

demo: setup dagster-home
	$(BIN)/finops-pipeline demo

test: setup
	$(BIN)/python -m pytest

ui: setup dagster-home
	$(BIN)/finops-pipeline sandbox --ui

clean:
	rm -rf data .dagster
