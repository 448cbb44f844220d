package sagachaos

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// PreparePostgres makes a run on the PostgreSQL server at serverURL
// private: in each service database marquee_<service> (created if
// missing, as the services themselves do) it creates schema, and it
// returns the URL to give `marquee dev --postgres`, which makes every
// connection use only that schema (search_path). Other users of those
// databases are neither seen nor disturbed. cleanup drops the schema
// everywhere.
func PreparePostgres(ctx context.Context, serverURL, schema string) (runURL string, cleanup func(context.Context) error, err error) {
	if !schemaRE.MatchString(schema) {
		return "", nil, fmt.Errorf("bad schema name %q", schema)
	}
	u, err := url.Parse(serverURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", nil, fmt.Errorf("bad PostgreSQL URL %q (want postgres://...)", serverURL)
	}
	admin := *u
	admin.Path = "/postgres"
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return "", nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	for _, svc := range databases {
		db := "marquee_" + svc
		_, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize())
		var pgErr *pgconn.PgError
		if err != nil && !(errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505")) {
			return "", nil, fmt.Errorf("create database %s: %w", db, err)
		}
	}
	inEach := func(ctx context.Context, stmt string) error {
		var errs []error
		for _, svc := range databases {
			d := *u
			d.Path = "/marquee_" + svc
			c, err := pgx.Connect(ctx, d.String())
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if _, err := c.Exec(ctx, stmt); err != nil {
				errs = append(errs, fmt.Errorf("marquee_%s: %s: %w", svc, stmt, err))
			}
			c.Close(ctx)
		}
		return errors.Join(errs...)
	}
	id := pgx.Identifier{schema}.Sanitize()
	if err := inEach(ctx, "CREATE SCHEMA "+id); err != nil {
		_ = inEach(context.WithoutCancel(ctx), "DROP SCHEMA IF EXISTS "+id+" CASCADE")
		return "", nil, err
	}
	run := *u
	q := run.Query()
	q.Set("search_path", schema)
	run.RawQuery = q.Encode()
	return run.String(), func(ctx context.Context) error {
		return inEach(ctx, "DROP SCHEMA IF EXISTS "+id+" CASCADE")
	}, nil
}
