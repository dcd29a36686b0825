# Yilian: `make run` (first run: everything, then serve) and `make test` (lint + whole suite).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
# The pure rule modules (no Django), type-checked with mypy in ``make lint``.
PURE_RULES := src/yilian/common/resident_id.py src/yilian/common/masking.py src/yilian/common/policy.py \
	$(wildcard src/yilian/*/rules.py)
PY := $(VENV)/bin/python
VENDOR := src/yilian/static/vendor/htmx.min.js
SYSTEM_PACKAGES := chromium fonts-noto-cjk postgresql

.PHONY: messages run test lint test-sqlite test-postgres sysdeps venv assets demo bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

venv: $(VENV)/.installed

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "installing npm"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm >/dev/null; }
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

$(VENDOR): node_modules/.installed scripts/build_assets.py
	$(PY) scripts/build_assets.py

messages: venv
	$(PY) scripts/compile_messages.py

assets: venv $(VENDOR) messages

# System packages for browser tests, the throwaway PostgreSQL and CJK fonts (root on these machines).
sysdeps:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -d /usr/share/fonts/opentype/noto ] || missing="$$missing fonts-noto-cjk"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

run: assets
	$(VENV)/bin/yilian up

demo: assets
	$(VENV)/bin/yilian demo --patients 100000

lint: venv
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy --ignore-missing-imports --follow-imports=silent $(PURE_RULES)
	YILIAN_VAR_DIR=$$(mktemp -d) $(VENV)/bin/yilian makemigrations --check --dry-run

test-sqlite: assets sysdeps
	YILIAN_VAR_DIR=$$(mktemp -d) $(VENV)/bin/pytest -q

test-postgres: assets sysdeps
	YILIAN_VAR_DIR=$$(mktemp -d) $(PY) -m yilian.ops.pgtmp -- $(VENV)/bin/pytest -q -m "not browser"

test: lint test-sqlite test-postgres

bench: assets sysdeps
	$(PY) bench/patient_search.py
	$(PY) bench/booking_rush.py

clean:
	rm -rf $(VENV) node_modules src/yilian/static/vendor var
