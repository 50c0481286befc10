# shellcheck shell=bash
# Reports: bounded readers (devices, endless pipes, directories, junk),
# atomic writers (a failed write keeps the previous report, a planted
# symlink is replaced not followed, concurrent writers never mix), and an
# error's cause printed once. Sourced by scripts/probe-hostile.sh.

quick_run=(matrix --scenario shared/ms-sync-each --crash clean --points boundaries)
cap='larger than 64 MiB'

probe_case "report show /dev/zero" 2 "/dev/zero.*$cap" -- "$bin" report show /dev/zero

probe_begin "report html /dev/zero --out PREVIOUS"
cp "$good_report" "$CASE_DIR/prev.json"
probe_run 2 "/dev/zero.*$cap" -- "$bin" report html /dev/zero --out "$CASE_DIR/prev.json"
report_intact "$CASE_DIR/prev.json"

probe_case "report diff /dev/zero /dev/zero" 2 "/dev/zero.*$cap" -- "$bin" report diff /dev/zero /dev/zero

probe_begin "report merge /dev/zero --out PREVIOUS"
cp "$good_report" "$CASE_DIR/prev.json"
probe_run 2 "/dev/zero.*$cap" -- "$bin" report merge /dev/zero --out "$CASE_DIR/prev.json"
report_intact "$CASE_DIR/prev.json"

probe_case "report show of an endless pipe" 2 "$cap" -- bash -c '"$0" report show <(yes)' "$bin"

probe_begin "report show DIRECTORY: the cause once"
mkdir "$CASE_DIR/a-dir"
probe_run 2 "cannot read the report .*a-dir: it is a directory" -- "$bin" report show "$CASE_DIR/a-dir"
n=$(grep -oi "directory" "$CASE_DIR/stderr" | wc -l)
[ "$n" -eq 1 ] || fail "$CASE_NAME: the cause is printed $n times: $(cat "$CASE_DIR/stderr")"

probe_begin "report show of junk JSON"
printf '{"schema_version": ' > "$CASE_DIR/junk.json"
probe_run 2 "junk.json is not JSON" -- "$bin" report show "$CASE_DIR/junk.json"

probe_begin "--out a planted symlink: replaced, its target untouched"
cp "$good_report" "$CASE_DIR/victim.json"
ln -s "$CASE_DIR/victim.json" "$CASE_DIR/out.json"
probe_run 0 "seed 2" -- "$bin" "${quick_run[@]}" --seed 2 --out "$CASE_DIR/out.json"
report_intact "$CASE_DIR/victim.json"
[ -f "$CASE_DIR/out.json" ] && [ ! -L "$CASE_DIR/out.json" ] ||
  fail "$CASE_NAME: --out is still a symlink, or no file was written"
"$bin" report show "$CASE_DIR/out.json" > /dev/null 2>&1 || fail "$CASE_NAME: the new report does not read"

probe_begin "--out whose parent is a regular file"
echo x > "$CASE_DIR/file"
probe_run 2 "--out .*file/r.json: cannot create its directory" -- \
  "$bin" "${quick_run[@]}" --seed 1 --quiet --out "$CASE_DIR/file/r.json"

# A full disk, for root and everyone else: a file size limit (RLIMIT_FSIZE,
# SIGXFSZ ignored) fails the write of the new page midway.
probe_begin "report html --out PREVIOUS on a full disk (file size limit)"
cp "$good_report" "$CASE_DIR/prev.json"
probe_run 2 "--out .*prev.json: .*unchanged" -- \
  bash -c 'ulimit -f 1; trap "" XFSZ; exec "$@"' _ "$bin" report html "$good_report" --out "$CASE_DIR/prev.json"
report_intact "$CASE_DIR/prev.json"
ls -A "$CASE_DIR" | grep -q '\.tmp$' && fail "$CASE_NAME: a temporary file was left: $(ls -A "$CASE_DIR")"

if [ "$(id -u)" -eq 0 ] && mkdir -p "$probe_root/tiny" && mount -t tmpfs -o size=64k tmpfs "$probe_root/tiny" 2>/dev/null; then
  # A real full filesystem, with the previous report on it.
  probe_begin "matrix --out PREVIOUS on a full tmpfs (root)"
  cp "$good_report" "$probe_root/tiny/prev.json"
  dd if=/dev/zero of="$probe_root/tiny/filler" bs=4k 2>/dev/null
  probe_run 2 "--out .*prev.json: .*(No space left|unchanged)" -- \
    "$bin" "${quick_run[@]}" --quiet --seed 3 --out "$probe_root/tiny/prev.json"
  report_intact "$probe_root/tiny/prev.json"
  ls -A "$probe_root/tiny" | grep -q '\.tmp$' && fail "$CASE_NAME: a temporary file was left"
  umount "$probe_root/tiny"
elif [ "$(id -u)" -ne 0 ]; then
  # Not root: a read-only directory holds the previous report.
  probe_begin "matrix --out PREVIOUS in a read-only directory"
  mkdir "$CASE_DIR/ro"
  cp "$good_report" "$CASE_DIR/ro/prev.json"
  chmod 555 "$CASE_DIR/ro"
  probe_run 2 "--out .*prev.json: cannot create a temporary file" -- \
    "$bin" "${quick_run[@]}" --quiet --seed 3 --out "$CASE_DIR/ro/prev.json"
  report_intact "$CASE_DIR/ro/prev.json"
  chmod 755 "$CASE_DIR/ro"
fi

probe_begin "three runs writing one --out at once"
probe_run 0 "seed" -- bash -c 'for s in 4 5 6; do "$@" --seed $s & done; wait' _ \
  "$bin" "${quick_run[@]}" --out "$CASE_DIR/same.json"
"$bin" report show "$CASE_DIR/same.json" > /dev/null 2>&1 ||
  fail "$CASE_NAME: concurrent writers left an unreadable report: $(head -c 300 "$CASE_DIR/same.json")"
[ "$(ls -A "$CASE_DIR" | grep -c '\.tmp$')" -eq 0 ] || fail "$CASE_NAME: temporary files left"
