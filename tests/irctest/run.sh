#!/usr/bin/env bash
# Runs irctest, the IRC conformance suite, against the release build (or
# the binary ROOKERY_BIN names).
#
#   IRCTEST_DIR=/path/to/irctest bash tests/irctest/run.sh [pytest arguments]
#
# IRCTEST_DIR defaults to ../shared/irctest beside the repository. It is
# copied to a temporary directory first (irctest writes caches, and the
# original may be read-only), and its requirements go into a virtualenv
# made there; everything is removed at the end. Extra arguments go to
# pytest, e.g. `-k testKick` or `-x`.
#
# The tests left out, each with its reason, are in deselected.txt beside
# this script. Exits non-zero when a test fails or none ran.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
irctest_dir="${IRCTEST_DIR:-$root/../shared/irctest}"
deselected="$here/deselected.txt"

# The selection irctest's own Makefile uses for servers like this one:
# no other server's specifics, no deprecated or over-strict readings.
common='not Ergo and not deprecated and not strict and not implementation-specific'
markers="$common and not services"
# Services (accounts) tests run for the files listed, whose features
# rookery has built in; the other services files test features it does
# not have (bouncers, read markers, ZNC playback, ...).
services_markers="services and $common"
services_files=(sasl account_tag account_registration extended_join whois chathistory who monitor redact
    read_marker chmodes/account_extban)

if [[ ! -d "$irctest_dir/irctest/server_tests" ]]; then
    echo "irctest: no irctest checkout at $irctest_dir (set IRCTEST_DIR)" >&2
    exit 2
fi
irctest_dir="$(cd "$irctest_dir" && pwd)"

# The deselections: "<test id> <reason>" per line; lines starting with #
# are comments.
deselect_args=()
line_number=0
while IFS= read -r line || [[ -n "$line" ]]; do
    line_number=$((line_number + 1))
    read -r test_id reason <<<"$line" || true
    [[ "${test_id:-}" == \#* ]] && continue
    [[ -z "${test_id:-}" ]] && continue
    if [[ -z "${reason:-}" ]]; then
        echo "irctest: $deselected:$line_number: $test_id has no reason" >&2
        exit 2
    fi
    deselect_args+=(--deselect "$test_id")
done <"$deselected"

# ROOKERY_BIN names a binary to test; else the release build is made.
if [[ -z "${ROOKERY_BIN:-}" ]]; then
    echo "irctest: building the release binary"
    (cd "$root" && cargo build --release --bin rookery)
    ROOKERY_BIN="${CARGO_TARGET_DIR:-$root/target}/release/rookery"
    if [[ "$ROOKERY_BIN" != /* ]]; then
        ROOKERY_BIN="$root/$ROOKERY_BIN"
    fi
fi
export ROOKERY_BIN
[[ -x "$ROOKERY_BIN" ]] || { echo "irctest: no binary at $ROOKERY_BIN" >&2; exit 2; }

work="$(mktemp -d -t rookery-irctest.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cp -R "$irctest_dir" "$work/irctest"
chmod -R u+w "$work/irctest"

echo "irctest: installing its requirements in a virtualenv"
if ! python3 -m venv "$work/venv"; then
    echo "irctest: python3 -m venv failed; on Debian, apt-get install python3-venv" >&2
    exit 2
fi
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -r "$work/irctest/requirements.txt"

echo "irctest: running ($("$ROOKERY_BIN" --version))"
started=$SECONDS
set +e
mkdir "$work/tmp" "$work/logs"
# One pytest run: its report name, its markers, then pytest arguments.
run_pytest() {
    local report="$1" selection="$2"
    shift 2
    (
        cd "$work/irctest"
        # irctest keeps its port registry in $TMPDIR: a run of its own does
        # not collide with another run on the same machine.
        TMPDIR="$work/tmp" ROOKERY_IRCTEST_LOGS="$work/logs" PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" \
            "$work/venv/bin/python" -m pytest \
            -p no:cacheprovider \
            --controller rookery_controller \
            -m "$selection" \
            "${deselect_args[@]}" \
            --junitxml "$work/$report.xml" \
            --tb=short -q -rfE \
            "$@"
    ) 2>&1 | tee "$work/$report.log"
    return "${PIPESTATUS[0]}"
}
services_paths=()
for file in "${services_files[@]}"; do
    services_paths+=("irctest/server_tests/$file.py")
done
run_pytest report "$markers" "$@" irctest/server_tests/
status=$?
run_pytest services "$services_markers" "$@" "${services_paths[@]}"
services_status=$?
# A failure in either run fails; "no test ran" (5) only when neither ran one.
if [[ $status -eq 5 && $services_status -ne 5 ]] || [[ $status -eq 0 && $services_status -ne 5 ]]; then
    status=$services_status
fi
set -e
for report in report services; do
    if [[ -s "$work/$report.xml" ]]; then
        "$work/venv/bin/python" "$here/summary.py" "$work/$report.xml"
    fi
done
# A server that could not start or stopped says why on its last lines.
for log in "$work"/logs/*.log; do
    [[ -e "$log" ]] || continue
    if grep -q -e '^rookery: ' -e ' ERROR ' "$log"; then
        echo "irctest: server log $(basename "$log"):"
        tail -n 5 "$log" | sed 's/^/    /'
    fi
done
echo "irctest: $(tail -n 1 "$work/report.log")"
echo "irctest: services: $(tail -n 1 "$work/services.log")"
echo "irctest: finished in $((SECONDS - started)) s, pytest exit status $status"
case $status in
    0) ;;
    5) echo "irctest: no test ran: check the selection and the controller" >&2 ;;
    *) echo "irctest: FAILED" >&2 ;;
esac
exit "$status"
