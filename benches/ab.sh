#!/usr/bin/env bash
# Two rookery binaries side by side: the same rookery-bench scenarios
# against each, alternating A, B, A, B so load from elsewhere falls on both
# alike; each run on a fresh server and database with
# benches/peers/rookery.toml. Prints each figure's median and B/A, and the
# deliveries (or connects) per second of server CPU, which load elsewhere
# skews less than a rate.
#
#   benches/ab.sh OLD_BINARY NEW_BINARY        5 rounds (about 2 minutes)
#   ROUNDS=3 benches/ab.sh OLD NEW
#
# Build an older binary with e.g. `git worktree add /tmp/old <commit>` and
# `cargo build --release` there. Port 16669; reports in benches/results/ab/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ]; then echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; fi
A=$(realpath "$1"); B=$(realpath "$2")
ROUNDS=${ROUNDS:-5}
OUT=benches/results/ab
rm -rf "$OUT"; mkdir -p "$OUT"
cargo build --release --quiet -p rookery-bench
BENCH=$PWD/target/release/rookery-bench
ulimit -n "$(ulimit -Hn)"

run() { # SIDE BINARY NAME SCENARIO ARGS...
  local side=$1 binary=$2 name=$3 dir pid
  shift 3
  dir=$(mktemp -d /tmp/rookery-ab.XXXXXX)
  sed "s#/tmp/rookery-bench-history.db#$dir/history.db#" benches/peers/rookery.toml >"$dir/rookery.toml"
  "$binary" --config "$dir/rookery.toml" >"$dir/out" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    if (exec 3<>/dev/tcp/127.0.0.1/16669) 2>/dev/null; then break; fi
    sleep 0.1
  done
  "$BENCH" "$@" --server 127.0.0.1:16669 --pid "$pid" --label "$side" --json --max-seconds 240 \
    >"$OUT/$side-$name-$round.json" 2>"$OUT/$side-$name-$round.err" ||
    echo "   $side $name round $round failed: $(cat "$OUT/$side-$name-$round.err")"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
  # Let the sockets of the last run close before the next server starts.
  sleep 1
}

PACING="--concurrency 1000 --connect-rate 2000"
for round in $(seq "$ROUNDS"); do
  for side in A B; do
    binary=$A; [ "$side" = B ] && binary=$B
    echo "-- round $round, $side (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    run "$side" "$binary" fanout10x50x2 fanout --rooms 10 --members 50 --senders 2 \
      --messages 2000 --window 100 $PACING
    run "$side" "$binary" fanout1x1000x1 fanout --rooms 1 --members 1000 --senders 1 \
      --messages 2000 --window 100 $PACING
    run "$side" "$binary" connect connect --clients 5000 --concurrency 1000 --connect-rate 5000
  done
done

python3 - "$OUT" <<'PY'
import collections, glob, json, os, statistics, sys
values = collections.defaultdict(list)
for path in glob.glob(sys.argv[1] + "/*.json"):
    side, name, _ = os.path.basename(path)[:-5].split("-")
    try:
        metrics = {m["name"]: m["value"] for m in json.load(open(path))["metrics"]}
    except (ValueError, KeyError):
        continue
    for key, value in metrics.items():
        values[(name, key, side)].append(value)
    rate = metrics.get("deliveries_per_second") or metrics.get("connects_per_second")
    if rate and metrics.get("server_cpu_percent"):
        values[(name, "per_server_cpu_second", side)].append(rate / metrics["server_cpu_percent"] * 100)
shown = ["deliveries_per_second", "connects_per_second", "per_server_cpu_second",
         "server_cpu_percent", "latency_p50_ms", "latency_p99_ms", "lost_deliveries"]
print(f"{'scenario':16} {'figure':24} {'A':>12} {'B':>12} {'B/A':>6}")
for name in sorted({name for name, _, _ in values}):
    for key in shown:
        a, b = values.get((name, key, "A")), values.get((name, key, "B"))
        if not a or not b:
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        ratio = f"{mb / ma:6.2f}" if ma else "     -"
        print(f"{name:16} {key:24} {ma:12.1f} {mb:12.1f} {ratio}")
PY
