# mailstack quickstart: a keystore, a mail server, its listeners on
# 127.0.0.1 (unprivileged ports) and a user, with all state under this
# folder. A check block probes every port after each apply.
#
#   make demo        # apply with these defaults and print how to connect
#   make demo-down   # destroy it and free the ports

terraform {
  required_providers {
    mailstack = {
      source = "mailstack/mailstack"
    }
  }
}

variable "keystore_password" {
  description = "Password of the demo keystore (the JDK's customary default)."
  type        = string
  default     = "changeit"
  sensitive   = true
}

variable "hostname" {
  type    = string
  default = "mail.example.test"
}

variable "alice_password" {
  description = "Password of the demo user alice@example.test."
  type        = string
  default     = "alice-demo-password"
  sensitive   = true
}

variable "validity_days" {
  description = "Validity of the self-signed certificate; changing it issues a new one (a rotation), live on every port when apply returns."
  type        = number
  default     = 365
}

variable "address" {
  description = "Address the listeners bind."
  type        = string
  default     = "127.0.0.1"
}

provider "mailstack" {
  state_dir = "${path.module}/.state"
}

resource "mailstack_keystore" "mx" {
  path     = "${path.module}/.state/james.keystore"
  type     = "JKS"
  password = var.keystore_password
  alias    = "james"

  key {
    algorithm = "RSA"
    rsa_bits  = 2048
  }

  self_signed {
    subject {
      common_name  = var.hostname
      organization = "mailstack demo"
      country      = "US"
    }
    dns_names     = [var.hostname, "localhost"]
    ip_addresses  = ["127.0.0.1"]
    validity_days = var.validity_days
  }
}

resource "mailstack_server" "mx" {
  hostname = var.hostname
  domains  = ["example.test"]
}

locals {
  # protocol, TLS mode and port of each listener.
  listeners = {
    smtp       = { protocol = "smtp", mode = "starttls", port = 2525 }
    smtps      = { protocol = "smtp", mode = "implicit", port = 2465 }
    submission = { protocol = "submission", mode = "starttls", port = 2587 }
    imap       = { protocol = "imap", mode = "starttls", port = 2143 }
    imaps      = { protocol = "imap", mode = "implicit", port = 2993 }
    pop3       = { protocol = "pop3", mode = "starttls", port = 2110 }
    pop3s      = { protocol = "pop3", mode = "implicit", port = 2995 }
  }
}

resource "mailstack_listener" "this" {
  for_each = local.listeners

  server_id = mailstack_server.mx.id
  protocol  = each.value.protocol
  address   = var.address
  port      = each.value.port

  tls {
    mode              = each.value.mode
    keystore_path     = mailstack_keystore.mx.path
    keystore_password = var.keystore_password

    # A renewed certificate is live on every port when apply returns.
    expected_fingerprint_sha256 = mailstack_keystore.mx.fingerprint_sha256
  }
}

resource "mailstack_user" "alice" {
  server_id   = mailstack_server.mx.id
  address     = "alice@example.test"
  password    = var.alice_password
  quota_bytes = 104857600 # 100 MiB
}

# After every apply: each port speaks TLS the way it should and serves the
# keystore's certificate; a failed assertion is a warning.
data "mailstack_tls_probe" "listener" {
  for_each            = mailstack_listener.this
  address             = "${each.value.address}:${each.value.port}"
  protocol            = each.value.protocol
  mode                = each.value.tls.mode
  server_name         = var.hostname
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
      "${name}: ${p.fingerprint_sha256} verified=${p.verified} ${p.verify_error}"
    ])
  }
}

output "certificate_fingerprint_sha256" {
  value = mailstack_keystore.mx.fingerprint_sha256
}

output "how_to_connect" {
  value = <<-EOT

    mailstack demo is up (state in ${abspath(path.module)}/.state).
    Served certificate: SHA-256 ${mailstack_keystore.mx.fingerprint_sha256}

      SMTP, implicit TLS:   openssl s_client -quiet -connect ${var.address}:2465
      SMTP, STARTTLS:       openssl s_client -quiet -starttls smtp -connect ${var.address}:2525
      submission, STARTTLS: openssl s_client -quiet -starttls smtp -connect ${var.address}:2587
      IMAP, implicit TLS:   openssl s_client -quiet -connect ${var.address}:2993
      IMAP, STARTTLS:       openssl s_client -quiet -starttls imap -connect ${var.address}:2143
      POP3, implicit TLS:   openssl s_client -quiet -connect ${var.address}:2995
      POP3, STARTTLS:       openssl s_client -quiet -starttls pop3 -connect ${var.address}:2110

    Mailbox: ${mailstack_user.alice.address} (password: var.alice_password,
    "alice-demo-password" unless you set it). Send to it on port 2525 and read
    it over IMAP (2143/2993) or POP3 (2110/2995).

    The keystore, as Apache James would read it:
      keytool -list -v -keystore ${abspath(mailstack_keystore.mx.path)} -storepass <keystore_password>

    Stop it with: make demo-down
  EOT
}
