# Everything a fresh machine with Python 3.11 needs: `make demo` and `make test` create and use .venv.
PYTHON ?= python3
VENV ?= .venv
# The one TensorFlow to install: cpu (tensorflow-cpu) or gpu (tensorflow with its CUDA libraries).
TF ?= cpu
PY := $(VENV)/bin/python
# pytest workers of `make test`: much of a test is start-up and graph building on one core, so two workers
# finish the suite in about half the time on two cores (24 -> 10 minutes); each takes up to 8 GB of memory.
JOBS ?= 2

.PHONY: demo test venv clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e ".[$(TF),test]"
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m export.demo --export out/demo

test: $(VENV)/.installed
	$(PY) -m pytest -q -rs -p no:cacheprovider -n $(JOBS) --dist worksteal tests

clean:
	rm -rf $(VENV) build *.egg-info
