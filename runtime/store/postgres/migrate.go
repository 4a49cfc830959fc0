package postgres

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrations are the schema's versions, applied in order: NNNN_name.sql
// takes the schema from version NNNN-1 to NNNN. A file, once released, is
// never edited; a change is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

// migrationLock is the advisory lock key under which one runtime at a
// time migrates a database ("mailstack" in ASCII, truncated to 63 bits).
const migrationLock = 0x6d61696c737461

// SchemaVersion is the schema version this build brings a database to.
func SchemaVersion() int {
	ms, _ := loadMigrations()
	return ms[len(ms)-1].version
}

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := migrations.ReadDir("migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: the name does not start with a version", e.Name())
		}
		b, err := migrations.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: want version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// migrate brings the database's schema up to SchemaVersion under an
// advisory lock, each version in a transaction of its own: two runtimes
// starting at once migrate once, the second waiting for the first. A
// database migrated by a newer build is refused rather than misread.
func migrate(ctx context.Context, cfg *pgx.ConnConfig, log *slog.Logger) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLock)); err != nil {
		return fmt.Errorf("waiting for the migration lock: %w", err)
	}
	// The session ends with Close, which releases the lock too.
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(migrationLock))

	setup := "CREATE SCHEMA IF NOT EXISTS " + Schema + ";" +
		"CREATE TABLE IF NOT EXISTS " + Schema + ".schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
	if _, err := conn.Exec(ctx, setup); err != nil {
		return fmt.Errorf("creating schema %s (the role needs CREATE on the database; owning it is simplest): %w", Schema, err)
	}
	var current int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+Schema+".schema_migrations").Scan(&current); err != nil {
		return fmt.Errorf("reading the schema version: %w", err)
	}
	latest := ms[len(ms)-1].version
	if current > latest {
		return fmt.Errorf("the database's mail store schema is version %d, newer than this runtime's %d: upgrade the runtime", current, latest)
	}
	for _, m := range ms[current:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO "+Schema+".schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrating the mail store schema to version %d (%s): %w", m.version, m.name, err)
		}
		log.Info("mail store schema migrated", "version", m.version, "migration", m.name)
	}
	return nil
}
