#!/usr/bin/env bash
# Runs every coverage-guided fuzz target (fuzz/, cargo-fuzz layout) for SECONDS each
# (default 60) and prints the executions and what was found.
#
#   scripts/fuzz.sh [SECONDS]            all targets
#   TARGETS=session scripts/fuzz.sh 300  one target
#
# cargo-fuzz needs nightly features; with only a stable toolchain installed,
# RUSTC_BOOTSTRAP=1 unlocks them (set here unless already set). Seeds come from the
# bundled fixtures; the growing corpus stays in fuzz/corpus/ and crashes in
# fuzz/artifacts/ (both git-ignored). A crash input becomes a regression case in
# tests/it/fuzz_properties.rs (copy it to tests/fuzz_regressions/TARGET-WHAT).
set -euo pipefail
SECS="${1:-60}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT/fuzz"
export RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}"
TARGETS="${TARGETS:-reply_parser session fixture}"
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz" >&2; exit 1; }

# Seeds: each fixture as is (fixture target) and its server lines as a byte stream
# behind the harness header bytes (see fuzz/harness.rs for the input format).
mkdir -p seeds/reply_parser seeds/session seeds/fixture logs
for f in "$ROOT"/fixtures/*.fixture; do
    name="$(basename "$f" .fixture)"
    cp "$f" "seeds/fixture/$name"
    flags=0
    case "$(sed -n 's/^# mode: *//p' "$f")" in
        implicit) flags=1 ;;
        none) flags=2 ;;
    esac
    grep -q '^C: AUTH LOGIN' "$f" && flags=$((flags + 16))
    grep -q '^C: MAIL' "$f" && flags=$((flags + 32))
    grep -q 'PIPELINING' "$f" && flags=$((flags + 64))
    server_lines() { grep '^S: ' "$f" | sed 's/^S: //; s/$/\r/'; }
    { printf '\000\000'; server_lines; } > "seeds/reply_parser/$name"
    # Seed byte 1: chunks never cross a line end, so the session follows the fixture.
    { printf "\\$(printf %03o "$flags")\\001\\000"; server_lines; } > "seeds/session/$name"
done

cargo fuzz build -O >/dev/null
for t in $TARGETS; do
    # The byte-stream targets start at full length (-len_control=0): the parser's caps
    # (8 KiB lines, 64 KiB replies) are only reached by long inputs, which libFuzzer's
    # default slow length growth does not try within minutes.
    case "$t" in
        fixture) max_len=8192 len_control=100 ;;
        session) max_len=4096 len_control=0 ;;
        *) max_len=16384 len_control=0 ;;
    esac
    mkdir -p "corpus/$t"
    echo "== $t: ${SECS}s"
    status=0
    cargo fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$SECS" -max_len="$max_len" -len_control="$len_control" \
        -print_final_stats=1 \
        >"logs/$t.log" 2>&1 || status=$?
    grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb' "logs/$t.log" || true
    grep -E '^#[0-9]+.*DONE' "logs/$t.log" | tail -1 || true
    if [ "$status" -ne 0 ]; then
        echo "!! $t FAILED (exit $status): see fuzz/logs/$t.log"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "logs/$t.log" | head -5 || true
    else
        echo "   no crash"
    fi
done
