# keytool -list -v -keystore /opt/james/conf/keystore -storepass ...
data "mailstack_keystore" "james" {
  path     = "/opt/james/conf/keystore"
  password = var.keystore_password
}

# Certificates that end within 30 days.
output "expiring_soon" {
  value = [
    for e in data.mailstack_keystore.james.entries : "${e.alias} (${e.kind}): ${e.subject} until ${e.not_after}"
    if e.days_remaining < 30
  ]
}

# Each private key entry's whole chain, as the server sends it.
output "chains" {
  value = { for e in data.mailstack_keystore.james.entries : e.alias => e.chain_pem if e.kind == "PrivateKeyEntry" }
}

output "fingerprints" {
  value = { for e in data.mailstack_keystore.james.entries : e.alias => e.fingerprint_sha256 }
}
