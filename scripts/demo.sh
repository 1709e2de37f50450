#!/bin/sh
# Start `agentflow up` on a free port with its state in .demo/, run the example workflows with
# live progress, print their outputs, then stop everything.
set -eu
export PATH="$PWD/.venv/bin:$PATH"
data=.demo
state=$data/controlplane/controlplane.json
rm -f "$state"
mkdir -p "$data"

agentflow up --data-dir "$data" --port 0 --metrics-port 0 --router-port 0 --dev &
up=$!
trap 'kill -INT $up 2>/dev/null; wait $up 2>/dev/null || true' EXIT INT TERM

i=0
until [ -s "$state" ] && [ -s "$data/noded/noded.json" ]; do
    i=$((i + 1))
    if [ $i -gt 600 ] || ! kill -0 $up 2>/dev/null; then
        echo "agentflow up did not start; see $data/logs/" >&2
        exit 1
    fi
    sleep 0.1
done
server=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$state")
export AGENTFLOW_SERVER="$server"

until agentflow nodes --json | grep -q '"status": "ready"'; do sleep 0.1; done

echo
echo "== agentflow run examples/diamond.yaml --input '{\"text\": \"agents run as webassembly\"}' --wait"
agentflow run examples/diamond.yaml --input '{"text": "agents run as webassembly"}' --wait
echo
echo "== agentflow run examples/fanout.yaml --wait   (24 parallel steps, then a fan-in)"
agentflow run examples/fanout.yaml --wait | grep -E "^run |gather"
echo
echo "== agentflow run examples/summarize.yaml --wait   (an AI agent: one llm.complete through the router)"
agentflow run examples/summarize.yaml --wait --input \
    '{"text": "AgentFlow runs AI-agent workflows as WebAssembly across a fleet of hosts, and their LLM calls go through a caching router on each host."}'
echo
echo "== agentflow agent build examples/agents/py_summarize   (the same AI agent, written in Python)"
agentflow agent build examples/agents/py_summarize
echo "== agentflow run examples/py_summarize.yaml --wait"
agentflow run examples/py_summarize.yaml --wait --input \
    '{"text": "Python agents run as WebAssembly components, with the same sandbox, limits and router as C agents."}'
echo
echo "== agentflow router status"
agentflow router status --router "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http"])' "$data/router/router.json")"
echo
echo "== agentflow nodes"
agentflow nodes
echo
echo "== agentflow runs"
agentflow runs
echo
