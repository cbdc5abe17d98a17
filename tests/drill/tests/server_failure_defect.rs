//! The server-failure scenario's checks can fail: with the repoint document doing nothing
//! (it exits 0 everywhere, as moto's SSM did), the failing server reports success, and
//! "the failed server is reported" and "every other server repointed" fail, with the
//! customers' checks a repoint that does nothing breaks in a shop (servers still writing to
//! the old primary: checkout back only with it, two writers, orders missing from the
//! promoted database). (Its own test binary: the drill sets the process environment to its
//! emulator.)

use failover_testkit::Emulator;
use shop_drill::{run, Defect, Options, Scenario};

#[tokio::test]
async fn a_document_that_does_nothing_hides_the_failed_server_and_the_checks_say_so() {
    let emulator = Emulator::start().expect("the emulator starts");
    for (key, value) in emulator.env() {
        std::env::set_var(key, value);
    }
    let options = Options {
        writes: 60,
        scenario: Scenario::ServerFailure,
        defects: vec![Defect::DocumentDoesNothing],
        ..Options::default()
    };
    let report = run(&emulator, &options).await.expect("the drill runs to its report");
    assert_eq!(
        report.failed_checks(),
        [
            "the failed server is reported",
            "every other server repointed",
            "checkout works again on the promoted database",
            "orders lost only in the replication window",
            "no order reached the old primary after the switch"
        ],
        "{:#?}",
        report.checks
    );
}
