#!/usr/bin/env python3
"""Load for `smtprobe web`: N checks through POST /api/v1/check, C clients at once, each
a STARTTLS + AUTH check against a local replay server. Prints checks per second and how
many answered the expected diagnosis. Used by scripts/bench.sh (section 8).

usage: bench-web.py WEB_PORT SMTP_PORT N CLIENTS
"""
import http.client, json, sys, time
from concurrent.futures import ThreadPoolExecutor

wp, sp, n, conc = (int(a) for a in sys.argv[1:5])
body = json.dumps({"host": "localhost", "port": sp, "tls": "starttls", "user": "you@gmail.com",
                   "password": "bench-pw", "timeout": 10})


def one(_):
    c = http.client.HTTPConnection("127.0.0.1", wp, timeout=60)
    c.request("POST", "/api/v1/check", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status == 200 and json.loads(data)["diagnosis"]["code"] == "auth.bad-credentials"


t = time.perf_counter()
with ThreadPoolExecutor(conc) as ex:
    oks = sum(ex.map(one, range(n)))
dt = time.perf_counter() - t
print(f"  {n} checks, {conc} clients at once: {dt:.2f} s = {n / dt:.0f} checks/s;"
      f" {oks}/{n} answered auth.bad-credentials")
