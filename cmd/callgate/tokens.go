package main

import (
	"context"
	"errors"
	"io"
)

// runTokens is `callgate token create|revoke|list`.
func runTokens(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return errors.New("token: not implemented yet")
}
