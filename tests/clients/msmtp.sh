#!/usr/bin/env bash
# An app (or a CI step) sending one message with msmtp. Same settings as the other
# clients; the CA file is $SMTP_CA. msmtp has no "log in only" mode: it always sends.
# --debug prints the conversation, which the test reads; -C /dev/null keeps a
# ~/.msmtprc out of the test.
set -u
case $SMTP_SECURITY in
  starttls) tls=(--tls=on --tls-starttls=on) ;; # 587: STARTTLS or stop
  tls) tls=(--tls=on --tls-starttls=off) ;;     # 465: TLS first
  *) tls=(--tls=off) ;;
esac
login=(--auth=off)
[[ -n ${SMTP_USER:-} ]] && login=(--auth=on --user="$SMTP_USER" --passwordeval='printf %s "$SMTP_PASSWORD"')
exec msmtp -C /dev/null --debug --host="$SMTP_HOST" --port="$SMTP_PORT" "${tls[@]}" \
  --tls-trust-file="$SMTP_CA" "${login[@]}" --from="$MAIL_FROM" -- "$MAIL_TO" <"$(dirname "$0")/message.eml"
