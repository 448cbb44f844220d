-- Every version of the mesh policy, as canonical YAML. The highest
-- version is the one in force; older ones are the history an operator
-- can read back.
CREATE TABLE marquee_mesh_policy (
	version    INTEGER PRIMARY KEY,
	document   TEXT NOT NULL,
	author     TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL
);
