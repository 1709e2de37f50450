# Builds the example and test agents (C -> WASI preview1 modules) with zig's clang.
#
# Included from the root Makefile, or used on its own from the repository root:
#   make -f mk/agents.mk agents [PYTHON=.venv/bin/python]
#
# Each examples/agents/NAME.c and tests/agents/NAME.c becomes NAME.wasm next to it
# (*.wasm is git-ignored). The first build also builds wasi-libc (~20 s); later ones are
# cached by zig.

PYTHON ?= .venv/bin/python
AGENT_INCLUDE := agentflow/authoring/c
AGENT_HEADER := $(AGENT_INCLUDE)/agentflow.h
# A 256 KiB stack instead of zig's default 16 MiB keeps a small agent's initial memory near 1 MiB,
# so steps can ask for little memory.
AGENT_CC = $(PYTHON) -m ziglang cc --target=wasm32-wasi -O2 -s -Wl,-z,stack-size=262144 -I $(AGENT_INCLUDE)

AGENT_SOURCES := $(wildcard examples/agents/*.c tests/agents/*.c)
AGENT_MODULES := $(AGENT_SOURCES:.c=.wasm)

.PHONY: agents clean-agents

agents: $(AGENT_MODULES)

examples/agents/%.wasm: examples/agents/%.c $(AGENT_HEADER)
	$(AGENT_CC) $< -o $@

tests/agents/%.wasm: tests/agents/%.c $(AGENT_HEADER)
	$(AGENT_CC) $< -o $@

clean-agents:
	rm -f $(AGENT_MODULES)
