CREATE TABLE marquee_mesh_ca (
	id         INTEGER PRIMARY KEY CHECK (id = 1),
	cert_der   BLOB NOT NULL,
	key_der    BLOB NOT NULL,
	created_at TIMESTAMP NOT NULL
);
