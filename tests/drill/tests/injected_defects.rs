//! The drill's checks can fail: with the defects they guard injected, exactly those checks
//! fail, although every function reports success (the false success the drill exists to
//! catch), and the drill does not pass. A repoint that does nothing also fails the
//! customers' checks, as it would in a shop: the servers keep writing to the old primary,
//! so checkout comes back only when that primary does, two writers take orders, and those
//! orders are missing from the promoted database.

use failover_testkit::Emulator;
use shop_drill::{run, Defect, Options};

#[tokio::test]
async fn a_document_that_does_nothing_and_a_read_only_promoted_database_fail_their_checks() {
    let emulator = Emulator::start().expect("the emulator starts");
    for (key, value) in emulator.env() {
        std::env::set_var(key, value);
    }
    let options = Options {
        writes: 60,
        defects: vec![Defect::DocumentDoesNothing, Defect::PromotedDatabaseReadOnly],
        ..Options::default()
    };
    let report = run(&emulator, &options).await.expect("the drill runs to its report");

    let failed = report.failed_checks();
    assert_eq!(
        failed,
        [
            "replica promoted exactly once",
            "every app server repointed",
            "checkout works again on the promoted database",
            "orders lost only in the replication window",
            "no order reached the old primary after the switch"
        ],
        "{:#?}",
        report.checks
    );
    assert!(
        report.instances.iter().all(|i| i["result"] == "success"),
        "every command reported success: {:?}",
        report.instances
    );
    let orders = report.orders.as_ref().expect("the region outage has customers");
    assert!(
        !orders.split_brain.is_empty(),
        "orders reached the old primary: {orders:#?}"
    );
    assert!(!report.passed());
}
