#!/usr/bin/env python3
"""A loopback port that drops SYNs, like a firewall that drops: listen with a backlog of
0 and fill the accept queue, so the kernel drops further connection attempts.

    python3 scripts/blackhole.py HOST PORT     # prints "ready", then holds for 600 s
"""
import socket
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
srv = socket.socket(family, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((host, port))
srv.listen(0)
held = []
for _ in range(8):
    c = socket.socket(family, socket.SOCK_STREAM)
    c.settimeout(0.3)
    try:
        c.connect((host, port))
        held.append(c)
    except socket.timeout:
        print("ready", flush=True)
        time.sleep(600)
        sys.exit(0)
sys.exit("blackhole: a full accept queue did not make connects hang")
