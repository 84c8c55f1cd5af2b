# Set-up and the two everyday commands. torch is pinned here (not in pyproject) so the
# CPU build on this machine's disk is used instead of a multi-GB CUDA download.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_PIN := torch==2.13.0

.PHONY: demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/mnist_mlp.py
	$(PY) examples/autoencoder_dense.py

test: $(VENV)/.test-installed
	KERAS_BACKEND=torch $(PY) -m pytest tests

bench: $(VENV)/.test-installed
	KERAS_BACKEND=torch $(PY) benchmarks/fit_throughput.py

clean:
	rm -rf $(VENV) build src/*.egg-info
