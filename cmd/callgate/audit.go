package main

import (
	"context"
	"errors"
	"io"
)

// runAudit is `callgate audit verify`.
func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return errors.New("audit: not implemented yet")
}
