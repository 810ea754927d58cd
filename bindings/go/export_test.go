package fleets

// LiveHandles is the number of C client handles not yet freed.
func LiveHandles() int64 { return liveHandles.Load() }
