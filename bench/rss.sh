#!/usr/bin/env bash
# Where the server's memory goes, phase by phase: runs the Release server as a process, fills
# 1,000 devices × 10 operations (bench/seed.py), drives PUT, GET and list with wrk, then sends
# four 10,000-item batch PATCHes, and after each phase prints the server's resident memory now
# (VmRSS) and its peak so far (VmHWM), in MB. For PUT and GET it prints requests/s and the
# server's CPU time per request (less disturbed by a shared machine than requests/s).
#
#   bench/rss.sh                          # SQLite
#   bench/rss.sh --pg                     # a throwaway PostgreSQL
#   bench/rss.sh DOTNET_GCgen0size=0x1000000   # extra environment for the server (runtime knobs to try)
#   bench/rss.sh MALLOC_ARENA_MAX=16      # glibc's own limit on two cores (otherwise the server runs as deploy/deviceops.service runs it: 2 arenas)
#   bench/rss.sh --server DIR             # an already published server instead of publishing this tree
#   bench/rss.sh --webhook                # as bench/run.sh: a webhook receives every relocation during the PUT load
#   DURATION=5 PORT=18777 bench/rss.sh    # wrk seconds per scenario (default 8); the server's port (default: a free one)
#   KEEP_LOG=/tmp/server.log bench/rss.sh Logging__LogLevel__DeviceOps=Debug   # keep the server's log (here at debug level)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/postgres.sh
source "$repo/scripts/postgres.sh"
# shellcheck source=webhook.sh
source "$repo/bench/webhook.sh"
duration=${DURATION:-8}
token=bench-secret-0123456789abcdef
store=sqlite
server=""
smaps=1
webhook=0
receiver_pid=""
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
        --pg) store=postgresql ;;
        --server) server=${2:?--server needs a folder}; shift ;;
        --no-smaps) smaps=0 ;;
        --webhook) webhook=1 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
work=$(mktemp -d "${TMPDIR:-/tmp}/deviceops-rss.XXXXXX")
pid=""
say() { printf '==> %s\n' "$*" >&2; }
cleanup() {
    # Only the server this script started, by its process id.
    if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    if [[ -n "$receiver_pid" ]]; then kill "$receiver_pid" 2>/dev/null || true; wait "$receiver_pid" 2>/dev/null || true; fi
    [[ $store == postgresql ]] && pg_stop
    if [[ -n "${KEEP_LOG:-}" ]]; then cp "$work/server.log" "$KEEP_LOG" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

if [[ -z "$server" ]]; then
    say "publishing the server (Release)"
    dotnet publish "$repo/src/DeviceOps.Server" -c Release -o "$work/server" --nologo -v quiet >&2
    server=$work/server
fi
database=""
if [[ $store == postgresql ]]; then
    pg_start >/dev/null
    database="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=deviceops_rss;Pooling=true;Maximum Pool Size=64"
fi
port=${PORT:-$(free_port)}
mkdir -p "$work/home"
(cd "$work/home" && exec env MALLOC_ARENA_MAX=2 "$@" DEVICEOPS_DATABASE="$database" DEVICEOPS_BOOTSTRAP_TOKEN=$token ASPNETCORE_ENVIRONMENT=Production \
    DeviceOps__RateLimit__DefaultPerMinute=1000000000 Logging__LogLevel__Default=Warning \
    dotnet "$server/DeviceOps.Server.dll" --urls "http://127.0.0.1:$port" >"$work/server.log" 2>&1) &
pid=$!
for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.2
done
base=http://127.0.0.1:$port

# "phase  VmRSS  VmHWM  [where]  note", in MB; where (unless --no-smaps): the resident anonymous
# memory in the GC's reservation, in the C allocator's 64 MiB-aligned arenas (SQLite's page caches,
# native buffers), in other anonymous mappings (stacks, the runtime's own heaps), and the JIT's
# double-mapped code.
rss() {
    local where=""
    [[ $smaps == 1 ]] && where=$(python3 - "$pid" <<'PY'
import re, sys
# Anonymous mappings: the GC's reservation is the longest run of adjacent anonymous mappings
# (one reservation of many GB, or of the hard limit); glibc's arenas are the heaps that start on a
# 64 MiB boundary (each reserves 64 MiB there and commits from its start).
vmas = []
current = None
for line in open(f"/proc/{sys.argv[1]}/smaps"):
    m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$", line)
    if m:
        current = [int(m.group(1), 16), int(m.group(2), 16), m.group(3).strip(), 0]
        vmas.append(current)
    elif line.startswith("Rss:"):
        current[3] += int(line.split()[1])
jit = sum(v[3] for v in vmas if "doublemapper" in v[2])
anon = [v for v in vmas if not v[2]]
runs = []
for v in anon:
    if runs and runs[-1][-1][1] == v[0]:
        runs[-1].append(v)
    else:
        runs.append([v])
gc_run = max(runs, key=lambda r: r[-1][1] - r[0][0])
gc = sum(v[3] for v in gc_run)
arena = 64 << 20
arenas = other = 0
for v in anon:
    if any(v is g for g in gc_run):
        continue
    block = v[0] - v[0] % arena
    if v[1] <= block + arena and any(w[0] == block for w in anon):
        arenas += v[3]
    else:
        other += v[3]
print(f"[gc {gc // 1024:3d} arenas {arenas // 1024:3d} other {other // 1024:3d} jit {jit // 1024:3d}]")
PY
)
    awk -v phase="$1" -v note="${2:-}" -v where="$where" '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } END { printf "%-8s rss %4d  peak %4d  %s %s\n", phase, r / 1024, h / 1024, where, note }' "/proc/$pid/status"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
# Runs wrk on a script; prints "N req/s, M µs server CPU per request".
load() {
    local before after out requests
    before=$(cpu_ticks)
    out=$(TOKEN=$token FIRST_OP=$first_op OP_COUNT=$op_count wrk -t2 -c32 -d"${duration}s" -s "$repo/bench/$1" "$base/")
    after=$(cpu_ticks)
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    awk -v rps="$(awk '/Requests\/sec/ { print $2 }' <<<"$out")" -v n="$requests" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%d req/s, %d µs CPU/request", rps, (n > 0 ? t / hz * 1e6 / n : 0) }'
}
managed() { curl -fsS "$base/metrics" | awk '/^dotnet_total_memory_bytes/ { printf "managed heap %d MB", $2 / 1048576 }'; }

echo "store $store; server environment: ${*:-(none)}"
rss start
eval "$(python3 "$repo/bench/seed.py" "$base" "$token" 1000 10)"
first_op=$FIRST_OP op_count=$OP_COUNT
rss seeded "$(managed)"
if [[ $webhook == 1 ]]; then
    # As bench/run.sh does: a receiver for every relocation during the PUT load, stopped 5 s after
    # it, so the batches' deliveries fail and wait for their retries.
    start_receiver "$base" "$token" "$work/lag"
fi
rss put "$(load put.lua)"
if [[ $webhook == 1 ]]; then
    sleep 5
    rss drained
    stop_receiver
    read -r lag_p50 lag_p99 lag_count <"$work/lag"
    echo "webhook: $lag_count deliveries, lag p50 $lag_p50 ms, p99 $lag_p99 ms"
fi
rss get "$(load get.lua)"
rss list "$(load list.lua)"
for i in 1 2 3 4; do
    python3 "$repo/bench/batch.py" "$first_op" 10000 "$RANDOM$i" >"$work/batch.json"
    took=$(curl -fsS -o /dev/null -w '%{time_total}' -X PATCH -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        --data-binary @"$work/batch.json" "$base/api/v1/inventory_device_operation/")
    rss "batch$i" "$(awk -v s="$took" 'BEGIN { printf "%d ms", s * 1000 }')"
done
echo "after    $(managed)"
