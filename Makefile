# Everything a fresh machine needs is installed from here: Debian packages, then a virtual
# environment with the local CPU build of torch first (else pip pulls a multi-GB CUDA build).
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
OUT    ?= build/demo
SWEEP_OUT ?= build/sweep

.PHONY: demo sweep test test-all deps system lint clean

deps: system $(STAMP)

# dataset-fashion-mnist: the second offline data set (IDX files in /usr/share/datasets).
# nextpnr-ice40: place and route of iCE40 boards (estimate --synth yosys); its chip database
# is built in. ECP5's nextpnr is not packaged by Debian: it comes from PyPI (pyproject, synth).
# qflow-tech-osu018/035/050 and opensta: the ASIC targets (asic/*.toml: the OSU standard-cell
# Liberty, LEF and cell Verilog) and OpenSTA (command sta) for estimate --target asic:NAME;
# qflow (graywolf, qrouter) places and routes them (--place).
APT_PKGS := iverilog yosys nextpnr-ice40 dataset-fashion-mnist \
  qflow qflow-tech-osu018 qflow-tech-osu035 qflow-tech-osu050 opensta

system:
	@command -v iverilog >/dev/null && command -v yosys >/dev/null && \
	  command -v nextpnr-ice40 >/dev/null && command -v sta >/dev/null && \
	  command -v qflow >/dev/null && \
	  [ -f /usr/share/qflow/tech/osu018/osu018_stdcells.lib ] && \
	  [ -f /usr/share/qflow/tech/osu035/osu035_stdcells.lib ] && \
	  [ -f /usr/share/qflow/tech/osu050/osu05_stdcells.lib ] && \
	  [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || \
	  ( $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PKGS) )

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,synth]'
	touch $(STAMP)

demo: deps
	$(BIN)/hwprune run -o $(OUT)

# The example design-space sweep (24 points on digits, Dask LocalCluster); again = resume.
sweep: deps
	$(BIN)/hwprune sweep examples/sweep_digits.toml -o $(SWEEP_OUT)

# Both cores (pytest-xdist); a test file's cases stay on one worker, so its module fixtures
# (a trained model, a compiled build) are made once.
test: deps
	$(BIN)/pytest -q -n 2 --dist loadfile

test-all: deps
	$(BIN)/pytest -q -m ''

lint: deps
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf build
