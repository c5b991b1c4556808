"""A webhook receiver for the benchmark: answers 204 at once and records, per event, the time it
arrived and the event's occurred_at, so run.sh can report delivery lag (commit to receiver).
On SIGTERM it prints 'lag_p50_ms lag_p99_ms count'; SIGUSR1 forgets what it has recorded so far
(the deliveries of a warm-up).

It stands in for a monitoring system on another machine, so it should cost the benchmark's two
shared cores as little as it can: HTTP/1.1 keep-alive on one asyncio loop, reading just what a
delivery is (a request line, headers with Content-Length, a JSON body). The standard library's
threaded HTTP server, used before, took about 160 µs of CPU per delivery — a quarter of what the
server spent on the PUT that caused it."""
import asyncio, json, signal, sys, time
from datetime import datetime

lags = []


class Receiver(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            arrived = time.time()
            occurred = datetime.fromisoformat(json.loads(body)["occurred_at"].replace("Z", "+00:00")).timestamp()
            lags.append((arrived - occurred) * 1000)
            self.transport.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")


def report():
    values = sorted(lags)
    if values:
        print(f"{values[len(values) // 2]:.0f} {values[min(len(values) - 1, int(len(values) * 0.99))]:.0f} {len(values)}", flush=True)
    else:
        print("- - 0", flush=True)
    sys.exit(0)


async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, report)
    loop.add_signal_handler(signal.SIGUSR1, lags.clear)
    server = await loop.create_server(Receiver, "127.0.0.1", int(sys.argv[1]))
    async with server:
        await server.serve_forever()


asyncio.run(main())
