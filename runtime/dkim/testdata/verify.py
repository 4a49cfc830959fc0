"""Verify every DKIM signature of a message with python3-dkim (dkimpy),
independently of go-msgauth. The public keys come from argv as
name=TXT pairs instead of DNS. Exit 0 only if all signatures verify."""
import sys

import dkim

records = dict(arg.split("=", 1) for arg in sys.argv[2:])


def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    return records.get(name.rstrip("."), "").encode()


msg = open(sys.argv[1], "rb").read()
d = dkim.DKIM(msg)
sigs = [v for k, v in d.headers if k.lower() == b"dkim-signature"]
if not sigs:
    sys.exit("no DKIM-Signature")
for i in range(len(sigs)):
    if not d.verify(idx=i, dnsfunc=dnsfunc):
        sys.exit(f"signature {i} does not verify")
print(f"{len(sigs)} signatures verify")
