package keystore

import (
	"crypto/x509"
	"strings"
)

// Key usages and extended key usages by the names keytool's -ext KU=...
// and EKU=... use. Parsing accepts any case and ignores '_' and '-', so
// hashicorp/tls's words ("digital_signature", "server_auth") work too.
var (
	keyUsages = []struct {
		name  string
		usage x509.KeyUsage
	}{
		{"digitalSignature", x509.KeyUsageDigitalSignature},
		{"nonRepudiation", x509.KeyUsageContentCommitment},
		{"keyEncipherment", x509.KeyUsageKeyEncipherment},
		{"dataEncipherment", x509.KeyUsageDataEncipherment},
		{"keyAgreement", x509.KeyUsageKeyAgreement},
		{"keyCertSign", x509.KeyUsageCertSign},
		{"cRLSign", x509.KeyUsageCRLSign},
		{"encipherOnly", x509.KeyUsageEncipherOnly},
		{"decipherOnly", x509.KeyUsageDecipherOnly},
	}
	extKeyUsages = []struct {
		name  string
		usage x509.ExtKeyUsage
	}{
		{"serverAuth", x509.ExtKeyUsageServerAuth},
		{"clientAuth", x509.ExtKeyUsageClientAuth},
		{"codeSigning", x509.ExtKeyUsageCodeSigning},
		{"emailProtection", x509.ExtKeyUsageEmailProtection},
		{"timeStamping", x509.ExtKeyUsageTimeStamping},
		{"OCSPSigning", x509.ExtKeyUsageOCSPSigning},
	}
	// usageSynonyms maps other names, folded, to keytool's.
	usageSynonyms = map[string]string{"contentcommitment": "nonRepudiation", "certsigning": "keyCertSign", "crlsigning": "cRLSign"}
)

// KeyUsageNames and ExtKeyUsageNames list the names ParseKeyUsage and
// ParseExtKeyUsage accept, as keytool writes them.
func KeyUsageNames() []string {
	out := make([]string, len(keyUsages))
	for i, u := range keyUsages {
		out[i] = u.name
	}
	return out
}

func ExtKeyUsageNames() []string {
	out := make([]string, len(extKeyUsages))
	for i, u := range extKeyUsages {
		out[i] = u.name
	}
	return out
}

func foldUsage(name string) string {
	f := strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(name))
	if s, ok := usageSynonyms[f]; ok {
		return strings.ToLower(s)
	}
	return f
}

// ParseKeyUsage reads one key usage name and returns it with its
// canonical (keytool) name.
func ParseKeyUsage(name string) (x509.KeyUsage, string, error) {
	f := foldUsage(name)
	for _, u := range keyUsages {
		if strings.ToLower(u.name) == f {
			return u.usage, u.name, nil
		}
	}
	return 0, "", newErr(ErrInvalidInput, "", nil, "key usage %q: want one of %s", name, strings.Join(KeyUsageNames(), ", "))
}

// ParseExtKeyUsage reads one extended key usage name and returns it with
// its canonical (keytool) name.
func ParseExtKeyUsage(name string) (x509.ExtKeyUsage, string, error) {
	f := foldUsage(name)
	for _, u := range extKeyUsages {
		if strings.ToLower(u.name) == f {
			return u.usage, u.name, nil
		}
	}
	return 0, "", newErr(ErrInvalidInput, "", nil, "extended key usage %q: want one of %s", name, strings.Join(ExtKeyUsageNames(), ", "))
}

// KeyUsageList names the usages set in u, in keytool's order.
func KeyUsageList(u x509.KeyUsage) []string {
	var out []string
	for _, k := range keyUsages {
		if u&k.usage != 0 {
			out = append(out, k.name)
		}
	}
	return out
}

// ExtKeyUsageList names the extended key usages of us that have a name.
func ExtKeyUsageList(us []x509.ExtKeyUsage) []string {
	var out []string
	for _, u := range us {
		for _, k := range extKeyUsages {
			if k.usage == u {
				out = append(out, k.name)
			}
		}
	}
	return out
}
