# A keystore made elsewhere (keytool, an Apache James install) is adopted by
# its path. The configuration is not available during import, so the store
# password comes from the environment, and a JKS key password that differs
# from it (keytool -keypass) too:
export MAILSTACK_KEYSTORE_PASSWORD='...'
export MAILSTACK_KEYSTORE_KEY_PASSWORD='...' # only if the key has its own
terraform import mailstack_keystore.mx /etc/mail/james.keystore

# When the file holds several private key entries, name the alias:
terraform import mailstack_keystore.mx /etc/mail/james.keystore:james

# An adopted keystore keeps its file's mode, owner and group, and destroy
# leaves it on disk (delete_on_destroy defaults to false for it).
