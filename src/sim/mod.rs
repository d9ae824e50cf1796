//! Simulated debtors: a loopback SIP callee (UAS) that answers like a person.
//! A real peer: rsipstack signalling over UDP and RTP/G.711 media through the
//! same `media_session` duecall itself uses. The Request-URI user part picks
//! the persona (`sip:paid@127.0.0.1:5070`), so one [`SimCallee`] serves many
//! calls and many accounts at once. After answering, the debtor listens with
//! the VAD, waits for each of duecall's prompts to end, and says its next
//! line (espeak-ng, rendered once and cached). It serves the conversation
//! tests, `duecall demo`, the campaign tests and the load benchmark.
//!
//! Owns the simulated far end only. It never decides anything for duecall,
//! and its personas are fictional: nothing here is masked.

pub mod audio;
mod callee;
pub mod cue;
pub mod meaning;
pub mod persona;
pub mod record;
pub mod script;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use callee::{parse_refer_to, SimCallee};
pub use cue::PromptKind;
pub use persona::{Answer, ConfirmHabit, Habits, Persona, PersonaBook, ReferPolicy, Step};
pub use record::{
    ByeFrom, ReferReceived, SaidLine, SentDtmf, SimCallRecord, SimEvent, SimEventKind,
};
pub use script::PromptHeard;

/// Errors of the simulated callee.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The SIP socket could not be bound.
    #[error("cannot bind the simulated callee on {addr}: {message}")]
    Bind {
        /// Address tried.
        addr: SocketAddr,
        /// Why.
        message: String,
    },
    /// The SIP stack refused to start.
    #[error("SIP stack: {0}")]
    Stack(String),
    /// A persona file is wrong.
    #[error("personas in {source_name}: {message}")]
    Personas {
        /// File (or source) name.
        source_name: String,
        /// What is wrong, naming the persona and step.
        message: String,
    },
    /// A line could not be rendered.
    #[error("sim audio: {0}")]
    Audio(String),
}

/// How the simulated callee runs.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// SIP address to listen on (127.0.0.1:0: the OS picks the port).
    pub bind: SocketAddr,
    /// The personas served.
    pub personas: PersonaBook,
    /// Where rendered lines are cached (each renders once).
    pub audio_cache: PathBuf,
    /// espeak-ng speed, words per minute.
    pub speed: u32,
    /// Reply gap range (min, max) in ms: from the end of duecall's last
    /// voiced frame to the debtor's reply. A reply never starts before the
    /// prompt's end has been detected (`prompt_end_silence_ms`).
    pub reply_gap_ms: (u64, u64),
    /// Silence after speech that ends one of duecall's prompts.
    pub prompt_end_silence_ms: u32,
    /// Overrides every persona's ringing time (tests and benchmarks ring short).
    pub ring_ms: Option<u64>,
    /// Where to write each call's two-channel recording (left: what the sim
    /// said, right: what it heard), if anywhere.
    pub record_dir: Option<PathBuf>,
    /// The sim hangs up a call that lasts longer than this.
    pub max_call_ms: u64,
    /// A no_answer persona stops ringing (480) after this long.
    pub max_ring_ms: u64,
    /// No RTP from duecall for this long ends the call (BYE).
    pub media_timeout_ms: u64,
    /// Seed for the reply gaps (None: random per call).
    pub seed: Option<u64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            personas: PersonaBook::builtin(),
            audio_cache: std::env::temp_dir().join("duecall-sim-audio"),
            speed: 165,
            reply_gap_ms: (400, 700),
            prompt_end_silence_ms: 650,
            ring_ms: None,
            record_dir: None,
            max_call_ms: 300_000,
            max_ring_ms: 120_000,
            media_timeout_ms: 30_000,
            seed: None,
        }
    }
}

/// Starts a simulated callee: binds SIP, renders every persona's lines, and
/// serves calls until [`SimCallee::shutdown`] (or drop).
pub async fn start(cfg: SimConfig) -> Result<SimCallee, SimError> {
    SimCallee::start(cfg).await
}

/// `duecall sim`: serve the simulated debtors until Ctrl-C.
#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// SIP address to listen on.
    #[arg(long, default_value = "127.0.0.1:5070")]
    pub bind: SocketAddr,
    /// TOML file with more personas (`[persona.<name>]`, see the docs of `PersonaBook::extend_from_toml`).
    #[arg(long)]
    pub personas: Option<PathBuf>,
    /// Where to write each call's recording (WAV, two channels).
    #[arg(long)]
    pub record_dir: Option<PathBuf>,
}

/// Runs `duecall sim`: prints its address and personas, then every call's
/// persona, lines and end, until Ctrl-C.
pub async fn run_sim(args: &SimArgs) -> Result<(), SimError> {
    let mut book = PersonaBook::builtin();
    if let Some(p) = &args.personas {
        book.load_file(p)?;
    }
    let cfg = SimConfig {
        bind: args.bind,
        personas: book,
        record_dir: args.record_dir.clone(),
        ..SimConfig::default()
    };
    let sim = start(cfg).await?;
    println!(
        "simulated debtors listening on {} (Ctrl-C to stop)",
        sim.addr()
    );
    for name in sim.persona_names() {
        println!("  {}", sim.uri_for(&name));
    }
    let mut events = sim.subscribe();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            ev = events.recv() => match ev {
                Ok(ev) => println!("{ev}"),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => println!("({n} events not shown)"),
                Err(_) => break,
            }
        }
    }
    sim.shutdown();
    Ok(())
}
