#!/usr/bin/env bash
# The wandb client's own system tests against a fresh runbase server, with a new user per test
# (whose API key is its name, as W&B's test users have). Prints the harness's summary.
#   bash scripts/wandb-conformance.sh [--quick] [-- pytest args]
# WANDB_CONFORMANCE names the harness's run script (default: ../shared/tools/wandb-conformance/run).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
harness="${WANDB_CONFORMANCE:-$here/../shared/tools/wandb-conformance/run}"
[ -x "$harness" ] || { echo "no wandb-conformance harness at $harness (set WANDB_CONFORMANCE)" >&2; exit 2; }
python="$here/.venv/bin/python"
work="$(mktemp -d)"
export RUNBASE_DIR="$work/data"
port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"

main_key="$("$python" "$here/scripts/conformance_user.py" | cut -d' ' -f2)"
"$here/.venv/bin/runbase" server --port "$port" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.2; done

# a harness interpreter outside CPython 3.11.0-3.11.7 (their parser bug stops pytest now and then)
interpreter=()
for candidate in python3.13 python3.12 "$HOME"/.pyenv/versions/3.1[23].*/bin/python3; do
  found="$(command -v "$candidate" 2>/dev/null || true)"
  if [ -n "$found" ] && "$found" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then
    interpreter=(--python "$found"); break
  fi
done

"$harness" --url "$url" --key "$main_key" "${interpreter[@]}" \
  --new-user-cmd "RUNBASE_DIR='$RUNBASE_DIR' '$python' '$here/scripts/conformance_user.py'" "$@"
