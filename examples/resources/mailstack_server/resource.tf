resource "mailstack_server" "mx" {
  hostname = "mail.example.com"
  domains  = ["example.com"]

  max_message_bytes = 26214400 # 25 MiB

  # Prometheus metrics at http://127.0.0.1:9154/metrics (off when unset).
  metrics_address = "127.0.0.1:9154"

  # auto: a systemd unit where systemd is PID 1, else `runtime supervise`,
  # which restarts the runtime with backoff if it dies.
  supervisor = "auto"

  # Outbound mail. Without a relay block, mail for other domains goes to
  # their MX hosts, with DANE and MTA-STS enforced where published.
  dns_resolvers = ["127.0.0.1"] # a validating resolver (Unbound) on the host
  tls_policy {
    domain             = "partner.example.org"
    require_tls        = true
    verify_certificate = true
  }
  queue {
    retry_min     = "5m"
    give_up_after = "120h"
  }
}

# A server that must send everything through its provider's smarthost.
resource "mailstack_server" "branch" {
  name     = "branch"
  hostname = "branch.example.com"
  domains  = ["branch.example.com"]

  relay {
    address             = "smtp.example.net:587"
    mode                = "starttls"
    username            = "branch@example.com"
    password_wo         = var.relay_password
    password_wo_version = 1
  }
}

# Two servers serving the same users from one PostgreSQL database: mail
# delivered through either shows up on both at once. Here they share a
# host under two names; with one provider configuration per host they run
# on two.
resource "mailstack_server" "mx1" {
  name     = "mx1"
  hostname = "mx1.example.com"
  domains  = ["example.com"]

  store                   = "postgres"
  postgres_dsn_wo         = var.mail_db_dsn # "host=db.example.com dbname=mail user=mailstack password=... sslmode=verify-full sslrootcert=/etc/mailstack/db-ca.pem"
  postgres_dsn_wo_version = 1
}

resource "mailstack_server" "mx2" {
  name     = "mx2"
  hostname = "mx2.example.com"
  domains  = ["example.com"]

  store                   = "postgres"
  postgres_dsn_wo         = var.mail_db_dsn
  postgres_dsn_wo_version = 1
}

# Users live in the database: one mailstack_user, through either server.
resource "mailstack_user" "alice" {
  server_id = mailstack_server.mx1.id
  address   = "alice@example.com"
  password  = var.alice_password
}

variable "mail_db_dsn" {
  type      = string
  sensitive = true
  ephemeral = true
}

variable "alice_password" {
  type      = string
  sensitive = true
}

variable "relay_password" {
  type      = string
  sensitive = true
  ephemeral = true
}

# How much mail waits, as of the last refresh.
output "queue" {
  value = "${mailstack_server.mx.queue_length} queued, oldest ${mailstack_server.mx.queue_oldest_seconds}s"
}

# A newer provider build shows in plan as
#   ~ executable_sha256 = "3f1c..." -> "9ab0..."
# and apply restarts the runtime on it in place (drain, then start).
output "runtime_version" {
  value = mailstack_server.mx.version
}
