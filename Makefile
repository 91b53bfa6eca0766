# The two commands of the README: `make run` and `make test`. Both set everything up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Test processes (pytest-xdist): most tests wait on servers, workers and peers, so four share
# two cores well (9.3 min in one process, 4.8 min in four, on 2 cores).
TEST_PROCESSES ?= 4

.PHONY: install system-deps messages compilemessages run test lint bench screenshots clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

system-deps:
	bash scripts/install-system-deps.sh

install: $(STAMP)

# The Chinese catalogue: `make messages` collects new strings into locale/zh_Hans/LC_MESSAGES/django.po
# and drops those no longer used; translate the new ones there (no empty msgstr, no fuzzy:
# tests/ui/test_i18n.py checks). The compiled .mo files are not committed: `make run` and
# `make test` build them (and so does a bare pytest, tests/conftest.py).
messages: install
	$(PY) manage.py makemessages -l zh_Hans --no-location
	msgattrib --no-obsolete -o locale/zh_Hans/LC_MESSAGES/django.po locale/zh_Hans/LC_MESSAGES/django.po

compilemessages: install system-deps
	$(PY) manage.py compilemessages --ignore .venv --ignore var

run: install compilemessages
	bash scripts/run.sh

test: install system-deps compilemessages
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist worksteal $(PYTEST_ARGS)

# The README's screenshots (docs/screenshots/), taken by the browser test of every page.
screenshots: install system-deps compilemessages
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest -p no:cacheprovider tests/e2e/test_pages.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install system-deps
	$(PY) bench/import_1gib.py
	$(PY) bench/save_load_1gib.py
	$(PY) bench/pull_1gib.py
	$(PY) bench/images_page.py
	$(PY) bench/basic_auth.py
	$(PY) bench/run_rm.py
	$(PY) bench/registry_1gib.py

clean:
	rm -rf $(VENV) var
