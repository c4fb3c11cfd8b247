"""Recording SMTP targets on many loopback addresses, for the open-relay test
flood: one process, one listening socket per address 127.1.X.Y on one port.
Each answers as an open relay, slowly (so tests overlap), up to 354 for DATA,
and records what it is sent. Every half second it writes what it saw to a
JSON file: connections per address, for each connection the span from its
accept to the last line the tester sent on it (the tester was surely busy
with it then; when it closed is seen here only later), every line received,
and any byte received after a 354.

    python3 -m mailharness.flood_targets --networks 6 --per-network 20 --port P --stats FILE

Prints "ready" once every address listens; runs until killed."""
import argparse
import asyncio
import json
import os
import time

from mailharness.loopback_targets import raise_open_file_limit


def address(network, host):
    return f"127.1.{network}.{host + 1}"


class Recorder:
    def __init__(self):
        self.connections = {}
        self.spans = []  # [host, accepted, last line], monotonic seconds
        self.lines = []
        self.after_354 = []

    def snapshot(self):
        return {"connections": self.connections, "spans": self.spans, "lines": self.lines[-2000:],
                "line_count": len(self.lines), "after_354": self.after_354}


async def serve(recorder, local, reader, writer, delay):
    recorder.connections[local] = recorder.connections.get(local, 0) + 1
    span = [local, time.monotonic(), time.monotonic()]
    recorder.spans.append(span)
    try:
        writer.write(b"220 flood.target.example ESMTP\r\n")
        await writer.drain()
        while line := await reader.readline():
            text = line.decode(errors="replace").rstrip("\r\n")
            recorder.lines.append(text)
            span[2] = time.monotonic()
            await asyncio.sleep(delay)
            command = text.upper()
            if command == "DATA":
                writer.write(b"354 go ahead\r\n")
                await writer.drain()
                # Whatever comes now would be message content.
                rest = await reader.read(65536)
                if rest:
                    recorder.after_354.append(rest.decode(errors="replace"))
                break
            writer.write(b"221 bye\r\n" if command == "QUIT" else b"250 ok\r\n")
            await writer.drain()
            if command == "QUIT":
                break
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--networks", type=int, default=6)
    parser.add_argument("--per-network", type=int, default=20)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stats", required=True)
    parser.add_argument("--delay", type=float, default=0.3)
    args = parser.parse_args()
    count = args.networks * args.per_network
    raise_open_file_limit(count)
    recorder = Recorder()
    for network in range(args.networks):
        for host in range(args.per_network):
            local = address(network, host)
            await asyncio.start_server(lambda r, w, local=local: serve(recorder, local, r, w, args.delay), local, args.port)
    print("ready", flush=True)
    while True:
        with open(args.stats + ".tmp", "w") as out:
            json.dump(recorder.snapshot(), out)
        os.replace(args.stats + ".tmp", args.stats)
        await asyncio.sleep(0.5)


if __name__ == "__main__":
    asyncio.run(main())
