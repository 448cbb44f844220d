package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestLoggerAddsRequestID(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, "catalog", slog.LevelInfo)
	log.InfoContext(WithRequestID(context.Background(), "abc-1"), "hello")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line %q is not JSON: %v", buf.String(), err)
	}
	if line["request_id"] != "abc-1" || line["program"] != "catalog" {
		t.Errorf("log line = %v, want request_id abc-1 and program catalog", line)
	}
}

func TestValidRequestID(t *testing.T) {
	tests := map[string]bool{"": false, "a": true, "req-1.2_3": true, "has space": false, "x<script>": false,
		"0123456789012345678901234567890123456789012345678901234567890123":  true,
		"01234567890123456789012345678901234567890123456789012345678901234": false}
	for in, want := range tests {
		if got := ValidRequestID(in); got != want {
			t.Errorf("ValidRequestID(%q) = %v, want %v", in, got, want)
		}
	}
}
