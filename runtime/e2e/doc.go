// Package e2e holds black-box tests of the real runtime executable: it is
// built once per test binary, started with `runtime serve --state-dir`,
// driven through the control socket and over the network, stopped with
// SIGTERM and killed with SIGKILL. There is no non-test code here.
package e2e
