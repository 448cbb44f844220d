// Package store keeps profiles and My Lists in the service's own database,
// SQLite or PostgreSQL, behind domain.Repository, in portable SQL.
//
// Invariants and how they hold under concurrency (several instances on one
// PostgreSQL, or SQLite whose write transactions are serialised):
//   - at most domain.MaxProfiles profiles per account, and at least one
//     once it had one: every creation and deletion first updates the
//     account's profile_accounts row with a guarded UPDATE (count < max,
//     count > 1), which row-locks it, so they run one at a time per account;
//   - names unique per account case-insensitively: a unique index on
//     (account_id, name_key);
//   - an update or a My List change works on the profile row locked (SELECT
//     ... FOR UPDATE on PostgreSQL), so concurrent partial updates do not
//     lose each other's fields and list positions are handed out in order.
//
// Every write reports its domain.Change to Options.OnChange inside its
// transaction: the place to publish events to the outbox.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	catalog "github.com/marquee-tv/marquee/internal/catalog/domain"
	"github.com/marquee-tv/marquee/internal/platform/storage"
	"github.com/marquee-tv/marquee/internal/profiles/domain"
)

//go:embed migrations
var migrationsFS embed.FS

// Migrations is the profiles schema, for storage.Open.
var Migrations = storage.Migrations{FS: migrationsFS, Dir: "migrations"}

// ChangeHook runs inside the transaction of a write, after it; an error
// rolls the write back.
type ChangeHook func(ctx context.Context, tx *storage.Tx, c domain.Change) error

// Options configure a Store. The zero value is usable.
type Options struct {
	// OnChange, if set, runs in the transaction of every write that
	// changes something.
	OnChange ChangeHook
}

// Store is the SQL implementation of domain.Repository.
type Store struct {
	db   *storage.DB
	opts Options
}

var _ domain.Repository = (*Store)(nil)

// New returns a Store over db, which must have been opened with Migrations.
func New(db *storage.DB, opts Options) *Store {
	return &Store{db: db, opts: opts}
}

// CheckSchema reports an error unless the profiles tables exist.
func (s *Store) CheckSchema(ctx context.Context) error {
	var n int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM profiles LIMIT 1) x").Scan(&n); err != nil {
		return fmt.Errorf("profiles store: schema missing (open the database with the profiles migrations): %w", err)
	}
	return nil
}

const profileColumns = "id, account_id, seq, name, maturity, language, avatar, created_at, updated_at"

type scanner interface{ Scan(dest ...any) error }

func scanProfile(sc scanner) (domain.Profile, error) {
	var p domain.Profile
	var maturity string
	if err := sc.Scan(&p.ID, &p.AccountID, &p.Seq, &p.Name, &maturity, &p.Language, &p.Avatar, &p.CreatedAt, &p.UpdatedAt); err != nil {
		return domain.Profile{}, err
	}
	p.Maturity = catalog.Level(maturity)
	p.CreatedAt = p.CreatedAt.UTC()
	p.UpdatedAt = p.UpdatedAt.UTC()
	return p, nil
}

// forUpdate is the row-lock clause of the dialect: SQLite has none and
// needs none (its write transactions start with the database locked).
func forUpdate(q storage.Queryer) string {
	if q.Dialect() == storage.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// ownedProfile reads the account's profile id, locked when lock is set.
func ownedProfile(ctx context.Context, q storage.Queryer, accountID, id string, lock bool) (domain.Profile, error) {
	query := "SELECT " + profileColumns + " FROM profiles WHERE id = $1 AND account_id = $2"
	if lock {
		query += forUpdate(q)
	}
	p, err := scanProfile(q.QueryRow(ctx, query, id, accountID))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Profile{}, fmt.Errorf("profile %q: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Profile{}, fmt.Errorf("profiles store: read profile: %w", err)
	}
	return p, nil
}

func (s *Store) changed(ctx context.Context, tx *storage.Tx, c domain.Change) error {
	if s.opts.OnChange == nil {
		return nil
	}
	return s.opts.OnChange(ctx, tx, c)
}

// utc keeps times in UTC at the microsecond precision both engines store.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// CreateProfile implements domain.Repository.
func (s *Store) CreateProfile(ctx context.Context, p domain.Profile) (domain.Profile, error) {
	err := s.db.InTx(ctx, func(tx *storage.Tx) error {
		var err error
		p, err = s.createTx(ctx, tx, p)
		return err
	})
	if err != nil {
		return domain.Profile{}, err
	}
	return p, nil
}

func (s *Store) createTx(ctx context.Context, tx *storage.Tx, p domain.Profile) (domain.Profile, error) {
	p.CreatedAt, p.UpdatedAt = utc(p.CreatedAt), utc(p.UpdatedAt)
	if _, err := tx.Exec(ctx, "INSERT INTO profile_accounts (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING", p.AccountID); err != nil {
		return p, fmt.Errorf("profiles store: account row: %w", err)
	}
	err := tx.QueryRow(ctx, `UPDATE profile_accounts SET profile_count = profile_count + 1, last_seq = last_seq + 1
WHERE account_id = $1 AND profile_count < $2 RETURNING last_seq`, p.AccountID, domain.MaxProfiles).Scan(&p.Seq)
	if errors.Is(err, sql.ErrNoRows) {
		return p, domain.ErrProfileLimit
	}
	if err != nil {
		return p, fmt.Errorf("profiles store: count profiles: %w", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO profiles (id, account_id, seq, name, name_key, maturity, language, avatar, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		p.ID, p.AccountID, p.Seq, p.Name, domain.NameKey(p.Name), string(p.Maturity), p.Language, p.Avatar, p.CreatedAt, p.UpdatedAt)
	if storage.IsUniqueViolation(err) {
		return p, fmt.Errorf("profile name %q: %w", p.Name, domain.ErrNameTaken)
	}
	if err != nil {
		return p, fmt.Errorf("profiles store: insert profile: %w", err)
	}
	return p, s.changed(ctx, tx, domain.Change{Kind: domain.ProfileCreated, Profile: p, At: p.CreatedAt})
}

// Profile implements domain.Repository.
func (s *Store) Profile(ctx context.Context, id string) (domain.Profile, error) {
	p, err := scanProfile(s.db.QueryRow(ctx, "SELECT "+profileColumns+" FROM profiles WHERE id = $1", id))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Profile{}, fmt.Errorf("profile %q: %w", id, domain.ErrNotFound)
	}
	if err != nil {
		return domain.Profile{}, fmt.Errorf("profiles store: read profile: %w", err)
	}
	return p, nil
}

// ListProfiles implements domain.Repository.
func (s *Store) ListProfiles(ctx context.Context, accountID string, page domain.Page) ([]domain.Profile, bool, error) {
	rows, err := s.db.Query(ctx, "SELECT "+profileColumns+` FROM profiles
WHERE account_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, accountID, page.After, page.Limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("profiles store: list profiles: %w", err)
	}
	defer rows.Close()
	var out []domain.Profile
	for rows.Next() {
		p, err := scanProfile(rows)
		if err != nil {
			return nil, false, fmt.Errorf("profiles store: list profiles: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("profiles store: list profiles: %w", err)
	}
	if len(out) > page.Limit {
		return out[:page.Limit], true, nil
	}
	return out, false, nil
}

// UpdateProfile implements domain.Repository.
func (s *Store) UpdateProfile(ctx context.Context, accountID, id string, update func(*domain.Profile) (bool, error)) (domain.Profile, error) {
	var out domain.Profile
	err := s.db.InTx(ctx, func(tx *storage.Tx) error {
		p, err := ownedProfile(ctx, tx, accountID, id, true)
		if err != nil {
			return err
		}
		changed, err := update(&p)
		if err != nil || !changed {
			out = p
			return err
		}
		p.ID, p.AccountID = id, accountID // not the update's to change
		p.UpdatedAt = utc(p.UpdatedAt)
		_, err = tx.Exec(ctx, `UPDATE profiles SET name = $1, name_key = $2, maturity = $3, language = $4, avatar = $5, updated_at = $6
WHERE id = $7`, p.Name, domain.NameKey(p.Name), string(p.Maturity), p.Language, p.Avatar, p.UpdatedAt, id)
		if storage.IsUniqueViolation(err) {
			return fmt.Errorf("profile name %q: %w", p.Name, domain.ErrNameTaken)
		}
		if err != nil {
			return fmt.Errorf("profiles store: update profile: %w", err)
		}
		out = p
		return s.changed(ctx, tx, domain.Change{Kind: domain.ProfileUpdated, Profile: p, At: p.UpdatedAt})
	})
	if err != nil {
		return domain.Profile{}, err
	}
	return out, nil
}

// DeleteProfile implements domain.Repository.
func (s *Store) DeleteProfile(ctx context.Context, accountID, id string, at time.Time) error {
	return s.db.InTx(ctx, func(tx *storage.Tx) error {
		p, err := ownedProfile(ctx, tx, accountID, id, true)
		if err != nil {
			return err
		}
		res, err := tx.Exec(ctx, "UPDATE profile_accounts SET profile_count = profile_count - 1 WHERE account_id = $1 AND profile_count > 1", accountID)
		if err != nil {
			return fmt.Errorf("profiles store: count profiles: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("profiles store: count profiles: %w", err)
		} else if n == 0 {
			return domain.ErrLastProfile
		}
		if _, err := tx.Exec(ctx, "DELETE FROM my_list WHERE profile_id = $1", id); err != nil {
			return fmt.Errorf("profiles store: delete my list: %w", err)
		}
		res, err = tx.Exec(ctx, "DELETE FROM profiles WHERE id = $1 AND account_id = $2", id, accountID)
		if err != nil {
			return fmt.Errorf("profiles store: delete profile: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("profiles store: delete profile %s: %d rows, %v", id, n, err)
		}
		return s.changed(ctx, tx, domain.Change{Kind: domain.ProfileDeleted, Profile: p, At: utc(at)})
	})
}

const itemColumns = "title_id, rating, seq, added_at"

func scanItem(sc scanner) (domain.Item, error) {
	var it domain.Item
	var rating string
	if err := sc.Scan(&it.TitleID, &rating, &it.Seq, &it.AddedAt); err != nil {
		return domain.Item{}, err
	}
	it.Rating = catalog.Rating(rating)
	it.AddedAt = it.AddedAt.UTC()
	return it, nil
}

// AddToMyList implements domain.Repository.
func (s *Store) AddToMyList(ctx context.Context, accountID, profileID string, item domain.Item, check func(domain.Profile) error) (domain.Item, error) {
	var out domain.Item
	err := s.db.InTx(ctx, func(tx *storage.Tx) error {
		p, err := ownedProfile(ctx, tx, accountID, profileID, true)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(p); err != nil {
				return err
			}
		}
		var added bool
		out, added, err = s.addTx(ctx, tx, profileID, item)
		if err != nil || !added {
			return err
		}
		return s.changed(ctx, tx, domain.Change{Kind: domain.MyListAdded, Profile: p, TitleID: out.TitleID, At: out.AddedAt})
	})
	if err != nil {
		return domain.Item{}, err
	}
	return out, nil
}

// addTx adds item to the list of profileID, whose row the caller holds
// locked (or created in tx), unless the title is already there.
func (s *Store) addTx(ctx context.Context, tx *storage.Tx, profileID string, item domain.Item) (domain.Item, bool, error) {
	existing, err := scanItem(tx.QueryRow(ctx, "SELECT "+itemColumns+" FROM my_list WHERE profile_id = $1 AND title_id = $2", profileID, item.TitleID))
	if err == nil {
		return existing, false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return domain.Item{}, false, fmt.Errorf("profiles store: read my list: %w", err)
	}
	if err := tx.QueryRow(ctx, "UPDATE profiles SET list_seq = list_seq + 1 WHERE id = $1 RETURNING list_seq", profileID).Scan(&item.Seq); err != nil {
		return domain.Item{}, false, fmt.Errorf("profiles store: my list position: %w", err)
	}
	item.AddedAt = utc(item.AddedAt)
	if _, err := tx.Exec(ctx, "INSERT INTO my_list (profile_id, title_id, rating, seq, added_at) VALUES ($1, $2, $3, $4, $5)",
		profileID, item.TitleID, string(item.Rating), item.Seq, item.AddedAt); err != nil {
		return domain.Item{}, false, fmt.Errorf("profiles store: add to my list: %w", err)
	}
	return item, true, nil
}

// RemoveFromMyList implements domain.Repository.
func (s *Store) RemoveFromMyList(ctx context.Context, accountID, profileID, titleID string, at time.Time) error {
	return s.db.InTx(ctx, func(tx *storage.Tx) error {
		p, err := ownedProfile(ctx, tx, accountID, profileID, true)
		if err != nil {
			return err
		}
		res, err := tx.Exec(ctx, "DELETE FROM my_list WHERE profile_id = $1 AND title_id = $2", profileID, titleID)
		if err != nil {
			return fmt.Errorf("profiles store: remove from my list: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("profiles store: remove from my list: %w", err)
		}
		if n == 0 {
			return nil
		}
		return s.changed(ctx, tx, domain.Change{Kind: domain.MyListRemoved, Profile: p, TitleID: titleID, At: utc(at)})
	})
}

// ListMyList implements domain.Repository.
func (s *Store) ListMyList(ctx context.Context, accountID, profileID string, page domain.Page) ([]domain.Item, bool, error) {
	p, err := ownedProfile(ctx, s.db, accountID, profileID, false)
	if err != nil {
		return nil, false, err
	}
	allowed := p.Maturity.AllowedRatings()
	if len(allowed) == 0 {
		return nil, false, nil
	}
	args := []any{profileID}
	ph := make([]string, len(allowed))
	for i, r := range allowed {
		args = append(args, string(r))
		ph[i] = "$" + strconv.Itoa(len(args))
	}
	query := "SELECT " + itemColumns + " FROM my_list WHERE profile_id = $1 AND rating IN (" + strings.Join(ph, ", ") + ")"
	if page.After > 0 {
		args = append(args, page.After)
		query += " AND seq < $" + strconv.Itoa(len(args))
	}
	args = append(args, page.Limit+1)
	query += " ORDER BY seq DESC LIMIT $" + strconv.Itoa(len(args))
	rows, err := s.db.Query(ctx, query, args...)
	if err != nil {
		return nil, false, fmt.Errorf("profiles store: list my list: %w", err)
	}
	defer rows.Close()
	var out []domain.Item
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, false, fmt.Errorf("profiles store: list my list: %w", err)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("profiles store: list my list: %w", err)
	}
	if len(out) > page.Limit {
		return out[:page.Limit], true, nil
	}
	return out, false, nil
}

// SeedAccount implements domain.Repository.
func (s *Store) SeedAccount(ctx context.Context, accountID string, profiles []domain.SeedProfile) (bool, error) {
	seeded := false
	err := s.db.InTx(ctx, func(tx *storage.Tx) error {
		seeded = false
		res, err := tx.Exec(ctx, "INSERT INTO profile_accounts (account_id) VALUES ($1) ON CONFLICT (account_id) DO NOTHING", accountID)
		if err != nil {
			return fmt.Errorf("profiles store: seed account: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("profiles store: seed account: %w", err)
		} else if n == 0 {
			return nil // the account has had profiles: leave it as it is
		}
		for _, sp := range profiles {
			p := sp.Profile
			p.AccountID = accountID
			if p, err = s.createTx(ctx, tx, p); err != nil {
				return fmt.Errorf("seed profile %s: %w", p.ID, err)
			}
			for _, it := range sp.MyList {
				it, added, err := s.addTx(ctx, tx, p.ID, it)
				if err != nil {
					return fmt.Errorf("seed my list of %s: %w", p.ID, err)
				}
				if added {
					if err := s.changed(ctx, tx, domain.Change{Kind: domain.MyListAdded, Profile: p, TitleID: it.TitleID, At: it.AddedAt}); err != nil {
						return err
					}
				}
			}
		}
		seeded = true
		return nil
	})
	return seeded, err
}
