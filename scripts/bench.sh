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

# ---- 6. time to verdict (discover, issue 12) ------------------------------------------
# bash scripts/bench.sh discover   runs only this section. BENCH_BEFORE_BIN=path adds the
# same runs with an older build ("before"). IPv6 black hole: a mount namespace gives
# dual.test -> ::1 + 127.0.0.1 in a private /etc/hosts (getaddrinfo path, both builds).
bench_discover() {
  echo "== 6. Time to verdict (wall, one run each; --timeout 15 unless said)"
  need dnsmasq || { echo "bench: dnsmasq missing, section 6 skipped" >&2; return 0; }
  local F465=fixtures/gmail-465-login-ok.fixture F587=fixtures/gmail-587-plain-auth-ok.fixture
  local p465=$((BASE + 20)) p587=$((BASE + 21)) hole=$((BASE + 22)) dnsp=$((BASE + 23)) closed=$((BASE + 24))
  # The fixture's host names the certificate: dual.test for the black-hole run. The
  # servers wait 60 s for a client line, longer than any --timeout here.
  sed 's/^# host: .*/# host: dual.test/' $F465 >"$TMP/dual.fixture"
  for x in "$F465 $p465 d465" "$F587 $p587 d587" "$TMP/dual.fixture $((BASE + 25)) dual"; do
    set -- $x
    "$BIN" serve "$1" --listen "127.0.0.1:$2" --ca-out "$TMP/$3.pem" --timeout 60 >"$TMP/$3.log" 2>&1 &
    PIDS+=($!)
  done
  wait_port $p465; wait_port $p587; wait_port $((BASE + 25))
  python3 scripts/blackhole.py 127.0.0.1 $hole >"$TMP/hole4.log" 2>&1 & PIDS+=($!)
  python3 scripts/blackhole.py ::1 $((BASE + 25)) >"$TMP/hole6.log" 2>&1 & PIDS+=($!)
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
      "mount --bind $TMP/hosts /etc/hosts && exec $bin check dual.test --port $((BASE + 25)) --tls implicit --ca-file $TMP/dual.pem \"\$@\"" sh
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

# ---- 7. batch memory at scale (issue 12 item 4) ----------------------------------------
# bash scripts/bench.sh memory   runs only this section: 10,000 rows at --concurrency 1000
# (and 3,000 at --concurrency 1 for the floor) against one `serve` of a Gmail 587 scenario.
bench_memory() {
  echo "== 7. Batch memory: 10000 rows, --concurrency 1000 --per-host 1000, one serve (gmail-587-plain-auth-ok)"
  local port=$((BASE + 30))
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

bench_discover
bench_memory
