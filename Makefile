# The two commands a new user needs:  make demo   and   make test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_DATE ?= 2026-01-31
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(BIN))/python

.PHONY: demo airflow test lint lock bench clean install

$(STAMP): setup.cfg constraints.txt pyproject.toml
	@NEED_GIB=6 tools/preflight.sh $(PYTHON)
	tools/make_venv.sh $(PYTHON) $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	$(BIN)/uv pip install --python $(BIN)/python --quiet -c constraints.txt -e ".[dev]"
	@# Bytecode compiled once here: uv does not, and where PYTHONDONTWRITEBYTECODE is set
	@# every process (each Airflow task, each Spark worker) compiled Feast, MLflow and
	@# Great Expectations from source again, 5-10 s each.
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib
	@# pyspark ships only as an sdist; a registry that revalidates it as modified makes uv
	@# build and keep one more 1.4 GiB copy per install. Prune drops the unused copies.
	$(BIN)/uv cache prune --quiet
	@touch $@

install: $(STAMP)

## make demo: generate a small marketplace, run the nightly DAG through Airflow's test runner
demo: $(STAMP)
	@$(BIN)/python -m ranking_jobs.binaries java
	$(BIN)/ranking-jobs demo --ds $(DEMO_DATE)

## make airflow: the same DAGs under a real local Airflow (PostgreSQL, scheduler, UI)
airflow: $(STAMP)
	@$(BIN)/python -m ranking_jobs.binaries java postgres
	$(BIN)/ranking-jobs airflow --ds $(DEMO_DATE)

## make test: the whole suite (starts its own Redis, S3 API server, Spark, Airflow,
## PostgreSQL) in two workers, each test file whole in one, in file order: the real-scheduler
## test starts first and waits on its processes for most of its 8 minutes while the other
## files run beside it
test: $(STAMP)
	@NEED_GIB=2 tools/preflight.sh $(PYTHON)
	@$(BIN)/python -m ranking_jobs.binaries java redis postgres
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## make lock: re-resolve constraints.txt from setup.cfg (needs network to PyPI)
lock:
	$(BIN)/uv pip compile setup.cfg --extra dev --python-version 3.11 -o constraints.txt

## make bench: list the benchmarks; make bench BENCH="quality --all" runs one
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH)

clean:
	rm -rf data var .pytest_cache
