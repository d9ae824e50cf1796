//! End-to-end tests against real peers, one test binary (faster to link on 2 cores).

mod peers;
mod sip_calls;
mod baresip;
mod sim_callee;
mod conversation;
mod campaign;
