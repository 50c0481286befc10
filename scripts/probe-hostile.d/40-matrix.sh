# shellcheck shell=bash
# Matrix and soundness flags beyond what the machine can hold, and hostile
# work directories (issue 11). Sourced by scripts/probe-hostile.sh.

# probe_refused NAME REGEX ARGS...: `crashlab ARGS --out R` exits 2 in well
# under 10 s with REGEX on stderr, and a report already at R is untouched.
probe_refused() {
  local name=$1 regex=$2 start elapsed; shift 2
  probe_begin "$name"
  cp "$good_report" "$CASE_DIR/r.json"
  start=$(date +%s%N)
  probe_run 2 "$regex" -- "$bin" "$@" --out "$CASE_DIR/r.json"
  elapsed=$((($(date +%s%N) - start) / 1000000))
  [ "$elapsed" -lt 10000 ] || fail "$CASE_NAME: took ${elapsed} ms to refuse (limit 10 s)"
  report_intact "$CASE_DIR/r.json"
}

# A 1 TiB file used to panic in page_buffer.rs in both workers.
probe_refused "matrix --size 1 TiB" '--size 1099511627776 is above the maximum 1073741824' \
  matrix --size 1099511627776
# 10^8 transactions used to grow to 12.5 GB and ignore Ctrl-C.
probe_refused "matrix --txns 10^8" '--txns 100000000 is above the maximum 100000' \
  matrix --txns 100000000
probe_refused "matrix --size 0" '--size 0 .*not a positive multiple of the page size' \
  matrix --size 0
probe_refused "matrix --points random:4e9" 'random:N: N 4000000000 is above the maximum' \
  matrix --points random:4000000000
probe_refused "matrix --trials 4e9" '--trials 4000000000 is above the maximum' \
  matrix --trials 4000000000
probe_refused "matrix --jobs 10^6" '--jobs 1000000 is above the maximum 1024' \
  matrix --jobs 1000000
# Within every maximum, beyond this machine's memory.
probe_refused "matrix --size 1 GiB --jobs 1024" 'needs about .* of memory, more than the limit' \
  matrix --size 1073741824 --jobs 1024
probe_refused "matrix --timeout 0" '--timeout must be at least 1' \
  matrix --crash clean --timeout 0
probe_refused "matrix --dir /nonexistent" '--dir /nonexistent: no such directory' \
  matrix --dir /nonexistent
probe_refused "soundness --jobs 0" '--jobs must be at least 1' \
  soundness --jobs 0
probe_refused "soundness --trials 4e9" '--trials 4000000000 is above the maximum' \
  soundness --trials 4000000000
probe_refused "soundness --size 64 MiB" '--size 67108864 .*does not fit in the 64 MiB filesystem image' \
  soundness --fs ext4 --size 67108864

probe_case "replay --size 1 TiB" 2 '--size 1099511627776 is above the maximum' -- \
  "$bin" replay --scenario shared/no-sync --crash clean --point none --seed 1 --size 1099511627776
probe_case "bench --sizes 1 TiB" 2 '--sizes 1099511627776 is above the maximum' -- \
  "$bin" bench --sizes 4096,1099511627776

# --dir on a full tiny tmpfs: refused, naming the directory and saying the
# filesystem is full. The tmpfs lives in a mount namespace of the command's
# own (unshare -m), so it vanishes with it whatever happens.
if [ "$(id -u)" = 0 ] && command -v unshare > /dev/null; then
  probe_begin "matrix --dir on a full tmpfs"
  mkdir -p "$CASE_DIR/full"
  cp "$good_report" "$CASE_DIR/r.json"
  # shellcheck disable=SC2016
  probe_run 2 "--dir $CASE_DIR/full.*the filesystem is full" -- \
    unshare -m --propagation private sh -c \
    'mount -t tmpfs -o size=64k crashlab-probe "$1" || exit 99
     dd if=/dev/zero of="$1/filler" bs=4096 2>/dev/null
     shift; exec "$@"' sh "$CASE_DIR/full" \
    "$bin" matrix --crash clean --seed 1 --dir "$CASE_DIR/full" --out "$CASE_DIR/r.json"
  report_intact "$CASE_DIR/r.json"
  [ -z "$(ls -A "$CASE_DIR/full")" ] || fail "$CASE_NAME: the tmpfs or its files are visible outside the command"
else
  echo "== matrix --dir on a full tmpfs: skipped (needs root and unshare to mount a tmpfs)"
fi
