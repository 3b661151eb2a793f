#!/usr/bin/env bash
# A long run, not part of the test suite: 2,000 clients for 10 minutes (by
# default) with chat in 40 rooms while 200 churners join, part, change nick
# and reconnect. Afterwards it checks what a soak must show: no panic in the
# log, every message delivered to every member exactly once (the bench
# counts each sender's sequence numbers per member), and the server's memory
# back near its baseline once the clients are gone.
#
#   benches/soak.sh [SECONDS [ROUNDS]]     (default 600 seconds, 1 round)
#
# With several rounds against the same server, the memory after each round
# tells a leak (growing round after round) from memory the allocator keeps
# for reuse (flat after the first round).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
rounds=${2:-1}
work=$(mktemp -d /tmp/rookery-soak.XXXXXX)
port=16670

cargo build --release --bins >/dev/null

cat >"$work/rookery.toml" <<TOML
# As benches/peers/rookery.toml, relaxed alike: 2,000 clients from one
# address, no flood control (the bench paces itself), long ping timeouts.
[server]
name = "rookery.soak"
[[listen]]
address = "127.0.0.1:$port"
[limits]
max_clients = 5000
max_clients_per_ip = 5000
connects_per_ip_per_minute = 0
[timeouts]
ping_interval = 600
ping_timeout = 600
[flood]
enabled = false
[history]
enabled = true
path = "$work/history.db"
[log]
level = "info"
TOML

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

target/release/rookery --config "$work/rookery.toml" 2>"$work/server.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q "listening on" "$work/server.log" && break; sleep 0.1; done
baseline=$(rss_kib $server)

afters=()
for round in $(seq "$rounds"); do
    target/release/rookery-bench churn --server "127.0.0.1:$port" --pid $server --json \
        --rooms 40 --members 45 --senders 2 --rate 1 --duration "$seconds" \
        --churners 200 --churn-rate 100 --drain 10 \
        --max-seconds $((seconds + 300)) --phase-timeout 120 >"$work/report-$round.json"
    # The clients are gone; wait one memory-trim interval (30 s) so what
    # the server gave back shows.
    sleep 35
    afters+=("$(rss_kib $server)")
done
kill -TERM $server
wait $server || true
trap - EXIT

panics=$(grep -ci "panicked" "$work/server.log" || true)
python3 - "$work"/report-*.json <<'PY'
import json, sys
keys = ["expected_deliveries", "lost_deliveries", "duplicate_deliveries",
        "disconnected_clients", "churn_ops_per_second", "churn_failures",
        "latency_p50_ms", "latency_p99_ms", "latency_max_ms", "server_rss_mib"]
for path in sys.argv[1:]:
    metrics = {m["name"]: m["value"] for m in json.load(open(path))["metrics"]}
    print(path.rsplit("/", 1)[-1], ", ".join(f"{k}={metrics.get(k)}" for k in keys))
PY
echo
echo "soak: ${rounds} round(s) of ${seconds}s, 2,000 clients"
echo "server RSS: baseline ${baseline} KiB; after each round ${afters[*]} KiB"
echo "panics in the server log: ${panics}"
echo "files: $work"
