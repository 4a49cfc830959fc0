# A user is imported by its id, <server_id>/<address>. The runtime keeps only
# a hash of the password, so with `password` the first plan after import
# shows it as changing (apply sets the same value again); with
# `password_wo` the plan is empty.
terraform import mailstack_user.alice default/alice@example.com
