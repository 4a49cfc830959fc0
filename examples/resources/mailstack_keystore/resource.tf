# keytool -genkeypair -alias james -keyalg RSA -keysize 2048 \
#   -dname "CN=mail.example.com, O=Example, C=US" -validity 365 \
#   -keystore /etc/mail/james.keystore -storepass ...
resource "mailstack_keystore" "mx" {
  path     = "/etc/mail/james.keystore"
  type     = "JKS"
  password = var.keystore_password
  alias    = "james"

  key {
    algorithm = "RSA"
    rsa_bits  = 2048
  }

  self_signed {
    subject {
      common_name  = "mail.example.com"
      organization = "Example"
      country      = "US"
    }
    dns_names          = ["mail.example.com"]
    validity_days      = 365
    early_renewal_days = 30
  }
}

# A key signed by a CA, in two applies:
# 1. apply without certificate_chain_pem: the key is generated (with a
#    self-signed placeholder, as keytool -genkeypair does) and csr_pem holds
#    the request (keytool -certreq); send it to the CA.
# 2. put the CA's reply in ca-reply.pem and apply again: the reply is
#    installed in place, the key is kept (keytool -importcert of the reply).
resource "mailstack_keystore" "imap" {
  path     = "/etc/mail/imap.p12"
  type     = "PKCS12"
  password = var.keystore_password
  alias    = "imap"

  key {
    algorithm   = "ECDSA"
    ecdsa_curve = "P256"
  }

  csr {
    subject {
      common_name  = "imap.example.com"
      organization = "Example"
    }
    dns_names = ["imap.example.com"]
  }

  certificate_chain_pem = fileexists("ca-reply.pem") ? file("ca-reply.pem") : null

  # The root the reply chains to, imported first (see
  # mailstack_certificate_import), completes a reply without it.
  depends_on = [mailstack_certificate_import.root]
}

output "imap_csr_pem" {
  value = mailstack_keystore.imap.csr_pem
}

# A certificate from an ACME CA (Let's Encrypt), obtained and renewed by the
# mail runtime of mailstack_server.mx, which writes every renewal into the
# keystore: Apache James reading the same file gets it too. Try it against
# staging first; mail.example.com must resolve to this host, and port 80
# must reach the challenge listener.
resource "mailstack_keystore" "acme" {
  path     = "/etc/mail/acme.p12"
  type     = "PKCS12"
  password = var.keystore_password
  alias    = "mail"

  acme {
    server_id         = mailstack_server.mx.id
    domains           = ["mail.example.com", "smtp.example.com"]
    email             = "postmaster@example.com"
    directory_url     = "https://acme-staging-v02.api.letsencrypt.org/directory"
    challenge         = "http-01"
    challenge_address = ":80"
    renew_before_days = 30
  }
}
