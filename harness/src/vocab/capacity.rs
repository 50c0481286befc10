//! The capacity of the filesystem an `enospc` trial's writer runs on
//! (`--capacity BYTES`): its bounds, and the default derived from the clean
//! run.
//!
//! The writer of an `enospc` trial runs in a directory that can hold only
//! so many bytes (a size-limited tmpfs in a user + mount namespace), so the
//! filesystem really fills up: `write`/`fallocate`/`ftruncate`-then-store
//! see `ENOSPC` or `SIGBUS` at the point the kernel would give them on any
//! full disk. tmpfs counts its size in pages, so a capacity is a whole
//! number of pages; it must be at least one (a tmpfs `size=0` means no
//! limit at all, the opposite of what is asked).
//!
//! Architecture Invariant: pure.

/// The largest `--capacity`: 1 GiB. A tmpfs lives in memory; the capacity
/// is there to run out, and a run that needs more than this to reach the
/// interesting point can shrink its writer's `--records`.
pub const MAX_CAPACITY: u64 = 1 << 30;

/// `--capacity BYTES` checked: a whole number of pages from one page to
/// [`MAX_CAPACITY`]. The error names the flag and the bound.
pub fn check_capacity(bytes: u64, page: u64) -> Result<u64, String> {
    if bytes < page {
        return Err(format!(
            "--capacity {bytes}: at least one page ({page} bytes); a tmpfs counts its size in pages, and size 0 means no limit"
        ));
    }
    if bytes > MAX_CAPACITY {
        return Err(format!("--capacity {bytes} is above the maximum {MAX_CAPACITY} (1 GiB: a tmpfs lives in memory)"));
    }
    if bytes % page != 0 {
        return Err(format!(
            "--capacity {bytes}: not a multiple of the page size ({page} bytes); a tmpfs counts its size in pages"
        ));
    }
    Ok(bytes)
}

/// The capacity when `--capacity` is not given: half of what the clean
/// run's directory allocated (`allocated`, the sum of its files' blocks),
/// rounded down to a page, at least one page and at most [`MAX_CAPACITY`].
///
/// Half, because the point of the kind is a disk that fills *partway
/// through* the writer's work: with half of the space the clean run
/// needed, a writer that allocates as it goes runs out near the middle,
/// with acks before and work left after. A writer that allocated at most
/// one page cannot be cut short by this rule (one page is the least a
/// tmpfs can be), and its trials then say the filesystem never filled.
pub fn default_capacity(allocated: u64, page: u64) -> u64 {
    let half = (allocated / 2) / page * page;
    half.clamp(page, MAX_CAPACITY / page * page)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u64 = 4096;

    #[test]
    fn a_capacity_is_a_whole_number_of_pages_between_one_page_and_one_gib() {
        assert_eq!(check_capacity(PAGE, PAGE), Ok(PAGE));
        assert_eq!(check_capacity(16 * PAGE, PAGE), Ok(16 * PAGE));
        assert_eq!(check_capacity(MAX_CAPACITY, PAGE), Ok(MAX_CAPACITY));
        let zero = check_capacity(0, PAGE).unwrap_err();
        assert!(zero.contains("--capacity 0") && zero.contains("no limit"), "{zero}");
        let odd = check_capacity(PAGE + 1, PAGE).unwrap_err();
        assert!(odd.contains("multiple of the page size"), "{odd}");
        let huge = check_capacity(MAX_CAPACITY + PAGE, PAGE).unwrap_err();
        assert!(huge.contains("maximum"), "{huge}");
    }

    #[test]
    fn the_default_capacity_is_half_the_clean_runs_allocation_in_whole_pages() {
        assert_eq!(default_capacity(64 * PAGE, PAGE), 32 * PAGE);
        // 5 pages: half is 2.5 pages, rounded down.
        assert_eq!(default_capacity(5 * PAGE, PAGE), 2 * PAGE);
        // Nothing or one page allocated: still a tmpfs of one page, never size 0.
        assert_eq!(default_capacity(0, PAGE), PAGE);
        assert_eq!(default_capacity(PAGE, PAGE), PAGE);
        assert_eq!(default_capacity(u64::MAX, PAGE), MAX_CAPACITY);
    }
}
