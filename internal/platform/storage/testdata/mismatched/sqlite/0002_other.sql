CREATE TABLE other (id TEXT);
