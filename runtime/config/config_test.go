package config

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

// Every default suite is one crypto/tls knows as secure, uses ECDHE and an
// AEAD cipher, and is offered in the order listed.
func TestDefaultCipherSuites(t *testing.T) {
	ids, err := (&TLS{}).CipherSuiteIDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(DefaultCipherSuites) {
		t.Fatalf("%d ids for %d names", len(ids), len(DefaultCipherSuites))
	}
	for i, id := range ids {
		name := tls.CipherSuiteName(id)
		if name != DefaultCipherSuites[i] {
			t.Errorf("suite %d is %s, want %s", i, name, DefaultCipherSuites[i])
		}
		if !strings.HasPrefix(name, "TLS_ECDHE_") || !(strings.Contains(name, "_GCM_") || strings.Contains(name, "CHACHA20_POLY1305")) {
			t.Errorf("%s is not ECDHE with an AEAD cipher", name)
		}
	}
	named, err := (&TLS{CipherSuites: []string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}}).CipherSuiteIDs()
	if err != nil || !slices.Equal(named, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}) {
		t.Errorf("named suites: %v, %v", named, err)
	}
	if _, err := (&TLS{CipherSuites: []string{"TLS_RSA_WITH_RC4_128_SHA"}}).CipherSuiteIDs(); err == nil {
		t.Error("an insecure suite was accepted")
	}
}
