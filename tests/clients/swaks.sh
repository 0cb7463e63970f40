#!/usr/bin/env bash
# An app (or a CI step) sending one message with swaks. Same settings as the other
# clients; the CA file is $SMTP_CA. swaks verifies no certificate unless told
# (--tls-verify), and swaks 20201014 (Debian 12) then checks the chain but not the host
# name. It prints the whole conversation, which the test reads.
set -u
case $SMTP_SECURITY in
  starttls) tls=(--tls) ;;        # 587: STARTTLS or stop
  tls) tls=(--tls-on-connect) ;;  # 465: TLS first
  *) tls=() ;;
esac
login=()
[[ -n ${SMTP_USER:-} ]] && login=(--auth --auth-user "$SMTP_USER" --auth-password "$SMTP_PASSWORD")
quit=()
[[ ${SMTP_ACTION:-send} == login ]] && quit=(--quit-after AUTH)
exec swaks --server "$SMTP_HOST" --port "$SMTP_PORT" "${tls[@]}" --tls-verify --tls-ca-path "$SMTP_CA" \
  "${login[@]}" --from "$MAIL_FROM" --to "$MAIL_TO" "${quit[@]}"
