//! `tern-sidecar`: parses flags, builds the settings, binds and serves. See the library crate
//! for everything else.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use tern_sidecar::cli::{self, Args};
use tern_sidecar::{Server, Settings};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let settings = match cli::settings(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tern-sidecar: {e}");
            return ExitCode::from(2);
        }
    };
    match serve(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tern-sidecar: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    let listen = settings.listen;
    let uris = settings.turn_uris.clone();
    let server = Server::bind(settings).with_context(|| format!("cannot listen on {listen}"))?;
    let addr = server.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, ?uris, "tern-sidecar listening; demo at http://{addr}/");
    server.run().context("serving")
}
