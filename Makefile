# Everything a fresh machine needs is installed from here: Debian packages, then a virtual
# environment with the local CPU build of torch first (else pip pulls a multi-GB CUDA build).
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
OUT    ?= build/demo

.PHONY: demo test test-all deps system lint clean

deps: system $(STAMP)

system:
	@command -v iverilog >/dev/null && command -v yosys >/dev/null || \
	  ( $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq iverilog yosys )

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: deps
	$(BIN)/hwprune run -o $(OUT)

test: deps
	$(BIN)/pytest -q

test-all: deps
	$(BIN)/pytest -q -m ''

lint: deps
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf build
