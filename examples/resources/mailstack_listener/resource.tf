# SMTP with implicit TLS on 465 (Apache James: <tls socketTLS="true">).
resource "mailstack_listener" "smtps" {
  server_id = mailstack_server.mx.id
  protocol  = "smtp"
  address   = "0.0.0.0"
  port      = 465

  tls {
    mode              = "implicit"
    keystore_path     = mailstack_keystore.mx.path
    keystore_password = var.keystore_password

    # Apply returns once the port serves this certificate, so a renewal of
    # the keystore is live when apply returns; serving anything else is drift.
    expected_fingerprint_sha256 = mailstack_keystore.mx.fingerprint_sha256
  }
}

# IMAP with STARTTLS on 143 (Apache James: <tls startTLS="true">).
resource "mailstack_listener" "imap" {
  server_id = mailstack_server.mx.id
  protocol  = "imap"
  port      = 143

  tls {
    mode              = "starttls"
    keystore_path     = mailstack_keystore.mx.path
    keystore_password = var.keystore_password
    min_version       = "1.2"
  }
}
