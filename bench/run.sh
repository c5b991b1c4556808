#!/usr/bin/env bash
# DeviceOps benchmark: the Release server as a process, on SQLite and then on a throwaway
# PostgreSQL, driven by wrk from a separate process. Prints one table per store with requests/s,
# p50/p99 latency, the server's peak RSS, and — measured in the same run as references — the
# server's own /healthz rate (HTTP ceiling), the disk's synchronous write rate and pgbench -N
# (database ceiling), our figures given as ratios to them.
#
#   bench/run.sh                 # both stores, 10 s per scenario, once
#   bench/run.sh --runs 3        # the whole matrix three times: medians, and each run's ratios
#   DURATION=5 bench/run.sh      # shorter
#   WARMUP=0 bench/run.sh        # no unmeasured warm-up before each scenario (default 5 s)
#   bench/run.sh --large         # also the large-store benchmark (100,000 devices, 1,000,000 entries; SQLite)
#   bench/run.sh --large-only    # only that
#   bench/run.sh --smoke         # a 2-second pass through everything, to check the harness
#   MALLOC_ARENA_MAX=16 bench/run.sh  # glibc's own limit on two cores, eight arenas per core (see below)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/postgres.sh
source "$repo/scripts/postgres.sh"
# shellcheck source=webhook.sh
source "$repo/bench/webhook.sh"
duration=${DURATION:-10}
# Each scenario first runs unmeasured: a long-running server has compiled its hot paths to
# optimized code, which the runtime does in the background during the first seconds of a new
# load (with the webhook on, the JIT still took a fifth of the CPU in a PUT run's first 12 s).
warmup=${WARMUP:-5}
connections=${CONNECTIONS:-32}
# The server runs with the environment deploy/deviceops.service and the launch profile of
# `dotnet run` give it: glibc's heap in two arenas (README, "Performance").
arenas=${MALLOC_ARENA_MAX:-2}
large=0
small=1
runs=1
while [[ $# -gt 0 ]]; do
    arg=$1
    shift
    case $arg in
        --runs) runs=${1:?--runs needs a number}; shift ;;
        --runs=*) runs=${arg#--runs=} ;;
        --large) large=1 ;;
        --large-only) large=1 small=0 ;;
        --smoke) duration=2; warmup=1 ;;
        *) echo "unknown argument $arg" >&2; exit 2 ;;
    esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "--runs takes a positive number" >&2; exit 2; }
token=bench-secret-0123456789abcdef
work=$(mktemp -d "${TMPDIR:-/tmp}/deviceops-bench.XXXXXX")
server_pid=""
scraper_pid=""
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
    (cd "$home" && exec env MALLOC_ARENA_MAX="$arenas" DEVICEOPS_DATABASE="$2" DEVICEOPS_BOOTSTRAP_TOKEN=$token ASPNETCORE_ENVIRONMENT=Production \
        DeviceOps__RateLimit__DefaultPerMinute=1000000000 Logging__LogLevel__Default=Warning \
        dotnet "$work/server/DeviceOps.Server.dll" --urls "http://127.0.0.1:$port" >"$home/server.log" 2>&1) &
    server_pid=$!
    for _ in $(seq 1 300); do
        if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
            # Scraped every 15 s as Prometheus would: a server is measured as it runs in service,
            # where the first scrape starts the exporter listening to whatever it was told to.
            (while curl -fsS "http://127.0.0.1:$port/metrics" >/dev/null 2>&1; do sleep 15; done) 2>/dev/null &
            scraper_pid=$!
            return 0
        fi
        kill -0 "$server_pid" 2>/dev/null || { cat "$home/server.log" >&2; return 1; }
        sleep 0.2
    done
    return 1
}

stop_server() {
    if [[ -n "$scraper_pid" ]]; then
        pkill -P "$scraper_pid" 2>/dev/null || true   # its sleep
        kill "$scraper_pid" 2>/dev/null || true
        wait "$scraper_pid" 2>/dev/null || true
        scraper_pid=""
    fi
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}

# Peak resident memory of the server so far, in MB (the kernel's high-water mark).
peak_rss() { awk '/VmHWM/ { printf "%d", $2 / 1024 }' "/proc/$(pgrep -P "$server_pid" -f DeviceOps.Server.dll | head -n1 || echo "$server_pid")/status" 2>/dev/null || echo "?"; }

# Runs wrk and prints "requests/s p50 p99", the latencies in milliseconds.
load() {   # $1: script or "-", $2: path, $3: seconds (default: the measured duration)
    local script=() out
    [[ $1 != - ]] && script=(-s "$repo/bench/$1")
    out=$(TOKEN=$token FIRST_OP=$first_op OP_COUNT=$op_count wrk -t"$(( connections < 2 ? 1 : 2 ))" -c"$connections" -d"${3:-$duration}s" --latency "${script[@]}" "http://127.0.0.1:$port$2")
    awk 'function ms(v) {
             if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /m$/) return v * 60000; if (v ~ /s$/) return v * 1000; return v
         }
         /Requests\/sec/ { rps = $2 } / 50% / { p50 = ms($2) } / 99% / { p99 = ms($2) }
         END { printf "%d %.1f %.1f", rps, p50, p99 }' <<<"$out"
}

# The same load, unmeasured, for the warm-up.
warm() {   # $1: script or "-", $2: path
    if (( warmup > 0 )); then load "$1" "$2" "$warmup" >/dev/null; fi
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

results="$work/results"
mkdir -p "$results"

# The disk's synchronous 4 KiB write rate where the SQLite store lives, per second: the median
# of five passes of 2,000 writes. One pass takes under half a second, and back to back they
# ranged from 3,683 to 5,088 writes/s on this machine; the PUT it is compared with runs 10 s.
disk_sync_rate() {
    local pass seconds rates=()
    for pass in 1 2 3 4 5; do
        seconds=$(dd if=/dev/zero of="$work/dsync" bs=4k count=2000 oflag=dsync 2>&1 | awk '/copied/ { print $(NF-3) }')
        rm -f "$work/dsync"
        rates+=("$(awk -v s="$seconds" 'BEGIN { printf "%d", 2000 / s }')")
    done
    printf '%s\n' "${rates[@]}" | sort -n | sed -n 3p
}

# One store, one run: appends "key value" lines to $results/<store>.<run>.
bench_store() {   # $1: store name, $2: DEVICEOPS_DATABASE, $3: run number
    local store=$1 run=$3 seed healthz put get list batch rss out="$results/$1.$3"
    say "$store (run $run of $runs): starting the server and filling 1,000 devices with open operations"
    start_server "$store-$run" "$2"
    seed=$(python3 "$repo/bench/seed.py" "http://127.0.0.1:$port" "$token" 1000 10)
    eval "$seed"   # FIRST_OP, OP_COUNT
    first_op=$FIRST_OP op_count=$OP_COUNT
    say "$store (run $run of $runs): measuring"
    warm - /healthz
    healthz=$(load - /healthz)
    # The performance issue's PUT: durable, audited, with the events in the outbox but no
    # webhook to send them to.
    warm put.lua /
    plain=$(load put.lua /)
    # A webhook receiver for every relocation the PUT load makes: delivery lag under that load.
    start_receiver "http://127.0.0.1:$port" "$token" "$work/lag-$store"
    if (( warmup > 0 )); then
        warm put.lua /
        sleep 5   # the warm-up's deliveries drain, then count no more
        reset_receiver
    fi
    put=$(load put.lua /)
    sleep 5   # let the dispatcher drain what the load left behind
    stop_receiver
    read -r lag_p50 lag_p99 lag_count <"$work/lag-$store"
    warm get.lua /
    get=$(load get.lua /)
    warm list.lua /
    list=$(load list.lua /)
    batch=$(timed_batch "$first_op" 10000)
    rss=$(peak_rss)
    stop_server
    {
        read -r h_rps _ _ <<<"$healthz"; echo "healthz $h_rps"
        read -r rps p50 p99 <<<"$plain"; echo "plain_rps $rps"; echo "plain_p50 $p50"; echo "plain_p99 $p99"
        read -r rps p50 p99 <<<"$put"; echo "put_rps $rps"; echo "put_p50 $p50"; echo "put_p99 $p99"
        read -r rps p50 p99 <<<"$get"; echo "get_rps $rps"; echo "get_p50 $p50"; echo "get_p99 $p99"
        read -r rps p50 p99 <<<"$list"; echo "list_rps $rps"; echo "list_p50 $p50"; echo "list_p99 $p99"
        echo "batch_ms $batch"
        echo "lag_p50 $lag_p50"; echo "lag_p99 $lag_p99"; echo "lag_count $lag_count"
        echo "rss_mb $rss"
        echo "disk $disk_rate"
    } >"$out"
}

# pgbench -N on the run's PostgreSQL, at the same connection count: tps.
pgbench_rate() {
    "$pg_bindir/createdb" -h 127.0.0.1 -p "$pg_port" -U postgres pgbench
    "$pg_bindir/pgbench" -i -q -s 10 -h 127.0.0.1 -p "$pg_port" -U postgres pgbench >/dev/null 2>&1
    "$pg_bindir/pgbench" -N -c "$connections" -j 2 -T "$duration" -h 127.0.0.1 -p "$pg_port" -U postgres pgbench 2>/dev/null \
        | awk '/^tps/ { printf "%d", $3 }'
}

# A value of one run, or the median over the runs; "ratio" lines are computed per run first.
value() { awk -v k="$2" '$1 == k { print $2 }' "$results/$1.$3"; }
median() {   # $1: store, $2: key or "a/b" for a per-run ratio
    local r v
    for r in $(seq 1 "$runs"); do
        if [[ $2 == */* ]]; then
            ratio "$(value "$1" "${2%/*}" "$r")" "$(value "$1" "${2#*/}" "$r")"
        else
            value "$1" "$2" "$r"
        fi
        echo
    done | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
per_run() {   # $1: store, $2: "a/b": each run's ratio, comma-separated
    local r out=()
    for r in $(seq 1 "$runs"); do
        out+=("$(ratio "$(value "$1" "${2%/*}" "$r")" "$(value "$1" "${2#*/}" "$r")")")
    done
    local IFS=,
    echo "${out[*]}" | sed 's/,/, /g'
}

report() {   # $1: store
    local store=$1 reference label
    if [[ $store == postgresql ]]; then reference=pgbench label="pgbench -N"; else reference=disk label="disk sync rate"; fi
    echo
    echo "### $store ($connections connections, ${duration} s each after a ${warmup} s warm-up; $(nproc) cores, load generator on the same machine; median of $runs run(s); the server with MALLOC_ARENA_MAX=$arenas)"
    echo
    echo "| scenario | requests/s | p50 ms | p99 ms | ratio (median; each run) |"
    echo "|---|---|---|---|---|"
    echo "| reference: /healthz (HTTP ceiling) | $(median "$store" healthz) | | | |"
    echo "| reference: disk synchronous 4 KiB writes/s | $(median "$store" disk) | | | |"
    [[ $store == postgresql ]] && echo "| reference: pgbench -N tps | $(median "$store" pgbench) | | | |"
    echo "| seed PUT, durable, full audit, no webhook | $(median "$store" plain_rps) | $(median "$store" plain_p50) | $(median "$store" plain_p99) | $(median "$store" "plain_rps/$reference") × $label ($(per_run "$store" "plain_rps/$reference")) |"
    echo "| seed PUT, as above, a webhook receiving every change | $(median "$store" put_rps) | $(median "$store" put_p50) | $(median "$store" put_p99) | $(median "$store" "put_rps/$reference") × $label ($(per_run "$store" "put_rps/$reference")) |"
    echo "| GET one operation | $(median "$store" get_rps) | $(median "$store" get_p50) | $(median "$store" get_p99) | $(median "$store" get_rps/healthz) × /healthz ($(per_run "$store" get_rps/healthz)) |"
    echo "| list 100 operations, filtered | $(median "$store" list_rps) | $(median "$store" list_p50) | $(median "$store" list_p99) | |"
    echo "| 10,000-item batch PATCH, ms (each: median of 3 after a warm-up) | | $(median "$store" batch_ms) | | |"
    echo "| webhook delivery lag under the PUT load, ms | | $(median "$store" lag_p50) | $(median "$store" lag_p99) | |"
    echo "| server peak RSS, MB (median; highest of the runs in the last column) | $(median "$store" rss_mb) | | | $(for r in $(seq 1 "$runs"); do value "$store" rss_mb "$r"; done | sort -n | tail -n 1) MB |"
}

if [[ $small == 1 ]]; then
    for run in $(seq 1 "$runs"); do
        say "run $run of $runs: disk: synchronous 4 KiB writes"
        disk_rate=$(disk_sync_rate)
        bench_store sqlite "" "$run"
        # A fresh PostgreSQL each run, so every run starts from the same empty store.
        pg_start >/dev/null
        bench_store postgresql "Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=deviceops_bench;Pooling=true;Maximum Pool Size=64" "$run"
        pgbench_tps=$(pgbench_rate)
        echo "pgbench $pgbench_tps" >>"$results/postgresql.$run"
        pg_stop
    done
    report sqlite
    report postgresql
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
