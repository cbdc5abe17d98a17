//! `failoverctl`: see `failoverctl --help` and the README's "failoverctl" section.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let (json, result) = match failoverctl::args::parse(&argv) {
        Ok(args) => (args.json, failoverctl::run(args).await),
        Err(err) => (argv.iter().any(|a| a == "--json"), Err(err)),
    };
    match result {
        Ok(answer) => {
            println!("{}", answer.render(json));
            ExitCode::SUCCESS
        }
        Err(failoverctl::CtlError::Help) => {
            println!("{}", failoverctl::args::USAGE);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{}", err.render(json));
            ExitCode::from(err.exit_code())
        }
    }
}
