# AgentFlow: `make demo` runs an example end to end; `make test` runs the whole test suite.

PYTHON := .venv/bin/python
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: demo test venv venv-dev protos lint typecheck bench clean

include mk/agents.mk

demo: .venv/.installed-agents
	$(MAKE) --no-print-directory agents
	scripts/demo.sh

test: .venv/.installed-dev
	$(MAKE) --no-print-directory agents
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy agentflow controlplane noded router bench
	$(PYTHON) -m pytest $(PYTEST_ARGS)

venv: .venv/.installed-agents
venv-dev: .venv/.installed-dev

.venv/.installed-agents: pyproject.toml scripts/bootstrap.sh
	scripts/bootstrap.sh agents
	touch $@

.venv/.installed-dev: pyproject.toml scripts/bootstrap.sh
	scripts/bootstrap.sh dev
	touch $@ .venv/.installed-agents

# Regenerate agentflow/v1 from proto/agentflow/v1 (a test fails when they disagree).
protos: .venv/.installed-dev
	$(PYTHON) scripts/gen_protos.py

lint: .venv/.installed-dev
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

typecheck: .venv/.installed-dev
	$(PYTHON) -m mypy agentflow controlplane noded router bench

bench: .venv/.installed-dev
	$(MAKE) --no-print-directory agents
	$(PYTHON) bench/run_all.py

clean: clean-agents
	rm -rf .demo build .pytest_cache .mypy_cache .ruff_cache
