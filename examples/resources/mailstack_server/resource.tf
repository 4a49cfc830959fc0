resource "mailstack_server" "mx" {
  hostname = "mail.example.com"
  domains  = ["example.com"]

  max_message_bytes = 26214400 # 25 MiB
}
