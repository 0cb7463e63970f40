#!/usr/bin/env bash
# An app (or a CI step) sending one message with curl. Same settings as the other
# clients (SMTP_HOST, SMTP_PORT, SMTP_SECURITY, SMTP_USER, SMTP_PASSWORD, MAIL_FROM,
# MAIL_TO); the CA file is $SMTP_CA. curl has no "log in only" mode: it always sends.
# --verbose: curl's own error ("Login denied") names no reply; the test reads the
# server's reply from the trace ("< 534-5.7.9 ..."). curl sends message.eml byte for
# byte: it has CRLF line ends (RFC 5321 §2.3.8; a bare LF is a finding of serve's).
set -u
case $SMTP_SECURITY in
  starttls) url=smtp://$SMTP_HOST:$SMTP_PORT tls=(--ssl-reqd) ;; # 587: STARTTLS or stop
  tls) url=smtps://$SMTP_HOST:$SMTP_PORT tls=() ;;              # 465: TLS first
  opportunistic) url=smtp://$SMTP_HOST:$SMTP_PORT tls=(--ssl) ;; # STARTTLS when offered
  *) url=smtp://$SMTP_HOST:$SMTP_PORT tls=() ;;
esac
login=()
[[ -n ${SMTP_USER:-} ]] && login=(--user "$SMTP_USER:$SMTP_PASSWORD")
exec curl --silent --show-error --verbose "$url" "${tls[@]}" --cacert "$SMTP_CA" "${login[@]}" \
  --mail-from "$MAIL_FROM" --mail-rcpt "$MAIL_TO" --upload-file "$(dirname "$0")/message.eml"
