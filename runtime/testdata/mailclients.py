"""Drives a whole runtime with Python's smtplib, imaplib and poplib.

usage: mailclients.py SCENARIO CAFILE PORTS_JSON TOKEN

PORTS_JSON maps listener ids ("smtp", "smtps", "submission", "submissions",
"imap", "imaps", "pop3", "pop3s") to ports on 127.0.0.1. TOKEN is put in
the subject of what is sent and looked for in what is fetched. Passwords
come from the environment (ALICE_PASSWORD, BOB_PASSWORD), not argv.

Exits 0 when the scenario behaves as expected, else prints why and exits 1.
"""

import imaplib
import json
import os
import poplib
import smtplib
import ssl
import sys

scenario, cafile, ports, token = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
HOST = "127.0.0.1"
ctx = ssl.create_default_context(cafile=cafile)
ALICE, BOB = "alice@example.com", "bob@example.com"
ALICE_PW, BOB_PW = os.environ["ALICE_PASSWORD"], os.environ["BOB_PASSWORD"]


def message(sender, rcpt, subject):
    return (f"From: {sender}\r\nTo: {rcpt}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject}@example.com>\r\n\r\nBody of {subject}.\r\n")


def fail(msg):
    sys.exit(f"{scenario}: {msg}")


def expect_refused(s, sender, rcpt, codes):
    try:
        s.sendmail(sender, [rcpt], message(sender, rcpt, "refused"))
    except smtplib.SMTPRecipientsRefused as e:
        code, _ = e.recipients[rcpt]
        if code not in codes:
            fail(f"{rcpt}: refused with {code}, want one of {codes}")
        return
    fail(f"{rcpt}: accepted, want one of {codes}")


if scenario == "smtp":
    # MX over STARTTLS to alice; MX over implicit TLS to bob; no relay, no
    # unknown users, no AUTH on the MX.
    with smtplib.SMTP(HOST, ports["smtp"]) as s:
        s.starttls(context=ctx)
        s.ehlo("python.example")
        if s.has_extn("auth"):
            fail("the MX offers AUTH")
        s.sendmail("someone@elsewhere.example", [ALICE], message("someone@elsewhere.example", ALICE, token + "-smtp"))
        expect_refused(s, "someone@elsewhere.example", "friend@other.example", (550, 554))
        expect_refused(s, "someone@elsewhere.example", "nobody@example.com", (550,))
    with smtplib.SMTP_SSL(HOST, ports["smtps"], context=ctx) as s:
        s.sendmail("someone@elsewhere.example", [BOB], message("someone@elsewhere.example", BOB, token + "-smtps"))

elif scenario == "submission":
    # AUTH refused before STARTTLS, accepted after; implicit TLS too.
    with smtplib.SMTP(HOST, ports["submission"]) as s:
        s.ehlo("python.example")
        if s.has_extn("auth"):
            fail("AUTH offered before STARTTLS")
        code, _ = s.docmd("AUTH", "PLAIN AGFsaWNlQGV4YW1wbGUuY29tAHdyb25n")
        if code < 500:
            fail(f"AUTH before STARTTLS answered {code}")
        s.starttls(context=ctx)
        s.login(ALICE, ALICE_PW)
        s.sendmail(ALICE, [BOB], message(ALICE, BOB, token + "-submission"))
        # Other domains are accepted after AUTH: the message is queued.
        s.sendmail(ALICE, ["friend@other.example"], message(ALICE, "friend@other.example", token + "-outbound"))
    with smtplib.SMTP_SSL(HOST, ports["submissions"], context=ctx) as s:
        s.login(BOB, BOB_PW)
        s.sendmail(BOB, [ALICE], message(BOB, ALICE, token + "-submissions"))
        try:
            s.sendmail(ALICE, [BOB], message(ALICE, BOB, "spoofed"))
            fail("bob could send as alice")
        except smtplib.SMTPSenderRefused:
            pass
        try:  # the envelope is bob's, the header From alice's
            s.sendmail(BOB, [ALICE], message(ALICE, BOB, "spoofed-header"))
            fail("bob could send a message with From: alice")
        except smtplib.SMTPDataError as e:
            if e.smtp_code != 550:
                fail(f"header From spoofing answered {e.smtp_code}")

elif scenario == "imap":
    # alice has token-smtp and token-submissions; fetch both over both ports.
    want = {token + "-smtp", token + "-submissions"}
    for implicit in (False, True):
        if implicit:
            m = imaplib.IMAP4_SSL(HOST, ports["imaps"], ssl_context=ctx)
        else:
            m = imaplib.IMAP4(HOST, ports["imap"])
            if "LOGINDISABLED" not in m.capabilities:
                fail("no LOGINDISABLED before STARTTLS")
            try:
                m.login(ALICE, ALICE_PW)
                fail("LOGIN accepted before STARTTLS")
            except imaplib.IMAP4.error:
                pass
            m.starttls(ssl_context=ctx)
        m.login(ALICE, ALICE_PW)
        m.select("INBOX")
        got = set()
        for subject in want:
            typ, data = m.search(None, "SUBJECT", subject)
            nums = data[0].split()
            if typ != "OK" or len(nums) != 1:
                fail(f"SEARCH SUBJECT {subject}: {typ} {data}")
            typ, data = m.fetch(nums[0], "(BODY.PEEK[])")
            body = data[0][1].decode()
            if f"Body of {subject}." not in body or not body.startswith("Received: "):
                fail(f"FETCH {subject}: {body!r}")
            got.add(subject)
        if got != want:
            fail(f"fetched {got}, want {want}")
        m.logout()

elif scenario == "pop3":
    # bob has token-smtps and token-submission.
    want = {token + "-smtps", token + "-submission"}
    for implicit in (False, True):
        if implicit:
            p = poplib.POP3_SSL(HOST, ports["pop3s"], context=ctx)
        else:
            p = poplib.POP3(HOST, ports["pop3"])
            try:
                p.user(BOB)
                fail("USER accepted before STLS")
            except poplib.error_proto:
                pass
            p.stls(context=ctx)
        p.user(BOB)
        p.pass_(BOB_PW)
        count, _ = p.stat()
        got = set()
        for i in range(1, count + 1):
            body = b"\r\n".join(p.retr(i)[1]).decode()
            got |= {s for s in want if f"Body of {s}." in body}
        if got != want:
            fail(f"retrieved {got}, want {want}")
        p.quit()

else:
    fail("unknown scenario")
