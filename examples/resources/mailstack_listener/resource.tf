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

# IMAP with STARTTLS on 143 (Apache James: <tls startTLS="true">). A whole
# office reaches it through one NAT gateway, and each mail client holds
# several connections: more per client address than the default 50.
resource "mailstack_listener" "imap" {
  server_id              = mailstack_server.mx.id
  protocol               = "imap"
  port                   = 143
  max_connections_per_ip = 200

  tls {
    mode          = "starttls"
    keystore_path = mailstack_keystore.mx.path
    # Write-only (Terraform 1.11+): sent to the runtime, never in the state.
    keystore_password_wo         = var.keystore_password
    keystore_password_wo_version = 1
    min_version                  = "1.2"
  }
}

# The MX port, STARTTLS on 25. Session tickets are off by default on smtp
# listeners (some sending MTAs mishandle them, and peers seldom reconnect
# soon enough to resume); session_tickets = true turns them on.
resource "mailstack_listener" "mx" {
  server_id = mailstack_server.mx.id
  protocol  = "smtp"
  port      = 25

  tls {
    mode              = "starttls"
    keystore_path     = mailstack_keystore.mx.path
    keystore_password = var.keystore_password
  }
}

# IMAP on 993 for two domains on one address, chosen by the name the client
# asks for (SNI). mail.a.example has an RSA certificate (the default) and an
# ECDSA one: clients that support ECDSA get the cheaper handshake, older ones
# RSA. mail.b.example comes from certbot's PEM files; each certificate is
# reloaded on its own when it is renewed.
resource "mailstack_listener" "imaps" {
  server_id = mailstack_server.mx.id
  protocol  = "imap"
  port      = 993

  tls {
    mode                    = "implicit"
    keystore_path           = mailstack_keystore.mx.path
    keystore_password       = var.keystore_password
    session_ticket_lifetime = "12h"

    certificate {
      keystore_path     = mailstack_keystore.mx_ecdsa.path
      keystore_password = var.keystore_password
    }
    certificate {
      certificate_file = "/etc/letsencrypt/live/mail.b.example/fullchain.pem"
      private_key_file = "/etc/letsencrypt/live/mail.b.example/privkey.pem"
    }
  }
}

# The <tls> block Apache James needs for the same port, password filled in.
output "imap_james_tls" {
  value     = replace(mailstack_listener.imap.james_tls_xml, "@KEYSTORE_PASSWORD@", var.keystore_password)
  sensitive = true
}
