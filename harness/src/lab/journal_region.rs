//! The journal region: one `MAP_SHARED | MAP_ANONYMOUS` page run, created by
//! the worker before fork, in which the child marks each op started and
//! completed with plain atomic stores (no syscalls, so marking cannot change
//! what the crash leaves behind). It never touches the file under test.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::journal::{JournalSnapshot, PENDING};

pub struct JournalRegion {
    ptr: NonNull<AtomicU32>,
    words: usize,
    bytes: usize,
}

impl JournalRegion {
    pub fn new(words: usize) -> std::io::Result<JournalRegion> {
        let bytes = (words.max(1) * 4).div_ceil(4096) * 4096;
        // SAFETY: a fresh anonymous mapping; we own it until Drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(JournalRegion { ptr: NonNull::new(p.cast()).expect("mmap never returns null here"), words, bytes })
    }

    pub fn words(&self) -> &[AtomicU32] {
        // SAFETY: the mapping holds `bytes >= words * 4` zero-initialized bytes,
        // and AtomicU32 has the layout of u32.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.words) }
    }

    pub fn mark(&self, op: usize, state: u32) {
        self.words()[op].store(state, Ordering::Release);
    }

    pub fn load(&self, op: usize) -> u32 {
        self.words()[op].load(Ordering::Acquire)
    }

    pub fn clear(&self) {
        for w in self.words() {
            w.store(PENDING, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> Result<JournalSnapshot, String> {
        let words: Vec<u32> = self.words().iter().map(|w| w.load(Ordering::Acquire)).collect();
        JournalSnapshot::decode(&words)
    }
}

impl Drop for JournalRegion {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.bytes) };
    }
}
