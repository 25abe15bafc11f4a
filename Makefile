# The two commands a newcomer needs: `make run` (the chat) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: install index run chat test test-fast bench eval clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

index: install
	$(VENV)/bin/qa build --if-needed

run: index
	$(PY) app.py

chat: index
	$(VENV)/bin/qa chat

test: install
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not browser and not slow"

eval: index
	$(VENV)/bin/qa eval

bench: index
	$(PY) bench/run.py

clean:
	rm -rf index/bundle-* index/.tmp-* index/manifest.json .pytest_cache
