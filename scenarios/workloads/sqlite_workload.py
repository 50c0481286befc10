#!/usr/bin/env python3
"""SQLite as a crashlab target (workload protocol v1), through python3's
standard ``sqlite3`` module.

Usage (``crashlab-workload sqlite-JOURNAL-SYNC ROLE`` runs exactly this)::

    python3 sqlite_workload.py setup   --journal delete|wal
    python3 sqlite_workload.py writer  --journal delete|wal --sync off|normal|full|extra \\
                                       [--records N] [--pace-us MICROS] [--mmap-size BYTES]
    python3 sqlite_workload.py checker --journal delete|wal --sync off|normal|full|extra
    python3 sqlite_workload.py version

Every role works in ``$CRASHLAB_DIR`` (the working directory otherwise) on
the database ``test.db`` and its table
``txns(id INTEGER PRIMARY KEY, payload BLOB, checksum INTEGER)``.

- ``setup`` creates the database and its (empty) table, sets
  ``PRAGMA journal_mode``, closes it (in WAL mode that checkpoints and removes
  ``test.db-wal``), then fsyncs ``test.db`` and the directory: crashlab takes
  what a setup leaves as durable, and this makes it so on a real machine.
- ``writer`` connects, sets ``PRAGMA journal_mode``, ``PRAGMA synchronous``
  and ``PRAGMA mmap_size`` (default 1 MiB) and reads each back (it dies,
  exit 2, if SQLite did not take it: e.g. a build with
  ``SQLITE_MAX_MMAP_SIZE=0``), then commits ``--records`` transactions (32 by
  default), each inserting one row ``(K, payload, crc32(payload))`` (100 to
  1500 payload bytes, a function of ``$CRASHLAB_SEED`` and K) and printing
  ``txn K`` only after ``commit()`` returned.
- ``checker`` opens the database read-write, as any reader after a crash
  does: SQLite rolls a hot journal back, or recovers the WAL, on the first
  read, which is its documented recovery (lockingv3.html: "Before reading
  from a a database file, SQLite always checks to see if that database file
  has a hot journal. If the file does have a hot journal, then the journal
  is rolled back before the file is read."; this changes the state
  directory, which crashlab allows). Then:

  1. ``PRAGMA integrity_check`` must say ``ok`` (else violation
     ``corrupt: ...``; so must opening and reading the database at all);
  2. every row's checksum must match its payload, which must be the payload
     of its id;
  3. the ids must be ``0..n`` (transactions are atomic and serial: a later
     one without an earlier one is not a state any commit order makes), and
     at most one past the last acked transaction (the one in flight);
  4. the acked transactions must be there **only as far as the mode promises
     durability after a power loss** (below): every one (``all``), every one
     but the last (``all-but-last``), or none is required (``none``).

  A violation exits 1 with its reason as the first line of stderr (the
  protocol's rule, as ``common::violation`` does); a malfunction (bad
  arguments, an unreadable acks file) exits 2.

What SQLite promises after a power loss (``--crash power-loss``), per mode
==========================================================================

From https://www.sqlite.org/pragma.html#pragma_synchronous:

- OFF: "With synchronous OFF (0), SQLite continues without syncing as soon as
  it has handed data off to the operating system. If the application running
  SQLite crashes, the data will be safe, but the database might become
  corrupted if the operating system crashes or the computer loses power
  before that data has been written to the disk surface."
  -> durability ``none``; and no promise against corruption either, so
  ``sqlite-*-off`` is the mistake crashlab should catch (``corrupt: ...``).
- NORMAL: "There is a very small (though non-zero) chance that a power
  failure at just the wrong time could corrupt the database in
  journal_mode=DELETE on an older filesystem. WAL mode is safe from
  corruption with synchronous=NORMAL, and probably DELETE mode is safe too on
  modern filesystems. WAL mode is always consistent with synchronous=NORMAL,
  but WAL mode does lose durability. A transaction committed in WAL mode with
  synchronous=NORMAL might roll back following a power loss or system crash.
  Transactions are durable across application crashes regardless of the
  synchronous setting or journal mode."
  -> durability ``none`` (both journal modes); never corrupt in WAL mode.
- FULL: "When synchronous is FULL (2), the SQLite database engine will use
  the xSync method of the VFS to ensure that all content is safely written
  to the disk surface prior to continuing. This ensures that an operating
  system crash or power failure will not corrupt the database." and (the
  current page) "FULL is atomic, consistent, isolated, and durable (ACID) in
  WAL mode and is atomic, consistent, and isolated with a rollback journal.
  FULL might also be durable using a rollback journal, depending on the
  underlying filesystem. FULL is not necessarily durable across a power loss
  in rollback mode, so if durability is desired, it is best to set the
  synchronous mode to EXTRA."
  -> WAL+FULL: durability ``all``. DELETE+FULL: ``all-but-last`` (next).
- EXTRA: "EXTRA synchronous is like FULL with the addition that the
  directory containing a rollback journal is synced after that journal is
  unlinked to commit a transaction in DELETE mode. EXTRA provides additional
  durability if the commit is followed closely by a power loss. Without
  EXTRA, depending on the underlying filesystem, it is possible that a single
  transaction that commits right before a power loss might get rolled back
  upon reboot. The database will not go corrupt. But the last transaction
  might go missing, thus violating durability, if EXTRA is not set." and
  "EXTRA is no different from FULL in WAL mode."
  -> DELETE+EXTRA and WAL+EXTRA: ``all``; DELETE+FULL: a *single*, the last,
  transaction may roll back: ``all-but-last``.

From https://www.sqlite.org/wal.html: "Writers sync the WAL on every
transaction commit if PRAGMA synchronous is set to FULL but omit this sync
if PRAGMA synchronous is set to NORMAL." and "Further, syncing the content to
the disk is not required, as long as the application is willing to sacrifice
durability following a power loss or hard reboot."

From https://www.sqlite.org/atomiccommit.html (3.11, "Deleting The Rollback
Journal"): "After the database changes are all safely on the mass storage
device, the rollback journal file is deleted. This is the instant where the
transaction commits. If a power failure or system crash occurs prior to this
point, then recovery processes to be described later make it appear as if no
changes were ever made to the database file." So in DELETE mode the commit
point is an unlink, a directory entry change: under the strict POSIX model
it is durable only after an fsync of the directory, which EXTRA makes and
FULL does not; a lost unlink brings back a hot journal ("A hot journal is a
rollback journal that needs to be played back in order to restore the
database to a sane state", atomiccommit.html 4.2) and the reader rolls the
last commit back. https://www.sqlite.org/lockingv3.html#hot_journals says
the same of the commit ("Delete the journal file. This is the instant when
the changes are committed. Prior to deleting the journal file, if a power
failure or crash occurs, the next process to open the database will see
that it has a hot journal and will roll the changes back."), and why every
*earlier* commit is safe: "When SQLite creates a journal file on Unix, it
opens the directory that contains that file and calls fsync() on the
directory, in an effort to push the directory information to disk." The
next transaction's new journal is so synced into the directory (with
fdatasync on Linux, observed below), which makes the previous unlink
durable too: at most the last commit rolls back. (Real ext4 cuts right
after the ack, on a loop device, rolled the acked commit back 3 of 3 times
with FULL and kept it 3 of 3 times with EXTRA: the project's shared
measurements, shared/README.md.)

The modes, as ``crashlab-workload`` examples:

=====================  ==========================  ===========  ===================
example                journal_mode / synchronous  durability   corruption promise
=====================  ==========================  ===========  ===================
sqlite-delete-off      DELETE / OFF                none         none (the mistake)
sqlite-delete-normal   DELETE / NORMAL             none         "very small chance"
sqlite-delete-full     DELETE / FULL               all-but-last never corrupt
sqlite-delete-extra    DELETE / EXTRA              all          never corrupt
sqlite-wal-off         WAL / OFF                   none         none (the mistake)
sqlite-wal-normal      WAL / NORMAL                none         never corrupt
sqlite-wal-full        WAL / FULL                  all          never corrupt
sqlite-wal-extra       WAL / EXTRA                 all          never corrupt
=====================  ==========================  ===========  ===================

Under a process crash (``sigkill``, ``abort``) the checker requires what
the mode promises after a power loss, which is less than SQLite promises
there ("Transactions are durable across application crashes regardless of
the synchronous setting or journal mode"): a process crash should never
fail it.

What SQLite does with files, observed
====================================

SQLite 3.40.1 (Debian bookworm's libsqlite3, through /usr/bin/python3
3.11), ``strace -f -y -e trace=openat,unlink,rename,fsync,fdatasync,msync,
mmap,munmap,ftruncate,pwrite64`` of ``writer --records 3`` after ``setup``:

- mmap: ``PRAGMA mmap_size`` reads back as set (1048576) on both
  connections. The reading connection maps ``test.db`` ``PROT_READ,
  MAP_SHARED`` and reads the pages it needs through the mapping (unmapped
  and mapped again as the file grows: 41 mmaps of ``test.db`` for 40
  DELETE-mode commits); the writing connection never maps it here (every
  page it reads is in its own page cache). Every write to ``test.db``, the
  journal and the WAL is a ``pwrite64``: SQLite writes through its map only
  when built with ``SQLITE_MMAP_READWRITE``, which this one is not. In WAL
  mode ``test.db-shm`` (the wal-index) is mapped ``PROT_READ|PROT_WRITE,
  MAP_SHARED`` (32 KiB, after ``ftruncate(shm, 3)``) and written through the
  mapping; it is not part of the durable state (the first connection after a
  crash rebuilds it from the WAL).
- DELETE, each commit: ``openat(test.db-journal, O_RDWR|O_CREAT)`` (a new
  file each time), ``pwrite64`` of the journal header and the original
  pages; FULL and EXTRA: ``fdatasync(journal)``, then ``openat(".",
  O_RDONLY)`` + ``fdatasync`` of the directory (the journal's creation made
  durable, at every commit: the journal is a new file each time), a 12-byte
  ``pwrite64`` of the journal header (its record count), a second
  ``fdatasync(journal)``; then ``pwrite64`` of the changed database pages,
  ``fdatasync(test.db)``, ``unlink(test.db-journal)`` (the commit point);
  EXTRA only: ``openat(".")`` + ``fdatasync`` of the directory after the
  unlink. NORMAL: one ``fdatasync(journal)`` (and the directory's) before
  the database pages, ``fdatasync(test.db)``, ``unlink``. OFF: no sync
  at all (no directory sync either).
- WAL: the first write creates ``test.db-wal`` and ``test.db-shm``, writes
  the 32-byte WAL header and (except OFF) ``fdatasync``s the WAL and the
  directory; each commit appends frames (``pwrite64`` of a 24-byte frame
  header and the page); FULL and EXTRA (the same calls) ``fdatasync`` the WAL
  at each commit, NORMAL and OFF never. The writer's ``close()`` checkpoints
  (``fdatasync(wal)`` except OFF, ``pwrite64`` of the pages into
  ``test.db``, ``ftruncate(test.db)``, ``fdatasync(test.db)`` except OFF),
  then unlinks ``test.db-shm`` and ``test.db-wal``, with no directory sync
  after: a WAL that comes back holds only frames already checkpointed.
"""

import os
import sqlite3
import sys
import time
import urllib.parse
import zlib

DB = "test.db"
SYNC_LEVELS = {"off": 0, "normal": 1, "full": 2, "extra": 3}
JOURNALS = ("delete", "wal")
DEFAULT_RECORDS = 32
DEFAULT_MMAP = 1 << 20


def die(message):
    """Neither a pass nor a violation: exit 2."""
    print(f"sqlite_workload: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def violation(reason):
    """The protocol's violation: exit 1, the reason on stderr's first line."""
    print(reason.replace("\n", " | "), file=sys.stderr, flush=True)
    sys.exit(1)


def durability(journal, sync):
    """How many acked transactions SQLite promises to keep after a power
    loss: 'all', 'all-but-last' or 'none' (see the module docs)."""
    if sync in ("off", "normal"):
        return "none"
    if journal == "delete" and sync == "full":
        return "all-but-last"
    return "all"


def trial_dir():
    return os.environ.get("CRASHLAB_DIR", ".")


def seed():
    try:
        return int(os.environ.get("CRASHLAB_SEED", "0"))
    except ValueError:
        die("CRASHLAB_SEED is not an integer")


def payload(seed_value, txn):
    """Transaction txn's payload: 100 to 1500 bytes, a function of the seed
    and txn (splitmix64, as the Rust examples' Rng)."""
    state = (seed_value ^ (txn * 0x9E3779B97F4A7C15)) & 0xFFFFFFFFFFFFFFFF
    mask = 0xFFFFFFFFFFFFFFFF

    def next_u64():
        nonlocal state
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    length = 100 + next_u64() % 1401
    return bytes(next_u64() % 255 + 1 for _ in range(length))


def fsync_path(path, directory=False):
    flags = os.O_RDONLY | (os.O_DIRECTORY if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parse(argv):
    if not argv:
        die("usage: sqlite_workload.py setup|writer|checker|version --journal delete|wal --sync off|normal|full|extra")
    role, opts = argv[0], {"journal": None, "sync": None, "records": DEFAULT_RECORDS, "pace-us": 0,
                           "mmap-size": DEFAULT_MMAP}
    rest = argv[1:]
    while rest:
        flag = rest.pop(0)
        if not flag.startswith("--") or flag[2:] not in opts or not rest:
            die(f"bad argument `{flag}`")
        name, value = flag[2:], rest.pop(0)
        if name == "journal":
            if value not in JOURNALS:
                die(f"--journal {value}: expected delete or wal")
            opts[name] = value
        elif name == "sync":
            if value not in SYNC_LEVELS:
                die(f"--sync {value}: expected off, normal, full or extra")
            opts[name] = value
        else:
            try:
                opts[name] = int(value)
            except ValueError:
                die(f"{flag} {value}: not a number")
    need = {"setup": ["journal"], "writer": ["journal", "sync"], "checker": ["journal", "sync"], "version": []}
    if role not in need:
        die(f"unknown role `{role}`: setup, writer, checker or version")
    for name in need[role]:
        if opts[name] is None:
            die(f"{role} needs --{name}")
    return role, opts


def create_table(conn):
    conn.execute("CREATE TABLE IF NOT EXISTS txns (id INTEGER PRIMARY KEY, payload BLOB NOT NULL, "
                 "checksum INTEGER NOT NULL)")
    conn.commit()


def set_journal_mode(conn, journal):
    got = conn.execute(f"PRAGMA journal_mode={journal}").fetchone()[0]
    if got != journal:
        die(f"PRAGMA journal_mode={journal} gave `{got}`")


def setup(opts):
    path = os.path.join(trial_dir(), DB)
    conn = sqlite3.connect(path)
    create_table(conn)
    set_journal_mode(conn, opts["journal"])
    conn.close()
    fsync_path(path)
    fsync_path(trial_dir(), directory=True)


def writer(opts):
    path = os.path.join(trial_dir(), DB)
    conn = sqlite3.connect(path)
    set_journal_mode(conn, opts["journal"])
    conn.execute(f"PRAGMA synchronous={opts['sync']}")
    got = conn.execute("PRAGMA synchronous").fetchone()[0]
    if got != SYNC_LEVELS[opts["sync"]]:
        die(f"PRAGMA synchronous={opts['sync']} reads back as {got}")
    mmap_size = opts["mmap-size"]
    conn.execute(f"PRAGMA mmap_size={mmap_size}")
    got = conn.execute("PRAGMA mmap_size").fetchone()[0]
    if got != mmap_size:
        die(f"PRAGMA mmap_size={mmap_size} reads back as {got} (SQLITE_MAX_MMAP_SIZE too small?)")
    create_table(conn)  # a no-op after the setup; lets the writer run without one
    # A second connection reads each commit back, as another process would:
    # its cache is stale after every commit, so it fetches pages through
    # its mapping of test.db (the writer's own connection finds every page
    # it wrote in its page cache and never needs its mapping).
    reader = sqlite3.connect(path)
    reader.execute(f"PRAGMA mmap_size={mmap_size}")
    if reader.execute("PRAGMA mmap_size").fetchone()[0] != mmap_size:
        die(f"PRAGMA mmap_size={mmap_size} not honoured by the reading connection")
    seed_value = seed()
    pace = opts["pace-us"] / 1e6
    out = sys.stdout
    for txn in range(opts["records"]):
        data = payload(seed_value, txn)
        conn.execute("INSERT INTO txns (id, payload, checksum) VALUES (?, ?, ?)", (txn, data, zlib.crc32(data)))
        conn.commit()
        back = reader.execute("SELECT payload FROM txns WHERE id = ?", (txn,)).fetchone()
        if back is None or back[0] != data:
            die(f"transaction {txn} committed but a second connection reads back {back!r:.60}")
        try:
            out.write(f"txn {txn}\n")
            out.flush()
        except OSError:
            sys.exit(2)
        if pace:
            time.sleep(pace)
    reader.close()
    conn.close()


def read_acks():
    path = os.environ.get("CRASHLAB_ACKS")
    if path is None:
        die("CRASHLAB_ACKS is not set")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        die(f"cannot read CRASHLAB_ACKS {path}: {e}")
    for i, line in enumerate(lines):
        if line != f"txn {i}":
            die(f"ack line {i} is `{line}`, expected `txn {i}`")
    return len(lines)


def checker(opts):
    acked = read_acks()
    promise = durability(opts["journal"], opts["sync"])
    mode = f"journal_mode={opts['journal'].upper()}, synchronous={opts['sync'].upper()}"
    path = os.path.join(trial_dir(), DB)
    if not os.path.lexists(path):
        if acked:
            violation(f"{DB} is missing, but {acked} transactions were acked ({mode})")
        return
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=rw"  # never creates it
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        result = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        if result != ["ok"]:
            violation(f"corrupt: integrity_check says {'; '.join(map(str, result[:3]))} ({mode})")
        tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'txns'").fetchall()
        if not tables:
            if acked:
                violation(f"corrupt: the table txns is missing though {acked} transactions were acked ({mode})")
            return
        rows = conn.execute("SELECT id, payload, checksum FROM txns ORDER BY id").fetchall()
        conn.close()
    except sqlite3.DatabaseError as e:
        violation(f"corrupt: reading {DB} fails: {e} ({mode})")
    seed_value = seed()
    for expected, (txn, data, checksum) in enumerate(rows):
        if not isinstance(data, bytes) or zlib.crc32(data) != checksum:
            violation(f"corrupt: row {txn}'s checksum does not match its payload ({mode})")
        if data != payload(seed_value, txn):
            violation(f"corrupt: row {txn} holds a payload the writer never wrote for it ({mode})")
        if txn != expected:
            violation(f"transaction {txn} is present but transaction {expected} is not ({mode})")
    present = len(rows)
    if present > acked + 1:
        violation(f"transactions 0..{present - 1} are present but only {acked} were acked: "
                  f"transaction {present - 1} was never committed ({mode})")
    required = {"all": acked, "all-but-last": max(acked - 1, 0), "none": 0}[promise]
    if present < required:
        what = "every acked transaction" if promise == "all" else "every acked transaction but the last"
        violation(f"acked transaction {present} is lost: the database holds {present} of {acked} acked "
                  f"transactions; SQLite promises {what} after a power loss with {mode}")


def main():
    role, opts = parse(sys.argv[1:])
    if role == "version":
        print(sqlite3.sqlite_version)
    elif role == "setup":
        setup(opts)
    elif role == "writer":
        writer(opts)
    else:
        checker(opts)


if __name__ == "__main__":
    main()
