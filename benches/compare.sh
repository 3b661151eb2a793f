#!/usr/bin/env bash
# Side by side: the same rookery-bench scenarios against ngIRCd, InspIRCd and
# rookery, one server at a time on loopback, each restarted for each scenario
# so one run's memory does not flatter the next. Prints one table with each
# figure and rookery's ratio to the best peer; writes every report as JSON.
#
#   benches/compare.sh            the full run (about 10 minutes on 2 cores)
#   benches/compare.sh --quick    smaller counts (about 1 minute)
#   benches/compare.sh --scaling  rookery alone: one room of 10 to 5,000 members
#
# Ports: ngIRCd 16667, InspIRCd 16668, rookery 16669 (benches/peers/*).
# Results: benches/results/latest/ (ignored by git); the run documented in
# docs/PERFORMANCE.md is kept in benches/results/baseline/.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=full
case "${1:-}" in
  --quick) MODE=quick ;;
  --scaling) MODE=scaling ;;
  "") ;;
  *) echo "usage: $0 [--quick|--scaling]" >&2; exit 2 ;;
esac

RUNDIR=$(mktemp -d /tmp/rookery-compare.XXXXXX)
RESULTS=benches/results/latest
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$RUNDIR"
}
trap cleanup EXIT

# Every client is a socket on both sides.
ulimit -n "$(ulimit -Hn)"

if [ "$MODE" != scaling ] && { [ ! -x /usr/sbin/ngircd ] || [ ! -x /usr/sbin/inspircd ]; }; then
  echo "== installing ngircd and inspircd from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq ngircd inspircd >/dev/null
fi
# Debian's packages may start their own services (on 6667); stop them so
# they take no CPU during the runs. Ours run directly on other ports.
for service in ngircd inspircd; do
  if pgrep -x "$service" >/dev/null 2>&1 && [ -x "/etc/init.d/$service" ]; then
    "/etc/init.d/$service" stop >/dev/null 2>&1 || true
  fi
done

echo "== building rookery and rookery-bench (release)"
cargo build --release --bins --quiet
BENCH=target/release/rookery-bench

for peer in ngircd inspircd; do
  sed "s#@RUNDIR@#$RUNDIR#g" "benches/peers/$peer.conf" >"$RUNDIR/$peer.conf"
done

port_of() {
  case "$1" in ngircd) echo 16667 ;; inspircd) echo 16668 ;; rookery) echo 16669 ;; esac
}

start_server() {
  case "$1" in
    ngircd) /usr/sbin/ngircd -n -f "$RUNDIR/ngircd.conf" >"$RUNDIR/ngircd.out" 2>&1 & ;;
    inspircd) /usr/sbin/inspircd --nofork --runasroot --config "$RUNDIR/inspircd.conf" \
                >"$RUNDIR/inspircd.out" 2>&1 & ;;
    rookery) target/release/rookery --config benches/peers/rookery.toml \
               >"$RUNDIR/rookery.out" 2>&1 & ;;
  esac
  SERVER_PID=$!
  local port
  port=$(port_of "$1")
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not start listening on $port" >&2
  cat "$RUNDIR/$1.out" >&2
  exit 1
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  # Let the sockets of the last run close before the next server starts.
  sleep 1
}

# run SERVER NAME SCENARIO ARGS...: one scenario against a fresh server,
# tried twice: on a shared machine a run can be cut short from outside.
run() {
  local server=$1 name=$2
  shift 2
  local out="$RESULTS/$server-$name"
  for attempt in 1 2; do
    start_server "$server"
    echo "-- $name on $server (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    cut -d' ' -f1-3 /proc/loadavg >"$out.load"
    local status=0
    "$BENCH" "$@" $PACING --server "127.0.0.1:$(port_of "$server")" --pid "$SERVER_PID" \
      --label "$server" --json --max-seconds 240 >"$out.json" 2>"$out.err" || status=$?
    stop_server
    if [ "$status" = 0 ]; then return 0; fi
    echo "   failed (attempt $attempt, status $status): $(cat "$out.err")"
    rm -f "$out.json"
  done
}

# Registrations are paced the same for every server: ngIRCd's accept backlog
# is 10 and overflows under a burst, and InspIRCd completes registrations
# on a one-second timer, so both bursts and strict one-at-a-time would
# measure a quirk rather than a rate.
PACING="--concurrency 1000 --connect-rate 2000"
# Messages not yet delivered to every member, per sender.
WINDOW="--window 100"

if [ "$MODE" = scaling ]; then
  for members in 10 100 1000 5000; do
    messages=$((2000000 / members))
    [ "$messages" -gt 5000 ] && messages=5000
    run rookery "room$members" fanout --rooms 1 --members "$members" --senders 1 \
      --messages "$messages" $WINDOW --phase-timeout 120
  done
  python3 benches/table.py "$RESULTS" scaling
  exit 0
fi

# Rounds go through every server in turn, so load from elsewhere on the
# machine falls on all of them alike; the table shows each figure's median.
if [ "$MODE" = quick ]; then
  ROUNDS=1 MESSAGES=500 CLIENTS=2000 IDLE=1000 CHURN_SECONDS=3
else
  ROUNDS=3 MESSAGES=2000 CLIENTS=10000 IDLE=5000 CHURN_SECONDS=10
fi

for round in $(seq "$ROUNDS"); do
  for server in ngircd inspircd rookery; do
    run "$server" "r$round-fanout-10x50x2" fanout --rooms 10 --members 50 --senders 2 \
      --messages "$MESSAGES" $WINDOW
    run "$server" "r$round-fanout-1x1000x1" fanout --rooms 1 --members 1000 --senders 1 \
      --messages "$MESSAGES" $WINDOW
    # Memory per client barely moves between rounds, and ngIRCd takes a
    # minute or more for 10,000 registrations: these two run in round one.
    if [ "$round" = 1 ]; then
      # Connects get a faster pace of their own: the figure is the rate itself.
      PACING="--concurrency 1000 --connect-rate 5000" \
        run "$server" "r$round-connect" connect --clients "$CLIENTS"
      run "$server" "r$round-idle" idle --clients "$IDLE" --settle 2
    fi
    run "$server" "r$round-churn" churn --rooms 10 --members 50 --senders 2 --rate 20 \
      --duration "$CHURN_SECONDS" --churners 100 --churn-rate 200
  done
done

echo
echo "load average before each run (other work on this machine skews absolute figures):"
for f in "$RESULTS"/*.load; do echo "  $(basename "$f" .load): $(cat "$f")"; done
echo
python3 benches/table.py "$RESULTS" compare
