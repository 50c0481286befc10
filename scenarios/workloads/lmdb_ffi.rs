//! The few LMDB functions the `lmdb` example uses, loaded at run time from
//! the system's `liblmdb.so.0` (Debian package `liblmdb0`).
//!
//! Loaded with `dlopen` rather than linked with `-llmdb` so that the
//! workspace builds on machines without LMDB: only the LMDB example (and
//! its tests) needs the library, and it says so when it is missing.
//! Declarations follow `lmdb.h` of LMDB 0.9.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::path::Path;

use crate::common::die;

pub const MDB_NOSYNC: c_uint = 0x10000;
pub const MDB_RDONLY: c_uint = 0x20000;
pub const MDB_WRITEMAP: c_uint = 0x80000;
pub const MDB_NOLOCK: c_uint = 0x400000;
pub const MDB_NOTFOUND: c_int = -30798;
/// `MDB_cursor_op` values.
const MDB_FIRST: c_int = 0;
const MDB_NEXT: c_int = 8;

/// The shared object's name (its SONAME), as Debian's `liblmdb0` installs it.
pub const LIBRARY: &str = "liblmdb.so.0";

#[repr(C)]
pub struct MdbEnv {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct MdbTxn {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct MdbCursor {
    _opaque: [u8; 0],
}
type MdbDbi = c_uint;

/// `MDB_val`: a size and a pointer.
#[repr(C)]
struct MdbVal {
    size: usize,
    data: *mut c_void,
}

impl MdbVal {
    fn of(bytes: &[u8]) -> MdbVal {
        MdbVal { size: bytes.len(), data: bytes.as_ptr() as *mut c_void }
    }

    fn empty() -> MdbVal {
        MdbVal { size: 0, data: std::ptr::null_mut() }
    }

    /// The bytes LMDB points at, copied out (they live in the map only as
    /// long as the transaction).
    fn to_vec(&self) -> Vec<u8> {
        if self.size == 0 {
            return Vec::new();
        }
        // SAFETY: LMDB returned a pointer to `size` readable bytes, valid
        // until the transaction ends; we copy before that.
        unsafe { std::slice::from_raw_parts(self.data as *const u8, self.size).to_vec() }
    }
}

/// `MDB_assert_func`: called with LMDB's message when one of its internal
/// consistency checks fails, just before it calls `abort()`.
pub type AssertFn = unsafe extern "C" fn(*mut MdbEnv, *const c_char);

/// The function table, resolved once.
#[allow(clippy::type_complexity)]
struct Api {
    version: unsafe extern "C" fn(*mut c_int, *mut c_int, *mut c_int) -> *const c_char,
    strerror: unsafe extern "C" fn(c_int) -> *const c_char,
    env_create: unsafe extern "C" fn(*mut *mut MdbEnv) -> c_int,
    env_set_mapsize: unsafe extern "C" fn(*mut MdbEnv, usize) -> c_int,
    env_open: unsafe extern "C" fn(*mut MdbEnv, *const c_char, c_uint, libc::mode_t) -> c_int,
    env_close: unsafe extern "C" fn(*mut MdbEnv),
    env_set_assert: unsafe extern "C" fn(*mut MdbEnv, Option<AssertFn>) -> c_int,
    txn_begin: unsafe extern "C" fn(*mut MdbEnv, *mut MdbTxn, c_uint, *mut *mut MdbTxn) -> c_int,
    txn_commit: unsafe extern "C" fn(*mut MdbTxn) -> c_int,
    txn_abort: unsafe extern "C" fn(*mut MdbTxn),
    dbi_open: unsafe extern "C" fn(*mut MdbTxn, *const c_char, c_uint, *mut MdbDbi) -> c_int,
    put: unsafe extern "C" fn(*mut MdbTxn, MdbDbi, *mut MdbVal, *mut MdbVal, c_uint) -> c_int,
    cursor_open: unsafe extern "C" fn(*mut MdbTxn, MdbDbi, *mut *mut MdbCursor) -> c_int,
    cursor_get: unsafe extern "C" fn(*mut MdbCursor, *mut MdbVal, *mut MdbVal, c_int) -> c_int,
    cursor_close: unsafe extern "C" fn(*mut MdbCursor),
}

fn api() -> &'static Api {
    static API: std::sync::OnceLock<Api> = std::sync::OnceLock::new();
    API.get_or_init(load)
}

fn dlerror() -> String {
    // SAFETY: dlerror returns null or a C string valid until the next dl* call.
    let e = unsafe { libc::dlerror() };
    if e.is_null() {
        "unknown error".into()
    } else {
        // SAFETY: non-null, NUL-terminated (see above).
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

/// The function `name` of the library `handle` as a function pointer of
/// type `F`, resolved from `F` where it is used.
///
/// # Safety
/// `F` must be the exact C signature of that function.
unsafe fn symbol<F: Copy>(handle: *mut c_void, name: &str) -> F {
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>(), "{name}: F must be a fn pointer");
    let c = CString::new(name).unwrap();
    // SAFETY: dlsym on a live handle.
    let p = unsafe { libc::dlsym(handle, c.as_ptr()) };
    if p.is_null() {
        die(&format!("{LIBRARY} has no symbol {name}: {}", dlerror()));
    }
    // SAFETY: a non-null code address of the size of F, which the caller
    // promises is the function's signature.
    unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p) }
}

fn load() -> Api {
    let name = CString::new(LIBRARY).unwrap();
    // SAFETY: dlopen of a library by name; RTLD_NOW resolves everything now.
    let h = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW) };
    if h.is_null() {
        die(&format!("cannot load {LIBRARY} ({}): install LMDB (Debian: apt-get install liblmdb0)", dlerror()));
    }
    // SAFETY: each field's type spells out the C signature (lmdb.h of
    // LMDB 0.9) of the function it is resolved from.
    unsafe {
        Api {
            version: symbol(h, "mdb_version"),
            strerror: symbol(h, "mdb_strerror"),
            env_create: symbol(h, "mdb_env_create"),
            env_set_mapsize: symbol(h, "mdb_env_set_mapsize"),
            env_open: symbol(h, "mdb_env_open"),
            env_close: symbol(h, "mdb_env_close"),
            env_set_assert: symbol(h, "mdb_env_set_assert"),
            txn_begin: symbol(h, "mdb_txn_begin"),
            txn_commit: symbol(h, "mdb_txn_commit"),
            txn_abort: symbol(h, "mdb_txn_abort"),
            dbi_open: symbol(h, "mdb_dbi_open"),
            put: symbol(h, "mdb_put"),
            cursor_open: symbol(h, "mdb_cursor_open"),
            cursor_get: symbol(h, "mdb_cursor_get"),
            cursor_close: symbol(h, "mdb_cursor_close"),
        }
    }
}

/// An LMDB error code with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MdbError {
    pub code: c_int,
    pub call: &'static str,
}

impl std::fmt::Display for MdbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SAFETY: mdb_strerror returns a static or thread-local C string.
        let text = unsafe { CStr::from_ptr((api().strerror)(self.code)) }.to_string_lossy().into_owned();
        write!(f, "{} failed: {text} ({})", self.call, self.code)
    }
}

fn check(code: c_int, call: &'static str) -> Result<(), MdbError> {
    if code == 0 {
        Ok(())
    } else {
        Err(MdbError { code, call })
    }
}

/// `mdb_version()`: e.g. `LMDB 0.9.24: (July 24, 2019)`.
pub fn version() -> String {
    // SAFETY: null out-pointers are allowed; returns a static string.
    unsafe { CStr::from_ptr((api().version)(std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut())) }
        .to_string_lossy()
        .into_owned()
}

/// An open environment (closed on drop).
pub struct Env {
    env: *mut MdbEnv,
}

impl Env {
    /// `mdb_env_create`, `mdb_env_set_assert` and `mdb_env_set_mapsize` (if
    /// given), `mdb_env_open`.
    pub fn open(
        dir: &Path,
        flags: c_uint,
        mapsize: Option<usize>,
        on_assert: Option<AssertFn>,
    ) -> Result<Env, MdbError> {
        let api = api();
        let mut env = std::ptr::null_mut();
        // SAFETY: out-pointer to a local.
        check(unsafe { (api.env_create)(&mut env) }, "mdb_env_create")?;
        let env = Env { env };
        if on_assert.is_some() {
            // SAFETY: a live env; the callback is a plain extern "C" fn.
            check(unsafe { (api.env_set_assert)(env.env, on_assert) }, "mdb_env_set_assert")?;
        }
        if let Some(size) = mapsize {
            // SAFETY: a live env, before mdb_env_open.
            check(unsafe { (api.env_set_mapsize)(env.env, size) }, "mdb_env_set_mapsize")?;
        }
        let path = CString::new(dir.as_os_str().as_encoded_bytes()).expect("no NUL in paths");
        // SAFETY: a live env and a NUL-terminated path.
        check(unsafe { (api.env_open)(env.env, path.as_ptr(), flags, 0o644) }, "mdb_env_open")?;
        Ok(env)
    }

    /// A transaction on the main database (read-only with `MDB_RDONLY`).
    pub fn begin(&self, flags: c_uint) -> Result<Txn<'_>, MdbError> {
        let api = api();
        let mut txn = std::ptr::null_mut();
        // SAFETY: a live env; out-pointer to a local.
        check(unsafe { (api.txn_begin)(self.env, std::ptr::null_mut(), flags, &mut txn) }, "mdb_txn_begin")?;
        let mut txn = Txn { txn, dbi: 0, _env: std::marker::PhantomData };
        // SAFETY: a live txn; a null name opens the main database.
        check(unsafe { (api.dbi_open)(txn.txn, std::ptr::null(), 0, &mut txn.dbi) }, "mdb_dbi_open")?;
        Ok(txn)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // SAFETY: every transaction borrowed self and has ended.
        unsafe { (api().env_close)(self.env) }
    }
}

/// A key and its value, copied out of the map.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A transaction on the main database; aborted on drop unless committed.
pub struct Txn<'e> {
    txn: *mut MdbTxn,
    dbi: MdbDbi,
    _env: std::marker::PhantomData<&'e Env>,
}

impl Txn<'_> {
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), MdbError> {
        let (mut k, mut v) = (MdbVal::of(key), MdbVal::of(value));
        // SAFETY: a live write txn; LMDB copies key and value.
        check(unsafe { (api().put)(self.txn, self.dbi, &mut k, &mut v, 0) }, "mdb_put")
    }

    /// Every key and value of the main database, in key order.
    pub fn entries(&self) -> Result<Vec<Entry>, MdbError> {
        let api = api();
        let mut cursor = std::ptr::null_mut();
        // SAFETY: a live txn; out-pointer to a local.
        check(unsafe { (api.cursor_open)(self.txn, self.dbi, &mut cursor) }, "mdb_cursor_open")?;
        let mut out = Vec::new();
        let mut op = MDB_FIRST;
        let result = loop {
            let (mut k, mut v) = (MdbVal::empty(), MdbVal::empty());
            // SAFETY: a live cursor; key and value copied out at once.
            match unsafe { (api.cursor_get)(cursor, &mut k, &mut v, op) } {
                0 => out.push((k.to_vec(), v.to_vec())),
                MDB_NOTFOUND => break Ok(out),
                code => break Err(MdbError { code, call: "mdb_cursor_get" }),
            }
            op = MDB_NEXT;
        };
        // SAFETY: the cursor is live and belongs to this txn.
        unsafe { (api.cursor_close)(cursor) };
        result
    }

    pub fn commit(self) -> Result<(), MdbError> {
        let txn = self.txn;
        std::mem::forget(self);
        // SAFETY: a live txn, freed by commit whatever it returns.
        check(unsafe { (api().txn_commit)(txn) }, "mdb_txn_commit")
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        // SAFETY: a live txn not committed (commit forgets self).
        unsafe { (api().txn_abort)(self.txn) }
    }
}
