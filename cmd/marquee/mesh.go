package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
)

const meshUsage = `Usage:
  marquee mesh get [--format yaml|json]     the current mesh policy
  marquee mesh apply FILE                   validate and apply a policy file (YAML or JSON; - reads stdin)
  marquee mesh render --istio [--namespace NS]
                                            the policy as Istio resources
  marquee mesh history                      the policy's versions

Flags (before or after the arguments):
  --control-plane URL   the running system (default http://127.0.0.1:9090, MARQUEE_CONTROL_PLANE)
  --data DIR            where credentials.json holds the admin account (default .marquee)
  MARQUEE_TOKEN         an admin access token, used instead of credentials.json
`

const statusUsage = `Usage:
  marquee status   services, instances, versions, health and addresses of a running system

Flags:
  --control-plane URL   the running system (default http://127.0.0.1:9090, MARQUEE_CONTROL_PLANE)
  --data DIR            where credentials.json holds the admin account (default .marquee)
  MARQUEE_TOKEN         an admin access token, used instead of credentials.json
`

// toolFlags are the flags of the commands that talk to a running system.
type toolFlags struct {
	controlPlane, dataDir string
}

func (f *toolFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.controlPlane, "control-plane", "http://127.0.0.1:9090", "the running system")
	fs.StringVar(&f.dataDir, "data", ".marquee", "directory of credentials.json")
}

type instanceStatus struct {
	ID              string `json:"id"`
	Service         string `json:"service"`
	Version         string `json:"version"`
	Address         string `json:"address"`
	Healthy         bool   `json:"healthy"`
	LastHeartbeat   string `json:"last_heartbeat"`
	SnapshotVersion uint64 `json:"snapshot_version"`
	AckedVersion    uint64 `json:"acked_version"`
	AckError        string `json:"ack_error"`
}

func runStatus(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("marquee status", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, statusUsage) }
	var tf toolFlags
	tf.register(fs)
	words, err := parseWords(fs, args)
	if err != nil {
		return err
	}
	if len(words) > 0 {
		fs.Usage()
		return fmt.Errorf("status takes no arguments")
	}
	c, err := newOpsClient(ctx, tf.controlPlane, tf.dataDir)
	if err != nil {
		return err
	}
	var out struct {
		Instances []instanceStatus `json:"instances"`
	}
	if err := c.call(ctx, http.MethodGet, "/api/v1/mesh/instances", nil, &out); err != nil {
		return err
	}
	_, hdr, err := c.send(ctx, http.MethodGet, "/api/v1/mesh/policy", "application/json", nil)
	if err != nil {
		return err
	}
	fmt.Printf("control plane %s  policy version %s  %d instances\n\n", tf.controlPlane, hdr.Get("X-Marquee-Policy-Version"), len(out.Instances))
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SERVICE\tINSTANCE\tVERSION\tHEALTH\tSIDECAR\tCONFIG")
	for _, in := range out.Instances {
		health := "healthy"
		if !in.Healthy {
			health = "unhealthy"
		}
		addr := in.Address
		if addr == "" {
			addr = "(outbound only)"
		}
		config := "synced"
		switch {
		case in.AckError != "":
			config = "refused: " + in.AckError
		case in.AckedVersion != in.SnapshotVersion:
			config = fmt.Sprintf("pending %d (has %d)", in.SnapshotVersion, in.AckedVersion)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", in.Service, in.ID, in.Version, health, addr, config)
	}
	return w.Flush()
}

func runMesh(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("marquee mesh", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, meshUsage) }
	var tf toolFlags
	tf.register(fs)
	format := fs.String("format", "yaml", "get: yaml or json")
	istio := fs.Bool("istio", false, "render: as Istio resources (the only rendering)")
	namespace := fs.String("namespace", "marquee", "render: the Kubernetes namespace of the services")
	words, err := parseWords(fs, args)
	if err != nil {
		return err
	}
	if len(words) == 0 {
		fs.Usage()
		return errors.New("mesh: name a sub-command")
	}
	sub, rest := words[0], words[1:]
	var path, method, contentType string
	var body []byte
	switch sub {
	case "get":
		if *format != "yaml" && *format != "json" {
			return fmt.Errorf("--format %q: want yaml or json", *format)
		}
		method, path = http.MethodGet, "/api/v1/mesh/policy"
		if *format == "json" {
			path += "?format=json"
		}
	case "apply":
		if len(rest) != 1 {
			fs.Usage()
			return errors.New("mesh apply: name one policy file")
		}
		if rest[0] == "-" {
			body, err = readAllLimited(os.Stdin)
		} else {
			body, err = os.ReadFile(rest[0])
		}
		if err != nil {
			return err
		}
		method, path, contentType = http.MethodPut, "/api/v1/mesh/policy", "application/yaml"
		if strings.HasSuffix(rest[0], ".json") {
			contentType = "application/json"
		}
	case "render":
		if !*istio {
			return errors.New("mesh render: say which rendering: --istio")
		}
		method, path = http.MethodGet, "/api/v1/mesh/istio?namespace="+url.QueryEscape(*namespace)
	case "history":
		method, path = http.MethodGet, "/api/v1/mesh/policy/history"
	default:
		fs.Usage()
		return fmt.Errorf("mesh: unknown sub-command %q", sub)
	}
	if sub != "apply" && len(rest) > 0 {
		return fmt.Errorf("mesh %s takes no arguments", sub)
	}
	c, err := newOpsClient(ctx, tf.controlPlane, tf.dataDir)
	if err != nil {
		return err
	}
	out, _, err := c.send(ctx, method, path, contentType, body)
	if err != nil {
		return err
	}
	if sub == "apply" {
		var applied struct {
			Version uint64 `json:"version"`
		}
		if err := json.Unmarshal(out, &applied); err != nil {
			return fmt.Errorf("mesh apply: unexpected answer %q", out)
		}
		fmt.Printf("policy version %d in force\n", applied.Version)
		return nil
	}
	os.Stdout.Write(out)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		fmt.Println()
	}
	return nil
}
