#!/usr/bin/env bash
# pg.sh runs a private, throwaway PostgreSQL cluster for callgate's development
# and tests, from Debian's binaries (installed with apt if missing). It never
# touches the distribution's own clusters.
#
# Usage: scripts/pg.sh start|stop|dsn|status
#   CALLGATE_DATA_DIR   data directory (default <repo>/.data/pg; log in $DIR/log)
#   CALLGATE_PG_PORT    TCP port on 127.0.0.1 (default 55432)
#   CALLGATE_PG_FAST=1  fsync, synchronous_commit and full_page_writes off (tests
#                       only: a crash can lose or corrupt data); default is durable
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${CALLGATE_DATA_DIR:-$ROOT/.data/pg}
PORT=${CALLGATE_PG_PORT:-55432}
DSN="postgres://callgate@127.0.0.1:$PORT/callgate?sslmode=disable"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true; }

# as_pg runs a server command as the postgres user: the server refuses root.
as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() { [ -d "$DATA" ] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

install() {
	[ -x "$(bindir)/initdb" ] && return
	[ "$(id -u)" = 0 ] || { echo "pg.sh: PostgreSQL is not installed; run as root to install it" >&2; exit 1; }
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
}

init() {
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
		mkdir -p "$DATA"
		chown postgres: "$DATA"
		# The postgres user must be able to reach the data directory.
		local d
		d=$(dirname "$DATA")
		while [ "$d" != / ]; do
			runuser -u postgres -- test -x "$d" || chmod o+x "$d"
			d=$(dirname "$d")
		done
	else
		mkdir -p "$DATA"
	fi
	chmod 700 "$DATA"
	[ -f "$DATA/PG_VERSION" ] && return
	as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --no-locale >/dev/null
	printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$DATA/pg_hba.conf"
	echo "include_if_exists = 'callgate.conf'" >>"$DATA/postgresql.conf"
}

configure() {
	local fast=""
	if [ "${CALLGATE_PG_FAST:-}" = 1 ]; then
		fast=$'fsync = off\nsynchronous_commit = off\nfull_page_writes = off'
	fi
	cat >"$DATA/callgate.conf" <<-EOF
		listen_addresses = '127.0.0.1'
		port = $PORT
		unix_socket_directories = '$DATA'
		max_connections = 200
		shared_buffers = 256MB
		max_wal_size = 1GB
		$fast
	EOF
	[ "$(id -u)" = 0 ] && chown postgres: "$DATA/callgate.conf"
	return 0
}

ensure_db() {
	local psql=("$BIN/psql" -X -q -At -h "$DATA" -p "$PORT" -U postgres -d postgres)
	if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'callgate'")" != 1 ]; then
		"${psql[@]}" -c "CREATE ROLE callgate LOGIN SUPERUSER"
	fi
	if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'callgate'")" != 1 ]; then
		"${psql[@]}" -c "CREATE DATABASE callgate OWNER callgate"
	fi
}

case "${1:-}" in
start)
	install
	BIN=$(bindir)
	if ! running; then
		init
		configure
		# The port lies in Linux's ephemeral range: a client socket may hold
		# it for a moment on a busy machine. Try again before giving up.
		for try in 1 2 3 4 5 6 7 8 9 10; do
			as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/log" -w -t 60 start >/dev/null && break
			if [ "$try" = 10 ] || ! tail -n 5 "$DATA/log" | grep -q "Address already in use"; then
				echo "pg.sh: PostgreSQL did not start; see $DATA/log" >&2
				exit 1
			fi
			echo "pg.sh: port $PORT is busy, retrying" >&2
			sleep 1
		done
	fi
	ensure_db
	echo "PostgreSQL running: $DSN" >&2
	;;
stop)
	BIN=$(bindir)
	if [ -n "$BIN" ] && running; then
		as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
	fi
	;;
dsn)
	echo "$DSN"
	;;
status)
	BIN=$(bindir)
	if [ -n "$BIN" ] && running; then
		echo "running: $DSN (data $DATA)"
	else
		echo "stopped (data $DATA)"
		exit 3
	fi
	;;
*)
	echo "usage: $0 start|stop|dsn|status" >&2
	exit 2
	;;
esac
