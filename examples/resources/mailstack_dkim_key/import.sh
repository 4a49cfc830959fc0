# A DKIM key is imported by its id, <server_id>/<selector>._domainkey.<domain>.
terraform import mailstack_dkim_key.s2026 default/s2026._domainkey.example.com
