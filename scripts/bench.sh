#!/usr/bin/env bash
# smtprobe benchmarks: figures, never pass/fail. Loopback only (127.0.0.1); every loop
# has a fixed count and every check a --timeout. See BENCHMARKS.md for what each
# section measures and the figures it printed on the reference machine.
#
#   bash scripts/bench.sh            # everything (starts the real MTA if needed)
#   BENCH_DELAY_MS=50 BENCH_RUNS=7 BENCH_SWAKS_SEQ=100 BENCH_BATCH=1000 bash scripts/bench.sh
#
# Needs: cargo, python3, swaks (+ libnet-ssleay-perl libio-socket-ssl-perl); hyperfine
# is used when present. Missing Debian packages are installed when running as root.
set -euo pipefail
cd "$(dirname "$0")/.."

DELAY=${BENCH_DELAY_MS:-50}
RUNS=${BENCH_RUNS:-7}
CPU_RUNS=${BENCH_CPU_RUNS:-30}
SWAKS_SEQ=${BENCH_SWAKS_SEQ:-100}
BATCH=${BENCH_BATCH:-1000}
BASE=${BENCH_PORT_BASE:-27500}

need() { command -v "$1" >/dev/null 2>&1; }
if [ "$(id -u)" = 0 ]; then
  missing=()
  need swaks || missing+=(swaks)
  perl -MNet::SSLeay -e1 2>/dev/null || missing+=(libnet-ssleay-perl)
  perl -MIO::Socket::SSL -e1 2>/dev/null || missing+=(libio-socket-ssl-perl)
  [ -x /usr/bin/time ] || missing+=(time)
  need hyperfine || missing+=(hyperfine)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: installing ${missing[*]}" >&2
    (apt-get update -qq && apt-get install -y -qq "${missing[@]}") >/dev/null 2>&1 ||
      echo "bench: could not install ${missing[*]}" >&2
  fi
fi

cargo build --release --quiet
BIN=$PWD/target/release/smtprobe
MEASURE="python3 $PWD/scripts/bench-measure.py"
TMP=$(mktemp -d /tmp/smtprobe-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

serve() { # fixture port delay_ms name
  "$BIN" serve "$1" --listen "127.0.0.1:$2" --ca-out "$TMP/$4.pem" --delay "$3" --timeout 10 \
    >"$TMP/$4.log" 2>&1 &
  PIDS+=($!)
}
proxy() { # listen upstream delay_ms
  python3 scripts/latency-proxy.py "$1" "$2" "$3" >"$TMP/proxy-$1.log" 2>&1 &
  PIDS+=($!)
}
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "bench: nothing listens on $1" >&2
  exit 1
}
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }

# ---- 8. smtprobe web and --html (bash scripts/bench.sh web runs only this) --------------
bench_web() {
  local WP=$((BASE + 30)) SP=$((BASE + 31)) SD=$((BASE + 32)) N=${BENCH_WEB_CHECKS:-500}
  echo "== 8. HTML report and smtprobe web"
  "$BIN" demo gmail-587-bad-credentials --html "$TMP/report.html" >/dev/null 2>&1 || true
  "$BIN" demo --html "$TMP/demos.html" >/dev/null 2>&1 || true
  printf '  report size: one check (gmail-587-bad-credentials) %s bytes (%s gzipped); the demo table (26 rows) %s bytes\n' \
    "$(wc -c <"$TMP/report.html")" "$(gzip -9c "$TMP/report.html" | wc -c)" "$(wc -c <"$TMP/demos.html")"
  echo "  render time (criterion, cargo bench --bench html_report):"
  cargo bench --quiet --bench html_report -- --warm-up-time 1 --measurement-time 3 2>/dev/null |
    grep -E '^html|time:' | sed 's/^ */    /'
  serve fixtures/gmail-587-bad-credentials.fixture "$SP" 0 web
  serve fixtures/gmail-587-bad-credentials.fixture "$SD" 500 webd
  wait_port "$SP"
  wait_port "$SD"
  cat "$TMP/web.pem" "$TMP/webd.pem" >"$TMP/web-ca.pem"
  "$BIN" web --listen "127.0.0.1:$WP" --allow-private --ca-file "$TMP/web-ca.pem" \
    --rate-limit 0 --max-checks 100 >"$TMP/web.log" 2>&1 &
  local WPID=$!
  PIDS+=($WPID)
  wait_port "$WP"
  echo "  idle web server: $(grep VmRSS /proc/$WPID/status | tr -s ' \t' ' ')"
  python3 scripts/bench-web.py "$WP" "$SP" "$N" 16
  python3 scripts/bench-web.py "$WP" "$SD" 100 100
  echo "  web server after them: $(grep VmHWM /proc/$WPID/status | tr -s ' \t' ' ') (peak RSS)"
  echo
}
if [ "${1:-}" = web ]; then
  bench_web
  exit 0
fi

# ---- 9. time to verdict (discover, issue 12) ------------------------------------------
# bash scripts/bench.sh discover   runs only this section. BENCH_BEFORE_BIN=path adds the
# same runs with an older build ("before"). IPv6 black hole: a mount namespace gives
# dual.test -> ::1 + 127.0.0.1 in a private /etc/hosts (getaddrinfo path, both builds).
bench_discover() {
  echo "== 9. Time to verdict (wall, one run each; --timeout 15 unless said)"
  need dnsmasq || { echo "bench: dnsmasq missing, section 6 skipped" >&2; return 0; }
  local F465=fixtures/gmail-465-login-ok.fixture F587=fixtures/gmail-587-plain-auth-ok.fixture
  local p465=$((BASE + 40)) p587=$((BASE + 41)) hole=$((BASE + 42)) dnsp=$((BASE + 43)) closed=$((BASE + 44))
  # The fixture's host names the certificate: dual.test for the black-hole run. The
  # servers wait 60 s for a client line, longer than any --timeout here.
  sed 's/^# host: .*/# host: dual.test/' $F465 >"$TMP/dual.fixture"
  for x in "$F465 $p465 d465" "$F587 $p587 d587" "$TMP/dual.fixture $((BASE + 45)) dual"; do
    set -- $x
    "$BIN" serve "$1" --listen "127.0.0.1:$2" --ca-out "$TMP/$3.pem" --timeout 60 >"$TMP/$3.log" 2>&1 &
    PIDS+=($!)
  done
  wait_port $p465; wait_port $p587; wait_port $((BASE + 45))
  python3 scripts/blackhole.py 127.0.0.1 $hole >"$TMP/hole4.log" 2>&1 & PIDS+=($!)
  python3 scripts/blackhole.py ::1 $((BASE + 45)) >"$TMP/hole6.log" 2>&1 & PIDS+=($!)
  dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --pid-file \
    --port=$dnsp --listen-address=127.0.0.1 --bind-interfaces --local=/test/ \
    --mx-host=acme.test,aspmx.l.google.com,1 --host-record=smtp.gmail.com,127.0.0.1 \
    >/dev/null 2>&1 & PIDS+=($!)
  sleep 1
  cat "$TMP/d465.pem" "$TMP/d587.pem" >"$TMP/dboth.pem"
  if [ -z "${SMTPROBE_MTA_CA:-}" ]; then eval "$(bash scripts/real-mta.sh up)"; fi
  printf '127.0.0.1 localhost\n::1 dual.test\n127.0.0.1 dual.test\n' >"$TMP/hosts"
  ttv() { # label bin args...
    local label=$1 bin=$2; shift 2
    local s e code
    s=$(date +%s.%N)
    code=$("$bin" "$@" --json 2>/dev/null | python3 -c 'import json,sys
d=json.load(sys.stdin)
d=d.get("check") or d
print(d.get("diagnosis",{}).get("code") or ("best %s:%s" % (d["probes"][d["best"]]["candidate"]["host"], d["probes"][d["best"]]["candidate"]["port"]) if d.get("best") is not None else "none"))' 2>/dev/null || true)
    e=$(date +%s.%N)
    printf '  %-58s %7.2f s  %s\n' "$label" "$(python3 -c "print($e - $s)")" "$code"
  }
  for which in before after; do
    local bin=$BIN
    if [ $which = before ]; then
      [ -n "${BENCH_BEFORE_BIN:-}" ] || continue
      bin=$BENCH_BEFORE_BIN
    fi
    echo " $which ($bin)"
    ttv "STARTTLS on 465 (real Postfix)" "$bin" check localhost --port 465 --tls starttls --ca-file "$SMTPROBE_MTA_CA"
    ttv "--tls auto on implicit port $p465 (replay)" "$bin" check smtp.gmail.com --connect-to 127.0.0.1 --port $p465 --ca-file "$TMP/d465.pem"
    ttv "check on a filtered port (one address)" "$bin" check localhost --port $hole --ca-file "$TMP/d465.pem"
    ttv "IPv6 black hole: dual.test ::1 dropped, 127.0.0.1 serves" unshare -m sh -c \
      "mount --bind $TMP/hosts /etc/hosts && exec $bin check dual.test --port $((BASE + 45)) --tls implicit --ca-file $TMP/dual.pem \"\$@\"" sh
    if [ $which = after ]; then
      ttv "discover: filtered 587, 465 open (--timeout 5)" "$bin" discover me@acme.test --dns-server 127.0.0.1:$dnsp \
        --ca-file "$TMP/dboth.pem" --port-map 465=$p465 --port-map 587=$hole --port-map 25=$closed --port-map 2525=$closed --https-port $closed
      ttv "discover: full discovery of acme.test (all answer)" "$bin" discover me@acme.test --dns-server 127.0.0.1:$dnsp \
        --ca-file "$TMP/dboth.pem" --port-map 465=$p465 --port-map 587=$p587 --port-map 25=$closed --port-map 2525=$closed --https-port $closed
    fi
  done
  echo
}
if [ "${1:-}" = discover ]; then
  bench_discover
  exit 0
fi

# ---- 10. batch memory at scale (issue 12 item 4) ----------------------------------------
# bash scripts/bench.sh memory   runs only this section: 10,000 rows at --concurrency 1000
# (and 3,000 at --concurrency 1 for the floor) against one `serve` of a Gmail 587 scenario.
bench_memory() {
  echo "== 10. Batch memory: 10000 rows, --concurrency 1000 --per-host 1000, one serve (gmail-587-plain-auth-ok)"
  local port=$((BASE + 50))
  "$BIN" serve fixtures/gmail-587-plain-auth-ok.fixture --listen "127.0.0.1:$port" --ca-out "$TMP/mem.pem" \
    --timeout 30 >"$TMP/mem.log" 2>&1 &
  PIDS+=($!)
  wait_port $port
  python3 - "$port" "$TMP/mem.pem" >"$TMP/mem.jsonl" <<'PY'
import json, sys
for i in range(10000):
    print(json.dumps({"id": f"row-{i}", "host": "localhost", "port": int(sys.argv[1]), "tls": "starttls",
                      "user": "you@gmail.com", "password_env": "BENCH_PW", "ca_file": sys.argv[2]}))
PY
  head -3000 "$TMP/mem.jsonl" >"$TMP/mem3k.jsonl"
  for c in 1 1000; do
    local f=$TMP/mem.jsonl
    [ $c = 1 ] && f=$TMP/mem3k.jsonl
    /usr/bin/time -f "  concurrency=$c wall_s=%e user_s=%U sys_s=%S peak_rss_kb=%M" -o "$TMP/mem.time" \
      env BENCH_PW=x "$BIN" batch "$f" --concurrency $c --per-host 1000 --timeout 20 >"$TMP/mem.out" 2>/dev/null || true
    echo "$(cat "$TMP/mem.time") ok_rows=$(grep -c '"outcome":"ok"' "$TMP/mem.out" || true)"
  done
  echo
}
if [ "${1:-}" = memory ]; then
  bench_memory
  exit 0
fi

echo "smtprobe bench — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r)"
echo "smtprobe $("$BIN" --version | cut -d' ' -f2), $(swaks --version 2>/dev/null | head -1 || echo 'swaks missing')"
echo

# ---- 6. serve: connections per second and memory with open connections ------------------
# One `smtprobe serve` process playing gmail-587-plain-auth-ok (server mode): a batch of
# checks over STARTTLS + AUTH PLAIN against it gives the connections it completes per
# second (its own verdict lines are counted); then N connections held open in TLS give
# its peak RSS. `bash scripts/bench.sh serve` runs only this section.
SERVE_CONNS=${BENCH_SERVE_CONNS:-2000}
SERVE_OPEN=${BENCH_SERVE_OPEN:-500}
bench_serve() {
  local port=$((BASE + 20)) pid c0 c1 t0 t1 ok passed rss0 hold
  ulimit -n 4096 2>/dev/null || true
  "$BIN" serve fixtures/gmail-587-plain-auth-ok.fixture --listen "127.0.0.1:$port" \
    --ca-out "$TMP/serve.pem" --timeout 30 --json >"$TMP/serve.jsonl" 2>"$TMP/serve.err" &
  pid=$!
  PIDS+=("$pid")
  wait_port "$port"
  python3 -c "
import json
for i in range($SERVE_CONNS):
    print(json.dumps({'id': f'r{i}', 'host': 'localhost', 'port': $port, 'tls': 'starttls',
                      'user': 'you@gmail.com', 'password_env': 'BENCH_PW', 'ca_file': '$TMP/serve.pem'}))" \
    >"$TMP/serve-rows.jsonl"
  c0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  t0=$(date +%s.%N)
  timeout 600 env BENCH_PW=x "$BIN" batch "$TMP/serve-rows.jsonl" --concurrency 100 --per-host 100 \
    --timeout 10 >"$TMP/serve-batch.out" 2>"$TMP/serve-batch.err" || true
  t1=$(date +%s.%N)
  c1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  sleep 2.5 # the last connections linger up to 2 s before their verdict line
  ok=$(grep -c '"outcome":"ok"' "$TMP/serve-batch.out" || true)
  passed=$(grep -c '"passed":true' "$TMP/serve.jsonl" || true)
  python3 -c "
t0, t1, c0, c1, hz, n = $t0, $t1, $c0, $c1, $(getconf CLK_TCK), $SERVE_CONNS
wall = t1 - t0
print(f'serve, {n} STARTTLS+AUTH connections from smtprobe batch (--concurrency 100):'
      f' {wall:.2f} s wall, {n / wall:.0f} connections/s;'
      f' serve CPU {(c1 - c0) / hz:.2f} s ({(c1 - c0) / hz * 1000 / n:.2f} ms per connection);'
      f' batch ok=$ok, serve verdicts passed=$passed')"
  rss0=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  mkfifo "$TMP/hold.in"
  python3 scripts/bench-serve-hold.py "$port" "$TMP/serve.pem" "$SERVE_OPEN" \
    <"$TMP/hold.in" >"$TMP/hold.out" 2>&1 &
  hold=$!
  PIDS+=("$hold")
  exec 7>"$TMP/hold.in"
  for _ in $(seq 1 600); do grep -q '^open=' "$TMP/hold.out" && break; sleep 0.1; done
  echo "serve with connections held open in TLS: $(cat "$TMP/hold.out"):" \
    "VmRSS $(awk '/VmRSS/ {print $2}' "/proc/$pid/status") kB (idle after the batch: $rss0 kB)," \
    "peak VmHWM $(awk '/VmHWM/ {print $2}' "/proc/$pid/status") kB"
  exec 7>&-
  wait "$hold" 2>/dev/null || true
}
if [ "${1:-}" = serve ]; then
  echo "== 6. serve"
  bench_serve
  exit 0
fi

# ---- 1. round trips -------------------------------------------------------------------
F587=fixtures/gmail-587-plain-auth-ok.fixture
F465=benches/fixtures/implicit-465-plain-ok.fixture
serve $F587 $((BASE + 0)) 0 s587
serve $F587 $((BASE + 1)) "$DELAY" s587d
serve $F465 $((BASE + 2)) 0 s465
serve $F465 $((BASE + 3)) "$DELAY" s465d
for p in 0 1 2 3; do wait_port $((BASE + p)); done
proxy $((BASE + 4)) $((BASE + 0)) "$DELAY"
proxy $((BASE + 5)) $((BASE + 2)) "$DELAY"
wait_port $((BASE + 4))
wait_port $((BASE + 5))

probe() { # port tls ca
  echo env SMTPROBE_PASSWORD=x "$BIN" check localhost --port "$1" --tls "$2" \
    --user you@gmail.com --ca-file "$TMP/$3.pem" --timeout 10 --json
}
swaks_cmd() { # port tlsflag
  echo swaks --server "127.0.0.1:$1" "$2" --auth PLAIN --auth-user you@gmail.com \
    --auth-password x --quit-after AUTH --to you@gmail.com --timeout 10
}
wall() { $MEASURE "$RUNS" "$@" | field wall_ms; }
rt() { python3 -c "print(f'{($1 - $2) / $DELAY:.2f}')"; }

echo "== 1. Round trips (median of $RUNS runs; waits = (wall with latency - wall without) / ${DELAY} ms)"
printf '%-34s %10s %10s %10s %8s %8s\n' "" "no delay" "--delay" "proxy" "replies" "all"
for mode in 587 465; do
  if [ $mode = 587 ]; then
    port0=$BASE; portd=$((BASE + 1)); portp=$((BASE + 4)); tls=starttls; ca=s587; sw=--tls
    min="6 / 7"
  else
    port0=$((BASE + 2)); portd=$((BASE + 3)); portp=$((BASE + 5)); tls=implicit; ca=s465; sw=--tlsc
    min="4 / 5"
  fi
  # The proxy fronts the delay-free server, so its certificate is the same one.
  a=$(wall $(probe $port0 $tls $ca)); b=$(wall $(probe $portd $tls ${ca}d)); c=$(wall $(probe $portp $tls $ca))
  printf '%-34s %8s ms %8s ms %8s ms %8s %8s\n' "smtprobe $mode ($tls, AUTH PLAIN)" "$a" "$b" "$c" "$(rt "$b" "$a")" "$(rt "$c" "$a")"
  a=$(wall $(swaks_cmd $port0 $sw)); b=$(wall $(swaks_cmd $portd $sw)); c=$(wall $(swaks_cmd $portp $sw))
  printf '%-34s %8s ms %8s ms %8s ms %8s %8s\n' "swaks $mode ($sw, --auth PLAIN)" "$a" "$b" "$c" "$(rt "$b" "$a")" "$(rt "$c" "$a")"
  printf '%-34s %10s %10s %10s %8s %8s\n' "protocol minimum $mode" "" "" "" "${min% / *}" "${min#* / }"
done
echo "  replies: waits on SMTP replies (serve --delay delays each reply);"
echo "  all: every wait including the TLS handshake (latency proxy, ${DELAY} ms on each server->client chunk)."
echo

# ---- 2. CPU and memory per check against the real Postfix ------------------------------
echo "== 2. CPU (user+sys, mean) and peak RSS per check against Postfix+Dovecot on loopback ($CPU_RUNS runs each)"
if [ -z "${SMTPROBE_MTA_HOST:-}" ]; then
  eval "$(bash scripts/real-mta.sh up)" || true
fi
if [ -n "${SMTPROBE_MTA_HOST:-}" ]; then
  U=$SMTPROBE_MTA_USER P=$SMTPROBE_MTA_PASSWORD
  for port in 587 465; do
    if [ $port = 587 ]; then tls=starttls sw=--tls; else tls=implicit sw=--tlsc; fi
    r1=$($MEASURE "$CPU_RUNS" env SMTPROBE_PASSWORD="$P" "$BIN" check localhost --port $port --tls $tls \
      --user "$U" --ca-file "$SMTPROBE_MTA_CA" --timeout 10 --json)
    r2=$($MEASURE "$CPU_RUNS" swaks --server 127.0.0.1:$port $sw --auth PLAIN --auth-user "$U" \
      --auth-password "$P" --quit-after AUTH --to "$U" --timeout 10)
    c1=$(echo "$r1" | field cpu_ms) c2=$(echo "$r2" | field cpu_ms)
    printf '%-10s smtprobe: %s\n%-10s swaks:    %s\n%-10s ratio swaks/smtprobe CPU: %s\n' \
      "$port" "$r1" "$port" "$r2" "$port" "$(python3 -c "print(f'{$c2 / $c1:.1f}x')")"
  done
  STAGES_PY='
import json, sys
r = json.load(sys.stdin)
waits = [s for s in r["stages"] if s["stage"] not in ("dns", "connect")]
stages = " ".join("%s=%s" % (s["stage"], s["ms"]) for s in r["stages"])
print("  %-9s %s %s: %s -> %d waits after connect"
      % (r["target"]["tls"], r["outcome"], (r["tls"] or {}).get("version"), stages, len(waits)))'
  echo "Postfix behind the latency proxy (${DELAY} ms per wait): stages[].ms of one check"
  proxy $((BASE + 8)) 587 "$DELAY"
  proxy $((BASE + 9)) 465 "$DELAY"
  wait_port $((BASE + 8))
  wait_port $((BASE + 9))
  for port in $((BASE + 8)) $((BASE + 9)); do
    if [ $port = $((BASE + 8)) ]; then tls=starttls; else tls=implicit; fi
    SMTPROBE_PASSWORD="$P" "$BIN" check localhost --port $port --tls $tls --user "$U" \
      --ca-file "$SMTPROBE_MTA_CA" --timeout 10 --json | python3 -c "$STAGES_PY"
  done
else
  echo "  (real MTA not available: skipped)"
fi
echo

# ---- 3. batch of $BATCH vs sequential swaks ---------------------------------------------
echo "== 3. Batch of $BATCH checks (--concurrency 100 --per-host 100) vs sequential swaks, against replay servers (no delay)"
serve $F587 $((BASE + 6)) 0 b1
serve $F587 $((BASE + 7)) 0 b2
wait_port $((BASE + 6))
wait_port $((BASE + 7))
python3 - "$BATCH" "$BASE" "$TMP" >"$TMP/profiles.jsonl" <<'EOF'
import json, sys
n, base, tmp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
for i in range(n):
    port, ca = (base + 6, "b1") if i % 2 == 0 else (base + 7, "b2")
    print(json.dumps({"id": f"row-{i}", "host": "localhost", "port": port, "tls": "starttls",
                      "user": "you@gmail.com", "password_env": "BENCH_PW",
                      "ca_file": f"{tmp}/{ca}.pem"}))
EOF
/usr/bin/time -f "wall_s=%e user_s=%U sys_s=%S peak_rss_kb=%M" -o "$TMP/batch.time" \
  timeout 600 env BENCH_PW=x "$BIN" batch "$TMP/profiles.jsonl" --concurrency 100 --per-host 100 \
  --timeout 10 >"$TMP/batch.out" 2>"$TMP/batch.err" || true
ok=$(grep -c '"outcome":"ok"' "$TMP/batch.out" || true)
echo "smtprobe batch: $(cat "$TMP/batch.time") ok_rows=$ok/$BATCH"
sed 's/^/  | /' "$TMP/batch.err"
start=$(date +%s.%N)
for _ in $(seq 1 "$SWAKS_SEQ"); do
  $(swaks_cmd $((BASE + 6)) --tls) >/dev/null 2>&1 || echo "bench: a swaks run failed" >&2
done
end=$(date +%s.%N)
python3 - "$start" "$end" "$SWAKS_SEQ" "$BATCH" "$TMP/batch.time" <<'EOF'
import sys
s, e, n, total = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
t = dict(kv.split("=") for kv in open(sys.argv[5]).read().split())
per = (e - s) / n
est = per * total
print(f"swaks sequential: {n} runs in {e - s:.2f} s ({per * 1000:.1f} ms each)"
      + (f", extrapolated to {total}: {est:.1f} s" if n != total else ""))
print(f"speed-up batch vs sequential swaks: {est / float(t['wall_s']):.0f}x")
EOF
echo

echo "Memory against the file size: rows to a closed port (connect refused at once)"
closed=$((BASE + 10)) # nothing listens there
for n in 1000 50000; do
  python3 -c "
import json, sys
for i in range($n): print(json.dumps({'id': f'r{i}', 'host': '127.0.0.1', 'port': $closed}))" >"$TMP/refused.jsonl"
  /usr/bin/time -f "  rows=$n wall_s=%e user_s=%U sys_s=%S peak_rss_kb=%M" \
    timeout 600 "$BIN" batch "$TMP/refused.jsonl" --concurrency 100 --per-host 100 >/dev/null 2>"$TMP/refused.err" || true
  tail -1 "$TMP/refused.err"
done
echo

# ---- 4. reply parser throughput ----------------------------------------------------------
echo "== 4. Reply parser (criterion, cargo bench --bench reply_parser)"
cargo bench --quiet --bench reply_parser -- --warm-up-time 1 --measurement-time 3 2>/dev/null |
  grep -E '^reply_parser|time:|thrpt:' | grep -v '%' | sed 's/^ */  /'
echo

# ---- 5. startup -----------------------------------------------------------------------------
echo "== 5. smtprobe --version"
if need hyperfine; then
  hyperfine -N --warmup 20 --runs 300 "$BIN --version" 2>/dev/null | grep -E 'Time|Range' | sed 's/^ */  /'
else
  $MEASURE 300 "$BIN" --version
fi
echo

echo "== 6. serve: connections per second over STARTTLS, memory with $SERVE_OPEN open connections"
bench_serve
echo

# ---- 7. SASL mechanisms and proxies (issue 13) ---------------------------------------------
# One check per mechanism against Postfix + Dovecot on 465, and the same AUTH PLAIN check
# direct, through microsocks (SOCKS5) and through tinyproxy (HTTP CONNECT).
bench_parity() {
  echo "== 7. AUTH mechanisms and proxies against Postfix+Dovecot on 465 (median wall, mean CPU of $CPU_RUNS runs)"
  if [ -z "${SMTPROBE_MTA_HOST:-}" ]; then
    echo "  skipped: no real MTA"
    return
  fi
  local port=${SMTPROBE_MTA_SUBMISSIONS_PORT:-465} m
  local base=(env SMTPROBE_PASSWORD="$SMTPROBE_MTA_PASSWORD" "$BIN" check localhost --connect-to 127.0.0.1
    --port "$port" --tls implicit --user "$SMTPROBE_MTA_USER" --ca-file "$SMTPROBE_MTA_CA" --timeout 10 --json)
  for m in plain login cram-md5 scram-sha-1 scram-sha-256; do
    printf '  %-16s %s\n' "$m" "$($MEASURE "$CPU_RUNS" "${base[@]}" --auth "$m")"
  done
  printf '  %-16s %s\n' "direct (plain)" "$($MEASURE "$CPU_RUNS" "${base[@]}" --auth plain)"
  if need microsocks; then
    microsocks -i 127.0.0.1 -p $((BASE + 60)) >/dev/null 2>&1 &
    PIDS+=($!)
    wait_port $((BASE + 60))
    printf '  %-16s %s\n' "via microsocks" \
      "$($MEASURE "$CPU_RUNS" "${base[@]}" --auth plain --proxy socks5://127.0.0.1:$((BASE + 60)))"
  fi
  if need tinyproxy; then
    printf 'Port %s\nListen 127.0.0.1\nLogLevel Error\nLogFile "%s"\nConnectPort %s\n' \
      $((BASE + 61)) "$TMP/tinyproxy.log" "$port" >"$TMP/tinyproxy.conf"
    tinyproxy -d -c "$TMP/tinyproxy.conf" >/dev/null 2>&1 &
    PIDS+=($!)
    wait_port $((BASE + 61))
    printf '  %-16s %s\n' "via tinyproxy" \
      "$($MEASURE "$CPU_RUNS" "${base[@]}" --auth plain --proxy http://127.0.0.1:$((BASE + 61)))"
  fi
}
bench_parity
echo
bench_web

bench_discover
bench_memory
