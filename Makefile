# Fresh-machine entry points: `make demo` and `make test` create .venv and
# install the project (editable, with the dev, dp and examples extras) when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test proto proto-check lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,dp,examples]'
	# AutoGen for examples/autogen_triage.py: autogen-core 0.7 pins protobuf~=5.29 (Accord's
	# generated code needs >= 7.35); it imports and runs with protobuf 7, so without its pins
	$(BIN)/python -m pip install -q --no-deps 'autogen-core==0.7.5' 'autogen-agentchat==0.7.5' \
	  'autogen-ext==0.7.5' 'jsonref>=1.1,<2'
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
