-- Identity: accounts, refresh-token families (sessions) and their tokens,
-- login failures for throttling, API keys, and the keys that sign access
-- tokens. Times are UTC. Secrets are stored only as SHA-256 (refresh
-- tokens, API keys) or argon2id (passwords).
CREATE TABLE accounts (
	id            TEXT PRIMARY KEY,
	-- email is normalised (trimmed, lower case).
	email         TEXT NOT NULL UNIQUE,
	name          TEXT NOT NULL,
	-- roles are comma-separated, sorted: "viewer" or "admin,viewer".
	roles         TEXT NOT NULL,
	-- password_hash is a PHC argon2id string.
	password_hash TEXT NOT NULL,
	created_at    TIMESTAMP NOT NULL,
	updated_at    TIMESTAMP NOT NULL
);

-- A session is a refresh-token family: one per login. Its id is the "sid"
-- of the family's access tokens.
CREATE TABLE sessions (
	id            TEXT PRIMARY KEY,
	account_id    TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	created_at    TIMESTAMP NOT NULL,
	revoked_at    TIMESTAMP,
	revoke_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_account ON sessions (account_id);

-- Every refresh token ever issued in a family, until pruned after expiry.
-- used_at is set when the token is rotated; presenting it again revokes
-- the family.
CREATE TABLE refresh_tokens (
	hash       TEXT PRIMARY KEY,
	session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
	issued_at  TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL,
	used_at    TIMESTAMP
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

-- One row per failed (or in-flight) login attempt and throttling key.
-- key_hash is the SHA-256 of "account:<email>" or "address:<ip>".
CREATE TABLE login_failures (
	attempt_id TEXT NOT NULL,
	key_hash   TEXT NOT NULL,
	failed_at  TIMESTAMP NOT NULL,
	PRIMARY KEY (attempt_id, key_hash)
);
CREATE INDEX login_failures_by_key ON login_failures (key_hash, failed_at);
CREATE INDEX login_failures_by_time ON login_failures (failed_at);

CREATE TABLE api_keys (
	id           TEXT PRIMARY KEY,
	account_id   TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	-- hash is the SHA-256 (hex) of the whole key mq_<id>_<secret>.
	hash         TEXT NOT NULL,
	roles        TEXT NOT NULL,
	created_at   TIMESTAMP NOT NULL,
	expires_at   TIMESTAMP,
	last_used_at TIMESTAMP,
	revoked_at   TIMESTAMP
);
CREATE INDEX api_keys_by_account ON api_keys (account_id, created_at, id);

-- Signing keys (ECDSA P-256). state: next, current, retired, removed; at
-- most one current and one next. private_key is sealed (see package keys)
-- and erased when the key is removed.
CREATE TABLE signing_keys (
	kid          TEXT PRIMARY KEY,
	state        TEXT NOT NULL CHECK (state IN ('next', 'current', 'retired', 'removed')),
	x            TEXT NOT NULL,
	y            TEXT NOT NULL,
	private_key  TEXT NOT NULL,
	created_at   TIMESTAMP NOT NULL,
	activated_at TIMESTAMP,
	retired_at   TIMESTAMP,
	remove_at    TIMESTAMP
);
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';
