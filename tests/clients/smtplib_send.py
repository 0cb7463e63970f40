"""An app sending one message with Python's smtplib (standard library).

Settings come from the environment, as an app reads them: SMTP_HOST, SMTP_PORT,
SMTP_SECURITY (starttls = port 587, tls = port 465, none), SMTP_USER (empty: no login),
SMTP_PASSWORD, MAIL_FROM, MAIL_TO, SMTP_ACTION (send, or login to log in only).
The server's CA is trusted the OpenSSL way: SSL_CERT_FILE=ca.pem.

Prints one JSON line saying what the app saw (tests/clients/README.md has the words).
"""

import json
import os
import smtplib
import ssl
from email.message import EmailMessage

env = os.environ
stage = "connect"


def send():
    global stage
    # Verifies the certificate and the host name. (smtplib's own default context for
    # starttls() and SMTP_SSL verifies nothing: always pass this one.)
    context = ssl.create_default_context()
    if env["SMTP_SECURITY"] == "tls":
        smtp = smtplib.SMTP_SSL(env["SMTP_HOST"], int(env["SMTP_PORT"]), context=context, timeout=20)
    else:
        smtp = smtplib.SMTP(env["SMTP_HOST"], int(env["SMTP_PORT"]), timeout=20)
    with smtp:
        if env["SMTP_SECURITY"] == "starttls":
            stage = "starttls"
            smtp.starttls(context=context)  # raises if STARTTLS is not offered
        if env.get("SMTP_USER"):
            stage = "auth"
            smtp.login(env["SMTP_USER"], env["SMTP_PASSWORD"])
        if env.get("SMTP_ACTION") == "login":
            return "logged_in"
        stage = "mail"
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = env["MAIL_FROM"], env["MAIL_TO"], "smtprobe test"
        msg.set_content("Hello from the app.\n")
        smtp.send_message(msg)
        return "sent"


def reply(code, text):
    return {"code": code, "message": text.decode(errors="replace") if isinstance(text, bytes) else str(text)}


try:
    result = {"outcome": send()}
except smtplib.SMTPAuthenticationError as e:
    result = {"outcome": "auth_error", **reply(e.smtp_code, e.smtp_error)}
except smtplib.SMTPNotSupportedError as e:
    # starttls(): STARTTLS not offered; login(): no AUTH offered. Nothing was sent.
    result = {"outcome": "refused_tls" if stage == "starttls" else "auth_not_offered", "message": str(e)}
except smtplib.SMTPSenderRefused as e:
    result = {"outcome": "error", "stage": "mail", **reply(e.smtp_code, e.smtp_error)}
except smtplib.SMTPRecipientsRefused as e:
    code, text = next(iter(e.recipients.values()))
    result = {"outcome": "error", "stage": "rcpt", **reply(code, text)}
except smtplib.SMTPDataError as e:
    result = {"outcome": "error", "stage": "data", **reply(e.smtp_code, e.smtp_error)}
except smtplib.SMTPHeloError as e:
    result = {"outcome": "error", "stage": "ehlo", **reply(e.smtp_code, e.smtp_error)}
except smtplib.SMTPConnectError as e:
    result = {"outcome": "error", "stage": "greeting", **reply(e.smtp_code, e.smtp_error)}
except smtplib.SMTPResponseException as e:
    result = {"outcome": "error", "stage": stage, **reply(e.smtp_code, e.smtp_error)}
except smtplib.SMTPServerDisconnected as e:
    result = {"outcome": "error", "stage": stage, "code": None, "message": "disconnected: " + str(e)}
except ssl.SSLError as e:
    result = {"outcome": "error", "stage": "tls", "code": None, "message": str(e)}
except OSError as e:
    result = {"outcome": "error", "stage": stage, "code": None, "message": str(e)}
print(json.dumps(result))
