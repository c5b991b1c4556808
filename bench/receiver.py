"""A webhook receiver for the benchmark: answers 204 at once and records, per event, the time it
arrived and the event's occurred_at, so run.sh can report delivery lag (commit to receiver).
On SIGTERM it prints 'lag_p50_ms lag_p99_ms count'; SIGUSR1 forgets what it has recorded so far
(the deliveries of a warm-up)."""
import json, signal, sys, threading, time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lags = []
lock = threading.Lock()

class Handler(BaseHTTPRequestHandler):
    # Keep-alive, as a monitoring system's receiver would: a new connection and thread per
    # delivery cost the shared machine more than the server's own work.
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        arrived = time.time()
        occurred = datetime.fromisoformat(json.loads(body)["occurred_at"].replace("Z", "+00:00")).timestamp()
        with lock:
            lags.append((arrived - occurred) * 1000)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)

def report(*_):
    with lock:
        values = sorted(lags)
    if values:
        print(f"{values[len(values) // 2]:.0f} {values[min(len(values) - 1, int(len(values) * 0.99))]:.0f} {len(values)}", flush=True)
    else:
        print("- - 0", flush=True)
    sys.exit(0)

def reset(*_):
    with lock:
        lags.clear()

signal.signal(signal.SIGTERM, report)
signal.signal(signal.SIGUSR1, reset)
server.serve_forever()
