// Package keystore owns Java keystore files (JKS and PKCS#12): it reads and
// writes them the way JDK keytool does, generates keys, self-signed
// certificates and certificate signing requests, installs CA replies into
// private key entries, adds trusted certificates, and validates what a keystore
// holds.
//
// A [Keystore] is a decoded keystore in memory. [Decode] and [Open] detect the
// format from the bytes; [Keystore.Encode] writes it back in the same format.
// [Update] is the only way this package changes a file: it holds the file's
// advisory lock, keeps every entry the caller does not touch, and replaces
// the file atomically, so a failed update leaves the file byte-for-byte as
// it was. Files are reached through the [File] interface (internal/host's
// File, on the local host or over SSH): this package does no I/O itself.
//
// # Aliases
//
// Aliases are case-insensitive and stored in lower case, as keytool does for
// both JKS and PKCS#12.
//
// # Passwords
//
// Every key password argument follows keytool: an empty key password means
// "the store password". JKS keeps a distinct password per private key entry
// (keytool -keypass). PKCS#12 keystores use the store password for keys: a
// distinct key password is refused when writing ([ErrUnsupported]), because
// keytool ignores -keypass for PKCS#12 and most other tools cannot read such
// files. A PKCS#12 file made elsewhere with a distinct key password is still
// read, and its key is kept as it is when the file is rewritten.
//
// JKS passwords must be Latin-1 (every character below U+0100): the JKS
// format, as implemented by keystore-go, hashes one byte per character.
//
// # Formats written
//
// JKS is written by github.com/pavlo-v-chernykh/keystore-go/v4 (SHA-1 key
// protector and integrity digest, the only ones JKS has). PKCS#12 is written
// with the algorithms JDK 12 and later use by default: keys and certificates
// encrypted with PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC) and an HMAC-SHA-256
// integrity MAC, 10000 iterations each. Legacy PKCS#12 files (RC2 or 3DES
// with SHA-1, as JDK 8 and OpenSSL 1.x made them) are read.
//
// # Errors
//
// Every error this package returns for a bad keystore, password, alias or
// certificate is an [*Error] that wraps one of the Err sentinels, so callers
// tell them apart with errors.Is; its text names the file and alias.
//
// A Keystore is not safe for concurrent use.
package keystore
