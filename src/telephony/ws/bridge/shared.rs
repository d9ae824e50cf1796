//! What the bridge's control API (`mod.rs`) and its media relay (`relay`)
//! share: how the bridge runs (its config and faults), what it saw of each
//! call, and the state of a running bridge.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::telephony::report::CallReport;
use crate::telephony::sip::SipGateway;

/// Faults the bridge injects into what it streams to duecall.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Swap each N-th media message with the next (out-of-order delivery).
    pub swap_media_every: Option<u64>,
    /// Send an unreadable frame every N-th message.
    pub garbage_every: Option<u64>,
    /// Stop sending anything (the socket stays open) this long after the
    /// stream starts.
    pub stall_after_ms: Option<u64>,
    /// Close the socket without the protocol's goodbye this long after the
    /// stream starts.
    pub close_after_ms: Option<u64>,
    /// Never echo marks.
    pub drop_marks: bool,
    /// Answer a transfer request this long after the call was moved (the
    /// stream has ended by then): a slow platform API.
    pub transfer_answer_delay_ms: Option<u64>,
}

/// What the "dialplan" does with an answered ARI-originated call.
#[derive(Debug, Clone)]
pub enum AsteriskMedia {
    /// `Dial(WebSocket/duecall/c(ulaw)v(attempt_id=...,stream_id=...))`: connect to this
    /// URL (websocket_client.conf `uri`, token included), adding the
    /// attempt as a URL parameter; `json` picks the control format.
    WebSocket {
        /// ws://host:port/ws/asterisk?token=...
        url: String,
        /// JSON control messages (channel variables in MEDIA_START).
        json: bool,
    },
    /// `AudioSocket(${DUECALL_STREAM_ID},host:port)`.
    AudioSocket(SocketAddr),
}

/// How the bridge runs.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// Where the control API listens (127.0.0.1:0: the OS picks).
    pub bind: SocketAddr,
    /// A `To` that is not a SIP URI is dialled as this template (`{to}`).
    pub dial_template: String,
    /// What ARI-originated calls connect to.
    pub asterisk: Option<AsteriskMedia>,
    /// The `Authorization` header the API insists on, if any.
    pub expect_authorization: Option<String>,
    /// Faults to inject on the stream.
    pub faults: Faults,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            dial_template: "sip:{to}@127.0.0.1:5070".into(),
            asterisk: None,
            expect_authorization: None,
            faults: Faults::default(),
        }
    }
}

/// What the bridge saw of one call.
#[derive(Debug, Clone, Default)]
pub struct BridgeCall {
    /// The call id (its SIP leg's Call-ID, used as Twilio's CallSid).
    pub call_sid: String,
    /// The SIP URI dialled.
    pub dialled: String,
    /// The stream's parameters (Twilio `<Parameter>`s, ARI variables).
    pub params: HashMap<String, String>,
    /// Marks echoed back to duecall.
    pub marks_echoed: u64,
    /// `clear` / `FLUSH_MEDIA` received.
    pub clears: u64,
    /// Audio frames duecall sent that were played to the callee.
    pub frames_from_duecall: u64,
    /// Audio frames streamed to duecall.
    pub frames_to_duecall: u64,
    /// Transfers asked for: target and whether the callee's phone took it.
    pub transfers: Vec<(String, bool)>,
    /// Who ended the stream: `platform` (the SIP leg ended), `duecall`.
    pub ended_by: Option<&'static str>,
    /// The SIP leg's report.
    pub sip: Option<CallReport>,
    /// A stream that could not be opened (refused by duecall, ...).
    pub stream_error: Option<String>,
    /// The relay is over: everything it notes about the call is noted
    /// (the SIP report can come before who ended the stream).
    pub relayed: bool,
}

/// A transfer the control API asks of a live call: the target, and where
/// the SIP leg's answer goes.
pub(crate) type TransferAsk = (String, oneshot::Sender<Result<(), String>>);

pub(crate) struct Shared {
    pub(crate) sip: SipGateway,
    pub(crate) cfg: BridgeConfig,
    pub(crate) asterisk: Mutex<Option<AsteriskMedia>>,
    pub(crate) calls: Mutex<HashMap<String, Arc<Mutex<BridgeCall>>>>,
    /// Transfer requests per live call: target, reply (ok, status).
    pub(crate) transfers: Mutex<HashMap<String, mpsc::Sender<TransferAsk>>>,
    pub(crate) ended: tokio::sync::Notify,
    pub(crate) shutdown: CancellationToken,
}
