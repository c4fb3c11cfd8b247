"""Many SMTP targets at once, for benchmarks: one process, one thread, one
listening socket per loopback address 127.1.X.Y on the same port. A share of
them are tarpits (accept, never answer), spread evenly, so that any run of
consecutive addresses holds that share; the rest answer like a closed MX.

    python3 -m mailharness.loopback_targets --count 1000 --port P [--tarpit-share 0.33]

Prints "ready" once every address listens; runs until killed."""
import argparse
import asyncio
import resource


def raise_open_file_limit(listeners):
    """Room for a listening socket and a few connections per target address."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * listeners + 100
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), max(hard, wanted)))
    except ValueError:
        # Not allowed to raise the hard limit (a container): as far as it goes.
        # Only the connections of one round of tests are open at a time.
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(wanted, hard)), hard))


def address(i):
    return f"127.1.{i // 250}.{i % 250 + 1}"


async def closed_mx(reader, writer):
    writer.write(b"220 closed.bench.example ESMTP\r\n")
    try:
        while line := await reader.readline():
            cmd = line.decode(errors="replace").strip().upper()
            if cmd.startswith("EHLO") or cmd.startswith("HELO"):
                writer.write(b"250 closed.bench.example\r\n")
            elif cmd.startswith("RCPT"):
                writer.write(b"554 5.7.1 Relay access denied\r\n")
            elif cmd == "QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
    finally:
        writer.close()


async def tarpit(reader, writer):
    try:
        while await reader.read(4096):
            pass
    finally:
        writer.close()


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tarpit-share", type=float, default=0.33)
    args = parser.parse_args()
    raise_open_file_limit(args.count)
    share = args.tarpit_share
    servers = []
    for i in range(args.count):
        handler = tarpit if int((i + 1) * share) > int(i * share) else closed_mx
        servers.append(await asyncio.start_server(handler, address(i), args.port, backlog=64))
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
