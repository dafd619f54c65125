# Afterdesk: `make run` serves the seeded demo, `make test` runs the whole suite. See README.md.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install lint format messages bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Afterdesk needs Python 3.11 (set PYTHON=/path/to/python3.11).")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	@mkdir -p var
	DEBUG=1 $(PY) manage.py migrate --noinput
	DEBUG=1 $(PY) manage.py seed_demo --if-empty
	DEBUG=1 $(PY) manage.py setup_schedules
	@echo
	@echo "  Afterdesk is running at http://$(HOST):$(PORT)/"
	@echo "  Log in as agent, supervisor or admin; password: $${DEMO_PASSWORD:-afterdesk-demo}"
	@echo "  Ctrl-C stops the web server and the worker."
	@echo
	@# On Ctrl-C, a TERM to make, or either process ending: stop the other children once, then wait for them
	@# (not `kill 0`, which signals this shell too and sets its trap off again and again).
	@export DEBUG=$${DEBUG:-1} PUBLIC_URL=$${PUBLIC_URL:-http://$(HOST):$(PORT)}; \
	  trap 'trap - INT TERM EXIT; kill $$(jobs -p) 2>/dev/null; wait' INT TERM EXIT; \
	  $(PY) manage.py qcluster & \
	  $(PY) manage.py runserver --noreload $(HOST):$(PORT) & \
	  wait -n

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

messages: install
	$(PY) manage.py makemessages -l zh_Hans --no-obsolete --add-location file -i ".venv/*" -i "var/*"
	$(PY) manage.py compilemessages -l zh_Hans --ignore ".venv/*" --ignore "var/*"

bench: install
	@test -n "$$DATABASE_URL" || { echo "make bench runs against PostgreSQL: set DATABASE_URL=postgres://postgres@127.0.0.1:5432/afterdesk_bench"; exit 2; }
	$(PY) manage.py bench

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
