#!/usr/bin/env bash
# Create .bench-venv with the peer trackers and runbase (editable). Safe to run again.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.bench-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -r "$root/benchmarks/requirements-peers.txt"
"$venv/bin/python" -m pip install -q -e "$root"
"$venv/bin/python" -c "import wandb, trackio, mlflow, runbase; print('peers ready:', wandb.__version__, trackio.__version__, mlflow.__version__)"
