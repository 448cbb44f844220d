package saga

// AbandonOnStop makes e keep its leases when Run returns, as a process
// that crashed would.
func AbandonOnStop(e *Engine) { e.abandonOnStop = true }
