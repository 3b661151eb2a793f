#!/usr/bin/env bash
# A network of three rookery nodes over a three-server NATS cluster, side by
# side with one node alone, on loopback: prints the figures of the network's
# targets with their ratios.
#
#   benches/network.sh          the full run (about 3 minutes on 2 cores)
#   benches/network.sh --quick  smaller counts (about a minute)
#
# What runs (full; --quick in brackets):
#   fan-out, 10 rooms × 50 members × 2 senders, 2,000 [500] messages per
#     sender, window 100: against one node, then with each room's members
#     spread over the three nodes (member i on node i mod 3); deliveries
#     per second and per server CPU-second (the three nodes' CPU summed);
#   latency: the same rooms, each sender at 100 messages/s for 10 s [3 s],
#     on one node and spread over the three; p50 and p99 from send to
#     delivery;
#   room state: a change sent to a room's home node and its event seen
#     by a third node, against compare-and-set on a key per room in
#     JetStream (create, update, the update seen by a watch, a read);
#     500 of each in a row, p50/p90/p99 (bench/src/bin/room-state.rs);
#   a node's death: a user of node 3 in a room with a user of node 1;
#     node 3 is killed with SIGKILL; the seconds until node 1 shows its
#     QUIT (heartbeat 1,000 ms, node timeout 3,000 ms, the defaults).
#
# Every node runs benches/peers/rookery.toml (history on, flood control off)
# with a [network] block. All three nodes and the load generator share the
# machine's cores, so the per-CPU-second figure of three nodes carries the
# cost of the network (JSON, NATS, three fan-outs) and of the cores' sharing.
# Needs nats-server (Debian: apt-get install nats-server).
# Results: benches/results/network/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=full
for arg in "$@"; do
  case "$arg" in
    --quick) MODE=quick ;;
    *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
  esac
done
MESSAGES=2000
RATE_SECONDS=10
if [ "$MODE" = quick ]; then MESSAGES=500; RATE_SECONDS=3; fi

NATS=$(command -v nats-server || echo /usr/sbin/nats-server)
[ -x "$NATS" ] || { echo "nats-server not found: apt-get install nats-server" >&2; exit 1; }

RUNDIR=$(mktemp -d /tmp/rookery-network.XXXXXX)
RESULTS=benches/results/network
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$RUNDIR"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

echo "== load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== building rookery and rookery-bench (release)"
cargo build --release --bins --quiet
BENCH=target/release/rookery-bench

wait_port() {
  for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "nothing listens on $1" >&2
  exit 1
}

# NATS: three servers, client ports 24221-24223, routes 26221-26223.
ROUTES="nats-route://127.0.0.1:26221, nats-route://127.0.0.1:26222, nats-route://127.0.0.1:26223"
for n in 1 2 3; do
  mkdir -p "$RUNDIR/nats$n"
  cat >"$RUNDIR/nats$n.conf" <<EOF
server_name: n$n
listen: 127.0.0.1:2422$n
jetstream { store_dir: "$RUNDIR/nats$n" }
cluster { name: bench, listen: 127.0.0.1:2622$n, routes: [ $ROUTES ] }
EOF
  "$NATS" -c "$RUNDIR/nats$n.conf" >"$RUNDIR/nats$n.out" 2>&1 &
  PIDS+=($!)
done
for n in 1 2 3; do wait_port "2422$n"; done

# Room state across nodes: a home node per room against a key per room
# (docs/DESIGN.md, "Room state"), on the cluster just started.
echo "-- room state: home node or key per room"
target/release/room-state nats://127.0.0.1:24221,nats://127.0.0.1:24222,nats://127.0.0.1:24223 \
  | tee "$RESULTS/room-state.md"

# A node's configuration: the bench's, on its own port and database, with
# [network] when it is one of three.
node_config() {
  local n=$1 networked=$2
  sed -e "s#^address = \"127.0.0.1:16669\"#address = \"127.0.0.1:1667$n\"#" \
      -e "s#^path = \"/tmp/rookery-bench-history.db\"#path = \"$RUNDIR/history$n.db\"#" \
      -e "s#^name = \"rookery.bench\"#name = \"node$n.bench\"#" \
    benches/peers/rookery.toml
  if [ "$networked" = yes ]; then
    printf '\n[network]\nnode = "node%s"\nnats = ["nats://127.0.0.1:2422%s"]\n' "$n" "$n"
  fi
}

NODE_PIDS=()
start_nodes() {
  local count=$1 networked=$2
  NODE_PIDS=()
  for n in $(seq "$count"); do
    rm -f "$RUNDIR"/history"$n".db*
    node_config "$n" "$networked" >"$RUNDIR/node$n.toml"
    target/release/rookery --config "$RUNDIR/node$n.toml" >"$RUNDIR/node$n.out" 2>&1 &
    NODE_PIDS+=($!)
    PIDS+=($!)
  done
  for n in $(seq "$count"); do wait_port "1667$n"; done
  # Each node has heard the others' heartbeats (every second) before users
  # arrive, so no introduction waits for a burst.
  if [ "$count" -gt 1 ]; then sleep 2; fi
}

stop_nodes() {
  for pid in "${NODE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${NODE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  NODE_PIDS=()
  sleep 1
}

bench() {
  local name=$1
  shift
  echo "-- $name (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  "$BENCH" "$@" --concurrency 500 --connect-rate 2000 --json --max-seconds 240 \
    >"$RESULTS/$name.json" 2>"$RESULTS/$name.err"
}

FANOUT="fanout --rooms 10 --members 50 --senders 2 --window 100"
ALSO="--also 127.0.0.1:16672,127.0.0.1:16673"

start_nodes 1 no
bench single-fanout $FANOUT --messages "$MESSAGES" --server 127.0.0.1:16671 \
  --pid "${NODE_PIDS[0]}" --label one-node
stop_nodes

start_nodes 1 no
bench single-latency $FANOUT --rate 100 --duration "$RATE_SECONDS" \
  --server 127.0.0.1:16671 --pid "${NODE_PIDS[0]}" --label one-node
stop_nodes

start_nodes 3 yes
bench three-fanout $FANOUT --messages "$MESSAGES" --server 127.0.0.1:16671 $ALSO \
  --pid "${NODE_PIDS[0]}" --also-pid "${NODE_PIDS[1]},${NODE_PIDS[2]}" --label three-nodes
stop_nodes

start_nodes 3 yes
bench three-latency $FANOUT --rate 100 --duration "$RATE_SECONDS" \
  --server 127.0.0.1:16671 $ALSO \
  --pid "${NODE_PIDS[0]}" --also-pid "${NODE_PIDS[1]},${NODE_PIDS[2]}" --label three-nodes
stop_nodes

start_nodes 3 yes
echo "-- a node's death"
python3 - "${NODE_PIDS[2]}" >"$RESULTS/death.json" <<'EOF'
import json, os, signal, socket, sys, time

def client(port, nick):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
    return s, s.makefile("rb")

def until(reader, needle, limit=15):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        line = reader.readline().decode(errors="replace")
        if not line:
            break
        if needle in line:
            return line
    sys.exit(f"no line with {needle!r}")

watcher, watched = client(16671, "watcher")
until(watched, " 376 ")
victim, victim_lines = client(16673, "victim")
until(victim_lines, " 376 ")
watcher.sendall(b"JOIN #death\r\n")
until(watched, " 366 ")
victim.sendall(b"JOIN #death\r\n")
until(watched, "victim!")
os.kill(int(sys.argv[1]), signal.SIGKILL)
killed = time.monotonic()
until(watched, " QUIT ")
print(json.dumps({"seconds": time.monotonic() - killed}))
EOF
stop_nodes

python3 - "$RESULTS" <<'EOF'
import json, sys
results = sys.argv[1]

def metrics(name):
    with open(f"{results}/{name}.json") as f:
        return {m["name"]: m["value"] for m in json.load(f)["metrics"]}

one, three = metrics("single-fanout"), metrics("three-fanout")
alone, latency = metrics("single-latency"), metrics("three-latency")
with open(f"{results}/death.json") as f:
    death = json.load(f)["seconds"]

def per_cpu(m):
    return m["deliveries_per_second"] / (m["server_cpu_percent"] / 100)

rows = [
    ("fan-out 10×50×2: deliveries/s", one["deliveries_per_second"], three["deliveries_per_second"], None, "none, shown"),
    ("fan-out 10×50×2: server CPU %", one["server_cpu_percent"], three["server_cpu_percent"], None, "none, shown"),
    ("fan-out 10×50×2: deliveries per server CPU-second", per_cpu(one), per_cpu(three),
     per_cpu(three) / per_cpu(one) >= 0.70, "three ≥ 0.70 × one"),
    ("fan-out 10×50×2: lost", one["lost_deliveries"], three["lost_deliveries"],
     three["lost_deliveries"] == 0, "0"),
    ("100 msg/s per sender: latency p50 ms", alone["latency_p50_ms"], latency["latency_p50_ms"], None, "none, shown"),
    ("100 msg/s per sender: latency p99 ms", alone["latency_p99_ms"], latency["latency_p99_ms"],
     latency["latency_p99_ms"] < 20, "three < 20"),
    ("100 msg/s per sender: server CPU %", alone["server_cpu_percent"], latency["server_cpu_percent"], None, "none, shown"),
    ("100 msg/s per sender: lost", alone["lost_deliveries"], latency["lost_deliveries"],
     latency["lost_deliveries"] == 0, "0"),
    ("a node killed: seconds until its QUIT shows", None, death, death < 5, "< 5"),
]

def cell(value):
    if value is None:
        return ""
    return f"{value:,.0f}" if value >= 1000 else f"{value:.2f}"

print("| figure | one node | three nodes | three ÷ one | target | holds |")
print("| --- | ---: | ---: | ---: | --- | --- |")
for name, a, b, holds, target in rows:
    ratio = f"{b / a:.2f}" if a else ""
    verdict = "—" if holds is None else ("yes" if holds else "no")
    print(f"| {name} | {cell(a)} | {cell(b)} | {ratio} | {target} | {verdict} |")
EOF
