package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Mail stores a server can keep its users and mail in.
const (
	// StoreEmbedded is Maildir folders and a bbolt index in the state
	// directory: one host, one runtime.
	StoreEmbedded = "embedded"
	// StorePostgres is a PostgreSQL database that several runtimes, on
	// several hosts, can share.
	StorePostgres = "postgres"
)

// Stores lists the accepted stores, the default first.
var Stores = []string{StoreEmbedded, StorePostgres}

// StoreKind returns the store in force: Store, or StoreEmbedded when it
// is empty.
func (s *Server) StoreKind() string {
	if s.Store == "" {
		return StoreEmbedded
	}
	return s.Store
}

// SameStore reports whether s and o name the same store, so that a change
// of server settings from one to the other keeps the store open.
func (s *Server) SameStore(o *Server) bool {
	return s.StoreKind() == o.StoreKind() && s.PostgresDSN == o.PostgresDSN
}

// validateStore checks the store settings. The connection string is only
// checked for presence here: it may name files (sslrootcert) that exist
// only on the runtime's host, which parses it when it connects.
func (s *Server) validateStore() error {
	var errs []error
	if !slices.Contains(Stores, s.StoreKind()) {
		errs = append(errs, fmt.Errorf("server: store %q is not one of %s", s.Store, strings.Join(Stores, ", ")))
	}
	switch {
	case s.StoreKind() == StorePostgres && strings.TrimSpace(s.PostgresDSN) == "":
		errs = append(errs, errors.New(`server: store "postgres" needs postgres_dsn, the database's connection string`))
	case s.StoreKind() != StorePostgres && s.PostgresDSN != "":
		errs = append(errs, fmt.Errorf(`server: postgres_dsn is only used with store "postgres", not %q`, s.StoreKind()))
	}
	return errors.Join(errs...)
}
