#!/usr/bin/env bash
# Hostile-input probe: runs crashlab the way a careless or malicious user
# would (huge files, endless writer output, absurd flags, full disks,
# escaping daemons, planted symlinks) and checks, for every case, that
#   - the exit code is the documented one (2 for bad input or a harness
#     error), with a message on stderr, and no panic or abort;
#   - nothing is left behind: no process started by the case, no file in
#     the case's private TMPDIR, no new mount or loop device;
#   - a previous report the case must not destroy is intact.
# The cases live in scripts/probe-hostile.d/*.sh, one file per area; each
# calls the functions below. `.ci/run` (through scripts/test) runs this.
#
#   scripts/probe-hostile.sh [CRASHLAB_BINARY]
#
# Exit: 0 every case held; 1 some case did not (each failure is printed).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
if [ $# -ge 1 ]; then
  bin=$(realpath "$1")
else
  cargo build --release -q -p crashlab -p crashlab-scenarios || exit 2
  bin="$root/${CARGO_TARGET_DIR:-target}/release/crashlab"
fi
workload="$(dirname "$bin")/crashlab-workload"
probe_root=$(mktemp -d /tmp/crashlab-probe.XXXXXX)
trap 'rm -rf "$probe_root"' EXIT
failures=0
cases=0

fail() { echo "  FAIL: $*"; failures=$((failures + 1)); }

mounts_now() { wc -l < /proc/self/mounts; }
loops_now() { losetup -a 2>/dev/null | wc -l; }

# Every process whose environment carries the case's marker: the processes
# the case started, however they detached (setsid, double fork, setuid).
marked_processes() {
  local mark=$1 p
  for p in /proc/[0-9]*; do
    # The process may be gone by now: the redirection's error is the shell's.
    if { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -qx "PROBE_MARK=$mark"; then
      echo "${p#/proc/} $({ tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null)"
    fi
  done
}

# probe_case NAME EXPECTED_EXIT MESSAGE_REGEX -- CMD...
# Runs CMD (a crashlab invocation; "$bin" is the binary) with a private
# TMPDIR, a 120 s limit, and a marker in the environment; then checks the
# exit code, that stderr matches MESSAGE_REGEX (extended regex, case
# insensitive), that nothing panicked or aborted, and that nothing leaked.
# CASE_DIR (a scratch directory for the case's own files) is set before
# the call by probe_begin.
probe_begin() {
  CASE_NAME=$1
  cases=$((cases + 1))
  CASE_DIR="$probe_root/case-$cases"
  mkdir -p "$CASE_DIR/tmp"
}
probe_run() {
  local expected=$1 regex=$2; shift 3
  local mark="probe-$$-$cases" before_m before_l rc stderr
  before_m=$(mounts_now); before_l=$(loops_now)
  stderr="$CASE_DIR/stderr"
  echo "== $CASE_NAME"
  env TMPDIR="$CASE_DIR/tmp" PROBE_MARK="$mark" timeout -s KILL 120 "$@" \
    > "$CASE_DIR/stdout" 2> "$stderr" < /dev/null
  rc=$?
  if [ "$rc" -ne "$expected" ]; then
    fail "$CASE_NAME: exit $rc, expected $expected; stderr: $(head -c 600 "$stderr")"
  fi
  if ! grep -qiE -- "$regex" "$stderr"; then
    fail "$CASE_NAME: stderr does not match /$regex/: $(head -c 600 "$stderr")"
  fi
  if grep -qE 'panicked at|memory allocation of .* failed|RUST_BACKTRACE' "$stderr"; then
    fail "$CASE_NAME: panic or abort: $(grep -m1 -E 'panicked at|memory allocation' "$stderr")"
  fi
  sleep 0.2
  local left
  left=$(marked_processes "$mark")
  if [ -n "$left" ]; then
    fail "$CASE_NAME: processes left behind: $left"
    marked_processes "$mark" | awk '{print $1}' | xargs -r kill -KILL 2>/dev/null
  fi
  if [ -n "$(ls -A "$CASE_DIR/tmp")" ]; then
    fail "$CASE_NAME: temporary files left in TMPDIR: $(ls -A "$CASE_DIR/tmp" | head -5 | tr '\n' ' ')"
  fi
  [ "$(mounts_now)" = "$before_m" ] || fail "$CASE_NAME: mounts changed ($before_m -> $(mounts_now))"
  [ "$(loops_now)" = "$before_l" ] || fail "$CASE_NAME: loop devices changed"
  return 0
}
# probe_case NAME EXPECTED_EXIT REGEX -- CMD...: probe_begin + probe_run.
probe_case() { probe_begin "$1"; shift; probe_run "$@"; }

# A valid report to protect: every case that must not destroy a previous
# report copies this one into place first and checks it afterwards.
good_report="$probe_root/good.json"
"$bin" matrix --seed 1 --scenario shared/ms-sync-each --crash clean --points boundaries --quiet \
  --out "$good_report" > /dev/null 2>&1 || { echo "probe: cannot make a valid report with $bin"; exit 2; }
report_intact() { # FILE: the file is still byte-identical to the good report
  cmp -s "$good_report" "$1" || fail "$CASE_NAME: the previous report $1 was changed or destroyed"
}

for f in scripts/probe-hostile.d/*.sh; do
  [ -e "$f" ] || continue
  # shellcheck source=/dev/null
  . "$f"
done

echo "probe-hostile: $cases cases, $failures failure(s)"
[ "$failures" -eq 0 ]
