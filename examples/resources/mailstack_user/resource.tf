# The password lives in state (marked sensitive); a password changed at the
# runtime shows as drift.
resource "mailstack_user" "alice" {
  server_id   = mailstack_server.mx.id
  address     = "alice@example.com"
  password    = var.alice_password
  quota_bytes = 1073741824 # 1 GiB
}

# Terraform 1.11+: a write-only password never enters state or plan.
# Bump password_wo_version to set a new one.
resource "mailstack_user" "bob" {
  server_id           = mailstack_server.mx.id
  address             = "bob@example.com"
  password_wo         = var.bob_password
  password_wo_version = 1
}
