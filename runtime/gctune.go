package runtime

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
)

// The runtime's garbage collector gets at least minHeapHeadroom of heap
// growth between collections. Go's default (GOGC=100) lets the heap grow
// by the live heap: a runtime with a few MiB live and a stream of short
// connections then collects every few hundred TLS handshakes, and the
// marking costs about as much per resumed handshake as the bare
// crypto/tls server spends on the whole handshake. With the headroom, the
// runtime's resumed handshakes are level with a bare crypto/tls server
// (docs/benchmarks.md); once the live heap is larger than the headroom
// (1,000 idle sessions and up), GOGC=100 applies as usual, so memory grows
// by at most minHeapHeadroom.
const minHeapHeadroom = 16 << 20

// maxGCPercent bounds the GOGC tuneGC sets for a nearly empty heap.
const maxGCPercent = 1600

// gcTuner is set while a tuneGC runs: GOGC is per process, and tests run
// several runtimes in one.
var gcTuner atomic.Bool

// tuneGC keeps the heap's growth between collections at
// max(live heap, minHeapHeadroom) by setting GOGC once a second, until ctx
// is done; then GOGC is 100 again. It does nothing when the operator set
// GOGC or GOMEMLIMIT: their setting wins.
func tuneGC(ctx context.Context) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" || !gcTuner.CompareAndSwap(false, true) {
		return
	}
	defer gcTuner.Store(false)
	defer debug.SetGCPercent(100)
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := 100
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if want := gcPercentFor(sample[0].Value.Uint64()); want != current {
				debug.SetGCPercent(want)
				current = want
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// gcPercentFor is the GOGC that lets a heap of live bytes grow by
// max(live, minHeapHeadroom), rounded down to a multiple of 100 so that
// small changes of the live heap do not retune it every second. Zero (no
// collection yet) gives the default.
func gcPercentFor(live uint64) int {
	if live == 0 || live >= minHeapHeadroom {
		return 100
	}
	p := int(minHeapHeadroom * 100 / live)
	return min(max(100, p/100*100), maxGCPercent)
}
