//! The `smtprobe` binary: parse flags, run, exit. Everything testable is in the library.

use clap::{CommandFactory, Parser};
use smtprobe::app::cli::{self, Cli, Command};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and errors to stderr (exit 2).
            let _ = e.print();
            std::process::exit(if e.use_stderr() {
                cli::exit::USAGE
            } else {
                cli::exit::OK
            });
        }
    };
    cli::init_tracing(cli.verbose);
    let code = match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "smtprobe",
                &mut std::io::stdout(),
            );
            cli::exit::OK
        }
        Command::Check(args) => runtime().block_on(cli::run_check(args)),
        Command::Explain { query } => cli::run_explain(&query),
        Command::Providers => cli::run_providers(),
        Command::Demo {
            name,
            annotate,
            json,
            html,
        } => runtime().block_on(cli::run_demo(name, annotate, json, html)),
        Command::Serve(args) => runtime().block_on(cli::run_serve(args)),
        Command::Batch(args) => cli::run_batch(args),
        Command::Discover(args) => runtime().block_on(cli::run_discover(args)),
        Command::Web(args) => cli::run_web(args),
    };
    std::process::exit(code);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("smtprobe: cannot start the async runtime: {e}");
            std::process::exit(cli::exit::INTERNAL)
        })
}
