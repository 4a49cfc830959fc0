# The runtime makes the key on the host; only its public part reaches
# Terraform. Publish the record with any DNS provider.
resource "mailstack_dkim_key" "s2026" {
  server_id = mailstack_server.mx.id
  domain    = "example.com"
  selector  = "s2026"
  algorithm = "RSA" # or "Ed25519" (RFC 8463), best paired with an RSA key
}

output "dkim_record" {
  # s2026._domainkey.example.com TXT "v=DKIM1; k=rsa; p=MIIBIjAN..."
  value = "${mailstack_dkim_key.s2026.dns_name} TXT ${mailstack_dkim_key.s2026.dns_txt_value}"
}
