# Afterdesk: `make run` serves the seeded demo, `make test` runs the whole suite. See README.md.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run serve test install lint format messages bench screenshots clean

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

# The production processes (the Procfile's web and worker: gunicorn and qcluster) with an operator's settings,
# on this machine: DEBUG off, static files collected into var/static with their manifest, and the plain-HTTP
# opt-out made explicit (SECURE_SSL=0: no HTTPS redirect, no secure-only cookies). SECRET_KEY from the
# environment, else one generated once into var/secret_key (kept, so sessions survive a restart). The
# database: `make run`'s SQLite file, or DATABASE_URL; migrated and its schedules set, never seeded.
serve: install
	@export DEBUG=0 SECURE_SSL=0 HOST=$(HOST) PORT=$(PORT) PUBLIC_URL=$${PUBLIC_URL:-http://$(HOST):$(PORT)} \
	    PATH="$(CURDIR)/$(VENV)/bin:$$PATH"; \
	  set -e; \
	  var="$${AFTERDESK_VAR_DIR:-var}"; mkdir -p "$$var"; \
	  if [ -z "$${SECRET_KEY:-}" ]; then \
	    test -s "$$var/secret_key" || (umask 077 && python -c 'import secrets; print(secrets.token_urlsafe(50))' > "$$var/secret_key"); \
	    export SECRET_KEY="$$(cat "$$var/secret_key")"; \
	  fi; \
	  python manage.py migrate --noinput; \
	  python manage.py setup_schedules; \
	  python manage.py collectstatic --noinput --verbosity 0; \
	  set +e; \
	  echo; echo "  Afterdesk (production settings, plain HTTP) at http://$(HOST):$(PORT)/ - Ctrl-C stops it."; echo; \
	  trap 'trap - INT TERM EXIT; kill $$(jobs -p) 2>/dev/null; wait' INT TERM EXIT; \
	  while IFS= read -r line; do \
	    case "$$line" in web:*|worker:*) bash -c "exec $${line#*:}" & ;; esac; \
	  done < Procfile; \
	  wait -n

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@mkdir -p var  # the SQLite file makemigrations opens to check the history (a fresh clone has no var/)
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
	$(PY) manage.py bench $(BENCH_ARGS)

# The README's two screenshots (docs/img/), taken by the browser test that follows the README's tour.
screenshots: install
	AFTERDESK_SCREENSHOTS=1 AFTERDESK_REQUIRE_BROWSER=1 $(VENV)/bin/pytest -q tests/browser/test_tour_browser.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
