#!/usr/bin/env bash
# scripts/real-mta-check.sh — cross-check the MTA from scripts/real-mta.sh with
# swaks and openssl (peer clients, independent of smtprobe). Exits non-zero on
# the first case whose reply differs from what the harness promises.
#
#   eval "$(bash scripts/real-mta.sh up)" && bash scripts/real-mta-check.sh
#
# Every case prints: name, the command, the SMTP reply code seen, elapsed time.
set -euo pipefail

: "${SMTPROBE_REAL_MTA:?run: eval \"\$(bash scripts/real-mta.sh up)\" first}"
H=127.0.0.1
SUB=$SMTPROBE_MTA_SUBMISSION_PORT SUBS=$SMTPROBE_MTA_SUBMISSIONS_PORT SMTP=$SMTPROBE_MTA_SMTP_PORT
U=$SMTPROBE_MTA_USER P=$SMTPROBE_MTA_PASSWORD
RCPT=$SMTPROBE_MTA_USER
OUT=$(mktemp); trap 'rm -f "$OUT"' EXIT
fails=0

# swaks prints the server's lines prefixed with "<-" (plain) or "<~" (TLS),
# and an error reply as "<**" (plain) or "<~*" (TLS); client lines "->"/"~>".
code_after() { # the reply to the LAST client line matching $1 (QUIT never counts)
    awk -v pat="$1" 'f && /^ *<[-~*]/ {sub(/^ *<[-~*]\*? +/, ""); code = substr($0,1,3); f = 0}
                     /^ *[-~]> / && $0 ~ pat && $0 !~ /> QUIT$/ {f = 1}
                     END {print code}' "$OUT"
}

check() { # name expected_code pattern_of_command_whose_reply_counts -- cmd...
    local name=$1 want=$2 pat=$3 got t0 t1; shift 4
    t0=$(date +%s%N)
    "$@" >"$OUT" 2>&1 </dev/null || true
    t1=$(date +%s%N)
    got=$(code_after "$pat")
    local ms=$(( (t1 - t0) / 1000000 ))
    if [[ $got == "$want" ]]; then
        printf 'ok   %-34s %s (%d ms)\n' "$name" "$got" "$ms"
    else
        printf 'FAIL %-34s want %s got %s (%d ms)\n  cmd: %s\n' "$name" "$want" "${got:-none}" "$ms" "$*"
        sed 's/^/  | /' "$OUT"; fails=$((fails + 1))
    fi
}

tls=(--tls-verify --tls-ca-path "$SMTPROBE_MTA_CA")

check "587 STARTTLS AUTH PLAIN"           235 '^ *~> AUTH PLAIN' -- \
    swaks --server $H:$SUB --tls "${tls[@]}" --auth PLAIN --auth-user "$U" --auth-password "$P" --quit-after AUTH
check "587 STARTTLS AUTH LOGIN"           235 '^ *~> [A-Za-z0-9+/=]+$' -- \
    swaks --server $H:$SUB --tls "${tls[@]}" --auth LOGIN --auth-user "$U" --auth-password "$P" --quit-after AUTH
check "587 wrong password"                535 '^ *~> AUTH PLAIN' -- \
    swaks --server $H:$SUB --tls "${tls[@]}" --auth PLAIN --auth-user "$U" --auth-password wrong-password --quit-after AUTH
check "587 unknown user"                  535 '^ *~> AUTH PLAIN' -- \
    swaks --server $H:$SUB --tls "${tls[@]}" --auth PLAIN --auth-user nobody@localhost.test --auth-password x --quit-after AUTH
check "587 good password after failures"  235 '^ *~> AUTH PLAIN' -- \
    swaks --server $H:$SUB --tls "${tls[@]}" --auth PLAIN --auth-user "$U" --auth-password "$P" --quit-after AUTH
check "465 implicit TLS AUTH PLAIN"       235 '^ *~> AUTH PLAIN' -- \
    swaks --server $H:$SUBS --tls-on-connect "${tls[@]}" --auth PLAIN --auth-user "$U" --auth-password "$P" --quit-after AUTH
check "465 implicit TLS AUTH LOGIN"       235 '^ *~> [A-Za-z0-9+/=]+$' -- \
    swaks --server $H:$SUBS --tls-on-connect "${tls[@]}" --auth LOGIN --auth-user "$U" --auth-password "$P" --quit-after AUTH

# 587 before STARTTLS: EHLO must not list AUTH, an AUTH command is refused,
# and MAIL needs STARTTLS first.
check "587 EHLO without TLS (no AUTH)"    250 '^ *-> EHLO' -- \
    swaks --server $H:$SUB --quit-after EHLO
if grep -qE '^ *<- +250[- ]AUTH' "$OUT"; then
    echo "FAIL 587 advertises AUTH before STARTTLS"; fails=$((fails + 1))
else
    echo "ok   587 EHLO before STARTTLS lists no AUTH"
fi
# swaks refuses to send AUTH that isn't advertised, so speak raw SMTP here.
raw_auth_plain() {
    exec 7<>/dev/tcp/$H/$SUB
    local line tok; tok=$(printf '\0%s\0%s' "$U" "$P" | base64 -w0)
    read -r -t 5 line <&7; echo "<- $line"
    printf 'EHLO check\r\n' >&7; echo "-> EHLO check"
    while read -r -t 5 line <&7; do echo "<- $line"; [[ $line == 250\ * ]] && break; done
    printf 'AUTH PLAIN %s\r\n' "$tok" >&7; echo "-> AUTH PLAIN (credentials)"
    read -r -t 5 line <&7; echo "<- $line"
    printf 'MAIL FROM:<%s>\r\n' "$U" >&7; echo "-> MAIL FROM"
    read -r -t 5 line <&7; echo "<- $line"
    printf 'QUIT\r\n' >&7; read -r -t 5 line <&7 || true; exec 7<&-
}
# Postfix with smtpd_tls_security_level=encrypt answers anything but
# EHLO/STARTTLS/NOOP/QUIT before TLS with 530 5.7.0.
check "587 AUTH without TLS refused"      530 '^-> AUTH PLAIN' -- raw_auth_plain
mail_code=$(awk '/^-> MAIL FROM/ {getline; print substr($2,1,3); exit}' "$OUT")
if [[ $mail_code == 530 ]]; then echo "ok   587 MAIL without TLS                    530"
else echo "FAIL 587 MAIL without TLS: want 530 got ${mail_code:-none}"; fails=$((fails + 1)); fi

check "25 no AUTH offered, mail accepted" 250 '^ *-> \.$' -- \
    swaks --server $H:$SMTP --to "$RCPT" --from sender@example.org --header "Subject: real-mta-check port25 $$"
if grep -qE '^ *<- +250[- ](AUTH|STARTTLS)' "$OUT"; then
    echo "FAIL port 25 advertises AUTH or STARTTLS"; fails=$((fails + 1))
fi

subject="real-mta-check $(date +%s%N)-$$"
check "587 full send (AUTH + DATA)"       250 '^ *~> \.$' -- \
    swaks --server $H:$SUB --tls "${tls[@]}" --auth PLAIN --auth-user "$U" --auth-password "$P" \
          --from "$U" --to "$RCPT" --header "Subject: $subject" --body "hello from real-mta-check"
found=0
for _ in $(seq 1 50); do
    if grep -qF "Subject: $subject" "$SMTPROBE_MTA_MAILBOX" 2>/dev/null; then found=1; break; fi
    sleep 0.1
done
if ((found)); then echo "ok   message delivered to mailbox            ($SMTPROBE_MTA_MAILBOX)"
else echo "FAIL message with Subject '$subject' not in $SMTPROBE_MTA_MAILBOX after 5 s"; fails=$((fails + 1)); fi

check "587 RCPT unknown user"             550 '^ *~> RCPT TO' -- \
    swaks --server $H:$SUB --tls "${tls[@]}" --auth PLAIN --auth-user "$U" --auth-password "$P" \
          --to nobody@localhost.test --quit-after RCPT
check "25 RCPT unknown user"              550 '^ *-> RCPT TO' -- \
    swaks --server $H:$SMTP --to nobody@localhost.test --quit-after RCPT
check "25 relay to other domain"          554 '^ *-> RCPT TO' -- \
    swaks --server $H:$SMTP --to someone@example.com --quit-after RCPT
check "587 relay even when authenticated" 554 '^ *~> RCPT TO' -- \
    swaks --server $H:$SUB --tls "${tls[@]}" --auth PLAIN --auth-user "$U" --auth-password "$P" \
          --to someone@example.com --quit-after RCPT
check "587 RCPT without AUTH (after TLS)" 554 '^ *~> RCPT TO' -- \
    swaks --server $H:$SUB --tls "${tls[@]}" --to "$RCPT" --quit-after RCPT

# Certificate chain + hostname verification against the throwaway CA.
for mode in "-starttls smtp -connect $H:$SUB" "-connect $H:$SUBS"; do
    # shellcheck disable=SC2086
    if echo QUIT | timeout 10 openssl s_client $mode -CAfile "$SMTPROBE_MTA_CA" \
            -verify_hostname localhost -verify_return_error -servername localhost >"$OUT" 2>&1 \
       && grep -q 'Verify return code: 0 (ok)' "$OUT"; then
        echo "ok   openssl s_client $mode: verify ok"
    else
        echo "FAIL openssl s_client $mode"; sed 's/^/  | /' "$OUT" | tail -20; fails=$((fails + 1))
    fi
done

if ((fails)); then echo "$fails check(s) failed"; exit 1; fi
echo "all checks passed"
