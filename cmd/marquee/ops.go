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
	"time"

	"github.com/marquee-tv/marquee/internal/platform/config"
	"github.com/marquee-tv/marquee/internal/platform/seed"
)

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
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	raw, _, err := c.send(ctx, method, path, "application/json", b)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// send sends body (nil for none) of the content type and returns the
// answer, turning the API's error shape into an error.
func (c *opsClient) send(ctx context.Context, method, path, contentType string, body []byte) ([]byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", contentType)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("is the system running? %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Code != "" {
			return nil, nil, fmt.Errorf("%s %s: %s: %s", method, path, e.Error.Code, e.Error.Message)
		}
		return nil, nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return raw, resp.Header, nil
}

// parseWords parses the flags of a tool command, which may come before or
// after its words (sub-command and arguments), and returns the words.
func parseWords(fs *flag.FlagSet, args []string) ([]string, error) {
	var words []string
	for len(args) > 0 {
		if err := config.Parse(fs, args, os.Getenv); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) > 0 {
			words = append(words, args[0])
			args = args[1:]
		}
	}
	return words, nil
}

// readAllLimited reads a policy or similar document of at most 1 MiB.
func readAllLimited(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<20+1))
	if err != nil {
		return nil, err
	}
	if len(b) > 1<<20 {
		return nil, errors.New("the document is larger than 1 MiB")
	}
	return b, nil
}
