#!/usr/bin/env bash
# scripts/real-mta.sh — a throwaway, loopback-only real MTA for smtprobe's CI.
#
#   eval "$(bash scripts/real-mta.sh up)"    # install (if needed), configure, start
#   bash scripts/real-mta.sh env              # print the same export lines again
#   bash scripts/real-mta.sh status           # what runs (exit 0 only if all runs)
#   bash scripts/real-mta.sh down             # stop Postfix and Dovecot
#
# What `up` gives you (Debian 12, root, no systemd needed):
#   * Postfix 3.7 as a *private instance*: its own config dir, queue dir and
#     log file under the state dir ($SMTPROBE_MTA_DIR, default /tmp/smtprobe-mta);
#     /etc/postfix is neither read nor written.
#       - submission  127.0.0.1:587  STARTTLS required, AUTH only after TLS
#       - submissions 127.0.0.1:465  implicit TLS, AUTH
#       - smtp        127.0.0.1:25   plain, no TLS, no AUTH
#       - submissions-ccert 127.0.0.1:1465  implicit TLS that requires a client
#         certificate signed by the throwaway CA (smtpd_tls_ask_ccert +
#         smtpd_tls_req_ccert), then AUTH
#       - message_size_limit 1 MiB (announced as SIZE 1048576)
#   * A second Dovecot instance (dovecot-submissiond): SMTP submission on
#     127.0.0.1:1466, implicit TLS, client certificate required, AUTH EXTERNAL
#     only (the login is the certificate's CN), relaying to Postfix's port 25.
#     Postfix's Dovecot SASL cannot pass a client certificate on; Dovecot's own
#     submission service terminates TLS itself and can.
#   * Dovecot 2.3 (dovecot-core), auth service only, as Postfix's SASL backend
#     over the unix socket <queue dir>/private/auth; mechanisms PLAIN, LOGIN,
#     CRAM-MD5, SCRAM-SHA-1 and SCRAM-SHA-256 (Postfix offers what Dovecot offers);
#     one passwd-file user, independent of system accounts.
#   * A throwaway CA, a server certificate for localhost/127.0.0.1(/::1) and a
#     client certificate (clientAuth) for the client-certificate port.
#   * Virtual domain localhost.test: probe@localhost.test is delivered to an
#     mbox file under the state dir, any other localpart is rejected at RCPT
#     (550 5.1.1), and nothing is ever relayed or delivered off this machine.
#
# Output contract: stdout carries ONLY `export NAME=value` lines (for eval);
# every human message, and all output of the tools we call, goes to stderr.
# Daemons are started with stdin/stdout/stderr detached so that
# `bash scripts/real-mta.sh up | cat` returns as soon as the script is done.
#
# Environment (all optional):
#   SMTPROBE_MTA_DIR               state dir            (default /tmp/smtprobe-mta)
#   SMTPROBE_MTA_SUBMISSION_PORT   STARTTLS submission  (default 587)
#   SMTPROBE_MTA_SUBMISSIONS_PORT  implicit TLS         (default 465)
#   SMTPROBE_MTA_SMTP_PORT         plain SMTP           (default 25)
#   SMTPROBE_MTA_CCERT_PORT        implicit TLS + required client cert (default 1465)
#   SMTPROBE_MTA_EXTERNAL_PORT     Dovecot submission, AUTH EXTERNAL (default 1466)
#   SMTPROBE_MTA_PASSWORD          test user's password (default probe-test-password)
#   SMTPROBE_MTA_WAIT_SECS         readiness wait bound (default 20)
#
# The password is a throwaway test credential for a loopback-only server; it is
# stored in plain text in the state dir on purpose (the test reads it anyway).

set -euo pipefail

# stdout is reserved for the export lines: keep it on fd 3, send everything
# else (our messages, apt, openssl, postfix, ...) to stderr.
exec 3>&1 1>&2

# ---------------------------------------------------------------- settings ---
STATE_DIR=${SMTPROBE_MTA_DIR:-/tmp/smtprobe-mta}
SUBMISSION_PORT=${SMTPROBE_MTA_SUBMISSION_PORT:-587}
SUBMISSIONS_PORT=${SMTPROBE_MTA_SUBMISSIONS_PORT:-465}
SMTP_PORT=${SMTPROBE_MTA_SMTP_PORT:-25}
CCERT_PORT=${SMTPROBE_MTA_CCERT_PORT:-1465}
EXTERNAL_PORT=${SMTPROBE_MTA_EXTERNAL_PORT:-1466}
SIZE_LIMIT=1048576                  # message_size_limit, announced as SIZE (RFC 1870)
PASSWORD=${SMTPROBE_MTA_PASSWORD:-probe-test-password}
WAIT_SECS=${SMTPROBE_MTA_WAIT_SECS:-20}

MAIL_DOMAIN=localhost.test          # virtual mailbox domain (RFC 2606 .test: never routable)
MTA_USER=probe@localhost.test       # SASL login name == mailbox address
HOST_NAME=localhost                 # name in the server cert and the SMTP banner
LISTEN_ADDR=127.0.0.1

PF_CONF=$STATE_DIR/postfix          # private Postfix config_directory
PF_QUEUE=$STATE_DIR/spool           # private Postfix queue_directory
PF_DATA=$STATE_DIR/data             # private Postfix data_directory
DC_DIR=$STATE_DIR/dovecot           # Dovecot config + passwd-file
DC_RUN=$DC_DIR/run                  # Dovecot base_dir (sockets, master.pid)
DC_STATE=$DC_DIR/state              # Dovecot state_dir (not /var/lib/dovecot)
DS_DIR=$STATE_DIR/dovecot-submission # the AUTH EXTERNAL submission instance
DS_RUN=$DS_DIR/run
DS_LOG=$STATE_DIR/log/dovecot-submission.log
TLS_DIR=$STATE_DIR/tls
LOG_DIR=$STATE_DIR/log
MAIL_DIR=$STATE_DIR/mail            # virtual_mailbox_base
MAILBOX=$MAIL_DIR/probe.mbox        # where probe@localhost.test mail lands
CA_PEM=$TLS_DIR/ca.pem
POSTFIX_LOG=$LOG_DIR/postfix.log
DOVECOT_LOG=$LOG_DIR/dovecot.log

PACKAGES=(postfix dovecot-core dovecot-submissiond swaks openssl
          # swaks only speaks TLS (--tls, --tls-on-connect) with these two
          # Perl modules; they are mere "Recommends", so ask for them by name.
          libnet-ssleay-perl libio-socket-ssl-perl)

say() { printf 'real-mta: %s\n' "$*" >&2; }
die() { printf 'real-mta: ERROR: %s\n' "$*" >&2; exit 1; }

validate_settings() {
    local name port
    for name in SUBMISSION_PORT SUBMISSIONS_PORT SMTP_PORT CCERT_PORT EXTERNAL_PORT; do
        port=${!name}
        [[ $port =~ ^[0-9]+$ ]] && (( port >= 1 && port <= 65535 )) \
            || die "SMTPROBE_MTA_${name} must be a TCP port number, got '$port'"
    done
    [[ $SUBMISSION_PORT != "$SUBMISSIONS_PORT" && $SUBMISSION_PORT != "$SMTP_PORT" \
       && $SUBMISSIONS_PORT != "$SMTP_PORT" ]] || die "the three ports must differ"
    local ports=" $SUBMISSION_PORT $SUBMISSIONS_PORT $SMTP_PORT "
    [[ $ports != *" $CCERT_PORT "* ]] || die "SMTPROBE_MTA_CCERT_PORT must differ from the others"
    ports+="$CCERT_PORT "
    [[ $ports != *" $EXTERNAL_PORT "* ]] || die "SMTPROBE_MTA_EXTERNAL_PORT must differ from the others"
    [[ $STATE_DIR == /* ]] || die "SMTPROBE_MTA_DIR must be an absolute path"
    # ':' and newlines would break Dovecot's passwd-file format; whitespace and
    # '$' would need quoting in the export lines and in config files.
    [[ -n $PASSWORD && $PASSWORD != *[:[:space:]\$\'\"\\]* ]] \
        || die "SMTPROBE_MTA_PASSWORD must be non-empty without ':', quotes, '\\', '\$' or whitespace"
}

# ------------------------------------------------------------------ install ---
pkg_installed() {
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do pkg_installed "$p" || missing+=("$p"); done
    if ((${#missing[@]} == 0)); then
        say "packages already installed"
        return
    fi
    say "installing: ${missing[*]}"
    [[ $(id -u) == 0 ]] || die "installing packages needs root"
    export DEBIAN_FRONTEND=noninteractive
    # Postfix's debconf would otherwise ask for a "mail server configuration
    # type"; we never use /etc/postfix, so tell it to write nothing there.
    echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections
    # With no systemd, maintainer scripts fall back to /etc/init.d and would
    # start a *system* Postfix/Dovecot on the default ports. Forbid that for
    # the duration of the install with a temporary policy-rc.d (exit 101 =
    # "action forbidden"), unless the machine already has its own policy.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; own_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
    if ((own_policy)); then rm -f "$policy"; trap - EXIT; fi
}

# ------------------------------------------------------------ certificates ---
ipv6_loopback_works() {
    [[ -e /proc/net/if_inet6 ]] && grep -q ' lo$' /proc/net/if_inet6 2>/dev/null
}

# A private CA (basicConstraints CA:TRUE, keyCertSign) and a leaf certificate
# (CA:FALSE, serverAuth, SAN) signed by it: that is the shape strict verifiers
# such as rustls/webpki accept; they reject a self-signed leaf used as its own
# CA. Regenerated when missing, expiring within a day, or SANs changed.
make_certs() {
    local san="DNS:${HOST_NAME},IP:127.0.0.1"
    ipv6_loopback_works && san+=",IP:::1"
    mkdir -p "$TLS_DIR"; chmod 755 "$TLS_DIR"
    if [[ -s $CA_PEM && -s $TLS_DIR/server.pem && -s $TLS_DIR/server.key \
          && -s $TLS_DIR/san.txt && $(cat "$TLS_DIR/san.txt") == "$san" ]] \
       && openssl x509 -in "$CA_PEM" -noout -checkend 86400 >/dev/null \
       && openssl x509 -in "$TLS_DIR/server.pem" -noout -checkend 86400 >/dev/null \
       && openssl verify -CAfile "$CA_PEM" "$TLS_DIR/server.pem" >/dev/null 2>&1; then
        say "TLS certificates present ($san)"
        return
    fi
    say "generating throwaway CA and server certificate ($san)"
    local tmp; tmp=$(mktemp -d)
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -sha256 \
        -keyout "$tmp/ca.key" -out "$tmp/ca.pem" \
        -subj "/CN=smtprobe throwaway test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes -sha256 \
        -keyout "$tmp/server.key" -out "$tmp/server.csr" -subj "/CN=${HOST_NAME}" 2>/dev/null
    cat >"$tmp/ext.cnf" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=${san}
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
    openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
        -CAcreateserial -days 30 -sha256 -extfile "$tmp/ext.cnf" -out "$tmp/server.pem" 2>/dev/null
    install -m 644 "$tmp/ca.pem" "$CA_PEM"
    install -m 644 "$tmp/server.pem" "$TLS_DIR/server.pem"
    install -m 600 "$tmp/server.key" "$TLS_DIR/server.key"   # read by Postfix's root master/tlsmgr before privilege drop
    install -m 600 "$tmp/ca.key" "$TLS_DIR/ca.key"
    printf '%s\n' "$san" >"$TLS_DIR/san.txt"
    rm -rf "$tmp"
}

# A client certificate (clientAuth) from the same throwaway CA, for the port that
# requires one. Regenerated with the CA or when missing.
make_client_cert() {
    local crt=$TLS_DIR/client.pem key=$TLS_DIR/client.key
    if [[ -s $crt && -s $key ]] \
       && openssl verify -CAfile "$CA_PEM" "$crt" >/dev/null 2>&1 \
       && openssl x509 -in "$crt" -noout -checkend 86400 >/dev/null; then
        return
    fi
    say "generating the client certificate"
    local tmp; tmp=$(mktemp -d)
    openssl req -new -newkey rsa:2048 -nodes -sha256 \
        -keyout "$tmp/client.key" -out "$tmp/client.csr" -subj "/CN=smtprobe test client" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth" >"$tmp/ext.cnf"
    openssl x509 -req -in "$tmp/client.csr" -CA "$CA_PEM" -CAkey "$TLS_DIR/ca.key" \
        -CAcreateserial -days 30 -sha256 -extfile "$tmp/ext.cnf" -out "$tmp/client.pem" 2>/dev/null
    install -m 644 "$tmp/client.pem" "$crt"
    # World-readable on purpose: a throwaway test key the (unprivileged) tests read.
    install -m 644 "$tmp/client.key" "$key"
    rm -rf "$tmp"
}

# ------------------------------------------------------------------- config ---
# Each writer renders into "$1" (a temp file); install_if_changed then tells
# whether the running daemon must be restarted.
install_if_changed() { # src dst mode -> returns 0 if dst changed
    if [[ -f $2 ]] && cmp -s "$1" "$2"; then rm -f "$1"; return 1; fi
    install -m "$3" "$1" "$2"; rm -f "$1"; return 0
}

render_postfix_main() {
    cat <<EOF
# Generated by scripts/real-mta.sh — private, loopback-only test instance.
compatibility_level = 3.6

# Private instance: everything Postfix writes lives under the state dir.
queue_directory = ${PF_QUEUE}
data_directory = ${PF_DATA}
# Debian keeps postfix-files/dynamicmaps.cf in /etc/postfix, not in our -c dir.
meta_directory = /etc/postfix

# Identity. Explicit, so /etc/mailname and the machine's hostname don't matter.
myhostname = ${HOST_NAME}
mydomain = ${MAIL_DOMAIN}
myorigin = \$mydomain
smtpd_banner = \$myhostname ESMTP smtprobe-test-mta
biff = no

# Loopback only, IPv4 only: the services below bind to ${LISTEN_ADDR} explicitly.
inet_interfaces = ${LISTEN_ADDR}
inet_protocols = ipv4

# No syslog daemon on CI machines: Postfix >= 3.4 can log to a file through
# postlogd. The file must lie under one of maillog_file_prefixes.
maillog_file = ${POSTFIX_LOG}
maillog_file_prefixes = ${STATE_DIR}

# --- Where mail may go --------------------------------------------------------
# Nothing is "local" in the Unix-account sense, and nothing may leave the box:
# every non-virtual destination resolves to the error transport.
mydestination =
local_transport = error:5.1.1 local delivery disabled in the smtprobe test MTA
default_transport = error:5.7.1 outbound delivery disabled in the smtprobe test MTA
relay_transport = error:5.7.1 relaying disabled in the smtprobe test MTA
relay_domains =
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =

# The one deliverable domain: probe@${MAIL_DOMAIN} -> mbox file ${MAILBOX}.
# Any other localpart is not in the map, so smtpd_reject_unlisted_recipient
# (default yes) answers RCPT with "550 5.1.1 ... User unknown".
# texthash: reads the flat file directly, no postmap/.db step needed.
virtual_mailbox_domains = ${MAIL_DOMAIN}
virtual_mailbox_maps = texthash:${PF_CONF}/vmailbox
virtual_mailbox_base = ${MAIL_DIR}
# virtual(8) delivers as an unprivileged uid (it refuses uids below
# virtual_minimum_uid); 'nobody' needs no account of our own.
virtual_uid_maps = static:${MAIL_UID}
virtual_gid_maps = static:${MAIL_GID}
virtual_minimum_uid = 100
smtpd_reject_unlisted_recipient = yes
unknown_virtual_mailbox_reject_code = 550

# --- Relay control --------------------------------------------------------------
# Default (port 25): accept only our own domain, refuse everything else with
# "554 5.7.1 Relay access denied". No permit_mynetworks: every client is
# loopback, so it would turn this into an open relay for loopback clients.
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =

# --- TLS (server side) -------------------------------------------------------------
smtpd_tls_cert_file = ${TLS_DIR}/server.pem
smtpd_tls_key_file = ${TLS_DIR}/server.key
# Global default: no TLS (port 25 is the plain-text case); 587 and 465
# override this in master.cf.
smtpd_tls_security_level = none
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_tls_session_cache_database =
# Never used (nothing leaves the box), but keep the client quiet too.
smtp_tls_security_level = none

# --- SASL via Dovecot --------------------------------------------------------------
# Socket path is relative to queue_directory: ${PF_QUEUE}/private/auth,
# created by the Dovecot instance below.
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
# Off by default (port 25); 587/465 enable it in master.cf.
smtpd_sasl_auth_enable = no
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
broken_sasl_auth_clients = no

# --- Test friendliness -------------------------------------------------------------
# RFC 1870: announced as "250-SIZE ${SIZE_LIMIT}"; the size probe tests against it.
message_size_limit = ${SIZE_LIMIT}

# Postfix would sleep 1 s per error once a client passes smtpd_soft_error_limit;
# tests provoke errors on purpose, so reply at once.
smtpd_error_sleep_time = 0
# Not chrooted (see master.cf), so no resolv.conf etc. copies are needed.
EOF
}

render_postfix_master() {
    # Columns: service type private unpriv chroot wakeup maxproc command.
    # chroot is 'n' everywhere: a chroot in a private queue dir would need
    # copies of /etc files inside it and buys nothing on a test box.
    cat <<EOF
# Generated by scripts/real-mta.sh
# submission (RFC 6409): STARTTLS mandatory, AUTH offered only after STARTTLS.
${LISTEN_ADDR}:${SUBMISSION_PORT} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_auth_only=yes
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=reject_unauth_destination,permit_sasl_authenticated,reject
# submissions (RFC 8314): TLS from the first byte, then AUTH.
${LISTEN_ADDR}:${SUBMISSIONS_PORT} inet n - n - - smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=reject_unauth_destination,permit_sasl_authenticated,reject
# submissions with a required client certificate (verified against the throwaway CA).
${LISTEN_ADDR}:${CCERT_PORT} inet n - n - - smtpd
  -o syslog_name=postfix/submissions-ccert
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
  -o smtpd_tls_ask_ccert=yes
  -o smtpd_tls_req_ccert=yes
  -o smtpd_tls_CAfile=${CA_PEM}
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_relay_restrictions=reject_unauth_destination,permit_sasl_authenticated,reject
# smtp: plain text, no STARTTLS, no AUTH; accepts mail for ${MAIL_DOMAIN} only.
${LISTEN_ADDR}:${SMTP_PORT} inet n - n - - smtpd
  -o syslog_name=postfix/smtp
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

render_dovecot_conf() {
    cat <<EOF
# Generated by scripts/real-mta.sh — Dovecot used only as Postfix's SASL server.
# Private instance: own base_dir/state_dir, so it coexists with (and never
# touches) a system Dovecot in /run/dovecot.
instance_name = smtprobe-mta
base_dir = ${DC_RUN}
state_dir = ${DC_STATE}
# No IMAP/POP3/LMTP listeners: only the auth service (and its helpers) run.
protocols = none
ssl = no
log_path = ${DOVECOT_LOG}
info_log_path = ${DOVECOT_LOG}
# Log each failed attempt with its reason (never the password).
auth_verbose = yes

# Postfix only offers AUTH after TLS (587) or inside TLS (465); Dovecot can't
# see that TLS, so allow plaintext mechanisms on its side.
disable_plaintext_auth = no
# CRAM-MD5 and SCRAM need the plaintext (or SCRAM) password: the passwd-file keeps
# {PLAIN}, so Dovecot derives every mechanism's secret from it.
auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256
# Dovecot delays every failed-auth reply (default 2 s) to slow brute force;
# tests fail authentication on purpose and must not wait for it.
auth_failure_delay = 0

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${DC_DIR}/users
}
# Postfix never asks for userdb data, but Dovecot wants one configured.
userdb {
  driver = static
  args = uid=${MAIL_UID} gid=${MAIL_GID} home=${MAIL_DIR} allow_all_users=yes
}

service auth {
  # The socket Postfix's smtpd_sasl_path=private/auth points at.
  unix_listener ${PF_QUEUE}/private/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
}

# anvil keeps a per-IP auth penalty: after failures from an IP, later auth
# attempts from that IP (every test client is 127.0.0.1) are delayed 2, 4, 8,
# up to 15 s. mode = 0 means the listener isn't created, the auth process
# can't reach it, and penalty tracking is disabled completely.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
EOF
}

render_dovecot_submission_conf() {
    cat <<EOF
# Generated by scripts/real-mta.sh — Dovecot's SMTP submission service, for
# AUTH EXTERNAL (RFC 4422) with a TLS client certificate.
instance_name = smtprobe-mta-submission
base_dir = ${DS_RUN}
state_dir = ${DS_DIR}/state
protocols = submission
listen = ${LISTEN_ADDR}
log_path = ${DS_LOG}
info_log_path = ${DS_LOG}
auth_verbose = yes
hostname = ${HOST_NAME}
ssl = required
ssl_cert = <${TLS_DIR}/server.pem
ssl_key = <${TLS_DIR}/server.key
# Client certificates must chain to the throwaway CA (no CRL for a test CA).
ssl_ca = <${CA_PEM}
ssl_verify_client_cert = yes
ssl_require_crl = no
auth_ssl_require_client_cert = yes
auth_ssl_username_from_cert = yes
ssl_cert_username_field = commonName
# The CN "smtprobe test client" has spaces, which the default refuses.
auth_username_chars =
auth_mechanisms = external
auth_failure_delay = 0
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=${MAIL_UID} gid=${MAIL_GID} home=${DS_DIR}/home
}
mail_location = maildir:~/Maildir
# Mail goes on to Postfix's plain port 25 (which accepts ${MAIL_DOMAIN} only).
submission_relay_host = ${LISTEN_ADDR}
submission_relay_port = ${SMTP_PORT}
submission_relay_trusted = yes
service submission-login {
  inet_listener submission {
    port = 0
  }
  inet_listener submissions {
    port = ${EXTERNAL_PORT}
    ssl = yes
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
EOF
}

write_configs() {
    local f changed_pf=0 changed_dc=0
    mkdir -p "$STATE_DIR" "$PF_CONF" "$PF_QUEUE" "$PF_DATA" "$DC_DIR" "$DC_STATE" "$LOG_DIR" "$MAIL_DIR"
    # Postfix insists that the queue dir (and its parents) belong to root and
    # aren't group/world writable; `postfix check` creates what is inside.
    chown root:root "$STATE_DIR" "$PF_QUEUE"
    chmod 755 "$STATE_DIR" "$PF_CONF" "$PF_QUEUE" "$DC_DIR" "$LOG_DIR"
    chown postfix:postfix "$PF_DATA"; chmod 700 "$PF_DATA"   # data_directory must belong to mail_owner

    MAIL_UID=$(id -u nobody) MAIL_GID=$(getent group nogroup | cut -d: -f3)
    [[ -n $MAIL_GID ]] || MAIL_GID=$(id -g nobody)
    # virtual(8) creates/locks the mbox as that uid: it needs the directory.
    chown "$MAIL_UID:$MAIL_GID" "$MAIL_DIR"; chmod 755 "$MAIL_DIR"
    # Pre-create the mailbox world-readable so a test running as any user can
    # read it and SMTPROBE_MTA_MAILBOX exists before the first delivery. It is
    # kept across `up`s: tests find their message by a unique Subject.
    if [[ ! -e $MAILBOX ]]; then install -m 644 -o "$MAIL_UID" -g "$MAIL_GID" /dev/null "$MAILBOX"; fi

    f=$(mktemp); render_postfix_main >"$f";   install_if_changed "$f" "$PF_CONF/main.cf" 644 && changed_pf=1
    f=$(mktemp); render_postfix_master >"$f"; install_if_changed "$f" "$PF_CONF/master.cf" 644 && changed_pf=1
    f=$(mktemp); printf '%s %s\n' "$MTA_USER" "${MAILBOX#"$MAIL_DIR"/}" >"$f"
    install_if_changed "$f" "$PF_CONF/vmailbox" 644 && changed_pf=1

    f=$(mktemp); render_dovecot_conf >"$f";   install_if_changed "$f" "$DC_DIR/dovecot.conf" 644 && changed_dc=1
    mkdir -p "$DS_RUN" "$DS_DIR/state" "$DS_DIR/home"
    chown "$MAIL_UID:$MAIL_GID" "$DS_DIR/home"
    local changed_ds=0
    f=$(mktemp); render_dovecot_submission_conf >"$f"
    install_if_changed "$f" "$DS_DIR/dovecot.conf" 644 && changed_ds=1
    CHANGED_SUBMISSION=$changed_ds
    f=$(mktemp); printf '%s:{PLAIN}%s::::::\n' "$MTA_USER" "$PASSWORD" >"$f"
    install_if_changed "$f" "$DC_DIR/users" 640 && changed_dc=1
    chgrp dovecot "$DC_DIR/users"   # the auth process runs as 'dovecot'

    # A changed cert also needs a Postfix restart (smtpd caches it per process).
    if [[ $TLS_DIR/server.pem -nt $PF_CONF/.started ]] 2>/dev/null; then changed_pf=1; fi
    CHANGED_POSTFIX=$changed_pf CHANGED_DOVECOT=$changed_dc
}

# ---------------------------------------------------------------- processes ---
postfix_cmd() { postfix -c "$PF_CONF" "$@"; }

postfix_running() {
    [[ -f $PF_CONF/main.cf ]] && postfix_cmd status >/dev/null 2>&1
}

dovecot_pid() { # [base_dir] (default: the SASL instance's)
    local pid run=${1:-$DC_RUN}
    [[ -f $run/master.pid ]] || return 1
    pid=$(cat "$run/master.pid" 2>/dev/null) || return 1
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    # Guard against a recycled pid belonging to something else.
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dovecot ]] || return 1
    echo "$pid"
}

dovecot_running() { dovecot_pid >/dev/null; }

port_open() { # true if something accepts TCP connections on 127.0.0.1:$1
    timeout 1 bash -c "exec 9<>/dev/tcp/${LISTEN_ADDR}/$1" 2>/dev/null
}

wait_gone() { # pid secs
    local i
    for ((i = 0; i < $2 * 10; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    return 1
}

start_dovecot() {
    doveconf -c "$DC_DIR/dovecot.conf" -n >/dev/null \
        || die "Dovecot rejects $DC_DIR/dovecot.conf (see doveconf output above)"
    # A penalty socket left behind by an earlier config would make every
    # auth process log "Connection refused" for it; mode = 0 creates none.
    rm -f "$DC_RUN/anvil-auth-penalty"
    say "starting Dovecot (auth only), log $DOVECOT_LOG"
    # Dovecot keeps its caller's stderr open unless redirected: detach all
    # three standard fds and our fd 3 (stdout of the script) from it.
    dovecot -c "$DC_DIR/dovecot.conf" </dev/null >>"$DOVECOT_LOG" 2>&1 3>&-
}

children_of() { # pid -> pids whose parent it is (from /proc: no procps needed)
    local st ppid
    for st in /proc/[0-9]*/status; do
        ppid=$(awk '/^PPid:/ {print $2; exit}' "$st" 2>/dev/null) || continue
        [[ $ppid == "$1" ]] && { st=${st#/proc/}; echo "${st%/status}"; }
    done
    return 0
}

start_submission() {
    doveconf -c "$DS_DIR/dovecot.conf" -n >/dev/null \
        || die "Dovecot rejects $DS_DIR/dovecot.conf (see doveconf output above)"
    say "starting Dovecot submission (AUTH EXTERNAL), log $DS_LOG"
    dovecot -c "$DS_DIR/dovecot.conf" </dev/null >>"$DS_LOG" 2>&1 3>&-
}

stop_dovecot() { # [base_dir]
    local pid kids k
    pid=$(dovecot_pid "${1:-}") || return 0
    say "stopping Dovecot (pid $pid)"
    # Observed: after the master exits, its auth process lingers for seconds
    # while Postfix's smtpd processes stay connected to it, so they would go
    # on talking to the OLD auth process (old settings, old password). And a
    # master told to stop alone takes ~2 s to wind its children down.
    # So signal the master and its children together, and wait for all.
    kids=$(children_of "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    for k in $kids; do
        # Only Dovecot's own processes (titles "dovecot-<instance>/<service>").
        if [[ $(tr '\0' ' ' <"/proc/$k/cmdline" 2>/dev/null) == dovecot* ]]; then
            kill -TERM "$k" 2>/dev/null || true
        fi
    done
    for k in "$pid" $kids; do
        wait_gone "$k" 10 || kill -KILL "$k" 2>/dev/null || true
    done
}

start_postfix() {
    # `postfix check` also creates missing queue directories with the right
    # owners (private/ must exist before Dovecot can put its socket there).
    # Postfix logs its complaints to maillog_file, not to stderr: show them.
    postfix_cmd check </dev/null 3>&- \
        || die "postfix check failed (config in $PF_CONF); last lines of $POSTFIX_LOG:$(printf '\n'; tail -n 10 "$POSTFIX_LOG" 2>/dev/null)"
    say "starting Postfix, log $POSTFIX_LOG"
    postfix_cmd start </dev/null >>"$POSTFIX_LOG" 2>&1 3>&- \
        || die "postfix start failed; last log lines:$(printf '\n'; tail -n 20 "$POSTFIX_LOG" 2>/dev/null)"
    touch "$PF_CONF/.started"
}

stop_postfix() {
    local pid=""
    postfix_running || return 0
    pid=$(cat "$PF_QUEUE/pid/master.pid" 2>/dev/null | tr -d ' ') || true
    say "stopping Postfix${pid:+ (master pid $pid)}"
    postfix_cmd stop </dev/null >>"$POSTFIX_LOG" 2>&1 3>&- || true
    # `postfix stop` only signals the master; wait so that a following `up`
    # can bind the ports again.
    if [[ -n $pid ]] && ! wait_gone "$pid" 15; then
        kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 2 || true
    fi
}

check_ports_free() {
    local name port
    for name in SMTP_PORT SUBMISSION_PORT SUBMISSIONS_PORT CCERT_PORT; do
        port=${!name}
        if port_open "$port"; then
            die "${LISTEN_ADDR}:${port} is already in use by another process (not this MTA); pick another with SMTPROBE_MTA_${name}=<port>"
        fi
    done
}

wait_ready() {
    local deadline=$((SECONDS + WAIT_SECS)) name port
    for name in SMTP_PORT SUBMISSION_PORT SUBMISSIONS_PORT CCERT_PORT EXTERNAL_PORT; do
        port=${!name}
        until port_open "$port"; do
            ((SECONDS < deadline)) \
                || die "${LISTEN_ADDR}:${port} ($name) not accepting connections after ${WAIT_SECS}s; see $POSTFIX_LOG"
            sleep 0.2
        done
    done
    [[ -S $PF_QUEUE/private/auth ]] || {
        local i; for ((i = 0; i < 50; i++)); do [[ -S $PF_QUEUE/private/auth ]] && break; sleep 0.1; done
        [[ -S $PF_QUEUE/private/auth ]] || die "Dovecot auth socket $PF_QUEUE/private/auth missing; see $DOVECOT_LOG"
    }
}

print_env() {
    cat >&3 <<EOF
export SMTPROBE_REAL_MTA=1
export SMTPROBE_MTA_HOST=${HOST_NAME}
export SMTPROBE_MTA_SUBMISSION_PORT=${SUBMISSION_PORT}
export SMTPROBE_MTA_SUBMISSIONS_PORT=${SUBMISSIONS_PORT}
export SMTPROBE_MTA_SMTP_PORT=${SMTP_PORT}
export SMTPROBE_MTA_CA=${CA_PEM}
export SMTPROBE_MTA_USER=${MTA_USER}
export SMTPROBE_MTA_PASSWORD=${PASSWORD}
export SMTPROBE_MTA_MAILBOX=${MAILBOX}
export SMTPROBE_MTA_DIR=${STATE_DIR}
export SMTPROBE_MTA_CCERT_PORT=${CCERT_PORT}
export SMTPROBE_MTA_EXTERNAL_PORT=${EXTERNAL_PORT}
export SMTPROBE_MTA_CLIENT_CERT=${TLS_DIR}/client.pem
export SMTPROBE_MTA_CLIENT_KEY=${TLS_DIR}/client.key
export SMTPROBE_MTA_SIZE_LIMIT=${SIZE_LIMIT}
export SMTPROBE_MTA_SASL_MECHANISMS='PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256'
EOF
}

# ----------------------------------------------------------------- commands ---
cmd_up() {
    local t0=$SECONDS
    validate_settings
    install_packages
    command -v postfix >/dev/null && command -v dovecot >/dev/null && command -v swaks >/dev/null \
        || die "postfix/dovecot/swaks not found after install"
    make_certs
    make_client_cert
    write_configs

    # Restart only what must be restarted, so a second `up` is nearly free.
    if dovecot_running && ((CHANGED_DOVECOT)); then stop_dovecot; fi
    if dovecot_pid "$DS_RUN" >/dev/null && ((CHANGED_SUBMISSION)); then stop_dovecot "$DS_RUN"; fi
    if postfix_running && ((CHANGED_POSTFIX)); then stop_postfix; fi
    if ! postfix_running; then check_ports_free; fi

    # Postfix first: `postfix check` creates private/ for Dovecot's socket.
    local postfix_was_running=0 dovecot_started=0
    if postfix_running; then postfix_was_running=1; else start_postfix; fi
    if ! dovecot_running; then start_dovecot; dovecot_started=1; fi
    if ! dovecot_pid "$DS_RUN" >/dev/null; then start_submission; fi
    # A running Postfix whose Dovecot was just restarted still has smtpd
    # processes holding SASL connections to the dead auth process; the next
    # AUTH on one of them stalled ~5 s while it reconnected. `postfix reload`
    # makes the master replace its idle smtpd processes.
    if ((postfix_was_running && dovecot_started)); then
        say "reloading Postfix so smtpd reconnects to the new Dovecot"
        postfix_cmd reload </dev/null >>"$POSTFIX_LOG" 2>&1 3>&-
    fi
    wait_ready
    say "up: smtp ${LISTEN_ADDR}:${SMTP_PORT}, submission :${SUBMISSION_PORT} (STARTTLS), submissions :${SUBMISSIONS_PORT} (TLS); took $((SECONDS - t0))s"
    print_env
}

cmd_down() {
    stop_postfix
    stop_dovecot
    stop_dovecot "$DS_RUN"
    # The socket file outlives a killed Dovecot; drop it so status is honest.
    rm -f "$PF_QUEUE/private/auth"
    say "down"
}

cmd_status() {
    local ok=0 name port pid
    if postfix_running; then
        pid=$(tr -d ' ' <"$PF_QUEUE/pid/master.pid" 2>/dev/null || true)
        say "postfix: running (master pid ${pid:-?}, config $PF_CONF)"
    else
        say "postfix: stopped"; ok=1
    fi
    if pid=$(dovecot_pid); then
        say "dovecot: running (pid $pid, config $DC_DIR/dovecot.conf)"
    else
        say "dovecot: stopped"; ok=1
    fi
    if pid=$(dovecot_pid "$DS_RUN"); then
        say "dovecot submission: running (pid $pid, config $DS_DIR/dovecot.conf)"
    else
        say "dovecot submission: stopped"; ok=1
    fi
    for name in SMTP_PORT SUBMISSION_PORT SUBMISSIONS_PORT CCERT_PORT EXTERNAL_PORT; do
        port=${!name}
        if port_open "$port"; then say "${LISTEN_ADDR}:${port} ($name): accepting"
        else say "${LISTEN_ADDR}:${port} ($name): closed"; ok=1; fi
    done
    say "mailbox: $MAILBOX ($(grep -c '^From ' "$MAILBOX" 2>/dev/null || echo 0) messages)"
    return $ok
}

case ${1:-} in
    up)     cmd_up ;;
    down)   cmd_down ;;
    status) cmd_status ;;
    env)    validate_settings; print_env ;;
    *)      say "usage: $0 up|down|status|env"; exit 2 ;;
esac
