# Sourced by bench/run.sh and bench/rss.sh: a webhook receiver for every relocation the PUT load
# makes (bench/receiver.py), registered with the server under test.
#
#   start_receiver BASE_URL TOKEN LAG_FILE   # sets receiver_pid; the receiver prints its lag figures to LAG_FILE
#   reset_receiver                           # SIGUSR1: the receiver forgets what it has recorded (after a warm-up)
#   stop_receiver                            # SIGTERM: the receiver writes 'lag_p50_ms lag_p99_ms count' and exits

start_receiver() {
    local base=$1 token=$2 lag_file=$3 receiver_port
    receiver_port=$(free_port)
    python3 "$repo/bench/receiver.py" "$receiver_port" >"$lag_file" &
    receiver_pid=$!
    # Registered only once it listens: a delivery refused meanwhile is retried 8–12 s later (the
    # dispatcher's first back-off), which put a ten-second lag into the measured load's p99.
    local tries=0
    until (exec 3<>"/dev/tcp/127.0.0.1/$receiver_port") 2>/dev/null; do
        kill -0 "$receiver_pid" 2>/dev/null && (( ++tries < 200 )) || { echo "the webhook receiver did not start" >&2; return 1; }
        sleep 0.05
    done
    curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d "{\"url\": \"http://127.0.0.1:$receiver_port/hook\", \"secret\": \"bench-webhook-secret-123\", \"events\": [\"device.relocated\"]}" \
        "$base/api/v1/webhook/"
}

reset_receiver() {
    kill -USR1 "$receiver_pid"
}

stop_receiver() {
    kill -TERM "$receiver_pid"
    wait "$receiver_pid" || true
    receiver_pid=""
}
