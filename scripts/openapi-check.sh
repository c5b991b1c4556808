#!/usr/bin/env bash
# OpenAPI quality: start the published server, fetch /openapi/v1.json, lint it with Redocly's CLI
# (clients/typescript/redocly.yaml), generate TypeScript types with openapi-typescript and
# type-check a small usage file with tsc. Fails when any step fails.
#
#   ./scripts/openapi-check.sh [PUBLISHED_SERVER_DIR]   # default: $DEVICEOPS_SERVER_DIR, else publishes
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf '==> %s\n' "$*" >&2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/deviceops-openapi.XXXXXX")
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

server_dir=${1:-${DEVICEOPS_SERVER_DIR:-}}
if [[ -z "$server_dir" ]]; then
    say "publishing the server"
    dotnet publish "$repo/src/DeviceOps.Server" -c Release -o "$work/server" --nologo -v quiet
    server_dir="$work/server"
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/home"
(cd "$work/home" && exec env -u DEVICEOPS_DATABASE -u DEVICEOPS_BOOTSTRAP_TOKEN ASPNETCORE_ENVIRONMENT=Production \
    dotnet "$server_dir/DeviceOps.Server.dll" --urls "http://127.0.0.1:$port" >"$work/server.log" 2>&1) &
server_pid=$!
for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; say "the server exited"; exit 1; }
    sleep 0.2
done
client="$repo/clients/typescript"
curl -fsS "http://127.0.0.1:$port/openapi/v1.json" -o "$client/openapi.json"
say "fetched /openapi/v1.json ($(wc -c <"$client/openapi.json") bytes)"

cd "$client"
if [[ "${CI:-}" == true || ! -d node_modules ]]; then
    say "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
fi
say "redocly lint"
npx --no-install redocly lint --config redocly.yaml --format=stylish openapi.json
say "openapi-typescript"
npx --no-install openapi-typescript openapi.json --redocly redocly.yaml -o generated/deviceops.d.ts
say "tsc --noEmit"
npx --no-install tsc --noEmit -p .
say "OpenAPI check passed"
