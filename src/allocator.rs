//! The process's allocator, jemalloc, for Rust's allocations and C's (SQLite's) alike:
//! what it holds, and giving back to the system the pages a burst freed.
//!
//! A storm allocates on every thread at once (declarations decided in shares,
//! releases, relayed messages) and frees most of it once it has passed. glibc's
//! allocator, the broker's before, kept an arena per thread allocating at once (up to
//! eight per core) and returned a freed block to the system only from the top of a
//! heap: after a storm of 200,000 travellers `malloc_trim` left 15 arenas spanning
//! 178 MB around 29 MB in use, and after one of a million, resident memory at 1.22 of
//! what it was before. Capping glibc's arenas at one per core kept 1.12 but made a
//! release cost 31 % more CPU. jemalloc keeps small blocks of one size together in
//! slabs and gives a whole slab back once it is empty, so what a burst freed comes
//! back as whole pages whichever thread allocated it.
//! `override_allocator_on_supported_platforms` makes it serve C's `malloc` too, so
//! SQLite's page caches come from the same pages.
//!
//! jemalloc gives freed pages back by itself, here after a tenth of a second rather
//! than its default ten (`.cargo/config.toml`: with ten, hostile uploads one after
//! another held each other's freed buffers and the memory bench's peak passed its
//! bound; with half a second it came to 0.97 of it on a faster machine); its
//! background threads (the `background_threads` feature) do it, so that no request
//! pays for it. Measured side by side on storms of 200,000 travellers the same day
//! (with the ten seconds), resident memory once the storm had passed was 0.93 of
//! before (glibc with the trim: 1.07), a release cost 13 % less CPU, and inclusion
//! proofs kept their p99 under a millisecond (3.6 ms in the run without the background
//! threads, where requests give pages back themselves).
//! [`give_back`] hands back at once all that is free, for the memory worker.

use std::io;

/// What the allocator holds, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// In the blocks the process allocated and has not freed.
    pub allocated: usize,
    /// In the pages the allocator keeps resident: those blocks, its own bookkeeping,
    /// and the pages freed but not yet given back.
    pub resident: usize,
}

/// What the allocator holds now.
pub fn usage() -> io::Result<Usage> {
    let read = || {
        // The statistics are a snapshot taken when the epoch advances.
        tikv_jemalloc_ctl::epoch::advance()?;
        Ok::<_, tikv_jemalloc_ctl::Error>(Usage {
            allocated: tikv_jemalloc_ctl::stats::allocated::read()?,
            resident: tikv_jemalloc_ctl::stats::resident::read()?,
        })
    };
    read().map_err(|err| io::Error::other(err.to_string()))
}

/// Hands back to the system every page of every arena that holds no block; answers
/// how many bytes of resident memory that gave back.
pub fn give_back() -> io::Result<usize> {
    let before = usage()?.resident;
    // `MALLCTL_ARENAS_ALL`: every arena at once.
    let purge = c"arena.4096.purge";
    // SAFETY: a control with no value to read or write: jemalloc requires the
    // pointers null and the length zero; the name is a NUL-terminated string.
    let failed = unsafe {
        tikv_jemalloc_sys::mallctl(
            purge.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if failed != 0 {
        return Err(io::Error::from_raw_os_error(failed));
    }
    Ok(before.saturating_sub(usage()?.resident))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_freed_beside_a_block_in_use_is_given_back() {
        // 32 MiB in small blocks, all freed but the last. The background threads may
        // give some of it back first; once `give_back` returns, all of it is.
        let mut blocks: Vec<Vec<u8>> = (0..8192).map(|i| vec![i as u8; 4096]).collect();
        let held = usage().expect("the allocator answers").resident;
        let last = blocks.pop();
        drop(blocks);
        give_back().expect("the allocator gives pages back");
        let after = usage().expect("the allocator answers").resident;
        assert!(
            after + (16 << 20) <= held,
            "of the 32 MiB freed beside a block in use, {} bytes were given back",
            held.saturating_sub(after)
        );
        drop(last);
    }

    #[test]
    fn the_allocator_runs_with_the_options_the_project_builds_in() {
        // SAFETY: both options are read-only values of the types given.
        let decay = unsafe { tikv_jemalloc_ctl::raw::read::<isize>(b"opt.dirty_decay_ms\0") };
        assert_eq!(decay, Ok(100), "freed pages go back after 100 ms");
        assert_eq!(tikv_jemalloc_ctl::opt::background_thread::read(), Ok(true));
    }

    #[test]
    fn the_allocator_counts_what_is_allocated_within_what_is_resident() {
        let held = vec![1u8; 8 << 20];
        let usage = usage().expect("the allocator answers");
        assert!(usage.allocated >= held.len(), "{usage:?}");
        assert!(usage.resident >= usage.allocated, "{usage:?}");
        drop(held);
    }
}
