CREATE TABLE marquee_saga (
	id            TEXT PRIMARY KEY,
	definition    TEXT NOT NULL,
	state         TEXT NOT NULL,
	paused_state  TEXT NOT NULL DEFAULT '',
	data          BYTEA NOT NULL,
	step          INTEGER NOT NULL,
	attempts      INTEGER NOT NULL,
	step_started_at TIMESTAMP NOT NULL,
	reason        TEXT NOT NULL DEFAULT '',
	last_error    TEXT NOT NULL DEFAULT '',
	owner         TEXT NOT NULL DEFAULT '',
	lease_until   TIMESTAMP NOT NULL,
	fencing_token BIGINT NOT NULL,
	next_run_at   TIMESTAMP NOT NULL,
	created_at    TIMESTAMP NOT NULL,
	updated_at    TIMESTAMP NOT NULL,
	finished_at   TIMESTAMP
);
CREATE INDEX marquee_saga_runnable ON marquee_saga (next_run_at) WHERE state IN ('running', 'compensating');
CREATE INDEX marquee_saga_created ON marquee_saga (created_at, id);

-- One row per action or compensation once it finished (or stopped the
-- saga); the one in progress is described by the saga row itself.
CREATE TABLE marquee_saga_step (
	saga_id         TEXT NOT NULL,
	step_index      INTEGER NOT NULL,
	kind            TEXT NOT NULL,
	name            TEXT NOT NULL,
	state           TEXT NOT NULL,
	attempts        INTEGER NOT NULL,
	output          BYTEA,
	error           TEXT NOT NULL DEFAULT '',
	started_at      TIMESTAMP NOT NULL,
	finished_at     TIMESTAMP,
	next_attempt_at TIMESTAMP,
	PRIMARY KEY (saga_id, step_index, kind)
);

CREATE TABLE marquee_saga_log (
	seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	saga_id    TEXT NOT NULL,
	at         TIMESTAMP NOT NULL,
	event      TEXT NOT NULL,
	step_index INTEGER NOT NULL,
	kind       TEXT NOT NULL,
	attempt    INTEGER NOT NULL,
	code       TEXT NOT NULL DEFAULT '',
	message    TEXT NOT NULL DEFAULT '',
	retryable  INTEGER NOT NULL DEFAULT 0,
	actor      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX marquee_saga_log_saga ON marquee_saga_log (saga_id, seq);
