//! End-to-end tests against real peers, one test binary (faster to link on 2 cores).

// First: its `campaign_test!` macro is used by the modules below.
#[macro_use]
mod peers;
mod baresip;
mod campaign;
mod compliance;
mod console;
mod conversation;
mod hostile;
mod mandarin;
mod media_security;
mod pg_campaign;
mod pg_nodes;
mod pg_serve;
mod pg_store;
mod rtcp;
mod rtp_peer;
mod serve;
mod serve_campaigns;
mod serve_imports;
mod serve_support;
mod serve_webhooks;
mod sim_callee;
mod sip_calls;
mod sit;
mod soak;
mod speech;
mod storage_faults;
mod transfer_bridge;
mod trunk_dns;
mod trunk_failover;
mod trunk_keepalive;
mod trunk_multi;
mod trunk_options;
mod trunk_register;
mod trunk_tcp;
mod trunk_tls;
mod webrtc_ws;
mod ws_cli;
mod ws_conversation;
mod ws_direct;
mod ws_serve;
mod ws_streams;
