# A server is imported by its name.
terraform import mailstack_server.mx default
