"""Prints an irctest run's failures and skips from pytest's JUnit XML.

    python3 summary.py report.xml

Failures come one a line, with the first line of their assertion message;
skipped tests come grouped by the reason irctest gives (most often the
feature they need), so the list doubles as a to-do list.
"""

from collections import defaultdict
import sys
import xml.etree.ElementTree as ET


def test_id(case: ET.Element) -> str:
    module, _, cls = case.get("classname", "").rpartition(".")
    return f"{module.replace('.', '/')}.py::{cls}::{case.get('name')}"


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""


def main(path: str) -> None:
    failures = []
    skips = defaultdict(list)
    for case in ET.parse(path).iter("testcase"):
        for tag in ("failure", "error"):
            for problem in case.findall(tag):
                reason = first_line(problem.get("message") or problem.text or "")
                failures.append(f"{test_id(case)}: {reason}")
        for skipped in case.findall("skipped"):
            skips[first_line(skipped.get("message") or "")].append(test_id(case))

    print(f"irctest: {len(failures)} failed")
    for line in failures:
        print(f"  {line}")
    total = sum(len(ids) for ids in skips.values())
    print(f"irctest: {total} skipped, by reason")
    for reason, ids in sorted(skips.items(), key=lambda item: (-len(item[1]), item[0])):
        print(f"  {reason} ({len(ids)})")
        for one in ids:
            print(f"    {one}")


if __name__ == "__main__":
    main(sys.argv[1])
