package pgtest_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/mailstack/terraform-provider-mailstack/internal/testutil"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/pgtest"
)

// TestCluster starts a cluster that requires TLS, checks that a client
// verifying the server's certificate and name gets in and that plain TCP,
// a wrong password and a wrong name are refused, restarts it, and checks
// that Close leaves no server and no folder behind.
func TestCluster(t *testing.T) {
	cert := testutil.SelfSigned(t, pgtest.Host)
	c := pgtest.Start(t, pgtest.Options{TLS: cert, RequireTLS: true})
	ctx := context.Background()
	dsn := c.NewDatabase(t)
	query := func(dsn string) (string, error) {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return "", err
		}
		defer conn.Close(ctx)
		var v string
		err = conn.QueryRow(ctx, "SELECT current_database() || ' ' || (SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid())").Scan(&v)
		return v, err
	}
	got, err := query(dsn)
	if err != nil || !strings.HasSuffix(got, " true") || !strings.HasPrefix(got, "test_") {
		t.Fatalf("verify-full connection: %q, %v", got, err)
	}
	if !strings.Contains(dsn, "sslmode=verify-full") {
		t.Fatalf("DSN of a TLS cluster: %s", dsn)
	}
	if _, err := query(c.DSN("postgres", "sslmode=disable")); err == nil {
		t.Fatal("a connection without TLS was accepted by a cluster that requires it")
	}
	if _, err := query(strings.Replace(dsn, "password="+c.Password, "password=wrong", 1)); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	wrongName := strings.Replace(dsn, "host="+pgtest.Host, "host=localhost", 1)
	if _, err := query(wrongName); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("verify-full against a name the certificate lacks: %v, want a certificate error", err)
	}
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if _, err := query(dsn); err == nil {
		t.Fatal("connected to a stopped cluster")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := query(dsn); err != nil {
		t.Fatalf("after a restart: %v", err)
	}
	c.Close()
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Fatalf("Close left %s: %v", c.Dir, err)
	}
	if _, err := query(dsn); err == nil {
		t.Fatal("the cluster still answers after Close")
	}
}
