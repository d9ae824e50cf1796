//! The service's commands, wired into clap by main.rs: `duecall serve`,
//! `duecall user add|list|disable`, `duecall token create|list|revoke`.
//! Owns their arguments, reading the password from stdin, printing a new
//! token once (alone on its last line), and the signal handling of
//! `serve` (Ctrl-C or SIGTERM: stop taking requests, finish those in
//! flight, stop the workers).

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset, Utc};
use tokio_util::sync::CancellationToken;

use super::access;
use super::error::WebError;
use super::server::{serve, ServeError, ServeOptions};
use crate::config::{Config, ConfigError};
use crate::store::audit::Actor;
use crate::store::cli::StoreArgs;
use crate::store::users::Role;
use crate::store::{Store, StoreError};

/// What the service's commands can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The config file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Starting or running the service.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// A check on the input (a name, a password) failed.
    #[error("{0}")]
    Input(String),
    /// Reading stdin or writing stdout.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<WebError> for CliError {
    fn from(e: WebError) -> Self {
        match e {
            WebError::Store(s) => CliError::Store(s),
            other => CliError::Input(other.to_string()),
        }
    }
}

/// Arguments of `duecall serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration (`[serve]`, `[[webhooks]]`, `[policy]`, ...).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data directory (default: $DUECALL_DATA, else ./duecall-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The shared PostgreSQL database (`postgres://user@host:port/db`;
    /// default: $DUECALL_STORE, else `[store] url`): the service then sees,
    /// and dials, the campaigns every node shares; without it, the data
    /// directory's SQLite.
    #[arg(long)]
    pub store: Option<String>,
    /// Address to listen on (default `[serve] listen`, 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Start the service's clock at this moment (RFC 3339; tests and replays).
    #[arg(long)]
    pub now: Option<DateTime<FixedOffset>>,
    /// Take AudioSocket connections on this address (`127.0.0.1:PORT`;
    /// overrides `[gateway] audiosocket`), for the calls the service's
    /// campaigns place through `[origination]`.
    #[arg(long)]
    pub audiosocket: Option<SocketAddr>,
    /// The trunk the service's campaigns dial through: the name of a
    /// `[[trunk]]` table, or an address for a one-off trunk.
    #[arg(long)]
    pub trunk: Option<String>,
}

/// `duecall user ...`.
#[derive(Debug, Clone, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    cmd: UserCmd,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum UserCmd {
    /// Create a user (or replace an existing user's role and password).
    Add {
        /// Login name.
        name: String,
        /// admin, collector or qa.
        #[arg(long)]
        role: Role,
        /// Read the password from the first line of stdin (required: never on the command line).
        #[arg(long)]
        password_stdin: bool,
        /// Where the store is (`--data-dir`, `--store`).
        #[command(flatten)]
        at: StoreArgs,
    },
    /// List users.
    List {
        /// Where the store is (`--data-dir`, `--store`).
        #[command(flatten)]
        at: StoreArgs,
    },
    /// Disable a user (no login; their sessions end).
    Disable {
        /// Login name.
        name: String,
        /// Where the store is (`--data-dir`, `--store`).
        #[command(flatten)]
        at: StoreArgs,
    },
}

/// `duecall token ...`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    cmd: TokenCmd,
}

#[derive(Debug, Clone, clap::Subcommand)]
enum TokenCmd {
    /// Create an API token; it is printed once, alone on the last line.
    Create {
        /// admin, collector or qa.
        #[arg(long)]
        role: Role,
        /// Who or what uses it (e.g. `crm`).
        #[arg(long)]
        name: String,
        /// Where the store is (`--data-dir`, `--store`).
        #[command(flatten)]
        at: StoreArgs,
    },
    /// List tokens (never the tokens themselves).
    List {
        /// Where the store is (`--data-dir`, `--store`).
        #[command(flatten)]
        at: StoreArgs,
    },
    /// Revoke a token by name.
    Revoke {
        /// The token's name.
        name: String,
        /// Where the store is (`--data-dir`, `--store`).
        #[command(flatten)]
        at: StoreArgs,
    },
}

fn open(at: &StoreArgs) -> Result<Store, CliError> {
    Ok(at.location()?.open()?)
}

/// After `duecall demo`: an admin login for the console on the demo's data
/// directory (user `demo`, a fresh random password of 20 characters, stored
/// as an argon2 hash like any other), and how to start the service on it.
/// The password is printed here once and kept nowhere else in clear.
pub fn demo_login(dir: &Path, out: &mut dyn Write) -> Result<(), CliError> {
    let password: String = crate::web::auth::random_hex().chars().take(20).collect();
    let mut store = Store::open(dir)?;
    access::put_user(
        &mut store,
        "demo",
        Role::Admin,
        &password,
        &Actor::cli("demo"),
        Utc::now(),
    )?;
    writeln!(
        out,
        "console: duecall serve --data-dir {} (listens on 127.0.0.1:8080), then open http://127.0.0.1:8080/",
        dir.display()
    )?;
    writeln!(
        out,
        "         and log in as demo with password {password} (role admin; made for this demo directory only)"
    )?;
    Ok(())
}

/// Runs `duecall user ...`.
pub fn run_user(
    args: &UserArgs,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let now = Utc::now();
    match &args.cmd {
        UserCmd::Add {
            name,
            role,
            password_stdin,
            at,
        } => {
            if !password_stdin {
                return Err(CliError::Input(
                    "give the password on stdin with --password-stdin (never on the command line)"
                        .into(),
                ));
            }
            access::check_name("name", name)?;
            let mut line = String::new();
            stdin.read_line(&mut line)?;
            let password = line.trim_end_matches(['\n', '\r']);
            access::check_password(password)?;
            let mut store = open(at)?;
            let new = access::put_user(
                &mut store,
                name,
                *role,
                password,
                &Actor::cli("user add"),
                now,
            )?;
            writeln!(
                out,
                "user {name} {} with role {role}",
                if new { "created" } else { "updated" }
            )?;
        }
        UserCmd::List { at } => {
            let store = open(at)?;
            for u in store.users()? {
                writeln!(
                    out,
                    "{:<24} {:<10} {}{}",
                    u.name,
                    u.role,
                    u.created_at.format("%Y-%m-%d %H:%M"),
                    if u.disabled { "  (disabled)" } else { "" }
                )?;
            }
        }
        UserCmd::Disable { name, at } => {
            let mut store = open(at)?;
            if !store.disable_user(name, now)? {
                return Err(CliError::Input(format!("no user named {name:?}")));
            }
            store.audit(
                now,
                &Actor::cli("user disable"),
                "user.disable",
                &format!("user:{name}"),
                &serde_json::json!({}),
            )?;
            writeln!(out, "user {name} disabled")?;
        }
    }
    Ok(())
}

/// Runs `duecall token ...`.
pub fn run_token(args: &TokenArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let now = Utc::now();
    match &args.cmd {
        TokenCmd::Create { role, name, at } => {
            let mut store = open(at)?;
            let token =
                access::create_token(&mut store, name, *role, &Actor::cli("token create"), now)?;
            writeln!(
                out,
                "token {name:?} (role {role}) created; it is shown this once, store it now:"
            )?;
            writeln!(out, "{token}")?;
        }
        TokenCmd::List { at } => {
            let store = open(at)?;
            for t in store.tokens()? {
                writeln!(
                    out,
                    "{:<24} {:<10} {}…  created {}{}",
                    t.name,
                    t.role,
                    t.prefix,
                    t.created_at.format("%Y-%m-%d %H:%M"),
                    match t.revoked_at {
                        Some(r) => format!("  revoked {}", r.format("%Y-%m-%d %H:%M")),
                        None => String::new(),
                    }
                )?;
            }
        }
        TokenCmd::Revoke { name, at } => {
            let mut store = open(at)?;
            if !store.revoke_token(name, now)? {
                return Err(CliError::Input(format!("no live token named {name:?}")));
            }
            store.audit(
                now,
                &Actor::cli("token revoke"),
                "token.revoke",
                &format!("token:{name}"),
                &serde_json::json!({}),
            )?;
            writeln!(out, "token {name} revoked")?;
        }
    }
    Ok(())
}

/// Runs `duecall serve` until Ctrl-C or SIGTERM.
pub async fn run_serve(args: &ServeArgs) -> Result<(), CliError> {
    let mut config = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    if let Some(a) = args.audiosocket {
        config.gateway.audiosocket = Some(a);
    }
    if let Some(t) = &args.trunk {
        config.select_trunk(t)?;
    }
    let data_dir = crate::store::cli::data_dir(args.data_dir.as_ref());
    let store_url = crate::store::cli::store_url(args.store.as_deref(), Some(&config.store))?;
    let shown = store_url.as_deref().map(crate::store::redact_url);
    let opts = ServeOptions {
        config,
        data_dir: data_dir.clone(),
        store_url,
        listen: args.listen,
        now: args.now.map(|t| t.with_timezone(&Utc)),
        prompts_dir: crate::agent::AgentPaths::under(&crate::agent::AgentPaths::default_root())
            .prompts,
    };
    let shutdown = CancellationToken::new();
    let watcher = tokio::spawn(signals(shutdown.clone()));
    let result = serve(opts, shutdown.clone(), |r| {
        println!("duecall serve: listening on {}://{}", r.scheme, r.addr);
        println!("data directory: {}", data_dir.display());
        if let Some(u) = &shown {
            println!("shared store: {u}");
        }
        let _ = std::io::stdout().flush();
    })
    .await;
    watcher.abort();
    result?;
    println!("duecall serve: stopped");
    Ok(())
}

/// Cancels `token` on Ctrl-C or SIGTERM.
async fn signals(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down: no new requests, finishing those in flight");
    token.cancel();
}
