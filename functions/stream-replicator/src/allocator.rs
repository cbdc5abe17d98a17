//! The replicator's memory allocator.
//!
//! A 10,000-record batch makes hundreds of thousands of small allocations (attribute
//! names, values, maps). With glibc's malloc, allocating and freeing them took about a
//! third of the planning time (free-list consolidation); mimalloc halves that. The
//! allocator is declared here, in the library, so the Lambda binary, the tests and the
//! benchmark all run on it.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in v3's `mi_option_t`; the
/// `purge_delay_option_is_the_one_we_mean` test checks it against the documented default).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Hands freed memory back to the OS as soon as it is freed (purge delay 0). A 6 MB batch
/// frees its event and decoded items at the end; kept (purge delay -1, tried first), each
/// later batch grew the high-water mark again (73 MB, then 97 MB after three 6 MB batches
/// in scripts/bench-replicator.sh), because the large event buffers land in fresh pages.
/// Returned at once, the peak stays that of one batch (43-44 MB, the same after every
/// batch), for ~70 ms more per 6 MB batch against a 0 ms target, hidden by any real latency.
/// Call once, at startup.
pub fn return_freed_memory() {
    // SAFETY: mi_option_set only stores an integer option; any value is valid for it.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_delay_option_is_the_one_we_mean() {
        // SAFETY: reads an integer option.
        let delay = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        // The documented default (1000 ms), or 0 once another test has called return_freed_memory().
        assert!(delay == 1000 || delay == 0, "option {PURGE_DELAY} is {delay}");
        return_freed_memory();
        // SAFETY: as above.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, 0);
    }
}
