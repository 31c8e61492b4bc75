# warmup-bench. `make help` lists the targets. Every target that runs code installs .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SWEEP ?= outputs/sweeps/demo

LAUNCHER ?= basic
# GRID: overrides added to the demo, sweep and boundary targets, e.g. two points of the demo grid in seconds, in a folder of
# their own (outputs/sweeps/demo-try):
#   make demo GRID='optimizer.lr=4 schedule.warmup_steps=1,64 steps=64 eval_every=32 name=demo-try'
GRID ?=
# TESTS: what `make test` runs (default: the whole suite), e.g. TESTS=tests/test_schedule.py
TESTS ?=
# JOBS: pytest-xdist workers for `make test`: 4 for the whole suite (its slow tests wait on subprocesses, SLURM or
# time limits, so more workers than cores pays), 0 (one process) with TESTS
JOBS ?= $(if $(TESTS),0,4)
# SWEEP, the same for every target that takes it: a preset's name (conf/sweep/NAME.yaml; its folder
# outputs/sweeps/NAME) or a sweep folder (any path with a /: its last part names the preset). A GRID that changes a
# preset's grid names a folder of its own, name=NAME (outputs/sweeps/NAME; the launch refuses it otherwise), which
# every target then reads. The preset's own folder is left to the preset (no hydra.sweep.dir), so that the launch
# tells a trial grid from the preset's
SWEEP_PATH = $(patsubst %/,%,$(SWEEP))
SWEEP_NAME = $(notdir $(SWEEP_PATH))
GRID_NAME = $(patsubst name=%,%,$(filter name=%,$(GRID)))
SWEEP_DIR = $(if $(GRID_NAME),outputs/sweeps/$(GRID_NAME),$(if $(findstring /,$(SWEEP_PATH)),$(SWEEP_PATH),outputs/sweeps/$(SWEEP_PATH)))
SWEEP_DIR_ARG = $(if $(filter-out outputs/sweeps/$(SWEEP_NAME),$(SWEEP_DIR)),hydra.sweep.dir=$(SWEEP_DIR))

.PHONY: help install demo test lint heatmaps clean sweep status slurm-up slurm-down boundary

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(STAMP)  ## create .venv and pip install -e '.[dev]' at the tested versions (constraints.txt); up to date: nothing

# --no-compile, then compileall on every core: pip byte-compiles one file at a time (over a minute of the install).
# A file written for a newer Python (torch/testing/_internal/py312_intrinsics.py) fails to compile, as under pip.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile -c constraints.txt -e '.[dev]'
	$(PY) -m compileall -q -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" >/dev/null || true
	touch $(STAMP)

.PHONY: hooks
hooks: install  ## enable the pre-commit hooks: ruff check --fix and ruff format on each commit (fetches the hook once)
	$(VENV)/bin/pre-commit install --install-hooks

demo: install  ## the demo sweep (FCN on mnist5k, SGD, MSE, eta_trgt x T_wrm), then its phase diagram (GRID=...: a subset)
	$(PY) launch.py -m sweep=demo $(GRID)
	$(PY) -m analysis phase $(or $(GRID_NAME:%=outputs/sweeps/%),outputs/sweeps/demo)

test: install  ## the test suite in JOBS=4 processes (TESTS=tests/test_x.py: one file)
	$(PY) -m pytest -q -n $(JOBS) $(TESTS)

lint: install  ## ruff check and format check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

heatmaps: install  ## phase diagram of a sweep: make heatmaps SWEEP=NAME (or SWEEP=FOLDER)
	$(PY) -m analysis phase $(SWEEP_DIR) $(ARGS)

.PHONY: mechanisms trajectories
mechanisms: install  ## warmup mechanisms (Figure 1 at CPU scale): loss, sharpness, 2/eta vs step per T_wrm
	$(PY) launch.py -m sweep=mechanisms
	$(PY) -m analysis trajectories outputs/sweeps/mechanisms

trajectories: install  ## loss/sharpness/threshold plot of a sweep: make trajectories SWEEP=NAME (or SWEEP=FOLDER)
	$(PY) -m analysis trajectories $(SWEEP_DIR)

sweep: install  ## a sweep preset on a launcher: make sweep SWEEP=NAME|FOLDER LAUNCHER=slurm|local|basic (again: resumes)
	$(PY) launch.py -m sweep=$(SWEEP_NAME) hydra/launcher=$(LAUNCHER) $(SWEEP_DIR_ARG) $(GRID)

boundary: install  ## eta_max per T_wrm by bisection, a fraction of the runs: make boundary SWEEP=NAME|FOLDER (boundary.csv)
	$(PY) launch.py -m sweep=$(SWEEP_NAME) hydra/sweeper=boundary $(SWEEP_DIR_ARG) $(GRID)
	cat $(SWEEP_DIR)/boundary.csv

status: install  ## completed / diverged / failed / running / missing points: make status SWEEP=NAME|FOLDER
	$(PY) -m analysis status $(SWEEP_DIR)

slurm-up:  ## start a local single-node SLURM cluster (root; installs the Debian packages), then: source .slurm/env
	scripts/slurm/start.sh

slurm-down:  ## stop the local SLURM cluster (by its pid files)
	scripts/slurm/stop.sh

clean:  ## remove outputs and caches (keeps .venv)
	rm -rf outputs multirun .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

.PHONY: reference wandb-sync
REFERENCE ?=
reference: install  ## the authors' published WRN runs -> phase diagrams + eta_max in outputs/reference (REFERENCE=DIR of .tab files)
	$(PY) -m analysis reference --out outputs/reference $(if $(REFERENCE),--data $(REFERENCE))

RUNS ?= outputs
wandb-sync: install  ## upload the offline wandb runs under RUNS (default outputs/) to wandb (needs `wandb login`)
	find $(RUNS) -type d -name 'offline-run-*' -prune -exec $(VENV)/bin/wandb sync {} +

.PHONY: bench
bench: install  ## benchmarks: harness vs bare loop, solver vs power iteration, sweep throughput, divergence savings, packed runs, leaderboard runs/hour, boundary search, grid check; ONLY="NAME ..." runs those alone
	$(PY) -m benchmarks.run $(if $(ONLY),--only $(ONLY))

.PHONY: gpu-check
gpu-check: install  ## on a CUDA node (< 8 min): CUDA tests, then CUDA benchmarks -> benchmarks/results-cuda.md
	PY=$(PY) scripts/gpu_check.sh

.PHONY: reproduce
reproduce: install  ## the CPU-scale Figures 1-7 (conf/experiment/cpu/), their figures and reports/reproduction.md
	$(PY) -m analysis.reproduce

# QUICK=1: one workload, three entries, two seeds, four rates, into outputs/leaderboard/quick/ (never reports/);
# ENTRY=NAME: that entry on every CPU workload it applies to, merged into the stored table reports/leaderboard/runs.csv
QUICK ?=
ENTRY ?=
.PHONY: leaderboard
leaderboard: install  ## the warmup leaderboard's CPU tier -> reports/leaderboard.md (QUICK=1: a 3-min first look; ENTRY=NAME: add one entry)
	$(PY) -m analysis.leaderboard $(if $(filter-out 0,$(QUICK)),--quick) $(if $(ENTRY),--entry $(ENTRY))

# the tests marked `racing` (they race a live process against a clock, a file or a signal), each STRESS times, in
# STRESS_JOBS pytest-xdist workers beside a CPU hog: more load than CI's 4 workers, so a test whose success depends on
# the machine's speed fails here first. TESTS=tests/test_x.py: that file's racing tests only
STRESS ?= 2
STRESS_JOBS ?= 8
.PHONY: test-stress
test-stress: install  ## the process-racing tests (marked racing), each STRESS=2 times in STRESS_JOBS=8 workers beside a CPU hog
	@$(PY) -c 'while True: pass' & hog=$$!; trap 'kill $$hog' EXIT; \
	$(PY) -m pytest -q -n $(STRESS_JOBS) -m racing --rounds $(STRESS) $(TESTS)
