package testutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
	"github.com/mailstack/terraform-provider-mailstack/internal/keystore"
)

// handshake runs a TLS handshake between server and client on 127.0.0.1
// (not over net.Pipe, which has no buffer for TLS 1.3's session tickets).
func handshake(server, client *tls.Config) error {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		return err
	}
	defer ln.Close()
	errs := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errs <- err
			return
		}
		defer c.Close()
		errs <- c.(*tls.Conn).Handshake()
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err == nil {
		c.Close()
	}
	if serr := <-errs; err == nil {
		err = serr
	}
	return err
}

func TestSelfSigned(t *testing.T) {
	c := SelfSigned(t, "localhost", "127.0.0.1")
	if again := SelfSigned(t, "localhost", "127.0.0.1"); again != c {
		t.Error("a second call for the same hosts made a new certificate")
	}
	if other := SelfSigned(t, "mail.example.com"); other == c {
		t.Error("other hosts got the same certificate")
	}
	if got := c.TLS.Leaf.DNSNames; !slices.Equal(got, []string{"localhost"}) {
		t.Errorf("DNS names %q", got)
	}
	if got := c.TLS.Leaf.IPAddresses; len(got) != 1 || !got[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("IP addresses %v", got)
	}
	for _, name := range []string{"localhost", "127.0.0.1"} {
		if err := handshake(c.ServerConfig(), c.ClientConfig(name)); err != nil {
			t.Errorf("client for %s: %v", name, err)
		}
	}
	if err := handshake(c.ServerConfig(), c.ClientConfig("mail.example.com")); err == nil {
		t.Error("a client for another name accepted the certificate")
	}
}

func TestWriteKeystore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mail.p12")
	ca := SelfSigned(t, "ca.example.com").TLS.Leaf
	first := WriteKeystore(t, Keystore{
		Path: path, Password: "pw", Format: keystore.PKCS12, Alias: "mail",
		Hosts: []string{"mail.example.com", "127.0.0.1"}, Trusted: []*x509.Certificate{ca},
	})
	second := WriteKeystore(t, Keystore{Path: path, Password: "pw", Alias: "mail", Hosts: []string{"mail.example.com"}})
	if keystore.Fingerprint(first.TLS.Leaf) == keystore.Fingerprint(second.TLS.Leaf) {
		t.Fatal("rewriting kept the certificate")
	}
	k, err := keystore.Open(context.Background(), host.LocalFile(path), []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if k.Type() != keystore.PKCS12 {
		t.Errorf("type %s after a rewrite with no format, want PKCS12", k.Type())
	}
	if _, ok := k.Entry("ca0"); !ok {
		t.Error("no trusted entry ca0")
	}
	_, chain, err := k.PrivateKeyEntry("mail", nil)
	if err != nil {
		t.Fatal(err)
	}
	if keystore.Fingerprint(chain[0]) != keystore.Fingerprint(second.TLS.Leaf) {
		t.Error("the keystore holds another certificate than WriteKeystore returned")
	}
	if err := handshake(second.ServerConfig(), second.ClientConfig("mail.example.com")); err != nil {
		t.Error(err)
	}
}

func TestSyncBuffer(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				fmt.Fprint(&b, "x")
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n != 800 {
		t.Errorf("%d bytes, want 800", n)
	}
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, "the third poll", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Errorf("polled %d times", n)
	}
}
