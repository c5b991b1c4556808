#!/usr/bin/env bash
# The project's test command: the whole solution's tests twice, on the embedded SQLite store and
# on a throwaway PostgreSQL cluster this script creates (and installs, if the machine has none).
#
#   ./scripts/test.sh              # from anywhere; extra arguments go to both `dotnet test` runs
#
# The last line of output is always "N passed, N failed" (both runs together); the exit status
# is non-zero when either run fails or does not run at all.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
export DOTNET_NOLOGO="${DOTNET_NOLOGO:-1}"
export DOTNET_CLI_TELEMETRY_OPTOUT="${DOTNET_CLI_TELEMETRY_OPTOUT:-1}"

results="$repo/TestResults"
runs=(sqlite postgres)
work=""
pg_data=""
pg_user=""   # the user PostgreSQL runs as when we are root; empty means ourselves
bindir=""

say() { printf '==> %s\n' "$*" >&2; }

as_pg() {
    if [[ -n "$pg_user" ]]; then
        # From a folder that user can enter: initdb resolves its own path through the cwd.
        if command -v runuser >/dev/null; then
            (cd "$work" && runuser -u "$pg_user" -- "$@")
        else
            (cd "$work" && su -s /bin/bash "$pg_user" -c "$(printf '%q ' "$@")")
        fi
    else
        "$@"
    fi
}

# Sums the trx files of one run into run_passed/run_failed; false when the run left none.
count_run() {
    local dir="$results/$1" file counters found=1 n
    run_passed=0 run_failed=0
    shopt -s nullglob
    for file in "$dir"/*.trx; do
        found=0
        counters=$(grep -o '<Counters [^>]*>' "$file" | head -n 1 || true)
        for n in passed; do
            run_passed=$((run_passed + $(attribute "$counters" "$n")))
        done
        for n in failed error timeout aborted; do
            run_failed=$((run_failed + $(attribute "$counters" "$n")))
        done
    done
    shopt -u nullglob
    return $found
}

attribute() {
    local value
    value=$(grep -o " $2=\"[0-9]*\"" <<<"$1" | grep -o '[0-9]\+' || true)
    echo "${value:-0}"
}

# Runs on every exit: stop the cluster, delete its folder, then print the summary as the last line.
finish() {
    local status=$? run passed=0 failed=0
    trap - EXIT INT TERM
    if [[ -n "$pg_data" && -f "$pg_data/postmaster.pid" ]]; then
        as_pg "$bindir/pg_ctl" -D "$pg_data" -m fast -w -t 30 stop >/dev/null 2>&1 \
            || as_pg "$bindir/pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    [[ -n "$work" ]] && rm -rf "$work"
    for run in "${runs[@]}"; do
        if count_run "$run"; then
            # A run that failed without a failing test (build error, crashed test host) still fails.
            if [[ "${run_status[$run]:-1}" != 0 && $run_failed == 0 ]]; then
                run_failed=1
            fi
        else
            say "$run: no test results (counted as one failure)"
            run_failed=1
            status=1
        fi
        passed=$((passed + run_passed))
        failed=$((failed + run_failed))
    done
    if [[ $openapi_status != 0 ]]; then
        say "the OpenAPI check failed (counted as one failure)"
        failed=$((failed + 1))
    fi
    if ((failed > 0 && status == 0)); then
        status=1
    fi
    echo "$passed passed, $failed failed"
    exit "$status"
}
declare -A run_status=()
openapi_status=0
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
rm -rf "${results:?}"/{sqlite,postgres}   # the summary counts this invocation's results only

# --- PostgreSQL binaries ------------------------------------------------------------------------
find_pg_bindir() {
    local dir
    if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
        dir=$(dirname "$(readlink -f "$(command -v pg_ctl)")")
        [[ -x "$dir/initdb" && -x "$dir/pg_isready" ]] && { echo "$dir"; return 0; }
    fi
    # Debian keeps the server binaries off PATH, one folder per major version; take the newest.
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && { echo "$dir"; return 0; }
    return 1
}

install_pg() {
    local sudo=()
    if [[ $(id -u) != 0 ]]; then
        if command -v sudo >/dev/null; then
            sudo=(sudo)
        else
            say "PostgreSQL (initdb, pg_ctl) is missing and installing it needs root: run as root, install sudo, or install the 'postgresql' package first."
            return 1
        fi
    fi
    say "installing PostgreSQL from the distribution's packages"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
}

if ! bindir=$(find_pg_bindir); then
    install_pg
    bindir=$(find_pg_bindir) || { say "PostgreSQL was installed but initdb/pg_ctl are still not found"; exit 1; }
fi
say "PostgreSQL binaries: $bindir"

# --- a throwaway cluster --------------------------------------------------------------------------
# As root, /tmp rather than $TMPDIR, which may sit under a home PostgreSQL's user cannot enter.
work=$(mktemp -d "$( [[ $(id -u) == 0 ]] && echo /tmp || echo "${TMPDIR:-/tmp}")/deviceops-test.XXXXXX")
chmod 755 "$work"   # PostgreSQL's own user must reach the folders inside
pg_data="$work/pg"
mkdir -p "$pg_data" "$work/run"
if [[ $(id -u) == 0 ]]; then
    # PostgreSQL refuses to run as root; the Debian package creates this system user.
    pg_user=postgres
    if ! id -u "$pg_user" >/dev/null 2>&1; then
        useradd --system --user-group --home-dir "$work" --shell /usr/sbin/nologin "$pg_user"
    fi
    chown "$pg_user:" "$pg_data" "$work/run"
fi
chmod 700 "$pg_data"

as_pg "$bindir/initdb" -D "$pg_data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$work/initdb.log" 2>&1 \
    || { cat "$work/initdb.log" >&2; exit 1; }
# Trust, but only from this machine's loopback and the socket inside the temp folder.
cat >"$pg_data/pg_hba.conf" <<'EOF'
local all all              trust
host  all all 127.0.0.1/32 trust
EOF

free_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
        return
    fi
    local port
    for _ in $(seq 1 100); do
        port=$((20000 + RANDOM % 40000))
        # Nobody answers on it: free (a bind race with another process is handled by the retry below).
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    return 1
}

port=""
for attempt in 1 2 3; do
    candidate=$(free_port)
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $candidate"
        echo "unix_socket_directories = '$work/run'"
        echo "max_connections = 200"
    } >"$pg_data/postgresql.auto.conf"
    if as_pg "$bindir/pg_ctl" -D "$pg_data" -l "$pg_data/server.log" -w -t 60 start >/dev/null; then
        port=$candidate
        break
    fi
    say "PostgreSQL did not start on port $candidate (attempt $attempt):"
    tail -n 5 "$pg_data/server.log" >&2 || true
done
[[ -n "$port" ]] || { say "could not start PostgreSQL"; exit 1; }
for _ in $(seq 1 60); do
    "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres && break
    sleep 0.5
done
"$bindir/pg_isready" -h 127.0.0.1 -p "$port" -U postgres >&2
say "PostgreSQL is up on 127.0.0.1:$port"

# --- build once, publish the server once, test twice -----------------------------------------------
build_ok=0
dotnet build DeviceOps.slnx -c Debug --nologo -v quiet || build_ok=$?
if [[ $build_ok == 0 ]]; then
    # PublishedServerTests start this build as a separate process; both runs share it.
    dotnet publish src/DeviceOps.Server -c Release -o "$work/server" --nologo -v quiet || build_ok=$?
    export DEVICEOPS_SERVER_DIR="$work/server"
fi
if [[ $build_ok != 0 ]]; then
    say "the build failed; no tests ran"
    exit 1
fi

run_tests() {
    local run=$1 started rc=0
    shift
    started=$SECONDS
    say "dotnet test ($run)"
    # LogFilePrefix keeps one trx per test project (a fixed LogFileName would let the second
    # project overwrite the first); count_run sums every trx of the run's folder.
    # The hang timeout turns a stuck test into a failure with a dump instead of a stuck CI job.
    dotnet test DeviceOps.slnx --no-build -c Debug --nologo \
        --logger "trx;LogFilePrefix=$run" \
        --results-directory "$results/$run" --blame-hang-timeout 5m "$@" || rc=$?
    run_status[$run]=$rc
    say "$run run: exit $rc in $((SECONDS - started)) s"
}

unset DEVICEOPS_TEST_POSTGRES
run_tests sqlite "$@"
export DEVICEOPS_TEST_POSTGRES="Host=127.0.0.1;Port=$port;Username=postgres;Pooling=true"
run_tests postgres "$@"

# The OpenAPI document of the published server: Redocly lint, generated TypeScript types, tsc.
say "OpenAPI check"
./scripts/openapi-check.sh "$work/server" || openapi_status=$?

status=0
[[ $openapi_status == 0 ]] || status=1
for run in "${runs[@]}"; do
    [[ ${run_status[$run]} == 0 ]] || status=1
done
exit $status
