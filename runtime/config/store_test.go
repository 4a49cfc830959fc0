package config

import (
	"strings"
	"testing"
)

// TestStoreSettings checks the store choice: embedded by default,
// postgres only with a connection string, and a connection string only
// with postgres.
func TestStoreSettings(t *testing.T) {
	for _, tc := range []struct {
		name, store, dsn string
		wantErr          string
	}{
		{name: "default"},
		{name: "embedded", store: StoreEmbedded},
		{name: "postgres", store: StorePostgres, dsn: "host=db dbname=mail"},
		{name: "postgres without a DSN", store: StorePostgres, wantErr: `store "postgres" needs postgres_dsn`},
		{name: "postgres with a blank DSN", store: StorePostgres, dsn: " ", wantErr: `needs postgres_dsn`},
		{name: "DSN without postgres", dsn: "host=db", wantErr: `postgres_dsn is only used with store "postgres", not "embedded"`},
		{name: "unknown store", store: "cassandra", wantErr: `store "cassandra" is not one of embedded, postgres`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Server{Hostname: "mx.example.com", Store: tc.store, PostgresDSN: tc.dsn}
			err := s.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.wantErr)
			}
		})
	}
	a := Server{Store: StorePostgres, PostgresDSN: "host=a"}
	if b := (Server{Store: StorePostgres, PostgresDSN: "host=b"}); a.SameStore(&b) {
		t.Error("two DSNs are the same store")
	}
	if e1, e2 := (Server{}), (Server{Store: StoreEmbedded}); !e1.SameStore(&e2) {
		t.Error(`"" and "embedded" are different stores`)
	}
}
