// Package james moves an Apache James 3.x server over to mailstack: it
// reads a James conf directory (smtpserver.xml, lmtpserver.xml,
// imapserver.xml, pop3server.xml with their <tls> blocks and <bind>
// addresses, domainlist.xml, and the keystores they name) and writes the
// Terraform configuration that serves the same ports with the same
// certificates: a mailstack_keystore with an import block per keystore
// (adopted, never rewritten), a mailstack_server and one mailstack_listener
// per bind address of every enabled server block.
//
// Secrets (the keystores' <secret>) go to a .tfvars file of mode 0600 and
// reach the .tf file only as variables. Every setting it does not carry
// over is listed in a comment at the top of the generated main.tf with the
// reason, so nothing is dropped silently.
//
// The command is `terraform-provider-mailstack james import CONF_DIR -out
// DIR` ([Main]). [Load] reads a conf directory, [Generate] renders the
// files; neither writes anything, so a bad input changes nothing on disk.
package james
