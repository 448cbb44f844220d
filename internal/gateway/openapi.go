package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// openAPITitle replaces the generated title, which names a .proto file.
const openAPITitle = "Marquee API"

// rewriteOpenAPI checks that doc is a swagger 2.0 document and makes the
// two edits described at Config.OpenAPI.
func rewriteOpenAPI(doc []byte) ([]byte, error) {
	var d map[string]any
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("gateway: OpenAPI document: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("gateway: OpenAPI document: data after the document")
	}
	if v, _ := d["swagger"].(string); v != "2.0" {
		return nil, errors.New(`gateway: OpenAPI document: not swagger "2.0"`)
	}
	info, _ := d["info"].(map[string]any)
	if info == nil {
		info = map[string]any{}
		d["info"] = info
	}
	info["title"] = openAPITitle
	if defs, ok := d["definitions"].(map[string]any); ok {
		if _, ok := defs["rpcStatus"]; ok {
			defs["rpcStatus"] = errorSchema
		}
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("gateway: OpenAPI document: %w", err)
	}
	return append(out, '\n'), nil
}

// errorSchema describes errorBody.
var errorSchema = map[string]any{
	"type":        "object",
	"description": "Every error answer has this shape.",
	"required":    []string{"error"},
	"properties": map[string]any{
		"error": map[string]any{
			"type":     "object",
			"required": []string{"code", "message", "request_id"},
			"properties": map[string]any{
				"code": map[string]any{
					"type": "string",
					"description": "UPPER_SNAKE_CASE: a reason such as NOT_ENTITLED when the service gives one, " +
						"else the gRPC code name such as NOT_FOUND or INVALID_ARGUMENT.",
				},
				"message":    map[string]any{"type": "string", "description": "For people, not for programs."},
				"request_id": map[string]any{"type": "string", "description": "Also in the X-Request-Id header."},
			},
		},
	},
}

// weakETag is the ETag of doc: weak, since gzip may change the bytes sent.
func weakETag(doc []byte) string {
	sum := sha256.Sum256(doc)
	return `W/"` + hex.EncodeToString(sum[:16]) + `"`
}

// serveDocument writes doc as JSON, answering 304 to an If-None-Match that
// names etag (compared weakly, as RFC 9110 asks for If-None-Match).
func serveDocument(w http.ResponseWriter, r *http.Request, doc []byte, etag string) {
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, t := range strings.Split(inm, ",") {
			if t = strings.TrimPrefix(strings.TrimSpace(t), "W/"); t == etag[2:] || t == "*" {
				w.WriteHeader(http.StatusNotModified)
				return
			}
		}
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(doc) // a failed write means the client went away
}
