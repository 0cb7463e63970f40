#!/usr/bin/env python3
"""A loopback TCP proxy that delivers every server->client chunk DELAY ms after it
arrived (one-way latency, pipelined: chunks are not serialised behind each other's
delay). With it, every wait of a client costs one DELAY, TLS handshake included —
`smtprobe serve --delay` only delays SMTP replies. Used by scripts/bench.sh.

usage: latency-proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS   (127.0.0.1 only)
Runs until killed; each connection is dropped after 60 s at the latest.
"""
import asyncio, sys, time

LISTEN, UPSTREAM, DELAY = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000.0


async def pump(reader, writer, delay):
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except OSError:
            pass

    task = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            queue.put_nowait((time.monotonic() + delay, data))
    finally:
        queue.put_nowait((0, None))
        await task


async def handle(client_r, client_w):
    try:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", UPSTREAM)
        await asyncio.wait_for(
            asyncio.gather(pump(client_r, server_w, 0.0), pump(server_r, client_w, DELAY)),
            timeout=60,
        )
    except (OSError, asyncio.TimeoutError):
        pass
    finally:
        client_w.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    print(f"latency proxy 127.0.0.1:{LISTEN} -> {UPSTREAM}, {DELAY * 1000:.0f} ms", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
