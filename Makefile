# carebox — the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
TRANSLATIONS := backoffice/translations
# Catalogue domains: our own strings, then Flask-Admin's, Flask-Security's and WTForms' words.
DOMAINS := messages admin flask_security wtforms
export CAREBOX_ENV ?= development

.PHONY: run test test-fast test-cluster test-browser test-deps install install-test lint format translations \
        extract-messages update-messages migration upgrade seed screenshots bench bench-1m clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Serve the app on SQLite with demo data at http://127.0.0.1:$(PORT)
# Links in emails point at this server, on this port (unless CAREBOX_BASE_URL says else),
# the demo seed's emails included.
run: export CAREBOX_BASE_URL ?= http://127.0.0.1:$(PORT)
run: install translations
	$(BIN)/carebox db upgrade
	$(BIN)/carebox seed --demo
	@echo "carebox: http://127.0.0.1:$(PORT)/  (back office: http://127.0.0.1:$(PORT)/admin/)"
	@echo "mail worker: beside the server; with no MAIL_SERVER each email is printed here"
	@trap 'kill $$worker $$exports 2>/dev/null' EXIT; \
	  $(BIN)/carebox outbox send --loop --interval 2 & worker=$$!; \
	  $(BIN)/carebox exports run --loop --interval 2 & exports=$$!; \
	  $(BIN)/carebox run --host 127.0.0.1 --port $(PORT)

## What the suite needs from the machine: Debian packages (.ci/debian-packages) and npm
## packages (package.json). Installs what is missing as root, else stops with the command.
test-deps:
	@.ci/test-deps

## Lint, then the whole suite (HTTP tests in parallel, then the browser tests). The Galera
## cluster tests (mark `cluster`) run with the rest; --dist loadgroup keeps their module on one
## worker, so one cluster is started.
test: test-deps install-test translations lint
	$(BIN)/pytest -n 2 --dist loadgroup -m "not browser" $(PYTEST_ARGS)
	$(BIN)/pytest -m browser $(PYTEST_ARGS)

test-fast: test-deps install-test translations
	$(BIN)/pytest -n 2 --dist loadgroup -m "not browser" -x $(PYTEST_ARGS)

## Only the three-node Galera cluster tests (about 2 minutes; make test runs them too)
test-cluster: test-deps install-test translations
	$(BIN)/pytest -m cluster -s $(PYTEST_ARGS)

test-browser: test-deps install-test translations
	$(BIN)/pytest -m browser $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Translations: extract strings, merge them into the catalogues, compile them
extract-messages: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -k ngettext:1,2 -w 100 -o $(TRANSLATIONS)/messages.pot .

update-messages: extract-messages
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) -w 100 --no-fuzzy-matching

translations: install
	$(BIN)/pybabel compile -d $(TRANSLATIONS) -D "$(DOMAINS)" > /dev/null

## Database: `make migration m="what changed"`, `make upgrade`, `make seed`
migration: install
	$(BIN)/carebox db migrate -m "$(m)"

upgrade: install
	$(BIN)/carebox db upgrade

seed: upgrade
	$(BIN)/carebox seed --demo

screenshots: test-deps install-test translations
	$(BIN)/pytest -m browser tests/browser/test_screenshots.py --screenshots

bench: install-test
	$(BIN)/python bench/loyalty_refresh.py
	$(BIN)/python bench/announcement_queueing.py
	$(BIN)/python bench/whatsapp_webhook.py
	$(BIN)/python bench/galera_cluster.py
	$(BIN)/python bench/mail_receive.py
	$(BIN)/python bench/sla_worktime.py
	$(BIN)/python bench/situations.py --orders 200000 --tickets 60000
	$(BIN)/python bench/tracking_api.py --orders 20000
	@if [ -n "$$DATABASE_URL" ]; then \
	  $(BIN)/python bench/ticket_queries.py && $(BIN)/python bench/admin_pages.py && \
	  $(BIN)/python bench/desk_queues.py && $(BIN)/python bench/export_job.py && \
	  $(BIN)/python bench/agent_report.py && $(BIN)/python bench/request_paths.py && \
	  $(BIN)/python bench/ticket_lists.py; \
	else echo "ticket_queries.py, admin_pages.py, desk_queues.py, export_job.py, agent_report.py, request_paths.py, ticket_lists.py: set DATABASE_URL to a database filled by carebox seed-bulk"; fi

## The 1M benchmark on MariaDB (bench/bench_1m.py; not part of `make test`): builds the
## dataset once, serves under gunicorn, prints one table. BENCH_ARGS="--runs 50" etc.
bench-1m: install-test translations
	$(BIN)/python bench/bench_1m.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules instance .pytest_cache .ruff_cache
