package identity

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/marquee-tv/marquee/internal/identity/domain"
	"github.com/marquee-tv/marquee/internal/identity/password"
)

// metrics are the service's Prometheus metrics:
//
//	marquee_identity_logins_total{result}      ok, invalid_credentials, throttled, invalid_argument, error
//	marquee_identity_refreshes_total{result}   ok, invalid, reused, invalid_argument, error
//	marquee_identity_password_hashes_total     argon2id computations (hashes, checks, dummy checks)
type metrics struct {
	logins    *prometheus.CounterVec
	refreshes *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, hasher *password.Hasher) (*metrics, error) {
	m := &metrics{
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_identity_logins_total",
			Help: "Login attempts by result.",
		}, []string{"result"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "marquee_identity_refreshes_total",
			Help: "Refresh-token rotations by result; reused means a family was revoked for reuse.",
		}, []string{"result"}),
	}
	hashes := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "marquee_identity_password_hashes_total",
		Help: "argon2id computations: hashes, password checks and the dummy checks of logins for unknown emails.",
	}, func() float64 { return float64(hasher.Computations()) })
	if reg != nil {
		for _, c := range []prometheus.Collector{m.logins, m.refreshes, hashes} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// result names the outcome of a login or refresh for the metrics.
func result(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, domain.ErrInvalidCredentials):
		return "invalid_credentials"
	case errors.Is(err, domain.ErrThrottled):
		return "throttled"
	case errors.Is(err, domain.ErrRefreshTokenReused):
		return "reused"
	case errors.Is(err, domain.ErrInvalidRefreshToken):
		return "invalid"
	case errors.Is(err, domain.ErrInvalidArgument):
		return "invalid_argument"
	}
	return "error"
}
