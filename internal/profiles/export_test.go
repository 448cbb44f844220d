package profiles

// WithClock sets the clock of a MaturityLookup's cache.
var WithClock = withClock
