# keytool -genkeypair -alias james -keyalg RSA -keysize 2048 \
#   -dname "CN=mail.example.com, O=Example, C=US" -validity 365 \
#   -keystore /etc/mail/james.keystore -storepass ...
resource "mailstack_keystore" "mx" {
  path = "/etc/mail/james.keystore"
  type = "JKS"
  # Write-only (Terraform 1.11+): never in the plan or the state. Bump the
  # version to apply a new password; `password = ...` works too.
  password_wo         = var.keystore_password
  password_wo_version = 1
  alias               = "james"

  # The file Apache James reads as group "james" (root needed to chown).
  file_mode = "0640"
  group     = "james"

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
    dns_names     = ["mail.example.com"]
    ip_addresses  = ["192.0.2.25"]
    validity_days = 365
    # early_renewal_days defaults to a third of the validity, at most 30.
  }
}

# Your own CA, and a keystore it signs in the same apply: the CSR flow
# (keytool -certreq, openssl ca, keytool -importcert) in one step.
resource "mailstack_keystore" "ca" {
  path     = "/etc/mail/ca.p12"
  type     = "PKCS12"
  password = var.ca_password
  alias    = "ca"

  key {
    algorithm   = "EC" # keytool's words work: EC, secp384r1, pkcs12
    ecdsa_curve = "secp384r1"
  }

  self_signed {
    subject {
      common_name  = "Example Mail CA"
      organization = "Example"
    }
    is_ca_certificate = true
    validity_days     = 3650
  }
}

resource "mailstack_keystore" "imap" {
  path     = "/etc/mail/imap.p12"
  type     = "PKCS12"
  password = var.keystore_password
  alias    = "imap"

  key {
    algorithm = "Ed25519" # JDK 15+; or ECDSA with ecdsa_curve = "P521"
  }

  locally_signed {
    subject {
      common_name = "imap.example.com"
    }
    dns_names          = ["imap.example.com"]
    validity_days      = 90
    extended_key_usage = ["serverAuth"]

    # The CA's certificate (a renewed CA signs again in the same apply) and
    # its key, from its keystore; or ca_private_key_pem.
    ca_certificate_pem      = mailstack_keystore.ca.chain_pem
    ca_keystore_path        = mailstack_keystore.ca.path
    ca_keystore_password_wo = var.ca_password
    ca_alias                = mailstack_keystore.ca.alias
  }
}

# A key signed by an outside CA, in two applies:
# 1. apply without certificate_chain_pem: the key is generated (with a
#    self-signed placeholder, as keytool -genkeypair does) and csr_pem holds
#    the request (keytool -certreq); send it to the CA.
# 2. put the CA's reply in ca-reply.pem and apply again: plan checks the
#    reply, apply installs it in place and keeps the key (keytool
#    -importcert of the reply).
resource "mailstack_keystore" "submission" {
  path     = "/etc/mail/submission.p12"
  type     = "PKCS12"
  password = var.keystore_password
  alias    = "submission"

  key {
    algorithm   = "ECDSA"
    ecdsa_curve = "P256"
  }

  csr {
    subject {
      common_name  = "smtp.example.com"
      organization = "Example"
    }
    dns_names = ["smtp.example.com"]
  }

  certificate_chain_pem = fileexists("ca-reply.pem") ? file("ca-reply.pem") : null

  # The root the reply chains to, imported first (see
  # mailstack_certificate_import), completes a reply without it.
  depends_on = [mailstack_certificate_import.root]
}

output "submission_csr_pem" {
  value = mailstack_keystore.submission.csr_pem
}

# A key and certificate made elsewhere (certbot, cert-manager,
# hashicorp/tls): openssl pkcs12 -export + keytool -importkeystore.
resource "mailstack_keystore" "pop3" {
  path     = "/etc/mail/pop3.p12"
  type     = "PKCS12"
  password = var.keystore_password
  alias    = "pop3"

  pem {
    private_key_pem_wo    = file("/etc/letsencrypt/live/pop.example.com/privkey.pem")
    certificate_chain_pem = file("/etc/letsencrypt/live/pop.example.com/fullchain.pem")
  }
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
