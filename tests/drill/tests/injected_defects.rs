//! The drill's checks can fail: with the defects they guard injected, exactly those checks
//! fail, although every function reports success (the false success the drill exists to
//! catch), and the drill does not pass.

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
        ["replica promoted", "every app server repointed"],
        "{:#?}",
        report.checks
    );
    assert!(
        report.instances.iter().all(|i| i["result"] == "success"),
        "every command reported success: {:?}",
        report.instances
    );
    assert!(!report.passed());
}
