#!/usr/bin/env bash
# make run: private PostgreSQL (already started by make), migrations,
# switchsim unless CALLGATE_ESL names a real switch, then callgate serve.
set -euo pipefail
cd "$(dirname "$0")/.."
export CALLGATE_DATABASE_URL="${CALLGATE_DATABASE_URL:-$(scripts/pg.sh dsn)}"
export CALLGATE_LISTEN="${CALLGATE_LISTEN:-127.0.0.1:8080}"
export CALLGATE_POLICY="${CALLGATE_POLICY:-lab}"
bin/callgate migrate

# Every /v1 route needs a bearer token: an admin token of the default tenant
# for the tour, created at each start (the secret is shown once; revoke old
# ones with bin/callgate token list / token revoke <id>).
if [ -z "${CALLGATE_TOKEN:-}" ]; then
  CALLGATE_TOKEN="$(bin/callgate token create --role admin --tenant default --name "make run tour" --expires 24h | sed -n 's/^secret: //p')"
fi
export CALLGATE_TOKEN

# IVR prompts and encrypted recordings, all under .data/media. The keyring
# (phone numbers are sealed at rest with its keys, recordings too) is
# created once, or given an index key if an older version made it; back it
# up — without it no stored number or recording can be read.
media="$PWD/.data/media"
export CALLGATE_PROMPT_DIR="${CALLGATE_PROMPT_DIR:-$media/prompts}"
export CALLGATE_RECORDING_SPOOL_DIR="${CALLGATE_RECORDING_SPOOL_DIR:-$media/spool}"
export CALLGATE_RECORDING_STORE_DIR="${CALLGATE_RECORDING_STORE_DIR:-$media/store}"
export CALLGATE_KEYS="${CALLGATE_KEYS:-${CALLGATE_RECORDING_KEYS:-$media/keys.json}}"
unset CALLGATE_RECORDING_KEYS
mkdir -p "$media"
if [ ! -f "$CALLGATE_KEYS" ] || ! grep -q '"index_key"' "$CALLGATE_KEYS"; then bin/callgate keys init; fi

sim_pid=""
cleanup() { [ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

if [ -z "${CALLGATE_ESL:-}" ]; then
  export CALLGATE_ESL_PASSWORD="${CALLGATE_ESL_PASSWORD:-callgate-dev-$(head -c6 /dev/urandom | od -An -tx1 | tr -d ' \n')}"
  export CALLGATE_ESL=127.0.0.1:8021
  bin/callgate switchsim --listen "$CALLGATE_ESL" --password "$CALLGATE_ESL_PASSWORD" --time-scale "${CALLGATE_SIM_TIME_SCALE:-1}" \
    --record-dir "$CALLGATE_RECORDING_SPOOL_DIR" &
  sim_pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/8021) 2>/dev/null && break; sleep 0.1; done
  echo "switchsim (simulated FreeSWITCH) on $CALLGATE_ESL"
else
  : "${CALLGATE_ESL_PASSWORD:?set CALLGATE_ESL_PASSWORD for the switch at $CALLGATE_ESL}"
fi

cat <<TOUR

callgate API on http://$CALLGATE_LISTEN — an admin token of tenant "default"
(valid 24h, shown once): export CALLGATE_TOKEN=$CALLGATE_TOKEN
Try:
  curl -s -XPOST http://$CALLGATE_LISTEN/v1/calls -H "Authorization: Bearer \$CALLGATE_TOKEN" \\
       -H 'Content-Type: application/json' -H 'Idempotency-Key: tour-1' \\
       -d '{"to":"+12125551006","from":"+12125550100"}'
  curl -s -H "Authorization: Bearer \$CALLGATE_TOKEN" http://$CALLGATE_LISTEN/v1/calls/<id>?include=events
  curl -s -H "Authorization: Bearer \$CALLGATE_TOKEN" http://$CALLGATE_LISTEN/v1/switches
Other roles: bin/callgate token create --role agent|qa|auditor --tenant default [--agent A]
Numbers ending 1001..1010 pick a callee behaviour (dialplans/SCENARIOS.md);
1001 presses 1, 1002 presses 2. An IVR consent flow with a recording: README,
"IVR flows, consent and recordings".
Ctrl-C stops everything.

TOUR
bin/callgate serve &
srv_pid=$!
trap 'kill $srv_pid 2>/dev/null; cleanup' EXIT INT TERM
wait $srv_pid
