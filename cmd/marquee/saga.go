package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"text/tabwriter"
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
	words, err := parseWords(fs, args)
	if err != nil {
		return err
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
