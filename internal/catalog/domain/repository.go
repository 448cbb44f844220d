package domain

import "context"

// Repository stores the catalog. Reads return ErrNotFound for a missing
// title; writes validate first and return *InvalidArgumentError for bad
// input. Implementations are safe for concurrent use.
type Repository interface {
	// Title returns one title with its seasons and episodes.
	Title(ctx context.Context, id string) (Title, error)
	// Titles returns the titles with the given ids, without seasons, in
	// the order of ids, leaving out ids that do not exist.
	Titles(ctx context.Context, ids []string) ([]Title, error)
	// ListTitles returns one page of titles in browse order.
	ListTitles(ctx context.Context, q ListQuery) (Page, error)
	// SearchTitles returns one page of titles in relevance order.
	SearchTitles(ctx context.Context, q SearchQuery) (Page, error)
	// Genres returns every genre, by name, with its number of titles.
	Genres(ctx context.Context) ([]Genre, error)
	// SaveGenre inserts or renames a genre.
	SaveGenre(ctx context.Context, g Genre) error
	// SaveTitle inserts or replaces a title with its genres, seasons and
	// episodes. Its genres must exist.
	SaveTitle(ctx context.Context, t Title) error
}
