"""Drives the server under test with Python's smtplib.

usage: smtplib_client.py SCENARIO HOST PORT CAFILE

Exits 0 when the scenario behaves as expected, else prints why and exits 1.
"""

import smtplib
import ssl
import sys

scenario, host, port, cafile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile)
PASSWORD = "correct horse"
MESSAGE = "From: alice@example.com\r\nTo: bob@example.com\r\nSubject: smtplib\r\n\r\nHello from smtplib.\r\n"


def expect_refused(s, rcpt, code, enhanced):
    try:
        s.sendmail("alice@example.com", [rcpt], MESSAGE)
    except smtplib.SMTPRecipientsRefused as e:
        got_code, got_msg = e.recipients[rcpt]
        if got_code != code or not got_msg.decode().startswith(enhanced):
            sys.exit(f"{rcpt}: got {got_code} {got_msg!r}, want {code} {enhanced}")
        return got_msg.decode()
    sys.exit(f"{rcpt}: accepted, want {code} {enhanced}")


if scenario == "implicit-send":  # MX on an implicit-TLS port
    with smtplib.SMTP_SSL(host, port, context=ctx) as s:
        s.sendmail("someone@elsewhere.example", ["alice@example.com"], MESSAGE)

elif scenario == "starttls-send":  # MX on a STARTTLS port
    with smtplib.SMTP(host, port) as s:
        s.starttls(context=ctx)
        s.sendmail("someone@elsewhere.example", ["alice@example.com", "bob@example.com"], MESSAGE)

elif scenario == "refusals":  # MX: no open relay, unknown users
    with smtplib.SMTP(host, port) as s:
        s.starttls(context=ctx)
        expect_refused(s, "friend@other.example", 550, "5.7.1")
        expect_refused(s, "nobody@example.com", 550, "5.1.1")

elif scenario == "submission-starttls":  # login after STARTTLS, send, relay refused
    with smtplib.SMTP(host, port) as s:
        s.starttls(context=ctx)
        s.login("alice@example.com", PASSWORD)
        s.sendmail("alice@example.com", ["bob@example.com"], MESSAGE)
        msg = expect_refused(s, "friend@other.example", 550, "5.7.1")
        if "only recipients in local domains" not in msg:
            sys.exit(f"relay refusal does not say only local domains are served: {msg!r}")

elif scenario == "submission-implicit":  # login over implicit TLS, both mechanisms
    for mech in ("PLAIN", "LOGIN"):
        with smtplib.SMTP_SSL(host, port, context=ctx) as s:
            s.ehlo()
            s.user, s.password = "alice@example.com", PASSWORD
            code, resp = s.auth(mech, getattr(s, "auth_" + mech.lower()))
            if code != 235:
                sys.exit(f"AUTH {mech}: {code} {resp!r}")
            s.sendmail("alice@example.com", ["bob@example.com"], MESSAGE)

elif scenario == "submission-wrong-sender":
    with smtplib.SMTP_SSL(host, port, context=ctx) as s:
        s.login("alice@example.com", PASSWORD)
        try:
            s.sendmail("bob@example.com", ["bob@example.com"], MESSAGE)
            sys.exit("sent as bob while logged in as alice")
        except smtplib.SMTPSenderRefused as e:
            if e.smtp_code != 553:
                sys.exit(f"got {e.smtp_code} {e.smtp_error!r}, want 553")

elif scenario == "submission-bad-password":
    with smtplib.SMTP_SSL(host, port, context=ctx) as s:
        try:
            s.login("alice@example.com", "wrong")
            sys.exit("login with a wrong password succeeded")
        except smtplib.SMTPAuthenticationError as e:
            if e.smtp_code != 535:
                sys.exit(f"got {e.smtp_code} {e.smtp_error!r}, want 535")

elif scenario == "login-before-tls":  # STARTTLS submission port, no STARTTLS
    with smtplib.SMTP(host, port) as s:
        s.ehlo()
        if not s.has_extn("starttls"):
            sys.exit("STARTTLS not offered")
        try:
            s.login("alice@example.com", PASSWORD)
            sys.exit("login before STARTTLS succeeded")
        except smtplib.SMTPNotSupportedError:
            pass  # AUTH not advertised
        code, resp = s.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUuY29tAGNvcnJlY3QgaG9yc2U=")
        if code // 100 != 5:
            sys.exit(f"AUTH before STARTTLS answered {code} {resp!r}, want 5xx")
        try:
            s.sendmail("alice@example.com", ["bob@example.com"], MESSAGE)
            sys.exit("sent without login")
        except smtplib.SMTPSenderRefused as e:
            if e.smtp_code != 530:
                sys.exit(f"MAIL without login: {e.smtp_code}, want 530")

else:
    sys.exit(f"unknown scenario {scenario}")
