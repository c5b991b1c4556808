# A throwaway PostgreSQL cluster for tests and benchmarks, from the distribution's packages.
# Source this file, then:
#   pg_start            # installs PostgreSQL if missing, initdb's a cluster in a temp folder and
#                       # starts it on a free loopback port: sets pg_port, pg_bindir, pg_work
#   pg_stop             # stops it and deletes the folder (safe to call twice)
# As root the server runs as the 'postgres' system user, since PostgreSQL refuses root.

pg_work=""
pg_data=""
pg_user=""   # the user PostgreSQL runs as when we are root; empty means ourselves
pg_bindir=""
pg_port=""

pg_say() { printf '==> %s\n' "$*" >&2; }

as_pg() {
    if [[ -n "$pg_user" ]]; then
        # From a folder that user can enter: initdb resolves its own path through the cwd.
        if command -v runuser >/dev/null; then
            (cd "$pg_work" && runuser -u "$pg_user" -- "$@")
        else
            (cd "$pg_work" && su -s /bin/bash "$pg_user" -c "$(printf '%q ' "$@")")
        fi
    else
        "$@"
    fi
}

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
            pg_say "PostgreSQL (initdb, pg_ctl) is missing and installing it needs root: run as root, install sudo, or install the 'postgresql' package first."
            return 1
        fi
    fi
    pg_say "installing PostgreSQL from the distribution's packages"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
}

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

pg_start() {
    if ! pg_bindir=$(find_pg_bindir); then
        install_pg || return 1
        pg_bindir=$(find_pg_bindir) || { pg_say "PostgreSQL was installed but initdb/pg_ctl are still not found"; return 1; }
    fi
    pg_say "PostgreSQL binaries: $pg_bindir"
    # As root, /tmp rather than $TMPDIR, which may sit under a home PostgreSQL's user cannot enter.
    pg_work=$(mktemp -d "$( [[ $(id -u) == 0 ]] && echo /tmp || echo "${TMPDIR:-/tmp}")/deviceops-pg.XXXXXX")
    chmod 755 "$pg_work"   # PostgreSQL's own user must reach the folders inside
    pg_data="$pg_work/pg"
    mkdir -p "$pg_data" "$pg_work/run"
    if [[ $(id -u) == 0 ]]; then
        pg_user=postgres
        if ! id -u "$pg_user" >/dev/null 2>&1; then
            useradd --system --user-group --home-dir "$pg_work" --shell /usr/sbin/nologin "$pg_user"
        fi
        chown "$pg_user:" "$pg_data" "$pg_work/run"
    fi
    chmod 700 "$pg_data"
    as_pg "$pg_bindir/initdb" -D "$pg_data" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$pg_work/initdb.log" 2>&1 \
        || { cat "$pg_work/initdb.log" >&2; return 1; }
    # Trust, but only from this machine's loopback and the socket inside the temp folder.
    cat >"$pg_data/pg_hba.conf" <<'HBA'
local all all              trust
host  all all 127.0.0.1/32 trust
HBA
    local attempt candidate
    pg_port=""
    for attempt in 1 2 3; do
        candidate=$(free_port)
        {
            echo "listen_addresses = '127.0.0.1'"
            echo "port = $candidate"
            echo "unix_socket_directories = '$pg_work/run'"
            echo "max_connections = 200"
        } >"$pg_data/postgresql.auto.conf"
        if as_pg "$pg_bindir/pg_ctl" -D "$pg_data" -l "$pg_data/server.log" -w -t 60 start >/dev/null; then
            pg_port=$candidate
            break
        fi
        pg_say "PostgreSQL did not start on port $candidate (attempt $attempt):"
        tail -n 5 "$pg_data/server.log" >&2 || true
    done
    [[ -n "$pg_port" ]] || { pg_say "could not start PostgreSQL"; return 1; }
    for _ in $(seq 1 60); do
        "$pg_bindir/pg_isready" -q -h 127.0.0.1 -p "$pg_port" -U postgres && break
        sleep 0.5
    done
    "$pg_bindir/pg_isready" -h 127.0.0.1 -p "$pg_port" -U postgres >&2
    pg_say "PostgreSQL is up on 127.0.0.1:$pg_port"
}

pg_stop() {
    if [[ -n "$pg_data" && -f "$pg_data/postmaster.pid" ]]; then
        as_pg "$pg_bindir/pg_ctl" -D "$pg_data" -m fast -w -t 30 stop >/dev/null 2>&1 \
            || as_pg "$pg_bindir/pg_ctl" -D "$pg_data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    [[ -n "$pg_work" ]] && rm -rf "$pg_work"
    pg_work="" pg_data=""
}
