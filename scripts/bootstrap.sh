#!/bin/sh
# Create .venv with Python 3.11+ and install the project into it.
#   scripts/bootstrap.sh [EXTRAS]      e.g. scripts/bootstrap.sh dev
set -eu
extras=${1:-agents}
py=${PYTHON:-python3}

if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "error: AgentFlow needs Python 3.11 or newer; '$py' is $("$py" --version 2>&1 || echo missing)." >&2
    echo "       Set PYTHON=/path/to/python3.11 and run again." >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    if ! "$py" -m venv .venv >/dev/null 2>&1; then
        rm -rf .venv
        # Debian and Ubuntu ship the venv module separately.
        pkg="python3-venv python$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "installing $pkg (the venv module) with apt-get"
            apt-get update -qq && apt-get install -y -qq $pkg >/dev/null || apt-get install -y -qq python3-venv >/dev/null
            "$py" -m venv .venv
        else
            echo "error: '$py -m venv' failed. Install the venv module, e.g.: sudo apt-get install python3-venv" >&2
            exit 1
        fi
    fi
fi

.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
