#!/usr/bin/env python3
"""Turns the JSON reports of benches/compare.sh into one table.

usage: table.py RESULTS_DIR compare|scaling
Writes RESULTS_DIR/summary.json beside the reports and prints a Markdown table.
"""
import json
import pathlib
import re
import statistics
import sys

SERVERS = ["rookery", "ngircd", "inspircd"]
PEERS = ["ngircd", "inspircd"]

# (run name, metric, label, which way is better: "high", "low" or None)
ROWS = [
    ("fanout-10x50x2", "deliveries_per_second", "fanout 10×50×2: deliveries/s", "high"),
    ("fanout-10x50x2", "latency_p50_ms", "fanout 10×50×2: p50 latency ms", "low"),
    ("fanout-10x50x2", "latency_p99_ms", "fanout 10×50×2: p99 latency ms", "low"),
    ("fanout-10x50x2", "lost_deliveries", "fanout 10×50×2: lost", "low"),
    ("fanout-10x50x2", "deliveries_per_cpu_second",
     "fanout 10×50×2: deliveries per server CPU-second", "high"),
    ("fanout-10x50x2", "server_writes_per_delivery",
     "fanout 10×50×2: server write calls per delivery", "low"),
    ("fanout-10x50x2", "server_cpu_percent", "fanout 10×50×2: server CPU %", None),
    ("fanout-10x50x2", "bench_cpu_percent", "fanout 10×50×2: generator CPU %", None),
    ("fanout-1x1000x1", "deliveries_per_second", "fanout 1×1000×1: deliveries/s", "high"),
    ("fanout-1x1000x1", "latency_p50_ms", "fanout 1×1000×1: p50 latency ms", "low"),
    ("fanout-1x1000x1", "latency_p99_ms", "fanout 1×1000×1: p99 latency ms", "low"),
    ("fanout-1x1000x1", "latency_max_ms", "fanout 1×1000×1: max latency ms", "low"),
    ("fanout-1x1000x1", "lost_deliveries", "fanout 1×1000×1: lost", "low"),
    ("fanout-1x1000x1", "deliveries_per_cpu_second",
     "fanout 1×1000×1: deliveries per server CPU-second", "high"),
    ("fanout-1x1000x1", "server_writes_per_delivery",
     "fanout 1×1000×1: server write calls per delivery", "low"),
    ("fanout-1x1000x1", "server_cpu_percent", "fanout 1×1000×1: server CPU %", None),
    ("fanout-1x1000x1", "bench_cpu_percent", "fanout 1×1000×1: generator CPU %", None),
    ("connect", "connects_per_second", "connect: connects/s", "high"),
    ("connect", "registered", "connect: registered", "high"),
    ("connect", "failures", "connect: failures", "low"),
    ("idle", "rss_per_client_kib", "idle: server RSS per client KiB", "low"),
    ("churn", "deliveries_per_second", "churn: chat deliveries/s", "high"),
    ("churn", "latency_p99_ms", "churn: chat p99 latency ms", "low"),
    ("churn", "lost_deliveries", "churn: chat lost", "low"),
    ("churn", "churn_ops_per_second", "churn: churn ops/s", "high"),
    ("churn", "churn_failures", "churn: churn failures", "low"),
]


def add_derived(report):
    """Deliveries per second of server CPU: how much work each delivery costs
    the server, which other load on the machine moves less than throughput."""
    values = {m["name"]: m["value"] for m in report["metrics"]}
    cpu = values.get("server_cpu_percent")
    if cpu and "deliveries_per_second" in values:
        report["metrics"].append({"name": "deliveries_per_cpu_second",
                                  "value": values["deliveries_per_second"] / (cpu / 100),
                                  "unit": "/cpu-s"})


def load(results):
    """Reports by (server, run), each figure the median of its rounds."""
    rounds = {}
    for path in sorted(results.glob("*.json")):
        if path.name == "summary.json":
            continue
        server, _, run = path.stem.partition("-")
        run = re.sub(r"^r[0-9]+-", "", run)
        try:
            report = json.loads(path.read_text())
        except ValueError:
            continue
        add_derived(report)
        rounds.setdefault((server, run), []).append(report)
    reports = {}
    for key, runs in rounds.items():
        names = {m["name"] for report in runs for m in report["metrics"]}
        medians = {}
        for name in names:
            values = [m["value"] for report in runs for m in report["metrics"]
                      if m["name"] == name]
            medians[name] = statistics.median(values)
        reports[key] = {"params": runs[0]["params"], "metrics": medians, "rounds": len(runs),
                        "failures": [f for report in runs for f in report["failures"]]}
    return reports


def fmt(value):
    if value is None:
        return "—"
    if value == int(value) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def ratio(rookery, peers, better):
    peers = [p for p in peers if p is not None]
    if rookery is None or not peers or better is None:
        return "", None
    best = max(peers) if better == "high" else min(peers)
    if best == 0:
        return ("same" if rookery == 0 else "worse"), None
    value = rookery / best
    return f"{value:.2f}×", value


def compare(reports):
    print("| figure | rookery | ngIRCd | InspIRCd | rookery ÷ best peer |")
    print("| --- | ---: | ---: | ---: | ---: |")
    summary = []
    for run, metric, label, better in ROWS:
        values = {s: reports.get((s, run), {}).get("metrics", {}).get(metric) for s in SERVERS}
        text, value = ratio(values["rookery"], [values[p] for p in PEERS], better)
        print(f"| {label} | " + " | ".join(fmt(values[s]) for s in SERVERS) + f" | {text} |")
        summary.append({"run": run, "metric": metric, "better": better, "values": values,
                        "ratio_to_best_peer": value})
    counts = sorted({rep["rounds"] for rep in reports.values()})
    print(f"\nEach figure is the median of {', '.join(map(str, counts))} round(s).")
    failures = [(s, r, f) for (s, r), rep in sorted(reports.items()) for f in rep["failures"]]
    for server, run, failure in failures:
        print(f"\n{server} {run}: {failure}")
    return summary


def scaling(reports):
    print("| members | deliveries/s | p50 ms | p99 ms | max ms | lost | server CPU % "
          "| deliveries per CPU-s | setup s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = []
    for (server, run), report in sorted(reports.items(),
                                        key=lambda item: item[1]["params"]["members"]):
        m = report["metrics"]
        members = report["params"]["members"]
        cells = [m.get(k) for k in ("deliveries_per_second", "latency_p50_ms", "latency_p99_ms",
                                    "latency_max_ms", "lost_deliveries", "server_cpu_percent",
                                    "deliveries_per_cpu_second", "setup_seconds")]
        print(f"| {members:,} | " + " | ".join(fmt(c) for c in cells) + " |")
        rows.append({"members": members, "metrics": m})
    return rows


def main():
    results = pathlib.Path(sys.argv[1])
    mode = sys.argv[2]
    reports = load(results)
    summary = compare(reports) if mode == "compare" else scaling(reports)
    (results / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
