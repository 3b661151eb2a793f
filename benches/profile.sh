#!/usr/bin/env bash
# Counts rookery's instructions under callgrind during one fixed fanout
# (1 room × MEMBERS members × 1 sender), then prints the top functions.
# Instruction counts, unlike times, repeat on a busy machine.
#
#   benches/profile.sh [MEMBERS [MESSAGES [ROOKERY_BINARY]]]
#
# Defaults: 200 members, 500 messages, target/release/rookery (built with
# line tables, so functions, inlined ones too, have names and lines).
set -euo pipefail
cd "$(dirname "$0")/.."
MEMBERS=${1:-200}
MESSAGES=${2:-500}
BINARY=${3:-target/release/rookery}
OUT=benches/results/latest
mkdir -p "$OUT"
command -v valgrind >/dev/null || apt-get install -y -qq valgrind >/dev/null
cargo build --release --bins --quiet
ulimit -n "$(ulimit -Hn)"

valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
  "$BINARY" --config benches/peers/rookery.toml 2>"$OUT/callgrind.log" &
PID=$!
for _ in $(seq 300); do
  if (exec 3<>/dev/tcp/127.0.0.1/16669) 2>/dev/null; then break; fi
  sleep 0.1
done
target/release/rookery-bench fanout --server 127.0.0.1:16669 --rooms 1 \
  --members "$MEMBERS" --senders 1 --messages "$MESSAGES" --window 20 \
  --concurrency 50 --phase-timeout 300 --max-seconds 600 --drain 10
kill -TERM "$PID"
wait "$PID" || true
callgrind_annotate "$OUT/callgrind.out" 2>/dev/null | sed -n '1,45p'
