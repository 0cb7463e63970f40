<?php
// An app sending one message with PHPMailer (Debian: php-cli + libphp-phpmailer).
//
// Settings come from the environment, as an app reads them: SMTP_HOST, SMTP_PORT,
// SMTP_SECURITY (starttls = port 587, tls = port 465, none), SMTP_USER (empty: no login),
// SMTP_PASSWORD, MAIL_FROM, MAIL_TO, SMTP_ACTION (send, or login to log in only).
// The server's CA is trusted the OpenSSL way: SSL_CERT_FILE=ca.pem (or php.ini's
// openssl.cafile).
//
// Prints one JSON line saying what the app saw (tests/clients/README.md has the words).
require '/usr/share/php/libphp-phpmailer/autoload.php'; // Composer: vendor/autoload.php

use PHPMailer\PHPMailer\PHPMailer;
use PHPMailer\PHPMailer\SMTP;
use PHPMailer\PHPMailer\Exception;

$mail = new PHPMailer(true); // throw on errors
$mail->isSMTP();
$mail->Host = getenv('SMTP_HOST');
$mail->Port = (int) getenv('SMTP_PORT');
$mail->SMTPSecure = [
    'starttls' => PHPMailer::ENCRYPTION_STARTTLS, // 587: STARTTLS or stop
    'tls' => PHPMailer::ENCRYPTION_SMTPS,         // 465: TLS from the first byte
    'none' => '',
][getenv('SMTP_SECURITY')];
$mail->SMTPAutoTLS = false; // only the security asked for above, never a silent change
$mail->SMTPAuth = getenv('SMTP_USER') !== '';
$mail->Username = getenv('SMTP_USER');
$mail->Password = getenv('SMTP_PASSWORD');

// PHPMailer's exception says only "Could not authenticate." and its QUIT afterwards
// clears getSMTPInstance()->getError(); the server's refusal (code and text, e.g. 534
// "Application-specific password required") is kept from the debug channel instead.
$refusal = null;      // the first 4xx/5xx reply: code, text and the command it answered
$command = 'connect'; // the last command sent
$quit = false;        // after QUIT every reply is a goodbye
$tls_failed = false;  // the TLS handshake failed (certificate not trusted, ...)
$mail->SMTPDebug = SMTP::DEBUG_CONNECTION; // replies, and why a connection failed
$mail->Debugoutput = function ($line) use (&$refusal, &$command, &$quit, &$tls_failed) {
    if (preg_match('/SSL operation failed|certificate verify failed|enable crypto/i', $line)) {
        $tls_failed = true;
    } elseif (preg_match('/^CLIENT -> SERVER: QUIT/i', $line)) {
        $quit = true;
    } elseif (preg_match('/^CLIENT -> SERVER: (EHLO|HELO|STARTTLS|AUTH|MAIL|RCPT|DATA)\b/i', $line, $m)) {
        $command = strtoupper($m[1]);
    } elseif (!$quit && !$refusal && preg_match('/^SERVER -> CLIENT: ([45]\d\d)[ -]/', $line, $m)) {
        $refusal = ['code' => (int) $m[1], 'message' => trim(substr($line, 18)), 'command' => $command];
    }
};

function outcome(PHPMailer $mail): array
{
    if (getenv('SMTP_ACTION') === 'login') {
        $mail->smtpConnect(); // connect, STARTTLS, AUTH
        $mail->smtpClose();
        return ['outcome' => 'logged_in'];
    }
    $mail->setFrom(getenv('MAIL_FROM'));
    $mail->addAddress(getenv('MAIL_TO'));
    $mail->Subject = 'smtprobe test';
    $mail->Body = "Hello from the app.\n";
    $mail->send();
    return ['outcome' => 'sent'];
}

try {
    $result = outcome($mail);
} catch (Exception $e) {
    $stages = ['connect' => 'connect', 'EHLO' => 'ehlo', 'HELO' => 'ehlo', 'STARTTLS' => 'starttls',
        'AUTH' => 'auth', 'MAIL' => 'mail', 'RCPT' => 'rcpt', 'DATA' => 'data'];
    $stage = $stages[$refusal['command'] ?? $command];
    $reply = ['code' => $refusal['code'] ?? null, 'message' => $refusal['message'] ?? $e->getMessage()];
    if ($refusal && $stage === 'auth') {
        $result = ['outcome' => 'auth_error'] + $reply;
    } elseif ($refusal && $stage === 'starttls') {
        $result = ['outcome' => 'refused_tls'] + $reply; // STARTTLS refused or not offered
    } elseif (!$refusal && str_contains($e->getMessage(), 'Could not authenticate')) {
        // PHPMailer sends no AUTH when the EHLO reply lists none ("not allowed at this stage").
        $result = ['outcome' => 'auth_not_offered', 'message' => $e->getMessage()];
    } else {
        // No refusal, and the handshake failed (or STARTTLS's 220 was followed by none).
        $stage = !$refusal && ($tls_failed || $stage === 'starttls') ? 'tls' : $stage;
        $result = ['outcome' => 'error', 'stage' => $stage] + $reply;
    }
}
echo json_encode($result, JSON_UNESCAPED_SLASHES), "\n";
