package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/marquee-tv/marquee/internal/platform/config"
	"github.com/marquee-tv/marquee/internal/platform/seed"
)

const sagaUsage = `Usage:
  marquee saga list [--state STATE] [--order ORDER_ID]   list sagas, newest first
  marquee saga show SAGA_ID                              a saga and its step timeline
  marquee saga retry SAGA_ID                             resume a needs_attention saga
  marquee saga compensate SAGA_ID                        force-compensate a saga

Flags (before or after the arguments):
  --control-plane URL   the running system (default http://127.0.0.1:9090, MARQUEE_CONTROL_PLANE)
  --data DIR            where credentials.json holds the admin account (default .marquee)
  MARQUEE_TOKEN         an admin access token, used instead of credentials.json
`

// opsClient calls a running system's admin API as the admin.
type opsClient struct {
	base  string
	token string
	http  *http.Client
}

func newOpsClient(ctx context.Context, base, dataDir string) (*opsClient, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--control-plane %q: want http://host:port", base)
	}
	c := &opsClient{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: 30 * time.Second}}
	if tok := os.Getenv("MARQUEE_TOKEN"); tok != "" {
		c.token = tok
		return c, nil
	}
	creds, err := seed.Load(filepath.Join(dataDir, "credentials.json"))
	if err != nil {
		return nil, fmt.Errorf("no admin credentials (set MARQUEE_TOKEN or --data): %w", err)
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := c.call(ctx, http.MethodPost, "/api/v1/auth/login", map[string]string{"email": creds.Admin.Email, "password": creds.Admin.Password}, &out); err != nil {
		return nil, fmt.Errorf("admin login: %w", err)
	}
	c.token = out.AccessToken
	return c, nil
}

// call sends a JSON request and decodes a JSON answer, turning the API's
// error shape into an error.
func (c *opsClient) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("is the system running? %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return json.Unmarshal(raw, out)
}

type sagaStep struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Participant string `json:"participant"`
	State       string `json:"state"`
	Attempts    int    `json:"attempts"`
	Errors      []struct {
		Message string `json:"message"`
	} `json:"errors"`
	StartedAt  string `json:"started_at"`
	FinishedAt string `json:"finished_at"`
}

type sagaView struct {
	ID         string     `json:"id"`
	OrderID    string     `json:"order_id"`
	State      string     `json:"state"`
	LastError  string     `json:"last_error"`
	Owner      string     `json:"owner"`
	Fencing    string     `json:"fencing_token"`
	CreatedAt  string     `json:"created_at"`
	FinishedAt string     `json:"finished_at"`
	Steps      []sagaStep `json:"steps"`
}

func runSaga(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("marquee saga", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, sagaUsage) }
	cp := fs.String("control-plane", "http://127.0.0.1:9090", "the running system")
	dataDir := fs.String("data", ".marquee", "directory of credentials.json")
	state := fs.String("state", "", "list: only sagas in this state")
	order := fs.String("order", "", "list: only the saga of this order")
	// Flags may come after the sub-command and its argument.
	var words []string
	for len(args) > 0 {
		if err := config.Parse(fs, args, os.Getenv); err != nil {
			return err
		}
		args = fs.Args()
		if len(args) > 0 {
			words = append(words, args[0])
			args = args[1:]
		}
	}
	if len(words) == 0 {
		fs.Usage()
		return errors.New("saga: name a sub-command")
	}
	sub, rest := words[0], words[1:]
	needID := sub != "list"
	if needID && len(rest) != 1 {
		fs.Usage()
		return fmt.Errorf("saga %s: name one saga id", sub)
	}
	c, err := newOpsClient(ctx, *cp, *dataDir)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		q := url.Values{}
		if *state != "" {
			q.Set("state", *state)
		}
		if *order != "" {
			q.Set("order_id", *order)
		}
		q.Set("page_size", "100")
		var out struct {
			Sagas []sagaView `json:"sagas"`
		}
		if err := c.call(ctx, http.MethodGet, "/api/v1/admin/sagas?"+q.Encode(), nil, &out); err != nil {
			return err
		}
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "SAGA\tORDER\tSTATE\tCREATED\tLAST ERROR")
		for _, s := range out.Sagas {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.OrderID, s.State, s.CreatedAt, s.LastError)
		}
		return w.Flush()
	case "show", "retry", "compensate":
		id := url.PathEscape(rest[0])
		var s sagaView
		switch sub {
		case "show":
			err = c.call(ctx, http.MethodGet, "/api/v1/admin/sagas/"+id, nil, &s)
		case "retry":
			err = c.call(ctx, http.MethodPost, "/api/v1/admin/sagas/"+id+"/retry", map[string]string{}, &s)
		case "compensate":
			err = c.call(ctx, http.MethodPost, "/api/v1/admin/sagas/"+id+"/compensate", map[string]string{}, &s)
		}
		if err != nil {
			return err
		}
		printSaga(s)
		return nil
	default:
		fs.Usage()
		return fmt.Errorf("saga: unknown sub-command %q", sub)
	}
}

func printSaga(s sagaView) {
	fmt.Printf("saga %s  order %s  state %s\n", s.ID, s.OrderID, s.State)
	if s.LastError != "" {
		fmt.Printf("last error: %s\n", s.LastError)
	}
	fmt.Printf("created %s  finished %s  owner %q  fencing %s\n\n", s.CreatedAt, s.FinishedAt, s.Owner, s.Fencing)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "STEP\tKIND\tPARTICIPANT\tSTATE\tATTEMPTS\tSTARTED\tFINISHED\tLAST ERROR")
	for _, st := range s.Steps {
		last := ""
		if n := len(st.Errors); n > 0 {
			last = st.Errors[n-1].Message
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", st.Name, st.Kind, st.Participant, st.State, st.Attempts, st.StartedAt, st.FinishedAt, last)
	}
	w.Flush()
}
