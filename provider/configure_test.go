package provider

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mailstack/terraform-provider-mailstack/internal/host"
)

// probeHost is the local host whose answers to commands are scripted:
// each Run takes the next of answers (the last one repeats) and is
// counted.
type probeHost struct {
	host.Local
	runs    atomic.Int32
	answers []probeAnswer
}

type probeAnswer struct {
	out string
	err error
}

func (h *probeHost) Run(context.Context, string, ...string) ([]byte, error) {
	n := int(h.runs.Add(1)) - 1
	a := h.answers[min(n, len(h.answers)-1)]
	return []byte(a.out), a.err
}

// systemdAnswer is host.Detect's probe output on an x86-64 Linux host
// where root runs systemd as PID 1.
const systemdAnswer = "Linux x86_64\n0\nsystemd\n/root/.config/systemd/user\nno\n"

// TestProviderDataProbesOncePerRun: the platform and the service manager
// come from one remote command per provider run, however many resources
// ask, concurrently; a probe that failed is not remembered.
func TestProviderDataProbesOncePerRun(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		answers []probeAnswer
		wantOK  bool
	}{
		{"systemd", []probeAnswer{{out: systemdAnswer}}, true},
		{"no systemd", []probeAnswer{{out: "Linux aarch64\n0\ninit\n/root/.config/systemd/user\nno\n"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &probeHost{answers: tc.answers}
			want, wantOK, err := host.DetectSystemd(ctx, h)
			if err != nil || wantOK != tc.wantOK {
				t.Fatalf("DetectSystemd = %v, %v; want %v", wantOK, err, tc.wantOK)
			}
			wantPlatform, err := host.DetectPlatform(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			h.runs.Store(0)
			d := &providerData{host: h}
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if i%2 == 0 {
						if p, err := d.hostPlatform(ctx); err != nil || p != wantPlatform {
							t.Errorf("hostPlatform() = %v, %v; want %v", p, err, wantPlatform)
						}
						return
					}
					sd, ok := d.systemd(ctx)
					if ok != wantOK || sd != want {
						t.Errorf("systemd() = %+v, %v; want %+v, %v as DetectSystemd says", sd, ok, want, wantOK)
					}
				}()
			}
			wg.Wait()
			if n := h.runs.Load(); n != 1 {
				t.Errorf("8 concurrent checks of platform and systemd ran the probe %d times, want once", n)
			}
			// Another provider run (a new Configure) asks again.
			if _, ok := (&providerData{host: h}).systemd(ctx); ok != wantOK || h.runs.Load() != 2 {
				t.Errorf("a new provider run: ok %v after %d probes, want %v after 2", ok, h.runs.Load(), wantOK)
			}
		})
	}
	t.Run("a probe that fails is not remembered", func(t *testing.T) {
		h := &probeHost{answers: []probeAnswer{{err: errors.New("connection lost")}, {out: systemdAnswer}}}
		d := &providerData{host: h}
		if _, ok := d.systemd(ctx); ok {
			t.Error("a failed probe reported systemd")
		}
		if _, ok := d.systemd(ctx); !ok {
			t.Error("the probe after a failed one was not run again, or its answer was lost")
		}
		d.systemd(ctx)
		if n := h.runs.Load(); n != 2 {
			t.Errorf("probes run: %d, want 2 (the failed one, then one remembered)", n)
		}
	})
}
