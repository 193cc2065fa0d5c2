# `make demo` and `make test` each build/refresh the virtual environment first,
# so either works alone on a fresh machine with only Python 3.11.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean-results

install: $(STAMP)

$(STAMP): requirements.txt requirements-test.txt requirements-test-nodeps.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r requirements-test.txt
	$(PY) -m pip install -q --no-deps -r requirements-test-nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m submodular_attribution.apps.demo

test: $(STAMP)
	$(PY) -m pytest -q

clean-results:
	rm -rf submodular_results explanation_results
