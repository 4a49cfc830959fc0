provider "mailstack" {
  # Each mailstack_server keeps its state in <state_dir>/<name>.
  state_dir = "/var/lib/mailstack"
}
