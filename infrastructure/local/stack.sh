#!/usr/bin/env bash
# Start, check and stop the `stack` services on loopback: stack.sh up|down|status|env
# Settings come from STACK_* variables (see stack.env.example); logs go to $STACK_HOME/logs/.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${STACK_PYTHON:-$repo/.venv/bin/python}"
if [[ ! -x "$python" ]]; then
    echo "ERROR: $python not found: run \`make install\` first" >&2
    exit 1
fi
cd "$repo"
exec "$python" -m infrastructure.local.stack "$@"
