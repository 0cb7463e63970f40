// An app sending one message with nodemailer.
//
// Settings come from the environment, as an app reads them: SMTP_HOST, SMTP_PORT,
// SMTP_SECURITY (starttls = port 587, tls = port 465, none; opportunistic = nodemailer's
// default for 587: STARTTLS only when offered), SMTP_USER (empty: no login),
// SMTP_PASSWORD, MAIL_FROM, MAIL_TO, SMTP_ACTION (send, or login to log in only).
// The server's CA is trusted the Node way: NODE_EXTRA_CA_CERTS=ca.pem.
//
// Prints one JSON line saying what the app saw (tests/clients/README.md has the words).
"use strict";
const nodemailer = require("nodemailer");

const env = process.env;
const transporter = nodemailer.createTransport({
  host: env.SMTP_HOST,
  port: Number(env.SMTP_PORT),
  secure: env.SMTP_SECURITY === "tls", // 465: TLS from the first byte
  // 587: without requireTLS nodemailer goes on in clear text when STARTTLS is missing
  // from the EHLO reply (e.g. stripped by a middlebox): MAIL goes unencrypted, and so
  // does the password if the server lists AUTH before TLS.
  requireTLS: env.SMTP_SECURITY === "starttls",
  ignoreTLS: env.SMTP_SECURITY === "none",
  auth: env.SMTP_USER ? { user: env.SMTP_USER, pass: env.SMTP_PASSWORD } : undefined,
});

async function main() {
  if (env.SMTP_ACTION === "login") {
    await transporter.verify(); // connect, STARTTLS, AUTH, QUIT
    return { outcome: "logged_in" };
  }
  await transporter.sendMail({
    from: env.MAIL_FROM,
    to: env.MAIL_TO,
    subject: "smtprobe test",
    text: "Hello from the app.\n",
  });
  return { outcome: "sent" };
}

// err.command is the SMTP command that got the refusal; err.responseCode its code.
const STAGES = { "AUTH PLAIN": "auth", "AUTH LOGIN": "auth", API: "auth", "MAIL FROM": "mail", "RCPT TO": "rcpt", DATA: "data", EHLO: "ehlo", HELO: "ehlo", CONN: "connect" };

main()
  .catch((err) => {
    const reply = { code: err.responseCode ?? null, message: err.response || err.message };
    if (err.code === "EAUTH" && err.responseCode) return { outcome: "auth_error", ...reply };
    if (err.code === "ETLS" && err.command === "STARTTLS") return { outcome: "refused_tls", ...reply };
    const stage = err.code === "EMESSAGE" ? "data" : STAGES[err.command] || (err.command || "connect").toLowerCase();
    // No reply refused anything: a failed handshake (certificate not trusted, ...).
    if (!err.responseCode && (err.code === "ETLS" || /certificate|SSL|TLS/i.test(err.message))) {
      return { outcome: "error", stage: "tls", ...reply };
    }
    return { outcome: "error", stage, ...reply };
  })
  .then((result) => console.log(JSON.stringify(result)));
