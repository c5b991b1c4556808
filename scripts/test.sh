#!/usr/bin/env bash
# The project's test command: the whole solution's tests twice, on the embedded SQLite store and
# on a throwaway PostgreSQL cluster this script creates (and installs, if the machine has none).
# The web console's end-to-end tests drive Debian's Chromium, installed here when it is missing.
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

say() { printf '==> %s\n' "$*" >&2; }
# shellcheck source=scripts/postgres.sh
source "$repo/scripts/postgres.sh"
# shellcheck source=scripts/chromium.sh
source "$repo/scripts/chromium.sh"

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
    pg_stop
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

# --- a throwaway PostgreSQL cluster ------------------------------------------------------------
pg_start
port=$pg_port
work="$pg_work"

# --- Debian's Chromium, for the web console's end-to-end tests -----------------------------------
chromium_ensure || { say "Chromium is missing and could not be installed; the console tests need it"; exit 1; }

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
    # The console tests save their screenshots beside the run's results, for CI to keep.
    DEVICEOPS_SCREENSHOTS="$results/$run/console-screenshots" \
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
