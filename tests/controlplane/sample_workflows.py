"""Workflow texts shared by the control plane's component tests (modules pushed as ./echo.wasm)."""

ONE_STEP = """
apiVersion: agentflow/v1
kind: Workflow
name: one
version: "1"
agents:
  - name: only
    module: ./echo.wasm
"""

CHAIN = """
apiVersion: agentflow/v1
kind: Workflow
name: chain
version: "1"
agents:
  - name: first
    module: ./echo.wasm
  - name: second
    module: ./echo.wasm
    dependsOn: [first]
  - name: third
    module: ./echo.wasm
    dependsOn: [second]
"""

# Three independent steps: one scheduling pass places them all.
FANOUT_3 = """
apiVersion: agentflow/v1
kind: Workflow
name: three
version: "1"
agents:
  - {name: a, module: ./echo.wasm}
  - {name: b, module: ./echo.wasm}
  - {name: c, module: ./echo.wasm}
"""
