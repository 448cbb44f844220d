-- The recommendations projection, fed only by events: the catalog
-- (marquee.catalog.title_upserted) and viewing (marquee.playback.*).
-- Times are UTC.

-- rec_titles is this service's copy of the catalog. version is the time of
-- the event the row came from; an older event never overwrites a newer one.
CREATE TABLE rec_titles (
	id              TEXT PRIMARY KEY,
	name            TEXT NOT NULL,
	kind            TEXT NOT NULL,
	artwork_url     TEXT NOT NULL,
	maturity_rating TEXT NOT NULL,
	-- genre ids (slugs) joined with ','
	genres          TEXT NOT NULL,
	year            INTEGER NOT NULL,
	available_from  TIMESTAMP,
	available_until TIMESTAMP,
	available       BOOLEAN NOT NULL,
	last_episode_id TEXT NOT NULL,
	version         TIMESTAMP NOT NULL
);

-- rec_profiles has a row per profile seen in viewing events; updating it
-- first serialises the events of one profile (see store.ApplyViewing).
CREATE TABLE rec_profiles (
	profile_id TEXT PRIMARY KEY,
	account_id TEXT NOT NULL,
	events     BIGINT NOT NULL
);

-- rec_views is the profile × title view matrix: a row per title a profile
-- started.
CREATE TABLE rec_views (
	profile_id       TEXT NOT NULL,
	title_id         TEXT NOT NULL,
	account_id       TEXT NOT NULL,
	first_at         TIMESTAMP NOT NULL,
	last_at          TIMESTAMP NOT NULL,
	last_play_at     TIMESTAMP NOT NULL,
	plays            INTEGER NOT NULL,
	position_seconds INTEGER NOT NULL,
	duration_seconds INTEGER NOT NULL,
	episode_id       TEXT NOT NULL,
	finished         BOOLEAN NOT NULL,
	PRIMARY KEY (profile_id, title_id)
);
CREATE INDEX rec_views_recent ON rec_views (profile_id, last_at);

-- rec_title_stats counts, per title, its distinct viewers (the ones of its
-- view vector) and its plays.
CREATE TABLE rec_title_stats (
	title_id TEXT PRIMARY KEY,
	viewers  INTEGER NOT NULL,
	plays    INTEGER NOT NULL
);

-- rec_activity counts plays per title and hour, for trending.
CREATE TABLE rec_activity (
	title_id TEXT NOT NULL,
	bucket   TIMESTAMP NOT NULL,
	plays    INTEGER NOT NULL,
	PRIMARY KEY (title_id, bucket)
);
CREATE INDEX rec_activity_bucket ON rec_activity (bucket);

-- rec_coviews counts, for each ordered pair of distinct titles, the
-- profiles that viewed both (both orders are stored).
CREATE TABLE rec_coviews (
	title_a TEXT NOT NULL,
	title_b TEXT NOT NULL,
	viewers INTEGER NOT NULL,
	PRIMARY KEY (title_a, title_b)
);
