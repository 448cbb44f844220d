package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// decode reads a policy document strictly: a repeated key, an unknown
// field or a value of the wrong type is an error naming its path
// ("services.catalog.retries.attempts"), every one of them at once.
//
// A YAML scalar that is not a string where a string belongs is refused
// rather than converted: YAML reads an unquoted on, yes or 1.50 as a bool or
// a number, and a header value silently turned into "true" or "1.5" would
// route nothing.
func decode(data []byte) (*Policy, error) {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("policy: %s", strings.TrimPrefix(err.Error(), "error converting YAML to JSON: "))
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	var errs []error
	explain(doc, reflect.TypeFor[Policy](), "", &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var p Policy
	dec = json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy: %w", err) // explain missed it
	}
	return &p, nil
}

var durationType = reflect.TypeFor[Duration]()

// explain appends an error for every value of v that does not fit type t,
// naming its path ("services.catalog.retries.attempts").
func explain(v any, t reflect.Type, path string, errs *[]error) {
	bad := func(format string, args ...any) {
		p := path
		if p == "" {
			p = "policy"
		}
		*errs = append(*errs, fmt.Errorf("%s: %s", p, fmt.Sprintf(format, args...)))
	}
	if v == nil {
		return // null: the zero value
	}
	if t == durationType {
		s, ok := v.(string)
		if _, err := time.ParseDuration(s); !ok || err != nil {
			bad("%s is not a duration: want a number with a unit such as \"300ms\" or \"2s\"", describe(v))
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		explain(v, t.Elem(), path, errs)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			bad("%s where a mapping (name: value) belongs", describe(v))
			return
		}
		fields := jsonFields(t)
		for _, key := range sortedKeys(m) {
			f, ok := fields[key]
			if !ok {
				bad("unknown field %q (want one of %s)", key, strings.Join(sortedKeys(fields), ", "))
				continue
			}
			explain(m[key], f.Type, join(path, key), errs)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			bad("%s where a mapping (name: value) belongs", describe(v))
			return
		}
		for _, key := range sortedKeys(m) {
			explain(m[key], t.Elem(), join(path, key), errs)
		}
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			bad("%s where a list belongs", describe(v))
			return
		}
		for i, e := range l {
			explain(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.String:
		switch v.(type) {
		case string:
		case json.Number, bool:
			bad("%s where a string belongs (quote it: \"%v\")", describe(v), v)
		default:
			bad("%s where a string belongs", describe(v))
		}
	case reflect.Int:
		n, ok := v.(json.Number)
		if !ok {
			bad("%s where a whole number belongs", describe(v))
		} else if _, err := n.Int64(); err != nil {
			bad("%s is not a whole number", n)
		}
	case reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			bad("%s where a number belongs", describe(v))
		} else if _, err := n.Float64(); err != nil {
			bad("%s is not a number", n)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// describe names the kind of a decoded JSON value, for errors.
func describe(v any) string {
	switch v := v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return fmt.Sprintf("the string %q", v)
	case json.Number:
		return "the number " + v.String()
	case bool:
		return fmt.Sprintf("%t", v)
	}
	return fmt.Sprintf("%v", v)
}

// jsonFields maps the JSON names of t's fields to them.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for _, f := range reflect.VisibleFields(t) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && name != "" && name != "-" {
			out[name] = f
		}
	}
	return out
}
