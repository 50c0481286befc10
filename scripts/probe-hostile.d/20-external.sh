# shellcheck shell=bash
# Hostile users' programs for `crashlab run --writer` (workload protocol v1):
# endless stdout, writers that ack nothing, missing programs, bad flags.
# Sourced by scripts/probe-hostile.sh (uses $bin, $CASE_DIR, probe_case).

# ext_case NAME EXIT REGEX RUN-ARGS...: `crashlab run --seed 1 RUN-ARGS`
# with the report in the case's own directory (set by probe_begin).
ext_case() {
  local name=$1 expected=$2 regex=$3
  shift 3
  probe_begin "$name"
  probe_run "$expected" "$regex" -- "$bin" run --seed 1 --out "$CASE_DIR/report.json" "$@"
}

# One ack, then an endless line: a protocol error naming the writer and the
# 64 KiB cap, not an abort on a 4 GiB allocation.
ext_case "external: writer prints an endless line (cat /dev/zero)" 2 \
  "writer .*echo ack 0; cat /dev/zero.* printed a line of more than 64 KiB.*caps one ack line" \
  --shell --writer 'echo ack 0; cat /dev/zero' --checker true --crash sigkill --trials 2

# Endless short lines: bounded by the cap on lines per run.
ext_case "external: writer prints endless short lines (yes)" 2 \
  "writer .yes ack. \(--writer\) printed more than 1048576 lines" \
  --shell --writer 'yes ack' --checker true --crash sigkill --trials 2

# The same flood under the durability oracle (power-loss reads acks through
# its own pipe): the writer floods only when traced.
ext_case "external: traced power-loss writer floods its stdout" 2 \
  "durability oracle.*printed a line of more than 64 KiB" \
  --shell --writer "echo ack 0; grep -q '^TracerPid:[[:space:]]*0\$' /proc/self/status && exit 0; exec cat /dev/zero" \
    --checker true --crash power-loss --trials 2

# A writer that acks nothing tested nothing: exit 2 ...
ext_case "external: writer acks nothing" 2 "NOTHING ACKNOWLEDGED.*--allow-no-acks" \
  --writer true --checker true --crash sigkill --trials 2
# ... unless the user says that is the point.
ext_case "external: writer acks nothing, --allow-no-acks" 0 "crashlab: seed 1" \
  --writer true --checker true --crash sigkill --trials 2 --allow-no-acks

ext_case "external: missing writer program" 2 "--writer .no-such-writer-xyz.: program .no-such-writer-xyz. not found" \
  --writer no-such-writer-xyz --checker true --crash sigkill --trials 2
ext_case "external: unknown crash kind" 2 "'meteor' for '--crash" \
  --writer true --checker true --crash meteor --trials 2
probe_case "external: --allow-no-acks without --writer" 2 "--writer" -- \
  "$bin" run --allow-no-acks --scenario shared/no-sync --crash sigkill

# A checker server (protocol v1.1) that answers garbage, then one that
# floods an endless answer line: checker malfunctions naming the server,
# and no server left running (its `sleep` and `cat` included).
ext_case "external: checker server answers garbage" 2 \
  "checker malfunction: .* \(--checker-server\) answered \"yes\", which is neither" \
  --shell --writer 'echo ack 0' --checker-server 'while read -r r; do echo yes; sleep 600; done' \
  --crash sigkill --trials 2
ext_case "external: checker server floods an endless answer" 2 \
  "checker malfunction: .* \(--checker-server\) answered a line of more than 64 KiB" \
  --shell --writer 'echo ack 0' --checker-server 'read -r r; cat /dev/zero' --crash sigkill --trials 2
