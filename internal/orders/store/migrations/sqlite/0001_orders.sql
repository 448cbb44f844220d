CREATE TABLE orders (
	id                TEXT PRIMARY KEY,
	account_id        TEXT NOT NULL,
	idempotency_key   TEXT NOT NULL,
	fingerprint       TEXT NOT NULL,
	kind              TEXT NOT NULL,
	plan_id           TEXT NOT NULL DEFAULT '',
	title_id          TEXT NOT NULL DEFAULT '',
	amount_minor      BIGINT NOT NULL,
	currency          TEXT NOT NULL,
	description       TEXT NOT NULL DEFAULT '',
	status            TEXT NOT NULL,
	reason            TEXT NOT NULL DEFAULT '',
	saga_id           TEXT NOT NULL,
	payment_method_id TEXT NOT NULL,
	charge_id         TEXT NOT NULL DEFAULT '',
	entitlement_id    TEXT NOT NULL DEFAULT '',
	created_at        TIMESTAMP NOT NULL,
	updated_at        TIMESTAMP NOT NULL,
	completed_at      TIMESTAMP
);
CREATE UNIQUE INDEX orders_account_key ON orders (account_id, idempotency_key);
CREATE UNIQUE INDEX orders_saga ON orders (saga_id);
-- One pending plan order per account at a time.
CREATE UNIQUE INDEX orders_one_pending_plan ON orders (account_id) WHERE kind = 'plan' AND status = 'PENDING';
CREATE INDEX orders_account_created ON orders (account_id, created_at, id);
