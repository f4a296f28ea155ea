#!/bin/sh
# Stop the Kamailio started by start-kamailio.sh (its pidfile only; same KAM_WORKDIR).
set -u
WORKDIR=${KAM_WORKDIR:-/tmp/kamailio-presence-bench}
PIDFILE="$WORKDIR/kamailio.pid"
if [ ! -s "$PIDFILE" ]; then
    echo "no pidfile $PIDFILE" >&2
    exit 1
fi
PID=$(cat "$PIDFILE")
if ! kill -0 "$PID" 2>/dev/null; then
    echo "pid $PID not running" >&2
    rm -f "$PIDFILE"
    exit 0
fi
kill -TERM "$PID"
i=0
while kill -0 "$PID" 2>/dev/null && [ $i -lt 100 ]; do
    i=$((i+1)); sleep 0.1
done
if kill -0 "$PID" 2>/dev/null; then
    echo "pid $PID did not exit after 10 s, sending KILL" >&2
    kill -KILL "$PID"
fi
rm -f "$PIDFILE"
echo "kamailio (pid $PID) stopped"
