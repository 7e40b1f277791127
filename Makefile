# lipforge: `make demo` runs the end-to-end job on the embedded sample corpus;
# `make test` runs the doctor and the test suite. Both run `make setup` first.
PY := .venv/bin/python
export NO_ALBUMENTATIONS_UPDATE := 1
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: setup demo test doctor

setup:
	bash infra/setup.sh

doctor: setup
	$(PY) -m pipelines doctor

demo: doctor
	bash infra/demo.sh

test: doctor
	$(PY) -m pytest -q -p no:cacheprovider tests
