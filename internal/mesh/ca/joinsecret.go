package ca

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// LoadOrCreateJoinSecret reads the join secret from path, creating the
// file (readable by its owner only) with a new secret when it does not
// exist. The control plane checks tokens with it and whoever starts
// sidecars (marquee dev) makes their tokens with it.
func LoadOrCreateJoinSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < 32 {
			return nil, fmt.Errorf("%s: a join secret has at least 32 bytes", path)
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if b, err = NewJoinSecret(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	// Written aside and renamed, so no reader ever sees half a secret;
	// Link fails when another process made the file first, and then its
	// secret is the one.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".join-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreateJoinSecret(path)
		}
		return nil, err
	}
	return b, nil
}
