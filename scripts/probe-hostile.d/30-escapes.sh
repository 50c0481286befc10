# Processes that leave the program's process group (issue 11, item 5): a
# writer, a checker, or a power-loss writer that starts a `setsid` daemon.
# Nothing may be running after the run.
#
# Besides the driver's check of processes carrying its PROBE_MARK, each
# daemon here hands its pid to the program that started it,
# through a fifo (the program reads it before going on, so no daemon is
# left unrecorded by timing), which appends it to $PROBE_DIR/pids; the pids
# are checked after the case. Fifos live in the case's own directory, not
# in its TMPDIR (which must end empty, and a crash may strike between
# mkfifo and rm).
#
# shellcheck shell=bash disable=SC2016
# SC2016: the $ in the programs are for the sh that crashlab runs.

# Start a daemon and record its pid; then ack twice.
escapes_daemon='f=$(mktemp -u "$PROBE_DIR/fifo.XXXXXX"); mkfifo "$f"; setsid sh -c '"'"'echo $$ > "$0"; exec sleep 300'"'"' "$f" >/dev/null 2>&1 < /dev/null & read -r p < "$f"; rm -f "$f"; echo "$p" >> "$PROBE_DIR/pids"'
escapes_writer="$escapes_daemon; echo ack 0; sleep 0.05; echo ack 1"
escapes_checker="$escapes_daemon; exit 0"

# After probe_run: every recorded daemon must be gone (a pid now used by
# another process is not a `sleep 300`).
escapes_check() {
  local p left=""
  [ -s "$CASE_DIR/pids" ] || { fail "$CASE_NAME: no daemon was started (the case tests nothing)"; return; }
  while read -r p; do
    if [ "$(tr '\0' ' ' 2>/dev/null < "/proc/$p/cmdline")" = "sleep 300 " ]; then
      left="$left $p"
      kill -KILL "$p" 2>/dev/null
    fi
  done < "$CASE_DIR/pids"
  [ -z "$left" ] || fail "$CASE_NAME: daemons left running:$left"
}

probe_begin "escapes: a writer starting a setsid daemon, sigkill"
probe_run 0 'seed' -- env PROBE_DIR="$CASE_DIR" "$bin" run --shell --writer "$escapes_writer" --checker true \
  --crash sigkill,sigabrt --trials 3 --jobs 2 --seed 1 --out "$CASE_DIR/r.json"
escapes_check

probe_begin "escapes: a checker starting a setsid daemon"
probe_run 0 'seed' -- env PROBE_DIR="$CASE_DIR" "$bin" run --shell --writer 'echo ack 0; sleep 0.05; echo ack 1' \
  --checker "$escapes_checker" --crash sigkill --trials 3 --jobs 2 --seed 1 --out "$CASE_DIR/r.json"
escapes_check

probe_begin "escapes: a power-loss writer starting a setsid daemon"
probe_run 0 'seed' -- env PROBE_DIR="$CASE_DIR" "$bin" run --shell --writer "$escapes_writer" --checker true \
  --crash power-loss --trials 3 --seed 1 --allow-no-acks --out "$CASE_DIR/r.json"
escapes_check
