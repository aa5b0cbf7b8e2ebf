# Fresh-machine entry points: `make demo` and `make test` create .venv and
# install the project (editable, with dev extras) when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test proto proto-check lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,dp]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/accord demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

proto: $(STAMP)
	$(BIN)/python -m federation.pb.generate

proto-check: $(STAMP)
	$(BIN)/python -m federation.pb.generate --check

lint: $(STAMP)
	$(BIN)/ruff check credentials policy ledger federation interop_tests
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/accord bench exchange

clean:
	rm -rf $(VENV) build *.egg-info
