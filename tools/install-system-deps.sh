#!/usr/bin/env bash
# Installs and starts the system services the test suite needs (sipp, Chromium for the
# browser tests, Node for the JsSIP bundle, PostgreSQL and Redis for the scale-out mode)
# and `make bench` (sipp, wrk for the XCAP scenario). With the argument `bench` (as
# `make bench` calls it) also Kamailio and its presence modules, which the benchmark runs
# side by side with ours, and valgrind (bench/inprocess.py --instructions); CI (.ci/run)
# does not run the benchmark and goes without.
# Idempotent: when everything is present and running it never touches apt, so a second
# run costs seconds. Meant for root on Debian 12 (a developer machine or CI), no prompts.
set -euo pipefail

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed'; }

missing=()
for pkg in sip-tester wrk chromium chromium-driver postgresql redis-server make; do
    installed "$pkg" || missing+=("$pkg")
done
fresh_kamailio=0
if [ "${1:-}" = bench ]; then
    installed kamailio || fresh_kamailio=1
    for pkg in kamailio kamailio-presence-modules kamailio-sqlite-modules \
        kamailio-websocket-modules kamailio-xml-modules valgrind; do
        installed "$pkg" || missing+=("$pkg")
    done
fi
# Node may come from elsewhere (e.g. NodeSource); only install Debian's when there is none.
command -v node >/dev/null || missing+=(nodejs npm)

# A cluster made by this run's install gets loopback trust; an existing one is left alone.
fresh_pg=1
compgen -G '/etc/postgresql/*/main/pg_hba.conf' >/dev/null && fresh_pg=0
if [ ${#missing[@]} -eq 0 ]; then
    echo "deps: all system packages present, skipping apt"
else
    echo "deps: apt-get update"
    $SUDO apt-get update -qq
    echo "deps: apt-get install ${missing[*]}"
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian enables and starts a Kamailio service on port 5060, `make run`'s default; the
# benchmark starts its own (bench/kamailio/), so a service installed just now is turned off.
if [ "$fresh_kamailio" -eq 1 ] && [ -d /run/systemd/system ]; then
    echo "deps: stopping and disabling the kamailio service (bench/ starts its own)"
    $SUDO systemctl disable --now kamailio >/dev/null 2>&1 || true
fi

# PostgreSQL: the newest version that has a cluster "main", else make one.
pg_ver=$(cd /etc/postgresql 2>/dev/null && ls -d -- */main 2>/dev/null | cut -d/ -f1 | sort -V | tail -n1)
if [ -z "$pg_ver" ]; then
    pg_ver=$(ls /usr/lib/postgresql | sort -V | tail -n1)
    echo "deps: creating PostgreSQL $pg_ver cluster main"
    $SUDO pg_createcluster "$pg_ver" main >/dev/null
fi
if [ "$fresh_pg" -eq 1 ]; then
    # A fresh Debian cluster wants passwords over TCP; the tests connect as postgres on
    # loopback without one. Rules match first-wins, so prepend.
    hba=/etc/postgresql/$pg_ver/main/pg_hba.conf
    echo "deps: trust auth for postgres on loopback in $hba"
    $SUDO sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
    if pg_isready -q -h 127.0.0.1; then
        $SUDO pg_ctlcluster --skip-systemctl-redirect "$pg_ver" main reload
    fi
fi
if pg_isready -q -h 127.0.0.1; then
    echo "deps: PostgreSQL already answering"
else
    echo "deps: starting PostgreSQL $pg_ver"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$pg_ver" main start
    for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 && break; sleep 0.2; done
    pg_isready -q -h 127.0.0.1 || { echo "deps: PostgreSQL did not come up" >&2; exit 1; }
fi

# Redis: nothing kept on disk, loopback only (same flags as the machine's own start).
if [ "$(redis-cli -h 127.0.0.1 ping 2>/dev/null)" = PONG ]; then
    echo "deps: Redis already answering"
else
    echo "deps: starting Redis"
    $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
        --save "" --appendonly no >/dev/null
    for _ in $(seq 50); do [ "$(redis-cli -h 127.0.0.1 ping 2>/dev/null)" = PONG ] && break; sleep 0.2; done
    [ "$(redis-cli -h 127.0.0.1 ping 2>/dev/null)" = PONG ] || { echo "deps: Redis did not come up" >&2; exit 1; }
fi
