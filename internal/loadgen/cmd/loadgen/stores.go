package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mailstack/terraform-provider-mailstack/internal/loadgen"
	"github.com/mailstack/terraform-provider-mailstack/internal/testutil/pgtest"
	"github.com/mailstack/terraform-provider-mailstack/runtime/config"
)

// storeRuntime is a runtime serving from one of the stores measured side
// by side: the embedded store, or PostgreSQL on the same machine.
type storeRuntime struct {
	name string
	rt   *mailRuntime
	// dbPID is the PostgreSQL postmaster's (0 for the embedded store):
	// its CPU, and its backends', counts with the runtime's.
	dbPID int
}

// benchPostgresSettings are the cluster's: PostgreSQL's defaults, with the
// durability they give (fsync, synchronous_commit on), and room for the
// measurement's connections and a mailbox's pages in memory.
var benchPostgresSettings = map[string]string{
	"shared_buffers":     "'256MB'",
	"max_connections":    "200",
	"fsync":              "on",
	"synchronous_commit": "on",
	"full_page_writes":   "on",
}

// startStores starts a runtime per store named in o.stores, each on a
// state directory of its own with the benchmark's users and listeners.
// PostgreSQL is a cluster of its own in work (Debian's binaries); cleanup
// stops what was started.
func startStores(ctx context.Context, o options, work string, ks *testKeystore, embedded *mailRuntime) (stores []*storeRuntime, cleanup func(), err error) {
	var closers []func()
	cleanup = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	for _, name := range strings.Split(o.stores, ",") {
		switch name {
		case config.StoreEmbedded:
			stores = append(stores, &storeRuntime{name: name, rt: embedded})
		case config.StorePostgres:
			if err := pgtest.Available(); err != nil {
				fmt.Printf("\n(PostgreSQL not measured: %v)\n", err)
				continue
			}
			cluster, err := pgtest.Run(pgtest.Options{Settings: benchPostgresSettings})
			if err != nil {
				return nil, cleanup, fmt.Errorf("starting PostgreSQL: %w", err)
			}
			closers = append(closers, cluster.Close)
			if err := cluster.CreateDatabase(ctx, "mail"); err != nil {
				return nil, cleanup, err
			}
			pid, err := cluster.PID()
			if err != nil {
				return nil, cleanup, err
			}
			rt, err := startRuntime(o.bin, filepath.Join(work, "pg-state"))
			if err != nil {
				return nil, cleanup, err
			}
			closers = append(closers, func() { rt.stop() })
			srv, err := rt.client.Server(ctx)
			if err != nil {
				return nil, cleanup, err
			}
			srv.Store, srv.PostgresDSN = config.StorePostgres, cluster.DSN("mail")
			if _, err := rt.client.SetServer(ctx, srv); err != nil {
				return nil, cleanup, err
			}
			if err := rt.configure(ctx, ks, allUsers()); err != nil {
				return nil, cleanup, err
			}
			stores = append(stores, &storeRuntime{name: name, rt: rt, dbPID: pid})
		default:
			return nil, cleanup, fmt.Errorf("-stores: unknown store %q (embedded, postgres)", name)
		}
	}
	return stores, cleanup, nil
}

// storeMeter measures the runtime's and the database's CPU time.
type storeMeter struct {
	rt *cpuMeter
	db time.Duration
	st *storeRuntime
}

func meterStore(st *storeRuntime) *storeMeter {
	m := &storeMeter{rt: meter(st.rt.pid()), st: st}
	if st.dbPID != 0 {
		m.db, _ = loadgen.TreeCPU(st.dbPID)
	}
	return m
}

// perOp returns µs of runtime and database CPU per op.
func (m *storeMeter) perOp(ops int64) (runtime, db float64) {
	runtime, _ = m.rt.perOp(ops)
	if m.st.dbPID != 0 && ops > 0 {
		c, _ := loadgen.TreeCPU(m.st.dbPID)
		db = float64((c - m.db).Microseconds()) / float64(ops)
	}
	return runtime, db
}

// storeRow is one measurement's results, a cell per store.
type storeRow struct {
	rates, rtCPU, dbCPU []float64
}

// add records one store's result.
func (r *storeRow) add(m *storeMeter, res loadgen.Result) {
	rt, db := m.perOp(res.Ops)
	r.rates = append(r.rates, res.PerSecond())
	r.rtCPU = append(r.rtCPU, rt)
	r.dbCPU = append(r.dbCPU, db)
}

// storeHeader prints the columns of a table comparing the stores; first
// is the measurement's own columns ("a | b").
func storeHeader(stores []*storeRuntime, first string) {
	cols := strings.Split(first, " | ")
	for _, st := range stores {
		cols = append(cols, st.name+" msgs/s")
	}
	for _, st := range stores[1:] {
		cols = append(cols, st.name+" / "+stores[0].name)
	}
	cols = append(cols, "runtime CPU µs/msg ("+strings.Join(names(stores), " / ")+")")
	if slices.ContainsFunc(stores, func(s *storeRuntime) bool { return s.dbPID != 0 }) {
		cols = append(cols, "PostgreSQL CPU µs/msg")
	}
	sep := make([]string, len(cols))
	for i := range sep {
		sep[i] = "---:"
	}
	sep[0] = "---"
	fmt.Printf("| %s |\n|%s|\n", strings.Join(cols, " | "), strings.Join(sep, "|"))
}

func (r storeRow) print(stores []*storeRuntime, first string) {
	var cells []string
	for _, v := range r.rates {
		cells = append(cells, fmt.Sprintf("%.0f", v))
	}
	for _, v := range r.rates[1:] {
		cells = append(cells, fmt.Sprintf("%.2f", v/r.rates[0]))
	}
	var cpu []string
	for _, v := range r.rtCPU {
		cpu = append(cpu, fmt.Sprintf("%.0f", v))
	}
	cells = append(cells, strings.Join(cpu, " / "))
	for i, st := range stores {
		if st.dbPID != 0 {
			cells = append(cells, fmt.Sprintf("%.0f", r.dbCPU[i]))
		}
	}
	fmt.Printf("| %s | %s |\n", first, strings.Join(cells, " | "))
}

func names(stores []*storeRuntime) []string {
	var out []string
	for _, s := range stores {
		out = append(out, s.name)
	}
	return out
}
