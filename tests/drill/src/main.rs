//! `drill [--json FILE]`: runs the local failover and failback drill and prints its report;
//! exits non-zero when any check fails.

use std::process::ExitCode;

use failover_testkit::Emulator;
use shop_drill::{self as drill, Options};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json_path = match args.as_slice() {
        [] => None,
        [flag, path] if flag == "--json" => Some(path.clone()),
        _ => {
            eprintln!("usage: drill [--json FILE]");
            return ExitCode::from(2);
        }
    };
    let emulator = match Emulator::start() {
        Ok(emulator) => emulator,
        Err(e) => {
            eprintln!("drill: cannot start the emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (key, value) in emulator.env() {
        // Single-threaded here: no other thread reads the environment yet.
        std::env::set_var(key, value);
    }
    println!(
        "== failover drill: primary us-east-1, secondary us-west-2 (emulator {}) ==",
        emulator.endpoint()
    );
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = runtime.block_on(drill::run(&emulator, &Options::default()));
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("drill: FAILED: {e}");
            return ExitCode::FAILURE;
        }
    };
    report.print_summary();
    if let Some(path) = json_path {
        let json = serde_json::to_string_pretty(&report).expect("the report serializes");
        if let Err(e) = std::fs::write(&path, json) {
            eprintln!("drill: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
        println!("report written to {path}");
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
