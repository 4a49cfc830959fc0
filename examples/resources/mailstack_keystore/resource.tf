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
