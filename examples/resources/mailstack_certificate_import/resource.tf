# keytool -importcert -trustcacerts -alias root -file ca-chain.pem \
#   -keystore /etc/mail/imap.p12 -storepass ...
resource "mailstack_certificate_import" "root" {
  keystore_path     = "/etc/mail/imap.p12"
  keystore_type     = "PKCS12"
  # Or password_wo and password_wo_version (Terraform 1.11+).
  keystore_password = var.keystore_password
  alias             = "root"
  # One certificate is stored as "root"; a bundle of n as root-1 ... root-n.
  certificate_pem = file("ca-chain.pem")
}

output "root_fingerprints" {
  value = zipmap(mailstack_certificate_import.root.aliases, mailstack_certificate_import.root.fingerprints_sha256)
}
