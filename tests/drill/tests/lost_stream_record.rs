//! "orders lost only in the replication window" can fail: with one cart item's stream record
//! never delivered (acknowledged long before the failure, so replication had every chance to
//! copy it), exactly that check fails and names the order.

use failover_testkit::Emulator;
use shop_drill::{run, Defect, Options};

#[tokio::test]
async fn a_stream_record_lost_before_the_failure_fails_exactly_the_replication_window_check() {
    let emulator = Emulator::start().expect("the emulator starts");
    for (key, value) in emulator.env() {
        std::env::set_var(key, value);
    }
    let options = Options {
        writes: 60,
        defects: vec![Defect::DropStreamRecord],
        ..Options::default()
    };
    let report = run(&emulator, &options).await.expect("the drill runs to its report");

    assert_eq!(
        report.failed_checks(),
        ["orders lost only in the replication window"],
        "{:#?}",
        report.checks
    );
    let orders = report.orders.as_ref().expect("the region outage has customers");
    let lost_at = orders.dynamodb.lost_at_seconds.first().copied().unwrap_or(f64::NAN);
    assert!(
        lost_at < orders.last_replication_read_seconds.unwrap_or(0.0),
        "the dropped order was acknowledged before the last replication pass: {orders:#?}"
    );
    assert!(
        orders.mysql.lost.is_empty(),
        "MySQL loses nothing here: {:?}",
        orders.mysql
    );
}
