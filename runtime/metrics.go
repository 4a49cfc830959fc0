package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// metricsServer serves Prometheus metrics at /metrics over plain HTTP on
// the server's metrics_address: meant for a loopback or management
// address, like node_exporter's. It answers nothing else.
type metricsServer struct {
	srv  *http.Server
	done chan struct{}
}

// startMetrics binds addr and serves h on it; an address that cannot be
// bound is an error and nothing runs.
func startMetrics(addr string, h http.Handler, log *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot bind metrics_address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	s := &metricsServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "address", addr, "err", err)
		}
	}()
	log.Info("metrics served", "address", ln.Addr().String(), "path", "/metrics")
	return s, nil
}

// close stops serving and frees the port; a scrape in progress gets a
// second to finish.
func (s *metricsServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		s.srv.Close()
	}
	<-s.done
}
