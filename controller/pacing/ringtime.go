package pacing

// Ring-time histograms: buckets of ringBucket seconds up to ringBuckets ×
// ringBucket; longer rings fall in the last bucket.
const (
	ringBucket  = 0.5
	ringBuckets = 240
)

// ringHistogram is an exponentially weighted histogram of ring times, in
// seconds, for the survival function of a ringing call. Weights are kept
// relative to a growing gain so that weighing the old ones down costs
// nothing; its survival function is cached until the next add.
type ringHistogram struct {
	n       int64
	weights [ringBuckets]float64 // times gain
	total   float64              // times gain
	gain    float64
	surv    survival
	fresh   bool // surv is up to date
}

// add counts a ring time, the older ones weighed down as in movingMean.
func (h *ringHistogram) add(seconds float64, memory int) {
	h.n++
	if h.gain == 0 {
		h.gain = 1
	}
	w := max(1/float64(h.n), 1/float64(memory))
	if w < 1 {
		h.gain /= 1 - w
	} else {
		clear(h.weights[:])
		h.total, h.gain = 0, 1
	}
	h.weights[bucketOf(seconds)] += w * h.gain
	h.total += w * h.gain
	if h.gain > 1e100 {
		for i := range h.weights {
			h.weights[i] /= h.gain
		}
		h.total /= h.gain
		h.gain = 1
	}
	h.fresh = false
}

func bucketOf(seconds float64) int {
	return min(max(int(seconds/ringBucket), 0), ringBuckets-1)
}

// survival is a ring-time histogram's survival function, ready to query.
type survival struct {
	tail  [ringBuckets + 1]float64 // tail[i]: share of rings in buckets ≥ i
	empty bool
}

// survival returns the share of rings longer than each age; an empty
// histogram survives forever.
func (h *ringHistogram) survival() *survival {
	if h.fresh {
		return &h.surv
	}
	h.fresh = true
	s := &h.surv
	s.empty = !(h.total > 0)
	s.tail[ringBuckets] = 0
	for i := ringBuckets - 1; i >= 0 && !s.empty; i-- {
		s.tail[i] = s.tail[i+1] + h.weights[i]/h.total
	}
	return s
}

// at returns the share of rings longer than age seconds, interpolating
// within a bucket.
func (s *survival) at(age float64) float64 {
	if s.empty {
		return 1
	}
	if !(age > 0) {
		return 1
	}
	k := bucketOf(age)
	frac := min(age/ringBucket-float64(k), 1)
	return clamp01(s.tail[k+1] + (s.tail[k]-s.tail[k+1])*(1-frac))
}
