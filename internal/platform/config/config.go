// Package config fills a program's flags from the command line and, for
// flags not given there, from MARQUEE_<FLAG> environment variables
// (--grpc-addr reads MARQUEE_GRPC_ADDR). Programs call Parse in main only;
// nothing deeper reads the environment.
package config

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// EnvName is the environment variable that sets flag name.
func EnvName(name string) string {
	return "MARQUEE_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse parses args into fs, then sets every flag that args did not set from
// its environment variable, looked up with getenv. Errors name the variable.
func Parse(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}
