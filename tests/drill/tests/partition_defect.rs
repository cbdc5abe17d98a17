//! The partition scenario's check can fail: with health-monitor deciding from one vantage
//! point (the decider without its witness, a test-only defect), a cut between the secondary
//! and the primary looks like an outage and it switches: exactly "no failover under a
//! partition" fails. (Its own test binary: the drill sets the process environment to its
//! emulator, so two drills must not share a process.)

use failover_testkit::Emulator;
use shop_drill::{run, Defect, Options, Scenario};

#[tokio::test]
async fn a_monitor_without_its_witness_fails_over_under_a_partition_and_the_check_says_so() {
    let emulator = Emulator::start().expect("the emulator starts");
    for (key, value) in emulator.env() {
        std::env::set_var(key, value);
    }
    let options = Options {
        scenario: Scenario::Partition,
        defects: vec![Defect::NoQuorum],
        ..Options::default()
    };
    let report = run(&emulator, &options).await.expect("the drill runs to its report");
    assert_eq!(
        report.failed_checks(),
        ["no failover under a partition"],
        "{:#?}",
        report.checks
    );
    assert!(!report.passed());
}
