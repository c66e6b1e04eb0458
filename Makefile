# The two commands of the quick start: `make run` (the default study) and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CORES ?= 4

.PHONY: run test bench gpu-check lint report clean venv

venv: $(STAMP)

# Re-create the environment only when the pins change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install --quiet -r requirements.txt 2>&1 | grep -v "is ignored"; test $${PIPESTATUS[0]} -eq 0
	$(PY) -m pip install --quiet --no-deps -e . 2>&1 | grep -v "is ignored"; test $${PIPESTATUS[0]} -eq 0
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/snakemake --cores $(CORES)

# In TEST_WORKERS pytest-xdist workers; each test file (and each test class) is one worker's
# unit (`--dist loadscope`), so the tests sharing a study or a file's reference runs share them,
# handed out longest first (tests/conftest.py LONG_UNITS; `--no-loadscope-reorder` keeps that
# order). One worker a core (at most 8) by default: the suite is CPU-bound, and on 2 cores 3 or 4
# workers took longer than 2. TEST_WORKERS=0: in this process.
TEST_WORKERS ?= $(shell n=$$(nproc); echo $$(( n < 8 ? n : 8 )))
test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder -ra $(PYTEST_ARGS)

# The benchmark (workflow/benchmarks/bench.py), the default study's wall time included; it takes
# a while: BENCH_ARGS=--no-study leaves the study out, BENCH_ARGS=--tiny is a smoke run.
bench: $(STAMP)
	$(PY) workflow/benchmarks/bench.py $(BENCH_ARGS)

# On a CUDA machine: the study on GPUs, two jobs on two GPUs, determinism and bf16 on CUDA, the
# bench; writes results/gpu-check/gpu_check.json. Elsewhere it says there is no GPU and exits 0.
gpu-check: $(STAMP)
	$(PY) workflow/scripts/gpu_check.py --cores $(CORES)

report: run
	$(VENV)/bin/snakemake --cores $(CORES) --report report.html

# ruff (pinned in requirements.txt; settings in pyproject.toml) for the Python, snakemake --lint and
# snakefmt for the Snakefile and rules.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/snakemake --lint
	$(VENV)/bin/snakefmt --check Snakefile workflow/rules

clean:
	rm -rf results/* .snakemake report.html report.zip
	touch results/.gitkeep
