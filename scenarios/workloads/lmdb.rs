//! A real third-party target: LMDB with `MDB_WRITEMAP` (the database file is
//! written through a `MAP_SHARED` mapping), in its default durable mode and
//! with `MDB_NOSYNC`.
//!
//! The writer commits `--records` transactions of 8 keys each (`t00003k05`,
//! values of 16 to 1015 bytes derived from the seed, transaction and key;
//! transaction 0 also stores the key `seed`) and acknowledges each commit
//! (`txn 3`) after `mdb_txn_commit` returned. In the durable mode a commit
//! returns after `msync(MS_SYNC)` of the data pages, then of the meta page;
//! with `MDB_NOSYNC` it returns without any sync.
//!
//! The checker opens the environment read-only (`MDB_RDONLY|MDB_NOLOCK`:
//! it reads the data file and leaves the lock file alone) and requires:
//! it opens if any commit was acknowledged; every acknowledged transaction
//! is there with the right values; every transaction present is whole (all
//! 8 keys, right values) and they form a prefix 0..n (commits are serial).
//! Before its first acknowledgement the writer promised nothing: a missing,
//! empty, unopenable or corrupt environment is then consistent.
//!
//! LMDB does not checksum pages; reading a corrupt database can fail one of
//! its internal assertions (it then calls `abort()`) or fault. The checker
//! turns both into its verdict about a corrupt database (a violation once a
//! commit was acknowledged) instead of dying: a checker that dies is a
//! harness error, and a database that makes LMDB abort is not consistent.

use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, CStr};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::{ack, acks, die, dir, fsync, fsync_dir, seed, violation, Rng};
use crate::lmdb_ffi::{version, Env, MdbEnv, MDB_NOLOCK, MDB_NOSYNC, MDB_RDONLY, MDB_WRITEMAP};

const KEYS_PER_TXN: usize = 8;
/// The map (LMDB with `MDB_WRITEMAP` sizes the file to it at creation):
/// 16 KiB per transaction, about 3 times what it uses (64 transactions use
/// ~94 pages), and no less than 1 MiB. Not much more: the `sigbus` crash
/// cuts the file's zero tail at a random length, and LMDB only dies of it
/// when it still grows past the cut.
fn map_size(txns: usize) -> usize {
    (txns * 16 * 1024).max(1 << 20)
}
const SEED_KEY: &[u8] = b"seed";

/// How the environment makes commits durable.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// LMDB's default: `msync(MS_SYNC)` before `mdb_txn_commit` returns.
    Durable,
    /// `MDB_NOSYNC`: no sync at commit.
    NoSync,
}

fn key(txn: usize, k: usize) -> Vec<u8> {
    format!("t{txn:05}k{k:02}").into_bytes()
}

fn value(seed: u64, txn: usize, k: usize) -> Vec<u8> {
    let mut rng = Rng(seed ^ ((txn as u64) << 8 | k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let len = rng.range(16, 1015) as usize;
    rng.bytes(len)
}

fn parse_key(key: &[u8]) -> Option<(usize, usize)> {
    let text = std::str::from_utf8(key).ok()?;
    let (t, k) = text.strip_prefix('t')?.split_once('k')?;
    (t.len() == 5 && k.len() == 2).then_some(())?;
    Some((t.parse().ok()?, k.parse().ok()?))
}

pub fn print_version() {
    println!("{}", version());
}

fn env_flags(sync: Sync) -> std::ffi::c_uint {
    MDB_WRITEMAP | if sync == Sync::NoSync { MDB_NOSYNC } else { 0 }
}

/// `crashlab-workload lmdb|lmdb-nosync setup [--records N]`: the empty
/// environment, durably. LMDB creates `data.mdb` (its two meta pages
/// written with `pwrite`, sized to the map) and `lock.mdb` when an
/// environment is first opened, and syncs neither the files nor the
/// directory; so the setup opens it once with the writer's flags and map
/// size, closes it, then fsyncs `data.mdb`, `lock.mdb` and the directory.
pub fn setup(sync: Sync, txns: usize) {
    drop(Env::open(&dir(), env_flags(sync), Some(map_size(txns)), None).unwrap_or_else(|e| die(&e.to_string())));
    for name in ["data.mdb", "lock.mdb"] {
        let path = dir().join(name);
        let file = std::fs::File::open(&path).unwrap_or_else(|e| die(&format!("cannot open {}: {e}", path.display())));
        fsync(&file, name);
    }
    fsync_dir();
}

pub fn writer(sync: Sync, txns: usize) {
    let env = Env::open(&dir(), env_flags(sync), Some(map_size(txns)), None).unwrap_or_else(|e| die(&e.to_string()));
    let seed = seed();
    for t in 0..txns {
        let mut txn = env.begin(0).unwrap_or_else(|e| die(&e.to_string()));
        if t == 0 {
            txn.put(SEED_KEY, seed.to_string().as_bytes()).unwrap_or_else(|e| die(&e.to_string()));
        }
        for k in 0..KEYS_PER_TXN {
            txn.put(&key(t, k), &value(seed, t, k)).unwrap_or_else(|e| die(&e.to_string()));
        }
        txn.commit().unwrap_or_else(|e| die(&e.to_string()));
        ack(&format!("txn {t}"));
    }
}

/// Was any commit acknowledged? (Read by the crash handlers.)
static ACKED: AtomicBool = AtomicBool::new(false);

/// The checker's verdict on a database that LMDB cannot read without
/// dying: a violation if a commit was acknowledged, else consistent.
fn corrupt(what: &str) -> ! {
    if ACKED.load(Ordering::SeqCst) {
        violation(&format!("commits were acknowledged but the database is corrupt: {what}"))
    }
    std::process::exit(0)
}

/// LMDB's assertion failed: report it with LMDB's own message (it would
/// `abort()` right after this returns).
unsafe extern "C" fn on_lmdb_assert(_env: *mut MdbEnv, msg: *const c_char) {
    // SAFETY: LMDB passes a NUL-terminated message.
    let msg = unsafe { CStr::from_ptr(msg) }.to_string_lossy().into_owned();
    corrupt(&format!("reading it fails LMDB's assertion `{msg}`"))
}

/// A fault while LMDB follows corrupt pages: the same verdict, from a
/// signal handler (so only `write` and `_exit`).
extern "C" fn on_fatal_signal(sig: c_int) {
    let what: &[u8] = match sig {
        libc::SIGSEGV => b"reading it with LMDB died of SIGSEGV\n",
        libc::SIGBUS => b"reading it with LMDB died of SIGBUS\n",
        _ => b"reading it with LMDB died of SIGABRT\n",
    };
    let acked = ACKED.load(Ordering::SeqCst);
    if acked {
        let head = b"commits were acknowledged but the database is corrupt: ";
        // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffers are static.
        unsafe {
            libc::write(2, head.as_ptr().cast(), head.len());
            libc::write(2, what.as_ptr().cast(), what.len());
        }
    }
    // SAFETY: as above.
    unsafe { libc::_exit(if acked { 1 } else { 0 }) }
}

fn guard_against_crashes_while_reading() {
    for sig in [libc::SIGSEGV, libc::SIGBUS, libc::SIGABRT] {
        // SAFETY: installing a handler that only calls async-signal-safe functions.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_fatal_signal as extern "C" fn(c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

pub fn checker() {
    let acks = acks();
    for (i, line) in acks.iter().enumerate() {
        if *line != format!("txn {i}") {
            die(&format!("ack line {i} is `{line}`, expected `txn {i}`"));
        }
    }
    let acked = acks.len();
    ACKED.store(acked > 0, Ordering::SeqCst);
    guard_against_crashes_while_reading();
    let env = match Env::open(&dir(), MDB_RDONLY | MDB_NOLOCK, None, Some(on_lmdb_assert)) {
        Ok(env) => env,
        Err(_) if acked == 0 => return,
        Err(e) => violation(&format!("{acked} commits were acknowledged but the environment does not open: {e}")),
    };
    let entries = env.begin(MDB_RDONLY).and_then(|txn| txn.entries());
    let entries = match entries {
        Ok(entries) => entries,
        Err(_) if acked == 0 => return,
        Err(e) => violation(&format!("{acked} commits were acknowledged but the database cannot be read: {e}")),
    };
    let mut seed = None;
    let mut present: BTreeMap<usize, usize> = BTreeMap::new();
    for (k, v) in &entries {
        if k == SEED_KEY {
            let text = String::from_utf8_lossy(v);
            seed = Some(text.parse::<u64>().unwrap_or_else(|_| violation(&format!("the seed key holds `{text}`"))));
        } else if let Some(id) = parse_key(k) {
            *present.entry(id.0).or_default() += 1;
        } else {
            violation(&format!("unknown key `{}`", String::from_utf8_lossy(k)));
        }
    }
    if present.is_empty() && seed.is_none() {
        if acked > 0 {
            violation(&format!(
                "{acked} commits were acknowledged (the last `txn {}`) but the database is empty",
                acked - 1
            ));
        }
        return;
    }
    let Some(seed) = seed else { violation("transaction 0 is torn: its keys are present without its `seed` key") };
    for (k, v) in &entries {
        if let Some((t, i)) = parse_key(k) {
            if *v != value(seed, t, i) {
                violation(&format!("key {} holds a wrong value ({} bytes)", String::from_utf8_lossy(k), v.len()));
            }
        }
    }
    for (expected, (&t, &count)) in present.iter().enumerate() {
        if t != expected {
            violation(&format!("transaction {t} is present but transaction {expected} is not"));
        }
        if count != KEYS_PER_TXN {
            violation(&format!("transaction {t} is torn: {count} of its {KEYS_PER_TXN} keys are present"));
        }
    }
    // Transaction 0 carries the seed key: present with none of its keys is torn too.
    if present.is_empty() {
        violation("transaction 0 is torn: its `seed` key is present without its keys");
    }
    let committed = present.len();
    if committed < acked {
        violation(&format!(
            "acknowledged transaction {} is missing: the database holds transactions 0..{} of {acked} acknowledged",
            committed,
            committed - 1
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back_and_values_are_a_function_of_seed_txn_and_key() {
        assert_eq!(parse_key(&key(3, 5)), Some((3, 5)));
        assert_eq!(parse_key(b"seed"), None);
        assert_eq!(parse_key(b"t3k5"), None);
        assert_eq!(value(1, 2, 3), value(1, 2, 3));
        assert_ne!(value(1, 2, 3), value(2, 2, 3));
        assert_ne!(value(1, 2, 3), value(1, 2, 4));
        assert!((16..=1015).contains(&value(9, 9, 9).len()));
    }
}
