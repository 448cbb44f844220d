package config

import (
	"flag"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "default"},
		{nil, map[string]string{"MARQUEE_GRPC_ADDR": "env"}, "env"},
		{[]string{"--grpc-addr", "flag"}, map[string]string{"MARQUEE_GRPC_ADDR": "env"}, "flag"},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		addr := fs.String("grpc-addr", "default", "")
		if err := Parse(fs, tt.args, func(k string) string { return tt.env[k] }); err != nil {
			t.Fatalf("Parse(%v, %v): %v", tt.args, tt.env, err)
		}
		if *addr != tt.want {
			t.Errorf("Parse(%v, %v) grpc-addr = %q, want %q", tt.args, tt.env, *addr, tt.want)
		}
	}
}

func TestParseBadEnvNamesVariable(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Int("replicas", 1, "")
	err := Parse(fs, nil, func(k string) string {
		if k == "MARQUEE_REPLICAS" {
			return "many"
		}
		return ""
	})
	if err == nil {
		t.Fatal("Parse with MARQUEE_REPLICAS=many succeeded, want error")
	}
}
