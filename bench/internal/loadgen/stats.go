package loadgen

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of sorted, which must
// be in ascending order, by the nearest-rank method: the smallest value such
// that at least p% of the samples are less than or equal to it. The result is
// always one of the samples (exact, like an HDR histogram with unlimited
// precision). It returns 0 for an empty slice; p <= 0 gives the minimum.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// The small epsilon keeps 99.9% of 1000 samples at rank 999 even though
	// 99.9*1000/100 is 999.0000000000001 in floating point.
	rank := int(math.Ceil(p*float64(n)/100 - 1e-9))
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}

// Summary describes a set of latencies.
type Summary struct {
	Count int
	Min   time.Duration
	Mean  time.Duration
	P50   time.Duration
	P90   time.Duration
	P95   time.Duration
	P99   time.Duration
	P999  time.Duration
	Max   time.Duration
}

// Summarize sorts a copy of samples and returns its summary.
func Summarize(samples []time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum float64
	for _, d := range s {
		sum += float64(d)
	}
	return Summary{
		Count: len(s),
		Min:   s[0],
		Mean:  time.Duration(sum / float64(len(s))),
		P50:   Percentile(s, 50),
		P90:   Percentile(s, 90),
		P95:   Percentile(s, 95),
		P99:   Percentile(s, 99),
		P999:  Percentile(s, 99.9),
		Max:   s[len(s)-1],
	}
}
