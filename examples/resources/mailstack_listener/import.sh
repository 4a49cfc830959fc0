# A listener is imported by its id, <server_id>/<listener id>.
terraform import mailstack_listener.smtps default/l-0123456789ab
