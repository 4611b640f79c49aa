package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/callgate/callgate/controller"
)

// translate maps a database error to callgate's error codes, keeping the
// original error in the chain for logs. Context errors pass through
// unchanged so callers can recognise them.
func translate(err error) error {
	var (
		ce    *controller.Error
		pgErr *pgconn.PgError
		netE  net.Error
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, pgx.ErrNoRows):
		return wrap(controller.ENOTFOUND, "not found", err)
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case "23505": // unique_violation
			return wrap(controller.ECONFLICT, "already exists", err)
		case "23503": // foreign_key_violation
			return wrap(controller.ENOTFOUND, "a referenced row does not exist", err)
		case "23502", "23514", "22P02", "22001", "22003", "22007", "22023": // not null, check, bad input
			return wrap(controller.EINVALID, "invalid value", err)
		case "40001", "40P01", "55P03": // serialization failure, deadlock, lock not available
			return wrap(controller.ECONFLICT, "concurrent update, try again", err)
		case "57P01", "57P02", "57P03", "53300": // shutdown, cannot connect now, too many connections
			return wrap(controller.EUNAVAILABLE, "database unavailable", err)
		}
		if strings.HasPrefix(pgErr.Code, "08") { // connection exception
			return wrap(controller.EUNAVAILABLE, "database unavailable", err)
		}
		return err
	case errors.As(err, &netE), pgconn.SafeToRetry(err), pgconn.Timeout(err), isConnectError(err):
		return wrap(controller.EUNAVAILABLE, "database unavailable", err)
	}
	return err
}

func isConnectError(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// wrap returns err with a callgate code in front of it in the chain.
func wrap(code, msg string, err error) error {
	return fmt.Errorf("%w: %w", controller.Errorf(code, "%s", msg), err)
}

// invalid returns an EINVALID error naming the input field at fault.
func invalid(field string, err error) error {
	return fmt.Errorf("%w: %w", controller.FieldError(field, "%s", err.Error()), err)
}
