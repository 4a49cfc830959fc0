resource "mailstack_server" "mx" {
  hostname = "mail.example.com"
  domains  = ["example.com"]

  max_message_bytes = 26214400 # 25 MiB

  # auto: a systemd unit where systemd is PID 1, else `runtime supervise`,
  # which restarts the runtime with backoff if it dies.
  supervisor = "auto"
}

# A newer provider build shows in plan as
#   ~ executable_sha256 = "3f1c..." -> "9ab0..."
# and apply restarts the runtime on it in place (drain, then start).
output "runtime_version" {
  value = mailstack_server.mx.version
}
