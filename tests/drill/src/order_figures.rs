//! What the customers' orders say about the failover, computed from the attempts and from
//! what each store holds afterwards: checkout downtime (RTO as the shop sees it), orders
//! lost per store (RPO by id), and orders that reached the old primary after the switch.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::traffic::Attempt;

/// One store's side of the RPO.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StoreFigures {
    /// Orders this store acknowledged.
    pub acknowledged: usize,
    /// Acknowledged orders it no longer holds where the shop now runs, by id.
    pub lost: Vec<u64>,
    /// When the lost ones were placed (seconds since the drill started).
    pub lost_placed_at_seconds: Vec<f64>,
    /// When they were acknowledged.
    pub lost_at_seconds: Vec<f64>,
}

/// Orders placed in one second of the drill.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OrderRate {
    /// The second (since the drill started).
    pub second: u32,
    /// Orders acknowledged.
    pub acknowledged: u32,
    /// Orders that failed.
    pub failed: u32,
}

/// Everything the traffic measured.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderFigures {
    /// Orders attempted per second.
    pub orders_per_second: u32,
    /// Orders attempted.
    pub attempted: usize,
    /// Orders both stores took (the customer saw a confirmation).
    pub acknowledged: usize,
    /// Orders that failed.
    pub failed: usize,
    /// When the region failed (seconds since the drill started).
    pub failed_at_seconds: f64,
    /// When env-rewriter reported the switch done.
    pub switched_at_seconds: f64,
    /// When the failed region came back.
    pub recovered_at_seconds: f64,
    /// The last order acknowledged before the failure.
    pub last_acknowledged_before_seconds: Option<f64>,
    /// The first order acknowledged after it.
    pub first_acknowledged_after_seconds: Option<f64>,
    /// The database that took that first order (`host:port`).
    pub first_acknowledged_after_on: Option<String>,
    /// Seconds customers could not check out: first acknowledged after minus last before.
    pub downtime_seconds: Option<f64>,
    /// MySQL's RPO: acknowledged orders missing on the promoted database.
    pub mysql: StoreFigures,
    /// DynamoDB's RPO: acknowledged cart items missing in the secondary table.
    pub dynamodb: StoreFigures,
    /// The replica lag rds-promoter measured before promoting (its RPO estimate).
    pub replica_lag_at_promotion_seconds: Option<f64>,
    /// When the last replication pass read the primary's stream before the failure.
    pub last_replication_read_seconds: Option<f64>,
    /// Orders placed after the switch that the old primary holds (two writers), by id.
    pub split_brain: Vec<u64>,
    /// Orders per second over the drill.
    pub rate: Vec<OrderRate>,
}

/// The moments the figures are measured against.
#[derive(Debug, Clone, Copy)]
pub struct Moments {
    /// The region failed.
    pub failed_at: f64,
    /// The switch was reported done.
    pub switched_at: f64,
    /// The region came back.
    pub recovered_at: f64,
}

/// What the stores hold after the traffic stopped.
#[derive(Debug, Clone, Default)]
pub struct Holdings {
    /// Order ids on the promoted database.
    pub promoted_mysql: BTreeSet<u64>,
    /// Order ids on the old primary.
    pub old_primary_mysql: BTreeSet<u64>,
    /// Order ids with a cart item in the secondary table.
    pub secondary_dynamodb: BTreeSet<u64>,
}

/// Computes the figures.
pub fn measure(attempts: &[Attempt], moments: Moments, holdings: &Holdings) -> OrderFigures {
    let acknowledged: Vec<&Attempt> = attempts.iter().filter(|a| a.acknowledged()).collect();
    let last_before = acknowledged
        .iter()
        .filter(|a| a.at_seconds + a.took_seconds <= moments.failed_at)
        .map(|a| a.at_seconds + a.took_seconds)
        .reduce(f64::max);
    let first_after = acknowledged
        .iter()
        .filter(|a| a.at_seconds >= moments.failed_at)
        .min_by(|x, y| x.at_seconds.total_cmp(&y.at_seconds));
    let first_after_at = first_after.map(|a| a.at_seconds + a.took_seconds);
    let store = |took: &dyn Fn(&Attempt) -> bool, held: &BTreeSet<u64>| {
        let mut figures = StoreFigures::default();
        for attempt in attempts.iter().filter(|a| took(a)) {
            figures.acknowledged += 1;
            if !held.contains(&attempt.order_id) {
                figures.lost.push(attempt.order_id);
                figures.lost_placed_at_seconds.push(attempt.at_seconds);
                figures.lost_at_seconds.push(attempt.at_seconds + attempt.took_seconds);
            }
        }
        figures
    };
    let placed_after_switch: BTreeSet<u64> = attempts
        .iter()
        .filter(|a| a.at_seconds >= moments.switched_at)
        .map(|a| a.order_id)
        .collect();
    OrderFigures {
        attempted: attempts.len(),
        acknowledged: acknowledged.len(),
        failed: attempts.len() - acknowledged.len(),
        failed_at_seconds: moments.failed_at,
        switched_at_seconds: moments.switched_at,
        recovered_at_seconds: moments.recovered_at,
        last_acknowledged_before_seconds: last_before,
        first_acknowledged_after_seconds: first_after_at,
        first_acknowledged_after_on: first_after.map(|a| a.db_host.clone()),
        downtime_seconds: last_before.zip(first_after_at).map(|(before, after)| after - before),
        mysql: store(&|a| a.mysql_error.is_none(), &holdings.promoted_mysql),
        dynamodb: store(&|a| a.dynamodb_error.is_none(), &holdings.secondary_dynamodb),
        split_brain: holdings
            .old_primary_mysql
            .intersection(&placed_after_switch)
            .copied()
            .collect(),
        rate: rate(attempts),
        ..OrderFigures::default()
    }
}

fn rate(attempts: &[Attempt]) -> Vec<OrderRate> {
    let mut rate: Vec<OrderRate> = Vec::new();
    for attempt in attempts {
        let second = attempt.at_seconds as u32;
        if rate.last().is_none_or(|r| r.second != second) {
            rate.push(OrderRate {
                second,
                acknowledged: 0,
                failed: 0,
            });
        }
        let slot = rate.last_mut().expect("just pushed");
        if attempt.acknowledged() {
            slot.acknowledged += 1;
        } else {
            slot.failed += 1;
        }
    }
    rate
}

/// Whether every lost order was lost as asynchronous replication can lose it: placed before
/// the failure (its answer may come just after it), and acknowledged after the point up to
/// which that store's copy was taken (`copied_until`, seconds). Returns the orders that
/// break it.
pub fn lost_outside_window(store: &StoreFigures, failed_at: f64, copied_until: f64) -> Vec<u64> {
    (store
        .lost
        .iter()
        .zip(&store.lost_placed_at_seconds)
        .zip(&store.lost_at_seconds))
    .filter(|((_, placed), acknowledged)| **placed > failed_at || **acknowledged < copied_until)
    .map(|((id, _), _)| *id)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(order_id: u64, at: f64, acknowledged: bool, db_host: &str) -> Attempt {
        Attempt {
            order_id,
            at_seconds: at,
            took_seconds: 0.02,
            server: "i-1".into(),
            db_host: db_host.into(),
            dynamodb_region: "us-east-1".into(),
            mysql_error: (!acknowledged).then(|| "no answer within 2s".into()),
            dynamodb_error: (!acknowledged).then(|| "not tried".into()),
        }
    }

    fn moments() -> Moments {
        Moments {
            failed_at: 10.0,
            switched_at: 20.0,
            recovered_at: 25.0,
        }
    }

    #[test]
    fn downtime_runs_from_the_last_order_before_the_failure_to_the_first_after() {
        let attempts = [
            attempt(1, 9.0, true, "old:1"),
            attempt(2, 9.9, true, "old:1"),
            attempt(3, 10.5, false, "old:1"),
            attempt(4, 21.0, true, "new:2"),
            attempt(5, 22.0, true, "new:2"),
        ];
        let figures = measure(&attempts, moments(), &Holdings::default());
        assert_eq!(figures.last_acknowledged_before_seconds, Some(9.92));
        assert_eq!(figures.first_acknowledged_after_seconds, Some(21.02));
        assert!((figures.downtime_seconds.unwrap() - 11.1).abs() < 1e-9);
        assert_eq!(figures.first_acknowledged_after_on.as_deref(), Some("new:2"));
        assert_eq!((figures.acknowledged, figures.failed), (4, 1));
        assert_eq!(
            figures.rate.iter().map(|r| r.second).collect::<Vec<_>>(),
            [9, 10, 21, 22]
        );
    }

    #[test]
    fn lost_orders_and_split_brain_are_counted_by_id() {
        let mut answered_after_the_failure = attempt(5, 9.99, true, "old:1");
        answered_after_the_failure.took_seconds = 0.5;
        let attempts = [
            attempt(1, 5.0, true, "old:1"),
            attempt(2, 9.9, true, "old:1"),
            attempt(3, 21.0, true, "new:2"),
            attempt(4, 26.0, true, "old:1"),
            answered_after_the_failure,
        ];
        let holdings = Holdings {
            promoted_mysql: [1, 3].into(),
            old_primary_mysql: [1, 2, 4].into(),
            secondary_dynamodb: [1, 2, 3].into(),
        };
        let figures = measure(&attempts, moments(), &holdings);
        assert_eq!(figures.mysql.lost, [2, 4, 5]);
        assert_eq!(figures.dynamodb.lost, [4, 5]);
        assert_eq!(figures.split_brain, [4]);
        // Order 2 was acknowledged just before the failure, after the copy was taken, and
        // order 5 placed before it and answered after: losses asynchronous replication
        // allows; order 4 was placed after the failure.
        assert_eq!(lost_outside_window(&figures.mysql, 10.0, 9.0), [4]);
        // A copy taken at 9.95 covers order 2: losing it is a defect.
        assert_eq!(lost_outside_window(&figures.mysql, 10.0, 9.95), [2, 4]);
    }
}
