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

/// Keeps freed memory in the process instead of handing it back to the OS a second later.
/// A warm Lambda handles batch after batch: memory handed back must be faulted in and
/// zeroed again by the next batch, which cost several milliseconds per 10,000 records.
/// The function's memory is reserved for it anyway, so keeping the high-water mark costs
/// nothing. Call once, at startup.
pub fn keep_freed_memory() {
    // SAFETY: mi_option_set only stores an integer option; any value is valid for it.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purge_delay_option_is_the_one_we_mean() {
        // SAFETY: reads an integer option.
        let delay = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        // The documented default (1000 ms), or -1 once another test has called keep_freed_memory().
        assert!(delay == 1000 || delay == -1, "option {PURGE_DELAY} is {delay}");
        keep_freed_memory();
        // SAFETY: as above.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }, -1);
    }
}
