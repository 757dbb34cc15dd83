//! `lp2p-node`: a command-line libp2p node. The contract (subcommands, options, JSON events)
//! is in docs/node-cli.md; every failure ends in one `error` event and a non-zero exit.

#![allow(clippy::print_stdout)]

mod cli;
mod commands;
mod demo;
mod discovery;
mod executor;
mod hole_punching;
mod kad;
mod node;
mod output;
mod port_mapping;
mod reachability;
mod services;
mod stdin_lines;
mod stdout_sink;

use std::process::ExitCode;

use cli::Command;
use output::Output;

/// Exit code for a command line that could not be understood.
const EXIT_USAGE: u8 = 2;
/// Exit code for a failed run.
const EXIT_FAILURE: u8 = 1;
/// Exit code for an internal error (a bug: a panic caught by the hook).
const EXIT_INTERNAL: i32 = 70;

fn main() -> ExitCode {
    let code = run_main();
    // Events still queued for a slow reader go out before the process ends.
    Output::drain();
    code
}

fn run_main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(ToString::to_string)
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Output::new(false).error(&format!(
            "internal error (a bug in lp2p-node{location}): {payload}"
        ));
        Output::drain();
        std::process::exit(EXIT_INTERNAL);
    }));

    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, common) = match cli::parse(&args) {
        Ok(parsed) => parsed,
        Err(err) => {
            Output::new(false).error(&err.0);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if matches!(command, Command::Help) {
        print!("{}", cli::USAGE);
        return ExitCode::SUCCESS;
    }
    init_logging(common.verbose);
    // demo prints for people unless --json is given explicitly.
    let human = common.human
        || (matches!(command, Command::Demo { .. }) && !args.iter().any(|a| a == "--json"));
    let out = Output::new(human);
    executor::size_async_std_executor();
    match executor::run_on_executor(run(command, common, out.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(what) => {
            out.error(&what);
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

async fn run(command: Command, common: cli::Common, out: Output) -> Result<(), String> {
    let (common, out) = (&common, &out);
    // dial, perf and conn-bench fail when --timeout passes; listen and hold stop gracefully.
    let hard = |what: &'static str| {
        move |()| {
            format!(
                "{what} did not finish within --timeout {:?}",
                common.timeout.unwrap_or_default()
            )
        }
    };
    let rt = lp2p::RuntimeHandle::try_default().ok_or("no runtime compiled in")?;
    match command {
        Command::Listen {
            addrs,
            topics,
            connect,
            relays,
        } => commands::listen(common, out, &addrs, &topics, &connect, &relays).await,
        Command::Dial {
            addr,
            ping,
            echo,
            identify,
            topic,
            publish,
            expect_messages,
            kad_ops,
        } => {
            let run = commands::dial(
                common,
                out,
                &addr,
                commands::DialActions {
                    ping,
                    echo: echo.as_deref(),
                    identify,
                    topic: topic.as_deref(),
                    publish: publish.as_deref(),
                    expect_messages,
                    kad_ops: &kad_ops,
                },
            );
            with_timeout(&rt, common, Box::pin(run))
                .await
                .map_err(hard("dial"))?
        }
        Command::Perf {
            addr,
            upload,
            download,
        } => with_timeout(
            &rt,
            common,
            commands::perf(common, out, &addr, upload, download),
        )
        .await
        .map_err(hard("perf"))?,
        Command::ConnBench { addr, count } => with_timeout(
            &rt,
            common,
            Box::pin(commands::conn_bench(common, out, &addr, count)),
        )
        .await
        .map_err(hard("conn-bench"))?,
        Command::Hold {
            addr,
            count,
            concurrency,
        } => commands::hold(common, out, &addr, count, concurrency).await,
        Command::Demo { nodes } => demo::run(common, out, nodes).await,
        Command::Keygen { out: path } => commands::keygen(out, path.as_deref()),
        Command::Help => Ok(()),
    }
}

async fn with_timeout<F: std::future::Future>(
    rt: &lp2p::RuntimeHandle,
    common: &cli::Common,
    future: F,
) -> Result<F::Output, ()> {
    match common.timeout {
        Some(limit) => rt.timeout(limit, future).await.map_err(|_| ()),
        None => Ok(future.await),
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match (std::env::var("RUST_LOG"), verbose) {
        (Ok(spec), _) if !spec.is_empty() => EnvFilter::new(spec),
        (_, 0) => return,
        (_, 1) => EnvFilter::new("info"),
        (_, 2) => EnvFilter::new("debug"),
        _ => EnvFilter::new("trace"),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
