-- The catalog: genres, titles with their genres, seasons and episodes, and
-- a full-text index of titles (a generated tsvector column with a GIN
-- index). Keys and sort_key use the "C" collation so that PostgreSQL
-- orders them byte by byte, as SQLite does.
CREATE TABLE genres (
	id   TEXT COLLATE "C" PRIMARY KEY,
	name TEXT NOT NULL
);

CREATE TABLE titles (
	id               TEXT COLLATE "C" PRIMARY KEY,
	name             TEXT NOT NULL,
	-- sort_key is the name folded to lower case; browse order is
	-- (sort_key, id), compared byte by byte.
	sort_key         TEXT COLLATE "C" NOT NULL,
	kind             TEXT NOT NULL CHECK (kind IN ('movie', 'series')),
	synopsis         TEXT NOT NULL,
	year             INTEGER NOT NULL,
	maturity_rating  TEXT NOT NULL,
	duration_seconds INTEGER NOT NULL,
	rentable         BOOLEAN NOT NULL,
	media_asset_id   TEXT NOT NULL,
	-- Unix seconds; available_until is NULL when there is no end.
	available_from   BIGINT NOT NULL,
	available_until  BIGINT,
	-- name_key is domain.NameKey(name): an exact-name search matches it.
	name_key         TEXT NOT NULL,
	-- genre_names are the names of the title's genres, for search.
	genre_names      TEXT NOT NULL,
	search           tsvector GENERATED ALWAYS AS (
		setweight(to_tsvector('simple', name), 'A') ||
		setweight(to_tsvector('simple', genre_names), 'B') ||
		setweight(to_tsvector('simple', synopsis), 'C')
	) STORED
);
CREATE INDEX titles_browse ON titles (sort_key, id);
CREATE INDEX titles_kind_browse ON titles (kind, sort_key, id);
CREATE INDEX titles_search ON titles USING GIN (search);

CREATE TABLE title_genres (
	title_id TEXT COLLATE "C" NOT NULL REFERENCES titles (id) ON DELETE CASCADE,
	genre_id TEXT COLLATE "C" NOT NULL REFERENCES genres (id),
	position INTEGER NOT NULL,
	PRIMARY KEY (title_id, genre_id)
);
CREATE INDEX title_genres_by_genre ON title_genres (genre_id, title_id);

CREATE TABLE seasons (
	title_id TEXT COLLATE "C" NOT NULL REFERENCES titles (id) ON DELETE CASCADE,
	number   INTEGER NOT NULL,
	name     TEXT NOT NULL,
	PRIMARY KEY (title_id, number)
);

CREATE TABLE episodes (
	id               TEXT COLLATE "C" PRIMARY KEY,
	title_id         TEXT COLLATE "C" NOT NULL,
	season_number    INTEGER NOT NULL,
	number           INTEGER NOT NULL,
	name             TEXT NOT NULL,
	synopsis         TEXT NOT NULL,
	duration_seconds INTEGER NOT NULL,
	media_asset_id   TEXT NOT NULL,
	UNIQUE (title_id, season_number, number),
	FOREIGN KEY (title_id, season_number) REFERENCES seasons (title_id, number) ON DELETE CASCADE
);
