"""Drive the server with Python's poplib and print what it saw as JSON.

Usage: poplib_client.py implicit|stls HOST PORT CAFILE
"""
import json
import poplib
import ssl
import sys

mode, host, port, cafile = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile=cafile)
out = {}

if mode == "implicit":
    p = poplib.POP3_SSL(host, port, context=ctx, timeout=10)
else:
    p = poplib.POP3(host, port, timeout=10)
    out["capa_before_tls"] = sorted(p.capa())
    p.stls(context=ctx)

out["capa"] = sorted(p.capa())
p.user("alice")
p.pass_("secret")
out["stat"] = list(p.stat())
out["list"] = [l.decode() for l in p.list()[1]]
out["uidl"] = [l.decode() for l in p.uidl()[1]]
out["uidl_2"] = p.uidl(2).decode()
_, lines, octets = p.retr(2)
out["retr_2"] = [l.decode() for l in lines]
out["top_2_1"] = [l.decode() for l in p.top(2, 1)[1]]
out["dele_1"] = p.dele(1).decode()
out["quit"] = p.quit().decode()
print(json.dumps(out))
