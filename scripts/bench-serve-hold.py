#!/usr/bin/env python3
"""Opens N connections to `smtprobe serve` and holds them open in TLS, for the serve
memory figure in scripts/bench.sh: each reads the greeting, sends EHLO, STARTTLS, does
the TLS handshake (trusting the CA), sends EHLO again, then waits. Prints `open=N` once
all are open, then holds them until stdin closes. Loopback only.

usage: bench-serve-hold.py PORT CA_PEM N
"""
import asyncio, ssl, sys

port, ca, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])


async def reply(r):
    while True:
        line = await asyncio.wait_for(r.readline(), 30)
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return line


async def one(ctx, held):
    r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 30)
    await reply(r)
    w.write(b"EHLO bench.example\r\n")
    await reply(r)
    w.write(b"STARTTLS\r\n")
    await reply(r)
    await w.start_tls(ctx, server_hostname="localhost")
    w.write(b"EHLO bench.example\r\n")
    await reply(r)
    held.append(w)


async def main():
    ctx = ssl.create_default_context(cafile=ca)
    held = []
    sem = asyncio.Semaphore(50)

    async def guarded():
        async with sem:
            await one(ctx, held)

    results = await asyncio.gather(*(guarded() for _ in range(n)), return_exceptions=True)
    bad = [r for r in results if isinstance(r, Exception)]
    print(f"open={len(held)} failed={len(bad)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for w in held:
        w.close()


asyncio.run(main())
