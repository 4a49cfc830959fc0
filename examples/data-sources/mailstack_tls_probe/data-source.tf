# What does the SMTP port serve? Like `openssl s_client -starttls smtp`.
data "mailstack_tls_probe" "smtp" {
  address             = "127.0.0.1:25"
  protocol            = "smtp"
  mode                = "starttls"
  server_name         = "mail.example.com"
  ca_certificates_pem = mailstack_keystore.mx.certificate_pem
}

output "smtp_tls" {
  value = "${data.mailstack_tls_probe.smtp.tls_version} ${data.mailstack_tls_probe.smtp.cipher_suite}"
}

# In a check block, after every plan and apply: the port serves the
# keystore's certificate and it verifies. Inside a check block a probe that
# cannot connect is a warning too, so it never blocks the apply that may
# repair the port.
check "smtps_serves_the_keystore_certificate" {
  data "mailstack_tls_probe" "smtps" {
    address             = "127.0.0.1:465"
    protocol            = "smtp"
    mode                = "implicit"
    server_name         = "mail.example.com"
    ca_certificates_pem = mailstack_keystore.mx.certificate_pem
  }

  assert {
    condition     = data.mailstack_tls_probe.smtps.verified && data.mailstack_tls_probe.smtps.fingerprint_sha256 == mailstack_keystore.mx.fingerprint_sha256
    error_message = "465 serves ${data.mailstack_tls_probe.smtps.fingerprint_sha256}: ${data.mailstack_tls_probe.smtps.verify_error}"
  }
}

# Every listener at once: data blocks nested in a check block take no
# for_each, so probe at the top level (depending on the listeners, it is
# read after they change) and assert in the check block.
data "mailstack_tls_probe" "listener" {
  for_each            = mailstack_listener.this
  address             = "${each.value.address}:${each.value.port}"
  protocol            = each.value.protocol
  mode                = each.value.tls.mode
  server_name         = "mail.example.com"
  ca_certificates_pem = mailstack_keystore.mx.certificate_pem
}

check "listeners_serve_the_keystore_certificate" {
  assert {
    condition = alltrue([
      for name, p in data.mailstack_tls_probe.listener :
      p.verified && p.fingerprint_sha256 == mailstack_keystore.mx.fingerprint_sha256
    ])
    error_message = join("\n", [
      for name, p in data.mailstack_tls_probe.listener :
      "${name} (${p.address}) serves ${p.fingerprint_sha256}, verified=${p.verified} ${p.verify_error}"
    ])
  }
}
