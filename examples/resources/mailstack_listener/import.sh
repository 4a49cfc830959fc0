# A listener is imported by where it listens, <server_id>/<address>:<port>
# (IPv6 in brackets), or by its id, <server_id>/<listener id>.
terraform import mailstack_listener.smtps default/0.0.0.0:465
terraform import mailstack_listener.imaps 'default/[::]:993'
terraform import mailstack_listener.smtps default/l-0123456789ab

# The ids and settings of a server's listeners are in
# <state_dir>/<server_id>/config.json on the target host; the runtime logs
# to <state_dir>/<server_id>/runtime.log there.
