# Two commands on a fresh machine with Python 3.11 and pip:
#   make demo   set up .venv, run the pipeline through Dagster on local stand-ins, print the dashboard
#   make demo-s3  the same with the lake in S3 (the stand-ins' moto server; docs/deploy.md, step 6)
#   make test   set up .venv with the test extras and run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)/.dagster

.PHONY: setup browser postgres demo demo-s3 test ui dashboard dagster-home clean

$(VENV)/.installed: pyproject.toml sandbox/pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]' -e ./sandbox
	touch $@

# Azurite (Microsoft's Azure Storage emulator) for the demo and the Azure export tests, pinned in
# sandbox/azurite/package-lock.json and installed project-locally (finops_sandbox/azurite.py finds it).
sandbox/azurite/node_modules/.installed: sandbox/azurite/package.json sandbox/azurite/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix sandbox/azurite --no-audit --no-fund --ignore-scripts --loglevel=error && touch $@; \
	else \
		echo "make setup: npm is missing, so Azurite is not installed: the demo skips its Azure export accounts and their tests skip (install Node.js and npm, then make setup)"; \
	fi

setup: $(VENV)/.installed sandbox/azurite/node_modules/.installed

# $(DAGSTER_HOME)/dagster.yaml (copied from finops_pipeline/instance/ when missing) and workspace.yaml.
dagster-home: setup
	@$(BIN)/python -c 'from finops_pipeline.cli import ensure_dagster_home; ensure_dagster_home()'

demo: setup dagster-home
	$(BIN)/finops-pipeline demo

# The lake in a bucket on the AWS stand-in's moto server (gone when the demo ends); the catalog and the
# dashboard in ./data-s3-work. An S3 endpoint already set (FINOPS_LAKE_S3_ENDPOINT, AWS_ENDPOINT_URL) is used instead.
demo-s3: setup dagster-home
	FINOPS_DATA_DIR=s3://finops-demo/lake FINOPS_WORK_DIR=$(CURDIR)/data-s3-work $(BIN)/finops-pipeline demo

# Headless Chromium for the browser tests: Debian's package (Playwright's own browser downloads are
# not used). Installed when missing and we are root with apt-get; otherwise the browser tests skip
# with a message saying so.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's chromium for the browser tests ..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
			|| echo "make browser: could not install chromium; the browser tests will be skipped"; \
	else \
		echo "make browser: /usr/bin/chromium is missing and this is not root with apt-get; the browser tests will be skipped (apt-get install chromium to run them)"; \
	fi

# PostgreSQL server binaries for the Dagster-instance tests (finops_pipeline_tests/deploy/): Debian's
# package. The tests start their own throwaway server on 127.0.0.1 from these binaries; installed when
# missing and we are root with apt-get; otherwise those tests skip with a message saying so.
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Debian's postgresql for the Dagster-instance tests ..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null) \
			|| echo "make postgres: could not install postgresql; the PostgreSQL instance tests will be skipped"; \
	else \
		echo "make postgres: no PostgreSQL server under /usr/lib/postgresql and this is not root with apt-get; the PostgreSQL instance tests will be skipped (apt-get install postgresql to run them)"; \
	fi

.PHONY: lint
lint: setup
	$(BIN)/ruff check .

test: setup browser postgres lint
	$(BIN)/python -m pytest

dashboard: setup
	$(BIN)/finops-pipeline dashboard

ui: setup dagster-home
	$(BIN)/finops-pipeline sandbox --ui

clean:
	rm -rf data data-s3-work .dagster
