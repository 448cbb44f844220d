// Package sagachaos runs the whole Marquee system as a user does, the built
// binary under `marquee dev`, and checks the CreateOrder saga's invariants
// (PRODUCT §5) in the services' own databases afterwards.
//
// It is the harness of the fault-injection test in this directory (which
// kills orders, billing and playback at random instants while orders are
// placed, replays participant calls duplicated and out of order, and then
// runs Check) and of the saga benchmark under bench/. It holds:
//
//   - Build and Start: build the marquee binary, run `marquee dev` on free
//     ports, read every instance's addresses from its output, find and kill
//     its children, stop it and make sure no process is left behind;
//   - PreparePostgres: a private schema in every service database of a
//     shared PostgreSQL server, so that a run neither sees nor disturbs any
//     other use of the marquee_<service> databases there;
//   - OpenDBs and Snapshot: the orders, billing and playback databases
//     opened read-only (SQLite files in the data directory, or the private
//     PostgreSQL schema) and read into memory;
//   - Check: the invariants over a Snapshot, each violation described.
//
// The harness reads the services' tables directly, as an auditor would; it
// never writes to them.
package sagachaos
