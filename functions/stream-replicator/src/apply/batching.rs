//! Splitting writes into BatchWriteItem calls within DynamoDB's limits.

use std::ops::Range;

/// Limits of one BatchWriteItem call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Put and delete requests per call (DynamoDB: 25).
    pub max_requests: usize,
    /// Total item bytes per call (DynamoDB: 16 MB).
    pub max_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_requests: 25,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Cuts requests of the given sizes into consecutive chunks, each within `limits`, filling
/// every chunk as far as the next request allows. A request larger than `max_bytes` on its
/// own (impossible for valid items, which are at most 400 KB) gets a chunk of its own, so
/// DynamoDB reports it instead of the replicator silently dropping it.
pub fn chunk(sizes: &[usize], limits: BatchLimits) -> Vec<Range<usize>> {
    let max_requests = limits.max_requests.max(1);
    let mut chunks = Vec::with_capacity(sizes.len().div_ceil(max_requests));
    let (mut start, mut bytes) = (0, 0usize);
    for (i, size) in sizes.iter().enumerate() {
        let full = i - start == max_requests || (i > start && bytes.saturating_add(*size) > limits.max_bytes);
        if full {
            chunks.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes = bytes.saturating_add(*size);
    }
    if start < sizes.len() {
        chunks.push(start..sizes.len());
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: usize = 1024 * 1024;

    fn check(sizes: &[usize], limits: BatchLimits) -> Vec<Range<usize>> {
        let chunks = chunk(sizes, limits);
        // Consecutive, complete, non-empty, within limits unless a single oversized request.
        let mut next = 0;
        for c in &chunks {
            assert_eq!(c.start, next);
            assert!(!c.is_empty());
            assert!(c.len() <= limits.max_requests);
            let bytes: usize = sizes[c.clone()].iter().sum();
            assert!(bytes <= limits.max_bytes || c.len() == 1, "{c:?} holds {bytes} bytes");
            next = c.end;
        }
        assert_eq!(next, sizes.len());
        chunks
    }

    #[test]
    fn at_most_25_requests_per_call() {
        let chunks = check(&[100; 1_000], BatchLimits::default());
        assert_eq!(chunks.len(), 40);
        assert!(chunks.iter().all(|c| c.len() == 25));
        assert_eq!(check(&[100; 26], BatchLimits::default()), [0..25, 25..26]);
        assert_eq!(check(&[100; 25], BatchLimits::default()), vec![0..25]);
        assert!(check(&[], BatchLimits::default()).is_empty());
    }

    #[test]
    fn at_most_16_mb_per_call() {
        // 400 KB items: 25 fit (10 MB). With a 16 MB limit and 1 MB requests, 16 fit.
        let chunks = check(&[MB; 40], BatchLimits::default());
        assert_eq!(chunks, [0..16, 16..32, 32..40]);
        // Exactly at the limit is allowed; one byte more starts a new call.
        assert_eq!(check(&[8 * MB, 8 * MB], BatchLimits::default()), vec![0..2]);
        assert_eq!(check(&[8 * MB, 8 * MB + 1], BatchLimits::default()), [0..1, 1..2]);
    }

    #[test]
    fn both_limits_with_mixed_sizes() {
        let limits = BatchLimits {
            max_requests: 3,
            max_bytes: 10,
        };
        assert_eq!(
            check(&[4, 4, 4, 1, 1, 1, 1, 9, 2], limits),
            [0..2, 2..5, 5..7, 7..8, 8..9]
        );
        // An oversized request stands alone.
        assert_eq!(check(&[1, 11, 1], limits), [0..1, 1..2, 2..3]);
    }

    #[test]
    fn random_sizes_always_respect_the_limits() {
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..200 {
            let sizes: Vec<usize> = (0..rng.usize(0..300)).map(|_| rng.usize(1..=400 * 1024)).collect();
            let chunks = check(&sizes, BatchLimits::default());
            assert!(chunks.len() >= sizes.len().div_ceil(25));
        }
    }
}
