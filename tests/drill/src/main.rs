//! `drill [--scenario region-outage|flapping|server-failure|partition|chaos] [--no-failback] [--json FILE] [--html FILE]`:
//! runs the local failover drill (by default a region outage, failover and failback), prints
//! its report, and writes it as JSON and as a self-contained HTML page; exits non-zero when
//! any check fails.

use std::process::ExitCode;

use failover_testkit::Emulator;
use shop_drill::{self as drill, Options};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut json_path, mut html_path, mut scenario) = (None, None, None);
    let mut failback = true;
    let mut words = args.iter();
    while let Some(flag) = words.next() {
        let slot = match flag.as_str() {
            "--no-failback" => {
                failback = false;
                continue;
            }
            "--json" => &mut json_path,
            "--html" => &mut html_path,
            "--scenario" => &mut scenario,
            _ => return usage(&format!("unknown argument {flag:?}")),
        };
        match words.next() {
            Some(path) => *slot = Some(path.clone()),
            None => return usage(&format!("{flag} needs a value")),
        }
    }
    let options = Options {
        scenario: match scenario.as_deref().unwrap_or("region-outage").parse() {
            Ok(scenario) => scenario,
            Err(problem) => return usage(&problem),
        },
        failback,
        ..Options::default()
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
    let result = runtime.block_on(drill::run(&emulator, &options));
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
    if let Some(path) = html_path {
        if let Err(e) = std::fs::write(&path, drill::html::render(&report)) {
            eprintln!("drill: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
        println!("report page written to {path}");
    }
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!(
        "drill: {problem}\nusage: drill [--scenario region-outage|flapping|server-failure|partition|chaos] [--no-failback] [--json FILE] [--html FILE]"
    );
    ExitCode::from(2)
}
