provider "mailstack" {
  # Each mailstack_server keeps its state in <state_dir>/<name>.
  state_dir = "/var/lib/mailstack"
}

# A host reached over SSH: one provider configuration per host.
provider "mailstack" {
  alias     = "mx1"
  state_dir = "/var/lib/mailstack"
  ssh {
    address     = "mx1.example.com:22"
    user        = "mailstack"
    private_key = file("~/.ssh/id_ed25519")
    host_key    = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0dGj1zB0dBXU0jR3AuFUCTeRYI2p1ie7sNFzQyFWEA"
  }
}
