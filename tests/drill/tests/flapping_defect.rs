//! The flapping scenario's check can fail: with health-monitor's dampening removed, the
//! drill fails over under a flapping primary and exactly that check fails. (Its own test
//! binary: the drill sets the process environment to its emulator, so two drills must not
//! share a process.)

use failover_testkit::Emulator;
use shop_drill::{run, Defect, Options, Scenario};

/// Under `flapping`, a monitor without dampening (it decides on the first failed check)
/// fails over: exactly "no failover while the primary flaps" fails.
#[tokio::test]
async fn a_monitor_without_dampening_fails_over_under_flapping_and_the_check_says_so() {
    let emulator = Emulator::start().expect("the emulator starts");
    for (key, value) in emulator.env() {
        std::env::set_var(key, value);
    }
    let options = Options {
        scenario: Scenario::Flapping,
        defects: vec![Defect::NoDampening],
        ..Options::default()
    };
    let report = run(&emulator, &options).await.expect("the drill runs to its report");
    let failed = report.failed_checks();
    assert_eq!(failed, ["no failover while the primary flaps"], "{:#?}", report.checks);
    assert!(!report.passed());
}
