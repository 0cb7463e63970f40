//! The `smtprobe` binary: parse flags, run, exit. Everything testable is in the library
//! (`smtprobe::app`); the exit code of every command is decided here, by
//! `app::exit::code`, from what the command returned.

use clap::{CommandFactory, Parser};
use smtprobe::app::cli::{self, Cli, Command};
use smtprobe::app::exit::{self, Finished};

fn main() {
    let finished = match Cli::try_parse() {
        Ok(cli) => {
            cli::init_tracing(cli.verbose);
            run(cli.command)
        }
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and errors to stderr (exit 2).
            let _ = e.print();
            if e.use_stderr() {
                Finished::UsagePrinted
            } else {
                Finished::Ok
            }
        }
    };
    if let Some(e) = finished.error() {
        eprintln!("{e}");
    }
    std::process::exit(exit::code(&finished));
}

fn run(command: Command) -> Finished {
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "smtprobe",
                &mut std::io::stdout(),
            );
            Finished::Ok
        }
        Command::Check(args) => block_on(cli::run_check(args)),
        Command::Explain { query } => cli::run_explain(&query),
        Command::Providers => cli::run_providers(),
        Command::Demo {
            name,
            annotate,
            json,
            html,
        } => block_on(cli::run_demo(name, annotate, json, html)),
        Command::Serve(args) => block_on(cli::run_serve(args)),
        Command::Batch(args) => smtprobe::app::batch::run(args),
        Command::Discover(args) => block_on(cli::run_discover(args)),
        Command::Web(args) => smtprobe::app::web::run(args),
    }
}

/// Runs `f` on a current-thread runtime (`batch` and `web` start their own).
fn block_on(f: impl std::future::Future<Output = Finished>) -> Finished {
    exit::block_on(&mut tokio::runtime::Builder::new_current_thread(), f)
}
