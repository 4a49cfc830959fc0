package keystore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mailstack/terraform-provider-mailstack/internal/keystore/internal/rc2"
)

// What this package writes: JDK 12+ defaults (PBES2 with PBKDF2-HMAC-SHA-256
// and AES-256-CBC, HMAC-SHA-256 MAC), 10000 iterations, 20-byte salts.
const p12SaltLen = 20

// Variables only so that the fuzz test can make them cheap.
var (
	p12Iterations    = 10000
	p12MaxIterations = 5000000 // JDK's keystore.PKCS12.maxIterationCount
	// p12CheapKDF makes every key derivation run one iteration, whatever
	// the file asks for, so that the fuzzer spends its time in the parsers
	// beneath the KDF instead of in PBKDF2. The iteration count is still
	// read and checked.
	p12CheapKDF = false
)

// kdfRounds is the number of iterations a derivation asked for n runs.
func kdfRounds(n int) int {
	if p12CheapKDF {
		return 1
	}
	return n
}

var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidPBMAC1     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA2x  = asn1.ObjectIdentifier{1, 2, 840, 113549, 2} // .8 224, .9 256, .10 384, .11 512
	oidAESCBC     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1}
	oidDESEDE3    = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
	oidPBE3DES    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	oidPBERC2128  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 5}
	oidPBERC240   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 6}
	oidSHA1       = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA2x      = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2} // .1 256, .2 384, .3 512, .4 224
	oidSHA256     = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// errPassword means a password did not decrypt or verify; callers turn it
// into ErrWrongStorePassword or ErrWrongKeyPassword.
var errPassword = errors.New("wrong password")

func unsupported(format string, args ...any) error {
	return newErr(ErrUnsupported, "", nil, format, args...)
}

func corrupt(format string, args ...any) error {
	return newErr(ErrNotKeystore, "", nil, "corrupt PKCS#12 keystore: "+format, args...)
}

// unmarshalDER decodes exactly one DER value from b into v.
func unmarshalDER(b []byte, v any) error {
	rest, err := asn1.Unmarshal(b, v)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return errors.New("trailing data")
	}
	return nil
}

type hashSpec struct {
	new  func() hash.Hash
	v    int // block size in bytes, for the PKCS#12 KDF
	name string
}

var (
	hSHA1   = hashSpec{sha1.New, 64, "SHA-1"}
	hSHA224 = hashSpec{sha256.New224, 64, "SHA-224"}
	hSHA256 = hashSpec{sha256.New, 64, "SHA-256"}
	hSHA384 = hashSpec{sha512.New384, 128, "SHA-384"}
	hSHA512 = hashSpec{sha512.New, 128, "SHA-512"}
)

// digestHash maps a digest algorithm OID (MAC) to its hash.
func digestHash(oid asn1.ObjectIdentifier) (hashSpec, bool) {
	if oid.Equal(oidSHA1) {
		return hSHA1, true
	}
	if len(oid) == len(oidSHA2x)+1 && oid[:len(oidSHA2x)].Equal(oidSHA2x) {
		switch oid[len(oidSHA2x)] {
		case 1:
			return hSHA256, true
		case 2:
			return hSHA384, true
		case 3:
			return hSHA512, true
		case 4:
			return hSHA224, true
		}
	}
	return hashSpec{}, false
}

// hmacHash maps a PBKDF2 PRF OID to its hash; an empty OID is HMAC-SHA-1.
func hmacHash(oid asn1.ObjectIdentifier) (hashSpec, bool) {
	if len(oid) == 0 || oid.Equal(oidHMACSHA1) {
		return hSHA1, true
	}
	if len(oid) == len(oidHMACSHA2x)+1 && oid[:len(oidHMACSHA2x)].Equal(oidHMACSHA2x) {
		switch oid[len(oidHMACSHA2x)] {
		case 8:
			return hSHA224, true
		case 9:
			return hSHA256, true
		case 10:
			return hSHA384, true
		case 11:
			return hSHA512, true
		}
	}
	return hashSpec{}, false
}

// bmpPassword encodes a UTF-8 password as PKCS#12 wants it for its own KDF:
// UTF-16 big-endian with a terminating zero character.
func bmpPassword(p []byte) ([]byte, error) {
	if !utf8.Valid(p) {
		return nil, newErr(ErrInvalidInput, "", nil, "password is not UTF-8")
	}
	u := utf16.Encode([]rune(string(p)))
	out := make([]byte, 0, 2*len(u)+2)
	for _, c := range u {
		out = append(out, byte(c>>8), byte(c))
	}
	return append(out, 0, 0), nil
}

// pkcs12KDF is the key derivation of RFC 7292 appendix B.2.
func pkcs12KDF(h hashSpec, salt, password []byte, iterations int, id byte, size int) []byte {
	v := h.v
	fill := func(p []byte) []byte {
		if len(p) == 0 {
			return nil
		}
		out := make([]byte, v*((len(p)+v-1)/v))
		for i := range out {
			out[i] = p[i%len(p)]
		}
		return out
	}
	d := bytes.Repeat([]byte{id}, v)
	I := append(fill(salt), fill(password)...)
	var out []byte
	hh := h.new()
	for len(out) < size {
		hh.Reset()
		hh.Write(d)
		hh.Write(I)
		a := hh.Sum(nil)
		for r := 1; r < kdfRounds(iterations); r++ {
			hh.Reset()
			hh.Write(a)
			a = hh.Sum(a[:0])
		}
		out = append(out, a...)
		if len(out) >= size {
			break
		}
		b := fill(a)[:v]
		for j := 0; j < len(I); j += v {
			// I_j = (I_j + B + 1) mod 2^(8v)
			carry := 1
			for k := v - 1; k >= 0; k-- {
				s := int(I[j+k]) + int(b[k]) + carry
				I[j+k] = byte(s)
				carry = s >> 8
			}
		}
	}
	return out[:size]
}

func checkIterations(n int) error {
	if n < 1 {
		return corrupt("iteration count %d", n)
	}
	if n > p12MaxIterations {
		return unsupported("iteration count %d exceeds %d", n, p12MaxIterations)
	}
	return nil
}

type pbeParams struct {
	Salt       []byte
	Iterations int
}

type pbes2Params struct {
	KDF              pkix.AlgorithmIdentifier
	EncryptionScheme pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt       asn1.RawValue
	Iterations int
	KeyLength  int                      `asn1:"optional"`
	PRF        pkix.AlgorithmIdentifier `asn1:"optional"`
}

// pbDecrypt decrypts data encrypted with a PKCS#12 or PKCS#5 password-based
// scheme. It returns errPassword when the padding is wrong.
func pbDecrypt(alg pkix.AlgorithmIdentifier, data, password []byte) ([]byte, error) {
	var block cipher.Block
	var iv []byte
	switch {
	case alg.Algorithm.Equal(oidPBES2):
		var err error
		if block, iv, err = pbes2Cipher(alg, password); err != nil {
			return nil, err
		}
	case alg.Algorithm.Equal(oidPBE3DES), alg.Algorithm.Equal(oidPBERC240), alg.Algorithm.Equal(oidPBERC2128):
		var p pbeParams
		if err := unmarshalDER(alg.Parameters.FullBytes, &p); err != nil {
			return nil, corrupt("PBE parameters: %v", err)
		}
		if err := checkIterations(p.Iterations); err != nil {
			return nil, err
		}
		bmp, err := bmpPassword(password)
		if err != nil {
			return nil, err
		}
		switch {
		case alg.Algorithm.Equal(oidPBE3DES):
			block, _ = des.NewTripleDESCipher(pkcs12KDF(hSHA1, p.Salt, bmp, p.Iterations, 1, 24))
		case alg.Algorithm.Equal(oidPBERC240):
			block, _ = rc2.New(pkcs12KDF(hSHA1, p.Salt, bmp, p.Iterations, 1, 5), 40)
		default:
			block, _ = rc2.New(pkcs12KDF(hSHA1, p.Salt, bmp, p.Iterations, 1, 16), 128)
		}
		iv = pkcs12KDF(hSHA1, p.Salt, bmp, p.Iterations, 2, 8)
	default:
		return nil, unsupported("encryption algorithm %s", alg.Algorithm)
	}
	bs := block.BlockSize()
	if len(data) == 0 || len(data)%bs != 0 {
		return nil, corrupt("encrypted data is %d bytes, not a multiple of %d", len(data), bs)
	}
	out := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, data)
	n := int(out[len(out)-1])
	if n == 0 || n > bs {
		return nil, errPassword
	}
	for _, c := range out[len(out)-n:] {
		if int(c) != n {
			return nil, errPassword
		}
	}
	return out[:len(out)-n], nil
}

func pbes2Cipher(alg pkix.AlgorithmIdentifier, password []byte) (cipher.Block, []byte, error) {
	var p pbes2Params
	if err := unmarshalDER(alg.Parameters.FullBytes, &p); err != nil {
		return nil, nil, corrupt("PBES2 parameters: %v", err)
	}
	if !p.KDF.Algorithm.Equal(oidPBKDF2) {
		return nil, nil, unsupported("PBES2 key derivation %s", p.KDF.Algorithm)
	}
	var kp pbkdf2Params
	if err := unmarshalDER(p.KDF.Parameters.FullBytes, &kp); err != nil {
		return nil, nil, corrupt("PBKDF2 parameters: %v", err)
	}
	if kp.Salt.Class != asn1.ClassUniversal || kp.Salt.Tag != asn1.TagOctetString || kp.Salt.IsCompound {
		return nil, nil, unsupported("PBKDF2 salt that is not an octet string")
	}
	if err := checkIterations(kp.Iterations); err != nil {
		return nil, nil, err
	}
	prf, ok := hmacHash(kp.PRF.Algorithm)
	if !ok {
		return nil, nil, unsupported("PBKDF2 PRF %s", kp.PRF.Algorithm)
	}
	enc := p.EncryptionScheme.Algorithm
	var keyLen int
	var newCipher func([]byte) (cipher.Block, error)
	switch {
	case enc.Equal(oidDESEDE3):
		keyLen, newCipher = 24, des.NewTripleDESCipher
	case len(enc) == len(oidAESCBC)+1 && enc[:len(oidAESCBC)].Equal(oidAESCBC) && (enc[len(oidAESCBC)] == 2 || enc[len(oidAESCBC)] == 22 || enc[len(oidAESCBC)] == 42):
		keyLen, newCipher = 16+8*(enc[len(oidAESCBC)]-2)/20, aes.NewCipher
	default:
		return nil, nil, unsupported("PBES2 cipher %s", enc)
	}
	if kp.KeyLength != 0 && kp.KeyLength != keyLen {
		return nil, nil, corrupt("PBKDF2 key length %d for a %d-byte key", kp.KeyLength, keyLen)
	}
	var iv []byte
	if err := unmarshalDER(p.EncryptionScheme.Parameters.FullBytes, &iv); err != nil {
		return nil, nil, corrupt("PBES2 IV: %v", err)
	}
	key, err := pbkdf2.Key(prf.new, string(password), kp.Salt.Bytes, kdfRounds(kp.Iterations), keyLen)
	if err != nil {
		return nil, nil, corrupt("PBKDF2: %v", err)
	}
	block, err := newCipher(key)
	if err != nil {
		return nil, nil, corrupt("cipher: %v", err)
	}
	if len(iv) != block.BlockSize() {
		return nil, nil, corrupt("PBES2 IV is %d bytes", len(iv))
	}
	return block, iv, nil
}

// pbEncrypt encrypts data with PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC).
func pbEncrypt(data, password []byte) (pkix.AlgorithmIdentifier, []byte, error) {
	salt := make([]byte, p12SaltLen)
	iv := make([]byte, aes.BlockSize)
	rand.Read(salt)
	rand.Read(iv)
	key, err := pbkdf2.Key(sha256.New, string(password), salt, kdfRounds(p12Iterations), 32)
	if err != nil {
		return pkix.AlgorithmIdentifier{}, nil, err
	}
	block, _ := aes.NewCipher(key)
	n := aes.BlockSize - len(data)%aes.BlockSize
	out := append(bytes.Clone(data), bytes.Repeat([]byte{byte(n)}, n)...)
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, out)

	null := asn1.RawValue{FullBytes: []byte{5, 0}}
	saltRaw, _ := asn1.Marshal(salt)
	kdf, err := asn1.Marshal(pbkdf2Params{Salt: asn1.RawValue{FullBytes: saltRaw}, Iterations: p12Iterations,
		KeyLength: 32, PRF: pkix.AlgorithmIdentifier{Algorithm: oidHMACSHA256, Parameters: null}})
	if err != nil {
		return pkix.AlgorithmIdentifier{}, nil, err
	}
	ivRaw, _ := asn1.Marshal(iv)
	params, err := asn1.Marshal(pbes2Params{
		KDF:              pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: asn1.RawValue{FullBytes: kdf}},
		EncryptionScheme: pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: asn1.RawValue{FullBytes: ivRaw}},
	})
	if err != nil {
		return pkix.AlgorithmIdentifier{}, nil, err
	}
	return pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: asn1.RawValue{FullBytes: params}}, out, nil
}

type macData struct {
	Mac        digestInfo
	MacSalt    []byte
	Iterations int `asn1:"optional,default:1"`
}

type digestInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Digest    []byte
}

// macFor computes the PKCS#12 HMAC of content with md's algorithm, salt and
// iterations, the key derived from the BMP-encoded password.
func macFor(md *macData, content, bmp []byte) ([]byte, error) {
	if md.Mac.Algorithm.Algorithm.Equal(oidPBMAC1) {
		return nil, unsupported("PBMAC1 integrity (Java 26+/OpenSSL 3.4+ option)")
	}
	h, ok := digestHash(md.Mac.Algorithm.Algorithm)
	if !ok {
		return nil, unsupported("MAC algorithm %s", md.Mac.Algorithm.Algorithm)
	}
	if err := checkIterations(md.Iterations); err != nil {
		return nil, err
	}
	size := h.new().Size()
	key := pkcs12KDF(h, md.MacSalt, bmp, md.Iterations, 3, size)
	m := hmac.New(h.new, key)
	m.Write(content)
	return m.Sum(nil), nil
}

// verifyMAC checks the PFX MAC; errPassword when it does not match. Like
// OpenSSL, an empty password is also tried as no password at all.
func verifyMAC(md *macData, content, password []byte) error {
	bmp, err := bmpPassword(password)
	if err != nil {
		return err
	}
	candidates := [][]byte{bmp}
	if len(password) == 0 {
		candidates = append(candidates, nil)
	}
	for _, c := range candidates {
		sum, err := macFor(md, content, c)
		if err != nil {
			return err
		}
		if hmac.Equal(sum, md.Mac.Digest) {
			return nil
		}
	}
	return errPassword
}

func newMAC(content, password []byte) (macData, error) {
	bmp, err := bmpPassword(password)
	if err != nil {
		return macData{}, err
	}
	md := macData{MacSalt: make([]byte, p12SaltLen), Iterations: p12Iterations}
	rand.Read(md.MacSalt)
	md.Mac.Algorithm = pkix.AlgorithmIdentifier{Algorithm: oidSHA256, Parameters: asn1.RawValue{FullBytes: []byte{5, 0}}}
	sum, err := macFor(&md, content, bmp)
	if err != nil {
		return macData{}, fmt.Errorf("computing MAC: %w", err)
	}
	md.Mac.Digest = sum
	return md, nil
}
