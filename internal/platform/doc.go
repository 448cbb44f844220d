// Package platform is the kit every Marquee program shares; its
// subpackages hold the pieces (app, config, logging, telemetry, storage,
// events, peers, principal, rpcerr, seed, service). This package itself
// holds only repository-wide checks in its tests.
package platform
