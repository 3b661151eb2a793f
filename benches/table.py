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

SERVERS = ["rookery", "rookery_nohistory", "inspircd", "ngircd"]
HEADINGS = {"rookery": "rookery", "rookery_nohistory": "rookery, history off",
            "inspircd": "InspIRCd", "ngircd": "ngIRCd"}

# Targets: (kind, number). "vs_min": rookery ÷ InspIRCd at least the number;
# "vs_max": at most the number; "min"/"max": rookery's own figure at least /
# at most the number; "zero": rookery's figure is 0; None: shown, no target.
F1, F2 = "fanout-10x50x2", "fanout-1x1000x1"

# (label, run, metric, target). A run of "history:<run>" divides rookery's
# figure by rookery's with history off.
ROWS = [
    ("1. fanout 10×50×2: deliveries/s", F1, "deliveries_per_second", ("vs_min", 2.0)),
    ("1. fanout 10×50×2: deliveries per server CPU-second", F1,
     "deliveries_per_cpu_second", ("vs_min", 2.0)),
    ("1. fanout 10×50×2: lost", F1, "lost_deliveries", ("zero", 0)),
    ("2. fanout 1×1000×1: deliveries/s", F2, "deliveries_per_second", ("vs_min", 2.0)),
    ("2. fanout 1×1000×1: deliveries per server CPU-second", F2,
     "deliveries_per_cpu_second", ("vs_min", 2.0)),
    ("2. fanout 1×1000×1: lost", F2, "lost_deliveries", ("zero", 0)),
    ("3. round trip 1×2×1 at 100/s: p50 ms", "rtt", "latency_p50_ms", ("vs_max", 1.0)),
    ("3. round trip 1×2×1 at 100/s: p99 ms", "rtt", "latency_p99_ms", ("vs_max", 1.0)),
    ("3. round trip 1×2×1 at 100/s: server CPU %", "rtt", "server_cpu_percent",
     ("vs_max", 1.0)),
    ("4. history on ÷ off: fanout 10×50×2 deliveries per CPU-second", "history:" + F1,
     "deliveries_per_cpu_second", ("min", 0.85)),
    ("4. history on ÷ off: fanout 1×1000×1 deliveries per CPU-second", "history:" + F2,
     "deliveries_per_cpu_second", ("min", 0.85)),
    ("4. history on ÷ off: round trip p50", "history:rtt", "latency_p50_ms", None),
    ("4. history on ÷ off: round trip p99", "history:rtt", "latency_p99_ms", None),
    ("5. idle, 10 rooms: RSS per client KiB", "idle", "rss_per_client_kib", ("max", 2.0)),
    ("5. idle, 10 rooms, TLS: RSS per client KiB", "idletls", "rss_per_client_kib",
     ("vs_max", 1.0)),
    ("5. idle: registered", "idle", "registered", None),
    ("6. connect at once: registrations/s", "connect", "connects_per_second",
     ("vs_min", 1.0)),
    ("6. connect at once: failures", "connect", "failures", ("zero", 0)),
    ("7. big room: join seconds", "join", "join_seconds", ("vs_max", 1.0)),
    ("7. big room: server CPU %", "join", "server_cpu_percent", None),
    ("7. big room +u: join seconds", "joinu", "join_seconds", ("max", 2.0)),
    ("8. memory after load: RSS at start MiB", "memory", "rss_start_mib", None),
    ("8. memory after load: RSS after the rounds MiB", "memory", "rss_after_rounds_mib",
     None),
    ("8. memory after load: RSS after 35 s MiB", "memory", "rss_after_rest_mib", None),
    ("8. memory after load: after ÷ start", "memory", "rss_ratio", ("max", 1.10)),
    ("8. memory after load: lost", "memory", "lost_deliveries", ("zero", 0)),
    ("churn: chat p99 latency ms", "churn", "latency_p99_ms", ("vs_max", 1.0)),
    ("churn: chat lost", "churn", "lost_deliveries", ("zero", 0)),
    ("churn: churn failures", "churn", "churn_failures", ("zero", 0)),
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


def target_text(target):
    if target is None:
        return "none, shown"
    kind, number = target
    return {"vs_min": f"≥ {number:g}× InspIRCd", "vs_max": f"≤ {number:g}× InspIRCd",
            "min": f"≥ {number:g}", "max": f"≤ {number:g}", "zero": "0"}[kind]


def holds(target, rookery, vs):
    """"yes", "no, by …" (how far from the target) or "—" (not measured)."""
    if target is None:
        return "—"
    kind, number = target
    value = vs if kind in ("vs_min", "vs_max") else rookery
    if value is None:
        return "— (not measured)"
    unit = "×" if kind in ("vs_min", "vs_max") else ""
    if kind in ("vs_min", "min"):
        return "yes" if value >= number else f"no, by {number - value:.2f}{unit}"
    if kind in ("vs_max", "max"):
        return "yes" if value <= number else f"no, by {value - number:.2f}{unit}"
    return "yes" if value == 0 else f"no, by {fmt(value)}"


def compare(reports):
    shown = [s for s in SERVERS
             if s != "ngircd" or any(server == s for server, _ in reports)]
    print("| figure | target | " + " | ".join(HEADINGS[s] for s in shown)
          + " | rookery ÷ InspIRCd | holds |")
    print("| --- | --- | " + " | ".join("---:" for _ in shown) + " | ---: | --- |")
    summary = []
    for label, run, metric, target in ROWS:
        if run.startswith("history:"):
            run = run.partition(":")[2]
            on = reports.get(("rookery", run), {}).get("metrics", {}).get(metric)
            off = reports.get(("rookery_nohistory", run), {}).get("metrics", {}).get(metric)
            value = on / off if on is not None and off else None
            values = {s: None for s in shown}
            values["rookery"] = value
            cells = [f"{value:.2f}" if value is not None else "—"] + ["" for _ in shown[1:]]
            verdict = holds(target, value, None)
            print(f"| {label} | {target_text(target)} | " + " | ".join(cells)
                  + f" |  | {verdict} |")
            summary.append({"label": label, "run": run, "metric": metric, "values": values,
                            "target": target_text(target), "holds": verdict})
            continue
        values = {}
        cells = []
        for server in shown:
            report = reports.get((server, run))
            metrics = report["metrics"] if report else {}
            values[server] = metrics.get(metric)
            if metrics.get("mode_refused") == 1:
                cells.append("mode refused")
            else:
                cells.append(fmt(values[server]))
        rookery, peer = values.get("rookery"), values.get("inspircd")
        vs = rookery / peer if rookery is not None and peer else None
        verdict = holds(target, rookery, vs)
        vs_text = f"{vs:.2f}×" if vs is not None else ""
        print(f"| {label} | {target_text(target)} | " + " | ".join(cells)
              + f" | {vs_text} | {verdict} |")
        summary.append({"label": label, "run": run, "metric": metric, "values": values,
                        "rookery_to_inspircd": vs, "target": target_text(target),
                        "holds": verdict})
    counts = sorted({rep["rounds"] for rep in reports.values()})
    print(f"\nEach figure is the median of its rounds ({', '.join(map(str, counts))} here): "
          "fan-outs and round trip in every round, the rest in one.")
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
