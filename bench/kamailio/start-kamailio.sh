#!/bin/sh
# Start the Kamailio presence server of bench/ in the background (not via systemd), as
# bench/run.py does for `make bench`; see kamailio-presence.cfg for what it serves.
#   KAM_WORKDIR   working dir (pidfile, sqlite db, log)  default /tmp/kamailio-presence-bench
#   KAM_SIP_PORT  SIP UDP and TCP port on 127.0.0.1       default 5080
#   KAM_WS_PORT   HTTP/WebSocket port on 127.0.0.1        default 8088
#   KAM_CHILDREN  UDP worker processes                   default 4
#   KAM_MEMONLY   1 (default) = presentities and subscriptions in memory only;
#                 0 = presence module defaults with the sqlite file (publ_cache=1,
#                 subs_db_mode=2); NOTE: db_sqlite has no busy timeout, so with
#                 several workers writes fail with "database is locked" under load
#   KAM_SHM_MB / KAM_PKG_MB  shared / per-process memory (MB)  default 2048 / 32
#   KAMAILIO      the binary                              default kamailio
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
WORKDIR=${KAM_WORKDIR:-/tmp/kamailio-presence-bench}
SIP_PORT=${KAM_SIP_PORT:-5080}
WS_PORT=${KAM_WS_PORT:-8088}
CHILDREN=${KAM_CHILDREN:-4}
SHM=${KAM_SHM_MB:-2048}
PKG=${KAM_PKG_MB:-32}
KAMAILIO=${KAMAILIO:-kamailio}
SQLDIR=${KAM_SQLDIR:-/usr/share/kamailio/db_sqlite}

if ! command -v "$KAMAILIO" >/dev/null; then
    echo "$KAMAILIO not found: apt-get install kamailio kamailio-presence-modules" \
        "kamailio-sqlite-modules kamailio-websocket-modules kamailio-xml-modules" >&2
    exit 1
fi

mkdir -p "$WORKDIR"
PIDFILE="$WORKDIR/kamailio.pid"
if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    echo "already running, pid $(cat "$PIDFILE")" >&2
    exit 1
fi

# fresh database for every start (benchmark state must not leak between runs)
DB="$WORKDIR/presence.sqlite"
rm -f "$DB" "$DB-wal" "$DB-shm"
python3 - "$DB" "$SQLDIR" <<'PY'
import sqlite3, sys
db, d = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db)
c.execute("PRAGMA journal_mode=WAL")
for f in ("standard-create.sql", "presence-create.sql"):
    c.executescript(open(f"{d}/{f}").read())
c.commit(); c.close()
PY

EXTRA=""
[ "${KAM_MEMONLY:-1}" = "1" ] && EXTRA="-A PRES_MEMONLY"

# kamailio forks into the background and returns; a config or bind error exits non-zero
if ! "$KAMAILIO" -f "$HERE/kamailio-presence.cfg" -P "$PIDFILE" -w "$WORKDIR" \
    -m "$SHM" -M "$PKG" -n "$CHILDREN" -E \
    -A "SIP_PORT=$SIP_PORT" -A "SIP_HOSTPORT=\"127.0.0.1:$SIP_PORT\"" \
    -A "SERVER_ADDRESS=\"sip:127.0.0.1:$SIP_PORT\"" -A "WS_PORT=$WS_PORT" \
    -A "DBURL=\"sqlite:///$DB\"" -A "CTLSOCK=\"unix:$WORKDIR/kamailio_ctl\"" \
    $EXTRA >"$WORKDIR/kamailio.log" 2>&1; then
    echo "kamailio failed to start, see $WORKDIR/kamailio.log" >&2
    tail -20 "$WORKDIR/kamailio.log" >&2
    exit 1
fi

# wait for the pidfile
i=0
while [ $i -lt 50 ]; do
    if [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        echo "kamailio started, pid $(cat "$PIDFILE"), sip 127.0.0.1:$SIP_PORT," \
            "children=$CHILDREN, memonly=${KAM_MEMONLY:-1}, shm=${SHM}MB, workdir=$WORKDIR"
        exit 0
    fi
    i=$((i+1)); sleep 0.1
done
echo "kamailio failed to start, see $WORKDIR/kamailio.log" >&2
tail -20 "$WORKDIR/kamailio.log" >&2
exit 1
