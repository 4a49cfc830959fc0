# Trusted entries are imported by <keystore_path>:<alias>, the resource's id;
# the store password comes from the environment.
export MAILSTACK_KEYSTORE_PASSWORD='...'
terraform import mailstack_certificate_import.root /etc/mail/imap.p12:root
