#!/usr/bin/env bash
# Set up everything `make demo` / `make test` need on a fresh Debian 12 machine:
# SuiteSparse headers (system), a virtual environment in .venv, and this package with its test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

need_apt=()
[ -f /usr/include/suitesparse/cholmod.h ] || need_apt+=(libsuitesparse-dev)
"$PYTHON" -c "import ensurepip, venv" 2>/dev/null || need_apt+=(python3-venv)
# Graphviz's dot renders fit.path_diagram() (optional: without it the tests check the graph's
# source and skip the rendering).
if ! command -v dot >/dev/null; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        need_apt+=(graphviz)
    else
        echo "semgalamm setup: note: Graphviz is not installed, so path diagrams build but do" \
             "not render (sudo apt-get install graphviz)" >&2
    fi
fi

if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
        echo "semgalamm setup: installing system packages: ${need_apt[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "semgalamm setup: missing system packages: ${need_apt[*]}" >&2
        echo "Install them first, e.g.:  sudo apt-get install ${need_apt[*]}" >&2
        echo "(the SuiteSparse headers are needed to build scikit-sparse, the CHOLMOD binding)" >&2
        exit 1
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "semgalamm setup: creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
# scikit-sparse 0.4.x builds from source and needs numpy and Cython in its build environment.
"$VENV/bin/python" -m pip install -q -e ".[test]"
echo "semgalamm setup: done ($VENV)"
