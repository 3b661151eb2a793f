#!/usr/bin/env bash
# Side by side: the same rookery-bench scenarios against InspIRCd and rookery
# (with history on, as by default, and again with `[history] enabled =
# false`), one server at a time on loopback, each restarted for each scenario
# so one run's memory does not flatter the next. Flood control is off for
# all. Prints one table of every figure of the performance targets, with
# rookery ÷ InspIRCd, the target and whether it holds; writes every report
# as JSON.
#
#   benches/compare.sh                the full run (about 12 minutes on 2 cores)
#   benches/compare.sh --quick        smaller counts (about 2 minutes)
#   benches/compare.sh --with-ngircd  ngIRCd as well (adds several minutes:
#                                     its 5,000 registrations are slow)
#   benches/compare.sh --scaling      rookery alone: one room of 10 to 5,000 members
#
# ngIRCd is left out of the default run to keep it within about 12 minutes;
# --with-ngircd puts it back in the fan-outs, round trip, connect, idle, the
# big room without a mode and churn (it has no +u, and no TLS is set up for it).
#
# What runs (full; --quick in brackets):
#   fan-outs, 3 rounds [1]: 10 rooms × 50 × 2 senders and 1 room × 1,000 × 1,
#     2,000 [500] messages per sender, window 100;
#   round trip, 3 rounds [1]: 1 room of 2, 1 sender at 100 messages/s for
#     10 s [3 s];
#   idle: 5,000 [1,000] clients in 10 rooms, plain TCP, then over TLS
#     (rookery and InspIRCd: InspIRCd's Debian package has ssl_gnutls, set
#     up in benches/peers/inspircd.conf with the certificate made below);
#   connect: 5,000 [1,000] clients registering at once;
#   join: 5,000 [1,000] clients into one room, without a mode and with +u
#     (InspIRCd's m_auditorium; rookery's reported as refused until it has +u);
#   memory after load (rookery): RSS after 2 s, 3 [1] rounds of 40 rooms ×
#     50 × 2 senders × 200 messages (window 50), RSS, 35 s rest, RSS;
#   churn, 1 round: 10 rooms × 50, 2 senders at 20/s for 10 s [3 s], 100
#     churners at 200 operations/s.
#
# Ports: ngIRCd 16667, InspIRCd 16668 (TLS 16698), rookery 16669 (TLS 16699).
# Results: benches/results/latest/ (ignored by git); the run documented in
# docs/PERFORMANCE.md is kept in benches/results/baseline/.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=full
WITH_NGIRCD=no
for arg in "$@"; do
  case "$arg" in
    --quick) MODE=quick ;;
    --scaling) MODE=scaling ;;
    --with-ngircd) WITH_NGIRCD=yes ;;
    *) echo "usage: $0 [--quick|--scaling] [--with-ngircd]" >&2; exit 2 ;;
  esac
done

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
# No core files in the checkout: InspIRCd has been seen to crash while
# stopping after the churn run, its figures already written.
ulimit -c 0
echo "== load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

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

# One self-signed certificate for every TLS listener of the run.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj /CN=localhost -days 2 -keyout "$RUNDIR/key.pem" -out "$RUNDIR/cert.pem" 2>/dev/null

for peer in ngircd inspircd; do
  sed "s#@RUNDIR@#$RUNDIR#g" "benches/peers/$peer.conf" >"$RUNDIR/$peer.conf"
done
# rookery: the history file in the scratch directory (removed before each
# start, so every server starts empty), and a TLS listener beside the plain one.
rookery_config() {
  sed -e "s#^path = \"/tmp/rookery-bench-history.db\"#path = \"$RUNDIR/history.db\"#" \
    benches/peers/rookery.toml
  printf '\n[[listen]]\naddress = "127.0.0.1:16699"\ntls = { cert = "%s", key = "%s" }\n' \
    "$RUNDIR/cert.pem" "$RUNDIR/key.pem"
}
rookery_config >"$RUNDIR/rookery.toml"
rookery_config | sed '/^\[history\]/,/^\[/ s/^enabled = true/enabled = false/' \
  >"$RUNDIR/rookery_nohistory.toml"
grep -q '^enabled = false' "$RUNDIR/rookery_nohistory.toml" ||
  { echo "could not turn history off in the rookery configuration" >&2; exit 1; }

port_of() {
  case "$1" in
    ngircd) echo 16667 ;;
    inspircd) echo 16668 ;;
    rookery | rookery_nohistory) echo 16669 ;;
  esac
}

tls_port_of() {
  case "$1" in
    inspircd) echo 16698 ;;
    rookery | rookery_nohistory) echo 16699 ;;
  esac
}

start_server() {
  case "$1" in
    ngircd) /usr/sbin/ngircd -n -f "$RUNDIR/ngircd.conf" >"$RUNDIR/ngircd.out" 2>&1 & ;;
    inspircd) /usr/sbin/inspircd --nofork --runasroot --config "$RUNDIR/inspircd.conf" \
                >"$RUNDIR/inspircd.out" 2>&1 & ;;
    rookery | rookery_nohistory)
      rm -f "$RUNDIR"/history.db*
      target/release/rookery --config "$RUNDIR/$1.toml" >"$RUNDIR/$1.out" 2>&1 & ;;
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
# With --tls among ARGS the server's TLS port is used. PACING and
# MAX_SECONDS may be set for one call.
run() {
  local server=$1 name=$2
  shift 2
  local out="$RESULTS/$server-$name" port
  port=$(port_of "$server")
  case " $* " in *" --tls "*) port=$(tls_port_of "$server") ;; esac
  for attempt in 1 2; do
    start_server "$server"
    echo "-- $name on $server (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    cut -d' ' -f1-3 /proc/loadavg >"$out.load"
    local status=0
    "$BENCH" "$@" $PACING --server "127.0.0.1:$port" --pid "$SERVER_PID" \
      --label "$server" --json --max-seconds "${MAX_SECONDS:-240}" \
      >"$out.json" 2>"$out.err" || status=$?
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

if [ "$MODE" = quick ]; then
  ROUNDS=1 MESSAGES=500 CLIENTS=1000 RTT_SECONDS=3 MEMORY_ROUNDS=1 CHURN_SECONDS=3
else
  ROUNDS=3 MESSAGES=2000 CLIENTS=5000 RTT_SECONDS=10 MEMORY_ROUNDS=3 CHURN_SECONDS=10
fi
PEERS="inspircd"
[ "$WITH_NGIRCD" = yes ] && PEERS="ngircd inspircd"

# Rounds go through every server in turn, so load from elsewhere on the
# machine falls on all of them alike; the table shows each figure's median.
for round in $(seq "$ROUNDS"); do
  for server in $PEERS rookery rookery_nohistory; do
    run "$server" "r$round-fanout-10x50x2" fanout --rooms 10 --members 50 --senders 2 \
      --messages "$MESSAGES" $WINDOW
    run "$server" "r$round-fanout-1x1000x1" fanout --rooms 1 --members 1000 --senders 1 \
      --messages "$MESSAGES" $WINDOW
    run "$server" "r$round-rtt" fanout --rooms 1 --members 2 --senders 1 \
      --rate 100 --duration "$RTT_SECONDS" $WINDOW
  done
done

# Figures that barely move between rounds, or take long: one round each.
for server in $PEERS rookery rookery_nohistory; do
  # At once: every registration in flight together, no pacing.
  PACING="--concurrency $CLIENTS" run "$server" r1-connect connect --clients "$CLIENTS"
  run "$server" r1-idle idle --clients "$CLIENTS" --rooms 10 --settle 2
done
for server in inspircd rookery; do
  run "$server" r1-idletls idle --clients "$CLIENTS" --rooms 10 --settle 2 --tls
done
for server in $PEERS rookery; do
  # Registered at the usual pace (not timed); the JOINs all at once.
  PACING="--concurrency $CLIENTS --connect-rate 2000" MAX_SECONDS=300 \
    run "$server" r1-join join --clients "$CLIENTS" --phase-timeout 180
done
for server in inspircd rookery; do
  PACING="--concurrency $CLIENTS --connect-rate 2000" MAX_SECONDS=300 \
    run "$server" r1-joinu join --clients "$CLIENTS" --mode +u --phase-timeout 30
done
MAX_SECONDS=400 run rookery r1-memory rounds --rooms 40 --members 50 --senders 2 \
  --messages 200 --window 50 --rounds "$MEMORY_ROUNDS" --start-wait 2 --rest 35
for server in $PEERS rookery; do
  run "$server" r1-churn churn --rooms 10 --members 50 --senders 2 --rate 20 \
    --duration "$CHURN_SECONDS" --churners 100 --churn-rate 200
done

echo
echo "load average before each run (other work on this machine skews absolute figures):"
for f in "$RESULTS"/*.load; do echo "  $(basename "$f" .load): $(cat "$f")"; done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 benches/table.py "$RESULTS" compare
