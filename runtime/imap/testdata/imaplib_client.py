"""Drives the IMAP server with Python's imaplib, a client no one here wrote.

Usage: imaplib_client.py MODE HOST PORT CAFILE USER PASSWORD
MODE is "implicit" (IMAP4_SSL), "starttls" (IMAP4 + STARTTLS) or
"plain-login" (LOGIN before STARTTLS, which must be refused).
Prints "PASS" at the end; any failed check raises.
"""
import imaplib
import ssl
import sys
import time

mode, host, port, cafile, user, password = sys.argv[1:7]
port = int(port)
ctx = ssl.create_default_context(cafile=cafile)


T0 = time.time()


def check(cond, what):
    print("%.2f %s" % (time.time() - T0, what), file=sys.stderr)
    if not cond:
        raise SystemExit("FAIL: " + what)


if mode == "plain-login":
    m = imaplib.IMAP4(host, port)
    check("LOGINDISABLED" in m.capabilities, "LOGINDISABLED advertised before TLS")
    try:
        m.login(user, password)
    except imaplib.IMAP4.error as e:
        check("PRIVACYREQUIRED" in str(e) or "TLS" in str(e), "refusal reason: %s" % e)
    else:
        raise SystemExit("FAIL: LOGIN accepted before STARTTLS")
    m.logout()
    print("PASS")
    sys.exit(0)

if mode == "implicit":
    m = imaplib.IMAP4_SSL(host, port, ssl_context=ctx)
else:
    m = imaplib.IMAP4(host, port)
    m.starttls(ssl_context=ctx)
typ, _ = m.login(user, password)
check(typ == "OK", "login")

msg = b"From: bob@example.org\r\nTo: %s\r\nSubject: from imaplib\r\n\r\nhello from python\r\n" % user.encode()
typ, data = m.append("INBOX", r"(\Flagged)", imaplib.Time2Internaldate(time.time()), msg)
check(typ == "OK" and b"APPENDUID" in data[0], "append: %r" % data)

typ, data = m.select("INBOX")
check(typ == "OK", "select")
n = int(data[0])

typ, data = m.search(None, "SUBJECT", '"from imaplib"')
check(typ == "OK" and data[0].split(), "search: %r" % data)
seq = data[0].split()[-1].decode()

typ, data = m.fetch(seq, "(BODY.PEEK[] FLAGS RFC822.SIZE)")
check(typ == "OK" and data[0][1] == msg, "fetch body: %r" % data)
check(b"\\Flagged" in data[0][0] and b"\\Seen" not in data[0][0], "flags after peek: %r" % data[0][0])

typ, data = m.store(seq, "+FLAGS", r"(\Seen)")
check(typ == "OK" and b"\\Seen" in data[0], "store: %r" % data)

archive = "Archive-" + mode
typ, _ = m.create(archive)
check(typ == "OK", "create")
typ, data = m.copy(seq, archive)
check(typ == "OK", "copy")
typ, data = m.status(archive, "(MESSAGES)")
check(b"MESSAGES 1" in data[0], "status after copy: %r" % data)

typ, data = m.uid("SEARCH", None, "ALL")
uid = data[0].split()[-1].decode()
typ, data = m.uid("MOVE", uid, archive)
check(typ == "OK", "move: %r" % (data,))
typ, data = m.status(archive, "(MESSAGES)")
check(b"MESSAGES 2" in data[0], "status after move: %r" % data)

typ, data = m.select(archive)
typ, _ = m.store("1", "+FLAGS", r"(\Deleted)")
typ, data = m.expunge()
check(typ == "OK" and data == [b"1"], "expunge: %r" % data)

if mode == "implicit":
    # IDLE by hand (imaplib has no IDLE before Python 3.14): the Go test
    # delivers a message when it reads "IDLING" and the client must see it.
    m.select("INBOX")
    tag = m._new_tag().decode()
    m.send(("%s IDLE\r\n" % tag).encode())
    line = m.readline()
    check(line.startswith(b"+"), "idle continuation: %r" % line)
    print("IDLING", flush=True)
    m.sock.settimeout(10)
    line = m.readline()
    check(line.endswith(b"EXISTS\r\n"), "woken by delivery: %r" % line)
    m.send(b"DONE\r\n")
    line = m.readline()
    # RFC 3501 7.3.2: an IMAP4rev1 client is told how many are \Recent.
    check(line.endswith(b"RECENT\r\n"), "recent count: %r" % line)
    line = m.readline()
    check(line.startswith(tag.encode() + b" OK"), "idle done: %r" % line)

m.logout()
print("PASS")
