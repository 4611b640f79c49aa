// Package migrations holds callgate's PostgreSQL schema as goose SQL
// migrations (NNN_name.sql), embedded in the binary. controller/postgres
// applies them.
package migrations

import "embed"

// FS holds every migration, at its root.
//
//go:embed *.sql
var FS embed.FS
