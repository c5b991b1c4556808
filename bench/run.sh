#!/usr/bin/env bash
# DeviceOps benchmark: the Release server as a process, on SQLite and then on a throwaway
# PostgreSQL, driven by wrk from a separate process. Prints one table per store with requests/s,
# p50/p99 latency, the server's peak RSS, and — measured in the same run as references — the
# server's own /healthz rate (HTTP ceiling), the disk's synchronous write rate and pgbench -N
# (database ceiling), our figures given as ratios to them.
#
#   bench/run.sh                 # both stores, 10 s per scenario
#   DURATION=5 bench/run.sh      # shorter
#   bench/run.sh --large         # also the large-store benchmark (100,000 devices, 1,000,000 entries; SQLite)
#   bench/run.sh --large-only    # only that
#   bench/run.sh --smoke         # a 2-second pass through everything, to check the harness
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/postgres.sh
source "$repo/scripts/postgres.sh"
duration=${DURATION:-10}
connections=${CONNECTIONS:-32}
large=0
small=1
for arg in "$@"; do
    case $arg in
        --large) large=1 ;;
        --large-only) large=1 small=0 ;;
        --smoke) duration=2 ;;
        *) echo "unknown argument $arg" >&2; exit 2 ;;
    esac
done
token=bench-secret-0123456789abcdef
work=$(mktemp -d "${TMPDIR:-/tmp}/deviceops-bench.XXXXXX")
server_pid=""
say() { printf '==> %s\n' "$*" >&2; }
cleanup() {
    stop_server
    pg_stop
    rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { say "installing wrk"; apt-get install -y -q wrk >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; }; }

say "publishing the server (Release)"
dotnet publish "$repo/src/DeviceOps.Server" -c Release -o "$work/server" --nologo -v quiet

start_server() {   # $1: name, $2: DEVICEOPS_DATABASE (empty: SQLite in the home folder)
    local home="$work/home-$1"
    mkdir -p "$home"
    port=$(free_port)
    (cd "$home" && exec env DEVICEOPS_DATABASE="$2" DEVICEOPS_BOOTSTRAP_TOKEN=$token ASPNETCORE_ENVIRONMENT=Production \
        DeviceOps__RateLimit__DefaultPerMinute=1000000000 Logging__LogLevel__Default=Warning \
        dotnet "$work/server/DeviceOps.Server.dll" --urls "http://127.0.0.1:$port" >"$home/server.log" 2>&1) &
    server_pid=$!
    for _ in $(seq 1 300); do
        curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$server_pid" 2>/dev/null || { cat "$home/server.log" >&2; return 1; }
        sleep 0.2
    done
    return 1
}

stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}

# Peak resident memory of the server so far, in MB (the kernel's high-water mark).
peak_rss() { awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$(pgrep -P "$server_pid" -f DeviceOps.Server.dll | head -n1 || echo "$server_pid")/status" 2>/dev/null || echo "?"; }

# Runs wrk and prints "requests/s p50 p99".
load() {   # $1: script or "-", $2: path
    local script=() out
    [[ $1 != - ]] && script=(-s "$repo/bench/$1")
    out=$(TOKEN=$token FIRST_OP=$first_op OP_COUNT=$op_count wrk -t"$(( connections < 2 ? 1 : 2 ))" -c"$connections" -d"${duration}s" --latency "${script[@]}" "http://127.0.0.1:$port$2")
    awk '/Requests\/sec/ { rps = $2 } / 50% / { p50 = $2 } / 99% / { p99 = $2 } END { printf "%s %s %s", rps, p50, p99 }' <<<"$out"
}

# Milliseconds a batch takes, median of three after one unmeasured warm-up (JIT, page cache).
timed_batch() {   # $1: first operation id, $2: items
    local times=() i
    for i in 0 1 2 3; do
        python3 "$repo/bench/batch.py" "$1" "$2" "$RANDOM$i" >"$work/batch.json"
        times+=("$(curl -fsS -o /dev/null -w '%{time_total}' -X PATCH -H "Authorization: Bearer $token" \
            -H 'Content-Type: application/json' --data-binary @"$work/batch.json" "http://127.0.0.1:$port/api/v1/inventory_device_operation/")")
    done
    printf '%s\n' "${times[@]:1}" | sort -n | sed -n 2p | awk '{ printf "%d", $1 * 1000 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

say "disk: synchronous 4 KiB writes"
dd_seconds=$(dd if=/dev/zero of="$work/dsync" bs=4k count=2000 oflag=dsync 2>&1 | awk '/copied/ { print $(NF-3) }')
disk_rate=$(awk -v s="$dd_seconds" 'BEGIN { printf "%d", 2000 / s }')
rm -f "$work/dsync"

bench_store() {   # $1: store name, $2: DEVICEOPS_DATABASE
    local store=$1 seed healthz put get list batch pgbench_tps="" rss
    say "$store: starting the server and filling 1,000 devices with open operations"
    start_server "$store" "$2"
    seed=$(python3 "$repo/bench/seed.py" "http://127.0.0.1:$port" "$token" 1000 10)
    eval "$seed"   # FIRST_OP, OP_COUNT
    first_op=$FIRST_OP op_count=$OP_COUNT
    say "$store: measuring"
    healthz=$(load - /healthz)
    # A webhook receiver for every relocation the PUT load makes: delivery lag under that load.
    receiver_port=$(free_port)
    python3 "$repo/bench/receiver.py" "$receiver_port" >"$work/lag-$store" &
    receiver_pid=$!
    curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d "{\"url\": \"http://127.0.0.1:$receiver_port/hook\", \"secret\": \"bench-webhook-secret-123\", \"events\": [\"device.relocated\"]}" \
        "http://127.0.0.1:$port/api/v1/webhook/"
    put=$(load put.lua /)
    sleep 5   # let the dispatcher drain what the load left behind
    kill -TERM "$receiver_pid"
    wait "$receiver_pid" || true
    read -r lag_p50 lag_p99 lag_count <"$work/lag-$store"
    get=$(load get.lua /)
    list=$(load list.lua /)
    batch=$(timed_batch "$first_op" 10000)
    rss=$(peak_rss)
    if [[ $store == postgresql ]]; then
        "$pg_bindir/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres pgbench
        "$pg_bindir/pgbench" -i -q -s 10 -h 127.0.0.1 -p "$pg_port" -U postgres pgbench >/dev/null 2>&1
        pgbench_tps=$("$pg_bindir/pgbench" -N -c "$connections" -j 2 -T "$duration" -h 127.0.0.1 -p "$pg_port" -U postgres pgbench 2>/dev/null \
            | awk '/^tps/ { printf "%d", $3 }')
    fi
    stop_server
    read -r h_rps _ _ <<<"$healthz"
    read -r put_rps put_p50 put_p99 <<<"$put"
    read -r get_rps get_p50 get_p99 <<<"$get"
    read -r list_rps list_p50 list_p99 <<<"$list"
    echo
    echo "### $store ($connections connections, ${duration} s each; $(nproc) cores, load generator on the same machine)"
    echo
    echo "| scenario | requests/s | p50 | p99 | ratio |"
    echo "|---|---|---|---|---|"
    echo "| reference: /healthz (HTTP ceiling) | $h_rps | | | |"
    echo "| reference: disk synchronous 4 KiB writes/s | $disk_rate | | | |"
    [[ -n $pgbench_tps ]] && echo "| reference: pgbench -N tps | $pgbench_tps | | | |"
    if [[ -n $pgbench_tps ]]; then
        echo "| seed PUT, durable, full audit | $put_rps | $put_p50 | $put_p99 | $(ratio "$put_rps" "$pgbench_tps") × pgbench -N |"
    else
        echo "| seed PUT, durable, full audit | $put_rps | $put_p50 | $put_p99 | $(ratio "$put_rps" "$disk_rate") × disk sync rate |"
    fi
    echo "| GET one operation | $get_rps | $get_p50 | $get_p99 | $(ratio "$get_rps" "$h_rps") × /healthz |"
    echo "| list 100 operations, filtered | $list_rps | $list_p50 | $list_p99 | |"
    echo "| 10,000-item batch PATCH (median of 3, after a warm-up) | | ${batch} ms | | |"
    echo "| webhook delivery lag under the PUT load ($lag_count deliveries) | | ${lag_p50} ms | ${lag_p99} ms | |"
    echo "| server peak RSS | ${rss} MB | | | |"
}

if [[ $small == 1 ]]; then
bench_store sqlite ""
pg_start >/dev/null
bench_store postgresql "Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=deviceops_bench;Pooling=true;Maximum Pool Size=64"
fi

if [[ $large == 1 ]]; then
    say "large store: 100,000 devices and 1,000,000 history entries (SQLite)"
    start_server large ""
    stop_server
    seed=$(python3 "$repo/bench/seed_large.py" "$work/home-large/data/deviceops.db" 100000 1000000)
    eval "$seed"
    start_server large ""
    batch=$(timed_batch "$FIRST_OP" 10000)
    first_op=$FIRST_OP op_count=100000
    devices=$(connections=1 load devices.lua /)
    read -r _ dev_p50 dev_p99 <<<"$devices"
    log=$(curl -fsS -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/inventory_device_log/?device_id=L-004242&limit=50")
    stop_server
    echo
    echo "### large store (SQLite: 100,000 devices, 1,000,000 history entries)"
    echo
    echo "| scenario | result |"
    echo "|---|---|"
    echo "| 10,000-item batch PATCH committed (median of 3, after a warm-up) | ${batch} ms |"
    echo "| filtered device list page, one client: p50 / p99 | $dev_p50 / $dev_p99 |"
    echo "| one device's log page (cold) | $(awk -v s="$log" 'BEGIN { printf "%d", s * 1000 }') ms |"
fi
