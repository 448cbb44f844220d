-- Billing: customers, payment methods (brand, last four digits, expiry and
-- the processor's token; never the card number or CVC), charges, refunds,
-- invoices, and in-flight charge attempts. Amounts are integer minor units
-- with their currency. Times are UTC. Ids use the "C" collation so that
-- keyset pages compare them byte by byte, as SQLite does.
CREATE TABLE customers (
	account_id TEXT COLLATE "C" PRIMARY KEY,
	id         TEXT COLLATE "C" NOT NULL UNIQUE,
	created_at TIMESTAMP NOT NULL
);

CREATE TABLE payment_methods (
	id              TEXT COLLATE "C" PRIMARY KEY,
	account_id      TEXT COLLATE "C" NOT NULL REFERENCES customers (account_id),
	-- idempotency_key is NULL when the call gave none.
	idempotency_key TEXT,
	brand           TEXT NOT NULL,
	last4           TEXT NOT NULL CHECK (length(last4) = 4),
	exp_month       INTEGER NOT NULL CHECK (exp_month BETWEEN 1 AND 12),
	exp_year        INTEGER NOT NULL,
	token           TEXT NOT NULL UNIQUE,
	-- token_class is the processor's class of the token (the simulator's
	-- test-card outcome), never card data.
	token_class     TEXT NOT NULL,
	created_at      TIMESTAMP NOT NULL,
	UNIQUE (account_id, idempotency_key)
);

CREATE TABLE charges (
	id                TEXT COLLATE "C" PRIMARY KEY,
	idempotency_key   TEXT NOT NULL UNIQUE,
	saga_id           TEXT NOT NULL,
	order_id          TEXT NOT NULL,
	account_id        TEXT NOT NULL,
	amount_minor      BIGINT NOT NULL CHECK (amount_minor > 0),
	currency          TEXT NOT NULL,
	description       TEXT NOT NULL,
	status            TEXT NOT NULL CHECK (status IN ('succeeded', 'declined', 'cancelled')),
	decline_code      TEXT NOT NULL,
	-- payment_method_id is NULL for a charge cancelled before its card
	-- was looked at.
	payment_method_id TEXT REFERENCES payment_methods (id),
	processor_ref     TEXT NOT NULL,
	-- refunded_minor can never exceed the charge, nor be refunded from a
	-- charge that did not succeed.
	refunded_minor    BIGINT NOT NULL DEFAULT 0
		CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor AND (status = 'succeeded' OR refunded_minor = 0)),
	created_at        TIMESTAMP NOT NULL
);
-- An order is charged at most once.
CREATE UNIQUE INDEX charges_one_success_per_order ON charges (order_id) WHERE status = 'succeeded';
CREATE INDEX charges_by_time ON charges (created_at, id);
CREATE INDEX charges_by_account ON charges (account_id, created_at, id);
CREATE INDEX charges_by_order ON charges (order_id, created_at, id);

CREATE TABLE refunds (
	id                     TEXT COLLATE "C" PRIMARY KEY,
	idempotency_key        TEXT NOT NULL UNIQUE,
	saga_id                TEXT NOT NULL,
	order_id               TEXT NOT NULL,
	account_id             TEXT NOT NULL,
	charge_idempotency_key TEXT NOT NULL,
	-- charge_id is NULL when there was nothing to refund.
	charge_id              TEXT COLLATE "C" REFERENCES charges (id),
	amount_minor           BIGINT NOT NULL CHECK (amount_minor >= 0),
	-- currency is '' only for a nothing_to_refund with no charge at all.
	currency               TEXT NOT NULL,
	status                 TEXT NOT NULL CHECK (status IN ('succeeded', 'nothing_to_refund')),
	reason                 TEXT NOT NULL,
	processor_ref          TEXT NOT NULL,
	created_at             TIMESTAMP NOT NULL,
	CHECK ((status = 'succeeded' AND charge_id IS NOT NULL AND amount_minor > 0)
		OR (status = 'nothing_to_refund' AND charge_id IS NULL AND amount_minor = 0))
);
CREATE INDEX refunds_by_charge_key ON refunds (charge_idempotency_key, created_at);
CREATE INDEX refunds_by_charge ON refunds (charge_id, created_at);

CREATE TABLE invoices (
	id                TEXT COLLATE "C" PRIMARY KEY,
	charge_id         TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES charges (id),
	account_id        TEXT NOT NULL,
	order_id          TEXT NOT NULL,
	description       TEXT NOT NULL,
	amount_minor      BIGINT NOT NULL CHECK (amount_minor > 0),
	currency          TEXT NOT NULL,
	payment_method_id TEXT NOT NULL REFERENCES payment_methods (id),
	issued_at         TIMESTAMP NOT NULL
);
CREATE INDEX invoices_by_account ON invoices (account_id, issued_at, id);

-- A charge whose processor call is under way: it makes a concurrent call
-- with the same key, and a Refund of that key, wait (IN_PROGRESS) instead
-- of racing it. A crashed attempt is taken over once expires_at passes.
CREATE TABLE charge_attempts (
	idempotency_key TEXT PRIMARY KEY,
	saga_id         TEXT NOT NULL,
	attempt_id      TEXT NOT NULL,
	expires_at      TIMESTAMP NOT NULL
);
