#!/usr/bin/env bash
# Nightly campaign: a long randomized matrix, every crash kind and every
# persistence model, on the default temp dir, on tmpfs and with a large file.
# The seed comes from the date (printed, recorded in each report).
#
# Writes, per run, JSON + HTML + JUnit into reports/out/nightly-<date>/, and
# the replay lines of failing trials into regressions.txt there (copy the
# ones worth keeping into scenarios/regressions.txt). If a previous nightly
# directory is present, each report is diffed against the previous one of the
# same name (<name>.diff.txt).
#
# Exit: 0 all as expected and no regression; 1 a model violation, an
# unexpected verdict or a regression against the previous nightly; 2 the
# harness failed.
set -uo pipefail
cd "$(dirname "$0")/.."
date_tag=$(date -u +%Y-%m-%d)
seed=$(date -u +%Y%m%d)
# CRASHLAB_NIGHTLY_SEED reruns a nightly with another seed (e.g. a second
# run on one day); its reports go to a directory of their own.
if [ -n "${CRASHLAB_NIGHTLY_SEED:-}" ]; then
  seed=$CRASHLAB_NIGHTLY_SEED
  date_tag="$date_tag-seed$seed"
fi
out="reports/out/nightly-$date_tag"
previous=$(ls -1d reports/out/nightly-* 2>/dev/null | grep -v "/nightly-$date_tag\$" | sort | tail -n 1)
mkdir -p "$out"
echo "nightly $date_tag: seed $seed; previous nightly: ${previous:-none}"
cargo build --release -p crashlab || exit 2
bin="${CARGO_TARGET_DIR:-target}/release/crashlab"

status=0
worst() { [ "$1" -gt "$status" ] && status=$1; return 0; }

# run NAME POINTS [FLAGS...]
run() {
  local name=$1 points=$2; shift 2
  echo "== $name"
  "$bin" matrix --seed "$seed" --crash sigkill,abort,sigbus,clean,enospc --points "$points" \
    --out "$out/$name.json" --html "$out/$name.html" --junit "$out/$name.junit.xml" \
    --regressions "$out/regressions.txt" --quiet "$@"
  worst $?
  compare "$name"
}

# compare NAME: diff $out/NAME.json (a survival or soundness report) against
# the previous nightly's; a regression fails the nightly.
compare() {
  local name=$1
  if [ -n "$previous" ] && [ -f "$previous/$name.json" ] && [ -f "$out/$name.json" ]; then
    "$bin" report diff "$previous/$name.json" "$out/$name.json" > "$out/$name.diff.txt"
    local rc=$?
    cat "$out/$name.diff.txt"
    if [ "$rc" -eq 2 ]; then
      # An unreadable previous report (e.g. an older major schema version)
      # is no regression: there is nothing to compare with.
      echo "nightly: cannot compare with $previous/$name.json; skipped"
    else
      worst "$rc"
    fi
  fi
}

run default-tmp random:2000
if [ -d /dev/shm ]; then
  run tmpfs random:2000 --dir /dev/shm
fi
run large-file random:200 --size 16777216

# Users' programs under the namespace power-loss model: correct designs
# that create, rename, grow and delete files (and SQLite, judged by what its
# documentation promises) must pass every state under every --fs-model: a
# violation here is a false alarm of the model, or a bug in the example.
cargo build --release -p crashlab-scenarios || exit 2
workload="${CARGO_TARGET_DIR:-target}/release/crashlab-workload"
for fs in posix ext4 xfs btrfs; do
  for example in atomic-replace segmented-log grow-ftruncate wal shadow lmdb; do
    echo "== program $example ($fs)"
    "$bin" run --setup "$workload $example setup" --writer "$workload $example writer" \
      --checker "$workload $example checker" --crash power-loss --fs-model "$fs" --trials 20 --seed "$seed" \
      --dir /dev/shm --out "$out/program-$example-$fs.json" --quiet
    worst $?
  done
done
# Every crash kind at every traced call (--points syscalls): correct designs
# pass every point (a violation is a false alarm of the oracle's crash
# points, or a bug in the example), with a fresh seed each night.
for example in kv-append-first atomic-replace segmented-log; do
  echo "== program $example (--points syscalls)"
  "$bin" run --setup "$workload $example setup --records 6" --writer "$workload $example writer --records 6" \
    --checker "$workload $example checker" --crash sigkill,abort,power-loss --points syscalls --trials 120 \
    --seed "$seed" --dir /dev/shm --out "$out/program-$example-syscalls.json" --quiet
  worst $?
done
# ... and the mistake no random time finds is caught at its call (exit 1).
echo "== program kv-header-first (--points syscalls, must be caught)"
"$bin" run --setup "$workload kv-header-first setup" --writer "$workload kv-header-first writer --records 4" \
  --checker "$workload kv-header-first checker" --crash sigkill --points syscalls --trials 120 --seed "$seed" \
  --dir /dev/shm --out "$out/program-kv-header-first-syscalls.json" --quiet
case $? in
  1) ;;
  0) echo "nightly: kv-header-first was not caught at its calls"; worst 1 ;;
  *) worst 2 ;;
esac
# The write history: a page may hold any version it had since its last
# sync. The correct recovery passes every state, also with a 1 ms history
# timer; the recovery that assumes a page is at its floor or newest is
# caught (exit 1).
for every in "" "--history-every 1000"; do
  echo "== program redo-from-page (history ${every:-at calls})"
  "$bin" run --setup "$workload redo-from-page setup" --writer "$workload redo-from-page writer" \
    --checker "$workload redo-from-page checker" --crash power-loss --trials 60 --seed "$seed" $every \
    --dir /dev/shm --out "$out/program-redo-from-page.json" --quiet
  worst $?
done
echo "== program redo-from-checkpoint (history, must be caught)"
"$bin" run --setup "$workload redo-from-checkpoint setup" --writer "$workload redo-from-checkpoint writer" \
  --checker "$workload redo-from-checkpoint checker" --crash power-loss --trials 60 --seed "$seed" \
  --dir /dev/shm --out "$out/program-redo-from-checkpoint.json" --quiet
case $? in
  1) ;;
  0) echo "nightly: redo-from-checkpoint was not caught by an intermediate version"; worst 1 ;;
  *) worst 2 ;;
esac
# A failed sync (eio-sync): the log that stops acking passes; the one that
# ignores the EIO and the one that trusts a retried msync are caught (exit 1).
for example in eio-stop eio-ignore eio-retry; do
  echo "== program $example (eio-sync)"
  "$bin" run --setup "$workload $example setup --records 6" --writer "$workload $example writer --records 6" \
    --checker "$workload $example checker" --crash eio-sync,power-loss --trials 40 --seed "$seed" \
    --dir /dev/shm --out "$out/program-$example.json" --quiet
  rc=$?
  case "$example:$rc" in
    eio-stop:*) worst $rc ;;
    *:1) ;;
    *:0) echo "nightly: $example was not caught by a failed sync"; worst 1 ;;
    *) worst 2 ;;
  esac
done
# A full disk (enospc, a tmpfs of a hard capacity in a user + mount
# namespace): preallocating with fallocate and stopping on ENOSPC passes;
# acking after an unchecked write is caught (exit 1).
for example in fill-fallocate fill-mapped append-unchecked; do
  echo "== program $example (enospc)"
  "$bin" run --writer "$workload $example writer --records 64" --checker "$workload $example checker" \
    --crash enospc,sigkill --trials 20 --seed "$seed" --out "$out/program-$example.json" --quiet
  rc=$?
  case "$example:$rc" in
    append-unchecked:1) ;;
    append-unchecked:0) echo "nightly: append-unchecked was not caught on a full disk"; worst 1 ;;
    *) worst $rc ;;
  esac
done
# The power-loss states after a full disk (enospc,power-loss): syncing the
# file's entry and each record before its ack passes; acking unsynced
# records is caught, and so is never fsyncing the directory that holds the
# file (fill-fallocate: its entry may be lost). The summary line names the
# enospc trials' violations ("VIOLATION enospc trial"), which the plain
# power-loss trials of the same run cannot fake.
for example in fill-fallocate-durable fill-fallocate-unsynced fill-fallocate; do
  echo "== program $example (enospc,power-loss)"
  "$bin" run --writer "$workload $example writer --records 64" --checker "$workload $example checker" \
    --crash enospc,power-loss --trials 10 --seed "$seed" --dir /dev/shm \
    --out "$out/program-$example-after-full-disk.json" > "$out/program-$example-after-full-disk.txt"
  rc=$?
  case "$example:$rc" in
    fill-fallocate-durable:*) worst $rc ;;
    *:1)
      if ! grep -q "^VIOLATION enospc trial .*: at a power loss after the full disk" "$out/program-$example-after-full-disk.txt"; then
        echo "nightly: $example failed, but not in a power-loss state after the full disk"; worst 1
      fi ;;
    *:0) echo "nightly: $example was not caught at a power loss after the full disk"; worst 1 ;;
    *) worst 2 ;;
  esac
done
for example in sqlite-delete-extra sqlite-wal-full; do
  echo "== program $example (posix)"
  "$bin" run --setup "$workload $example setup --records 8" --writer "$workload $example writer --records 8" \
    --checker "$workload $example checker" --crash power-loss --trials 6 --seed "$seed" \
    --dir /dev/shm --out "$out/program-$example.json" --quiet
  worst $?
done

# Model soundness: real power cuts checked against the simulated model.
# loopcut (root): ext4, xfs, btrfs on loop devices. vm: a qemu guest killed;
# its cache ($CRASHLAB_VM_DIR, default reports/out/vm-cache) is filled by
# scripts/vm-setup.sh. Exit 1 on a model soundness violation (evidence kept).
echo "== soundness (loopcut)"
if [ "$(id -u)" = 0 ]; then
  "$bin" soundness --backend loopcut --fs ext4,xfs,btrfs --trials 500 --seed "$seed" \
    --out "$out/soundness-loopcut.json" --html "$out/soundness-loopcut.html" --junit "$out/soundness-loopcut.junit.xml" --keep-dir "$out/soundness-evidence" --quiet
  worst $?
  compare soundness-loopcut
  # Files whose page cache their creator's write(2) made: ext4/xfs hold
  # them in large folios, and a ranged msync writes back whole folios.
  "$bin" soundness --backend loopcut --fs ext4,xfs,btrfs --trials 200 --seed "$seed" --page-cache written \
    --out "$out/soundness-loopcut-written.json" --html "$out/soundness-loopcut-written.html" --junit "$out/soundness-loopcut-written.junit.xml" --keep-dir "$out/soundness-evidence" --quiet
  worst $?
  compare soundness-loopcut-written
  # Namespace operations (create, rename, unlink, grow, reuse a name, with
  # and without their syncs) cut for real, judged by the posix namespace
  # model; the diff flags an operation whose kept or lost count drops to 0.
  "$bin" soundness --backend loopcut --fs ext4,xfs,btrfs --workloads namespace --ns-cuts 20 --seed "$seed" \
    --out "$out/soundness-namespace.json" --html "$out/soundness-namespace.html" --junit "$out/soundness-namespace.junit.xml" --keep-dir "$out/soundness-evidence" --quiet
  worst $?
  compare soundness-namespace
  # Writeback pressure, one campaign per filesystem: a syncfs helper during
  # the writers makes cuts keep unsynced pages and intermediate versions, so
  # the model's rules about what *may* survive meet real states. The diff
  # flags a rule whose coverage drops to zero (compared under the same
  # pressure, and only when the previous rate makes zero unlikely by luck).
  for fs in ext4 xfs btrfs; do
    "$bin" soundness --backend loopcut --fs "$fs" --trials 600 --seed "$seed" --writeback syncfs:1000 \
      --scenario shared/no-sync,shared/ms-async-each,probe/partial-msync --size 8192 --txns 200 --writers-per-cut 1 \
      --out "$out/soundness-pressure-$fs.json" --html "$out/soundness-pressure-$fs.html" --junit "$out/soundness-pressure-$fs.junit.xml" --keep-dir "$out/soundness-evidence" --quiet
    worst $?
    compare "soundness-pressure-$fs"
  done
  # Real cuts of users' programs (power-loss-real), under writeback
  # pressure so that unsynced pages and intermediate versions reach the
  # disk: correct designs pass, and no post-cut directory may be outside
  # the simulated model (a model soundness violation exits 1 with evidence).
  for fs in ext4 xfs btrfs; do
    for example in wal redo-from-page atomic-replace; do
      echo "== program $example (power-loss-real, $fs, syncfs:300)"
      "$bin" run --setup "$workload $example setup" --writer "$workload $example writer" \
        --checker "$workload $example checker" --crash power-loss-real --real-fs "$fs" --writeback syncfs:300 \
        --trials 16 --seed "$seed" --out "$out/program-real-$example-$fs.json" --quiet
      worst $?
    done
  done
  echo "== program redo-from-page (power-loss-real, ext4, expire:5)"
  "$bin" run --setup "$workload redo-from-page setup" --writer "$workload redo-from-page writer" \
    --checker "$workload redo-from-page checker" --crash power-loss-real --writeback expire:5 \
    --trials 16 --seed "$seed" --out "$out/program-real-redo-from-page-expire.json" --quiet
  worst $?
else
  echo "nightly: soundness (loopcut) unavailable: needs root; skipped"
fi
echo "== soundness (vm)"
export CRASHLAB_VM_DIR="${CRASHLAB_VM_DIR:-reports/out/vm-cache}"
vm_ready=0
if bash scripts/vm-setup.sh; then
  vm_ready=1
  "$bin" soundness --backend vm --trials 60 --jobs 2 --seed "$seed" \
    --out "$out/soundness-vm.json" --html "$out/soundness-vm.html" --junit "$out/soundness-vm.junit.xml" --keep-dir "$out/soundness-evidence" --quiet
  worst $?
  compare soundness-vm
  # The same guest on a disk with a volatile write cache (NBD, served by
  # crashlab), its dirty pages written back within ~20 ms so that writes
  # are still unflushed at the cut: each cut checked in up to 8 disk states.
  for disk in volatile-reorder volatile-torn; do
    echo "== soundness (vm, $disk)"
    "$bin" soundness --backend vm --disk "$disk" --guest-writeback-cs 1 --disk-states 8 --trials 30 --jobs 2 \
      --seed "$seed" --out "$out/soundness-vm-$disk.json" --html "$out/soundness-vm-$disk.html" --junit "$out/soundness-vm-$disk.junit.xml" --keep-dir "$out/soundness-evidence" --quiet
    worst $?
    compare "soundness-vm-$disk"
  done
else
  echo "nightly: vm setup failed"
  worst 2
fi

# The survival matrix with its real columns beside the simulated ones: a
# seeded sample of 4 boundaries per writer, the same in every real column
# (a vm cut costs ~4 s), while the simulated columns take every boundary.
if [ "$(id -u)" = 0 ] && [ "$vm_ready" = 1 ]; then
  run real-columns boundaries --model process-crash,power-loss,power-loss-real \
    --real loopcut:ext4,loopcut:xfs,loopcut:btrfs,vm --real-sample 4
else
  echo "nightly: real columns need root and the vm guest; skipped"
fi

echo "nightly $date_tag: seed $seed, exit $status; reports in $out"
exit "$status"
