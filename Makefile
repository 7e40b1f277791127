# lipforge: `make demo` runs the end-to-end job on the embedded sample corpus;
# `make test` runs the doctor, the layer and lint checks, and the whole test suite;
# `make test-fast` the same without the slow end-to-end tests (tests/e2e). All run `make setup` first.
PY := .venv/bin/python
export NO_ALBUMENTATIONS_UPDATE := 1
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: setup demo test test-fast doctor lint

setup:
	bash infra/setup.sh

doctor: setup
	$(PY) -m pipelines doctor

lint: setup
	.venv/bin/lint-imports
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

demo: doctor
	bash infra/demo.sh

test: doctor lint
	$(PY) -m pytest -q tests

test-fast: setup lint
	$(PY) -m pytest -q -m "not slow" tests
