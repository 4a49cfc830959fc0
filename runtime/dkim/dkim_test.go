package dkim

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

const message = "Received: from client (127.0.0.1)\r\n\tby mail.example.com; Sun, 1 Mar 2026 12:00:00 +0000\r\n" +
	"From: Alice <alice@Example.com>\r\nTo: bob@other.test\r\nSubject: signed\r\n" +
	"Date: Sun, 1 Mar 2026 12:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\n" +
	"Hello,  world \r\n\r\n\r\n"

// TestSignVerify signs with an RSA and an Ed25519 key of one domain (a
// rotation in progress: both sign) and checks both signatures with
// go-msgauth's verifier and with python3-dkim, an independent one. A
// changed body fails both.
func TestSignVerify(t *testing.T) {
	dir := t.TempDir()
	keys, err := Open(dir, map[string]config.DKIMKey{
		"s2025._domainkey.example.com": {Domain: "example.com", Selector: "s2025", Algorithm: config.DKIMRSA},
	})
	if err != nil {
		t.Fatal(err)
	}
	ed, err := keys.Put(config.DKIMKey{Domain: "example.com", Selector: "s2026", Algorithm: config.DKIMEd25519})
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, err := keys.Get("s2025._domainkey.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rsaPub.TXT, "v=DKIM1; k=rsa; p=MIIBIjAN") || !strings.HasPrefix(ed.TXT, "v=DKIM1; k=ed25519; p=") {
		t.Fatalf("TXT values: %q, %q", rsaPub.TXT, ed.TXT)
	}
	records := map[string]string{rsaPub.Name: rsaPub.TXT, ed.Name: ed.TXT}

	signed, err := keys.Sign([]byte(message))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(signed, []byte("DKIM-Signature:")); n != 2 {
		t.Fatalf("%d signatures, want 2:\n%s", n, signed)
	}
	verify := func(msg []byte) []*msgdkim.Verification {
		vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(msg), &msgdkim.VerifyOptions{
			LookupTXT: func(domain string) ([]string, error) { return []string{records[domain]}, nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		return vs
	}
	for _, v := range verify(signed) {
		if v.Err != nil || v.Domain != "example.com" {
			t.Errorf("go-msgauth: %s: %v", v.Domain, v.Err)
		}
	}
	tampered := bytes.Replace(signed, []byte("Hello"), []byte("Hallo"), 1)
	for _, v := range verify(tampered) {
		if v.Err == nil {
			t.Error("go-msgauth verifies a changed body")
		}
	}

	// python3-dkim, Debian's package (.ci/run installs it).
	if err := exec.Command("/usr/bin/python3", "-c", "import dkim").Run(); err != nil {
		t.Skip("python3-dkim is not installed: apt-get install python3-dkim")
	}
	for _, tc := range []struct {
		msg  []byte
		pass bool
	}{{signed, true}, {tampered, false}} {
		f := filepath.Join(t.TempDir(), "msg.eml")
		os.WriteFile(f, tc.msg, 0o600)
		args := []string{"testdata/verify.py", f}
		for k, v := range records {
			args = append(args, k+"="+v)
		}
		out, err := exec.Command("/usr/bin/python3", args...).CombinedOutput()
		if (err == nil) != tc.pass {
			t.Errorf("python3-dkim: pass=%v, want %v: %s", err == nil, tc.pass, out)
		}
	}

	// Another domain's mail is not signed; the keys survive a reopen.
	other := strings.Replace(message, "alice@Example.com", "carol@example.org", 1)
	if out, _ := keys.Sign([]byte(other)); string(out) != other {
		t.Error("example.org's mail was signed with example.com's keys")
	}
	again, err := Open(dir, map[string]config.DKIMKey{"s2026._domainkey.example.com": ed.DKIMKey})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := again.Get(ed.Name); p.TXT != ed.TXT {
		t.Error("the Ed25519 key changed across a reopen")
	}
	if err := again.Delete(ed.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, ed.Name+".key")); !os.IsNotExist(err) {
		t.Error("the deleted key's file is still there")
	}
	// The RSA key's file, which no config of again names (as after a lost
	// config.json), goes too; then there is no such key.
	if err := again.Delete(rsaPub.Name); err != nil {
		t.Fatalf("deleting a key file no config names: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile(rsaPub.Name))); !os.IsNotExist(err) {
		t.Error("the unconfigured key's file is still there")
	}
	if err := again.Delete(rsaPub.Name); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a key that is gone: %v, want ErrNotFound", err)
	}
}

// TestKeyFileLostWhileSigning: a key file deleted, truncated, overwritten
// with garbage or with another key while its key signs. The key keeps
// signing with the published record meanwhile, Get says what is wrong
// with the file, and Put of the same key writes the file again from the
// key that signs, so that a restart (Open) still signs with it.
func TestKeyFileLostWhileSigning(t *testing.T) {
	other, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		damage  string
		problem string
	}{
		{"deleted", "is gone"},
		{"truncated", "no PEM block"},
		{"garbage", "no PEM block"},
		{"bad DER", "asn1"},
		{"another key", "holds another key"},
		{"another algorithm", "holds a key of another algorithm"},
	} {
		t.Run(tc.damage, func(t *testing.T) {
			dir := t.TempDir()
			cfg := config.DKIMKey{Domain: "example.com", Selector: "s2026", Algorithm: config.DKIMRSA}
			keys, err := Open(dir, map[string]config.DKIMKey{cfg.Name(): cfg})
			if err != nil {
				t.Fatal(err)
			}
			pub, err := keys.Get(cfg.Name())
			if err != nil || pub.FileProblem != "" {
				t.Fatalf("fresh key: %+v, %v", pub, err)
			}
			file := filepath.Join(dir, KeyFile(cfg.Name()))
			pemData, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var damaged []byte
			switch tc.damage {
			case "truncated":
				damaged = pemData[:len(pemData)/3]
			case "garbage":
				damaged = bytes.Repeat([]byte("overwritten by a careless script\n"), 40)
			case "bad DER":
				damaged = bytes.Replace(pemData, pemData[40:80], bytes.Repeat([]byte("A"), 40), 1)
			case "another key", "another algorithm":
				alg := map[string]string{"another key": config.DKIMRSA, "another algorithm": config.DKIMEd25519}[tc.damage]
				if _, err := other.Put(config.DKIMKey{Domain: "example.com", Selector: "s2026", Algorithm: alg}); err != nil {
					t.Fatal(err)
				}
				if damaged, err = os.ReadFile(filepath.Join(other.dir, KeyFile(cfg.Name()))); err != nil {
					t.Fatal(err)
				}
				if err := other.Delete(cfg.Name()); err != nil {
					t.Fatal(err)
				}
			}
			if damaged == nil {
				err = os.Remove(file)
			} else {
				err = os.WriteFile(file, damaged, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}

			got, err := keys.Get(cfg.Name())
			if err != nil || got.TXT != pub.TXT || !strings.Contains(got.FileProblem, tc.problem) || !strings.Contains(got.FileProblem, file) {
				t.Fatalf("Get with the file %s: %+v, %v; want the same record and a problem naming %s and %q", tc.damage, got, err, file, tc.problem)
			}
			verifies(t, keys, pub)

			put, err := keys.Put(cfg)
			if err != nil || put.TXT != pub.TXT {
				t.Fatalf("Put with the file %s: %+v, %v; want the record %q", tc.damage, put, err, pub.TXT)
			}
			if got, err := keys.Get(cfg.Name()); err != nil || got.FileProblem != "" {
				t.Fatalf("Get after the repair: %+v, %v", got, err)
			}
			if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("the repaired key file: %v, %v; want mode 0600", fi, err)
			}
			restarted, err := Open(dir, map[string]config.DKIMKey{cfg.Name(): cfg})
			if err != nil {
				t.Fatal(err)
			}
			verifies(t, restarted, pub)
		})
	}
}

// verifies checks that keys signs message with the one key of pub,
// verified with pub's record.
func verifies(t *testing.T, keys *Keys, pub Public) {
	t.Helper()
	signed, err := keys.Sign([]byte(message))
	if err != nil {
		t.Fatal(err)
	}
	vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(signed), &msgdkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			if name != pub.Name {
				return nil, errors.New("no record at " + name)
			}
			return []string{pub.TXT}, nil
		},
	})
	if err != nil || len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("verifying with %s: %v, %d signatures (%+v)", pub.Name, err, len(vs), vs)
	}
}

// TestOpenReplacesDamagedKeyFile: a runtime starting over a key file that
// holds no key (truncated, garbage) starts, with a new key in the file's
// place: the damaged key can never sign again, and refusing to start
// would stop all mail. Its record is a new one (the provider plans the
// key replaced).
func TestOpenReplacesDamagedKeyFile(t *testing.T) {
	for name, damage := range map[string]func([]byte) []byte{
		"truncated": func(b []byte) []byte { return b[:len(b)/3] },
		"garbage":   func([]byte) []byte { return bytes.Repeat([]byte("overwritten by a careless script\n"), 40) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := config.DKIMKey{Domain: "example.com", Selector: "s2026", Algorithm: config.DKIMEd25519}
			cfgs := map[string]config.DKIMKey{cfg.Name(): cfg}
			keys, err := Open(dir, cfgs)
			if err != nil {
				t.Fatal(err)
			}
			old, err := keys.Get(cfg.Name())
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, KeyFile(cfg.Name()))
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, damage(data), 0o600); err != nil {
				t.Fatal(err)
			}
			restarted, err := Open(dir, cfgs)
			if err != nil {
				t.Fatalf("opening over a %s key file: %v", name, err)
			}
			got, err := restarted.Get(cfg.Name())
			if err != nil || got.TXT == old.TXT || got.FileProblem != "" {
				t.Fatalf("after opening over a %s key file: %+v, %v; want a new key, its file in place", name, got, err)
			}
			verifies(t, restarted, got)
		})
	}
}
