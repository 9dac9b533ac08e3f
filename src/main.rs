//! The `deskline` binary: parses the command line and runs `serve`, `ctl` or `certs`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// mimalloc: the REGISTER path allocates many small strings; glibc malloc cost ~20 % of its CPU.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "deskline", version, about = "SIP registrar and HTTPS provisioning server for deskphones")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (embedded defaults, or every setting from a TOML file).
    Serve {
        /// The configuration file (TOML). Without it, the embedded defaults apply.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The operator's command line over the admin API.
    Ctl(deskline::ctl::CtlArgs),
    /// Certificates for test benches and first installs.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Write a server CA and certificate, a device CA, and a client certificate per --device MAC.
    Init {
        /// Where the files go.
        dir: PathBuf,
        /// A phone's MAC address to issue a device certificate for (repeatable).
        #[arg(long = "device")]
        devices: Vec<String>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            init_tracing();
            let config = match config {
                Some(path) => deskline::config::Config::load(&path)?,
                None => deskline::config::Config::default(),
            };
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(deskline::app::run(config)).context("deskline stopped")?;
        }
        Command::Ctl(args) => deskline::ctl::run(args)?,
        Command::Certs { command: CertsCommand::Init { dir, devices } } => {
            let macs = devices
                .iter()
                .map(|m| m.parse::<deskline::directory::Mac>().with_context(|| format!("--device {m}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let written = deskline::certs::init_dir(&dir, &macs)?;
            println!("deskline: certificates in {} ({written:?})", dir.display());
        }
    }
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DESKLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
