-- Profiles and My Lists. profile_accounts holds one row per account that
-- has ever had a profile: its number of profiles (at most 5, kept by an
-- UPDATE ... WHERE profile_count < 5 that also serialises creations per
-- account) and the last profile seq handed out.
CREATE TABLE profile_accounts (
	account_id    TEXT PRIMARY KEY,
	profile_count INTEGER NOT NULL DEFAULT 0 CHECK (profile_count >= 0),
	last_seq      BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE profiles (
	id         TEXT PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES profile_accounts (account_id),
	-- seq orders an account's profiles, oldest first.
	seq        BIGINT NOT NULL,
	name       TEXT NOT NULL,
	-- name_key is domain.NameKey(name): names are unique per account
	-- case-insensitively.
	name_key   TEXT NOT NULL,
	maturity   TEXT NOT NULL CHECK (maturity IN ('kids', 'teen', 'adult')),
	language   TEXT NOT NULL,
	avatar     TEXT NOT NULL DEFAULT '',
	-- list_seq is the last My List seq handed out for this profile.
	list_seq   BIGINT NOT NULL DEFAULT 0,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL,
	UNIQUE (account_id, name_key),
	UNIQUE (account_id, seq)
);

CREATE TABLE my_list (
	profile_id TEXT NOT NULL REFERENCES profiles (id) ON DELETE CASCADE,
	title_id   TEXT NOT NULL,
	-- rating is the title's maturity rating when it was added.
	rating     TEXT NOT NULL,
	-- seq orders a profile's list, newest (highest) first.
	seq        BIGINT NOT NULL,
	added_at   TIMESTAMP NOT NULL,
	PRIMARY KEY (profile_id, title_id),
	UNIQUE (profile_id, seq)
);
