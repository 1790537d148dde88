# agentwatch developer tasks; CI calls `make ci` through .ci/run, so local and CI cannot drift.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: help venv install test test-compiled compiled lint typecheck ci bench demo clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

venv:  ## create the virtual environment
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: venv  ## install agentwatch with the test tools
	$(BIN)/pip install -q -e '.[test]'

test:  ## run the whole test suite (starts its own broker)
	$(BIN)/pytest

#: a copy of the tree with the hot path compiled in place (pipeline/native.py says which modules)
COMPILED_TREE := build/compiled

compiled:  ## copy the tree to build/compiled and compile its hot path with mypyc, in place
	rm -rf $(COMPILED_TREE) && mkdir -p $(COMPILED_TREE)
	tar -c --exclude=./.git --exclude=./.venv --exclude=./venv --exclude=./build --exclude='*.so' \
	  --exclude=__pycache__ --exclude=.agentwatch . | tar -x -C $(COMPILED_TREE)
	cd $(COMPILED_TREE) && AGENTWATCH_COMPILE=1 $(abspath $(BIN))/python setup.py -q build_ext --inplace >build.log 2>&1 \
	  || (tail -40 build.log; exit 1)

test-compiled: compiled  ## the suite but its broker tests, against the compiled build (and it against the sources)
	cd $(COMPILED_TREE) && AGENTWATCH_TEST_EXPECT_COMPILED=1 AGENTWATCH_TEST_SOURCE_TREE=$(CURDIR) \
	  $(abspath $(BIN))/pytest -p no:cacheprovider -m "not broker"

lint: typecheck  ## ruff (including bandit's S rules), then mypy on the packages
	$(BIN)/ruff check .

typecheck:  ## mypy on the packages (with pydantic's plugin: settings are typed by their fields)
	$(BIN)/mypy

ci: install lint test test-compiled  ## what .ci/run does on a fresh clone

bench:  ## run every benchmark, writing bench/results/*.json
	$(BIN)/python -m bench.throughput --json bench/results/throughput.json
	$(BIN)/python -m bench.rules --json bench/results/rules.json
	$(BIN)/python -m bench.risk --json bench/results/risk.json
	$(BIN)/python -m bench.cachepenalty --touch-kib 0 256 1024 4096 --repeat 3 --json bench/results/cachepenalty.json
	$(BIN)/python -m bench.memory --json bench/results/memory.json
	$(BIN)/python -m bench.latency --json bench/results/latency.json
	$(BIN)/python -m bench.broker --json bench/results/broker.json
	$(BIN)/python -m bench.pauses --events 300000 --json bench/results/pauses.json
	if command -v valgrind >/dev/null; then $(BIN)/python -m bench.cost --native --json bench/results/cost.json; \
	else echo "bench.cost skipped: needs valgrind"; fi
	if command -v perf >/dev/null; then $(BIN)/python -m bench.perfshare --json bench/results/perfshare.json; \
	else echo "bench.perfshare skipped: needs perf"; fi

demo:  ## the demo: broker, worker, simulated fleet, live view
	$(BIN)/agentwatch demo

clean:  ## remove build and run artefacts
	rm -rf build dist *.egg-info .agentwatch .pytest_cache .mypy_cache .ruff_cache
	find pipeline detectors -name '*.so' -delete
