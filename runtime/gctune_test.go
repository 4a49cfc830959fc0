package runtime

import "testing"

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, 100},                  // no collection yet: the default
		{512 << 10, maxGCPercent}, // 0.5 MiB would want 3200: capped
		{1 * mib, maxGCPercent},   // 16 MiB of headroom is 1600 %
		{3 * mib, 500},            // 533 % rounded down
		{5 * mib, 300},            // 320 %
		{8 * mib, 200},            // 16 MiB of headroom on 8 MiB live
		{12 * mib, 100},           // 133 % rounded down
		{minHeapHeadroom, 100},    // from here on, Go's default
		{400 * mib, 100},          // 1,000 idle sessions and more
	} {
		if got := gcPercentFor(tc.live); got != tc.want {
			t.Errorf("gcPercentFor(%d MiB) = %d, want %d", tc.live/mib, got, tc.want)
		}
	}
}
