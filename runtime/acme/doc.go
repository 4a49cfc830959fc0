// Package acme owns the runtime's ACME keystores: Java keystores whose
// private key entry holds a certificate from an ACME CA (Let's Encrypt,
// step-ca, Pebble), obtained and renewed by the runtime.
//
// A Service keeps one manager per ACME keystore, by id. A manager
//
//   - registers an ACME account (its key in the Service's state directory,
//     under acme/<id>/, through an autocert.DirCache),
//   - answers the CA's challenges on its challenge address: http-01 with an
//     HTTP server, tls-alpn-01 with a TLS listener offering acme-tls/1. The
//     challenge listener only answers for the declared domains (its host
//     policy) and only while an order is being validated. Managers with the
//     same challenge address share one socket,
//   - orders one certificate that names every declared domain, with a fresh
//     key, and writes it with its chain into the keystore's private key
//     entry, JKS or PKCS#12, atomically (keystore.Update), so Java servers
//     reading the file get it too, and the runtime's listeners that watch
//     the file serve it from their next handshake,
//   - renews it renew_before_days before it expires (a certificate that
//     lives shorter than that is renewed once a third of its lifetime has
//     passed), retrying with backoff after a failure, and puts the
//     certificate back into the keystore if the entry was changed outside
//     the runtime.
//
// A Service that lost a keystore's folder (acme/<id>/) orders a new
// certificate when the keystore is put again, unless the caller names the
// one the entry holds (PutKeeping) and it is still current for the config
// (Config.Current): then that one is kept, as the provider does when it
// repairs a runtime that forgot the keystore.
//
// # Why not autocert.Manager
//
// autocert obtains one single-name certificate per TLS server name, lazily
// on a handshake, and renews it in memory with no hook to tell anyone. A
// keystore alias is one entry that Java servers read from a file: it needs
// one certificate covering every declared domain, obtained now (so that
// terraform apply returns when it is in the keystore), and a write to the
// file after every renewal. So a manager drives the order itself with
// golang.org/x/crypto/acme, the client autocert is built on, and keeps its
// state in an autocert.Cache.
//
// # Errors
//
// Every error a Service returns wraps one of ErrInvalid, ErrNotFound,
// ErrConflict or ErrIssuance (test with errors.Is); the text is the
// detail, naming the keystore, the domain and, when the CA answered with
// one, the ACME problem document (type and detail). A failed issuance
// leaves the keystore byte-for-byte unchanged. errors.As finds the CA's
// *acme.Error in the chain.
package acme
