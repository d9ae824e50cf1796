//! Tests of `config.rs`.

use super::*;

#[test]
fn empty_config_gives_the_documented_defaults() {
    let c = Config::from_toml("", "t").unwrap();
    assert_eq!(c.sip.ring_timeout_s, 30);
    assert_eq!(c.codecs().unwrap(), vec![Codec::Pcmu, Codec::Pcma]);
}

#[test]
fn unknown_key_is_named_in_the_error() {
    let e = Config::from_toml("[sip]\nring_timout_s = 5\n", "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("ring_timout_s"), "{e}");
}

#[test]
fn wrong_type_is_named_in_the_error() {
    let e = Config::from_toml("[sip]\nring_timeout_s = \"soon\"\n", "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("ring_timeout_s"), "{e}");
}

#[test]
fn unknown_codec_is_rejected_with_its_key() {
    let e = Config::from_toml("[media]\ncodecs = [\"G729\"]\n", "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("media.codecs") && e.contains("G729"), "{e}");
}

#[test]
fn every_section_is_typed_and_nested_numbers_are_configurable() {
    let c = Config::from_toml(
        "[dialogue]\nspeak_delay_ms = 250\nmax_call_ms = 120000\n\
             [dialogue.amd]\ngreeting_ms = 1800\nuncertain_as = \"machine\"\n\
             [dialogue.routing]\nhardship_pause_days = 45\n\
             [asr]\nengine = \"sphinx\"\n\
             [campaign]\nmax_concurrent = 3\n",
        "t",
    )
    .unwrap();
    assert_eq!(c.dialogue.speak_delay_ms, 250);
    assert_eq!(c.dialogue.max_call_ms, 120_000);
    assert_eq!(c.dialogue.amd.greeting_ms, 1800);
    assert_eq!(
        c.dialogue.amd.uncertain_as,
        crate::dialogue::UncertainAs::Machine
    );
    assert_eq!(c.dialogue.routing.hardship_pause_days, 45);
    assert_eq!(c.asr.engine.as_deref(), Some("sphinx"));
    assert_eq!(c.campaign.max_concurrent, 3);
}

#[test]
fn a_bad_value_in_a_layer_section_names_its_dotted_key() {
    for (text, key) in [
        ("[dialogue]\nno_input_ms = 10\n", "dialogue.no_input_ms"),
        (
            "[dialogue.amd]\ngreeting_ms = 0\n",
            "dialogue.amd.greeting_ms",
        ),
        ("[dialogue.amd]\ngreting_ms = 900\n", "greting_ms"),
        (
            "[dialogue.routing]\nmax_promise_days = -1\n",
            "dialogue.routing.max_promise_days",
        ),
        (
            "[dialogue]\nagent_uri = \"tel:123\"\n",
            "dialogue.agent_uri",
        ),
        ("[asr]\nengine = \"whisper9\"\n", "asr.engine"),
        (
            "[campaign]\nmax_concurrent = 0\n",
            "campaign.max_concurrent",
        ),
        ("[policy]\nlast_bot_dya = 3\n", "last_bot_dya"),
        ("[sip]\ntransfer_timeout_s = 0\n", "sip.transfer_timeout_s"),
    ] {
        let e = Config::from_toml(text, "t").unwrap_err().to_string();
        assert!(e.contains(key), "{text:?}: {e}");
    }
}

#[test]
fn the_transport_comes_from_the_proxy_uri_or_the_transport_key() {
    let t = |text: &str| Config::from_toml(text, "t").map(|c| c.sip_transport());
    assert_eq!(t("").unwrap(), SipTransport::Udp);
    assert_eq!(
        t("[sip]\ntransport = \"tcp\"\noutbound_proxy = \"127.0.0.1:5060\"\n").unwrap(),
        SipTransport::Tcp
    );
    assert_eq!(
        t("[sip]\noutbound_proxy = \"sip:trunk.example;transport=TCP\"\n").unwrap(),
        SipTransport::Tcp
    );
    let e = t("[sip]\ntransport = \"tcp\"\noutbound_proxy = \"127.0.0.1:5060;transport=udp\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("sip.outbound_proxy"), "{e}");
    let e = t("[sip]\noutbound_proxy = \"127.0.0.1:5060;lr\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("sip.outbound_proxy"), "{e}");
    assert_eq!(
        t("[sip]\noutbound_proxy = \"sips:trunk.example\"\n").unwrap(),
        SipTransport::Tls
    );
    assert_eq!(
        t("[sip]\noutbound_proxy = \"127.0.0.1:5061;transport=tls\"\n").unwrap(),
        SipTransport::Tls
    );
    assert!(t("[sip]\noutbound_proxy = \"sips:trunk.example;transport=udp\"\n").is_err());
    let e = t("[sip]\ntls_cert_file = \"/c.pem\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("sip.tls_key_file"), "{e}");
    let e = t("[sip]\ntransport = \"sctp\"\n").unwrap_err().to_string();
    assert!(e.contains("transport"), "{e}");
}

#[test]
fn a_ws_url_proxy_speaks_sip_over_websocket_with_its_path() {
    let c = |text: &str| Config::from_toml(text, "t");
    let cfg = c("[sip]\noutbound_proxy = \"ws://127.0.0.1:5066/sip\"\n").unwrap();
    assert_eq!(cfg.sip_transport(), SipTransport::Ws);
    assert_eq!(cfg.ws_path().as_deref(), Some("/sip"));
    let p = cfg.proxy_host().unwrap().unwrap();
    assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", Some(5066)));
    let cfg = c("[sip]\noutbound_proxy = \"ws://proxy.example:8080\"\n").unwrap();
    assert_eq!(cfg.ws_path().as_deref(), Some("/"));
    assert_eq!(cfg.proxy_host().unwrap().unwrap().host, "proxy.example");
    let cfg = c("[sip]\ntransport = \"ws\"\noutbound_proxy = \"127.0.0.1:5066\"\n").unwrap();
    assert_eq!(cfg.sip_transport(), SipTransport::Ws);
    assert_eq!(cfg.ws_path(), None);
    for text in [
        // no port: a WebSocket server has no SIP default port
        "[sip]\noutbound_proxy = \"ws://proxy.example/sip\"\n",
        "[sip]\ntransport = \"ws\"\noutbound_proxy = \"127.0.0.1\"\n",
        // no proxy at all
        "[sip]\ntransport = \"ws\"\n",
        "[sip]\noutbound_proxy = \"ws://127.0.0.1:5066;transport=tcp\"\n",
        "[sip]\noutbound_proxy = \"sips:127.0.0.1:5066;transport=ws\"\n",
    ] {
        let e = c(text).unwrap_err().to_string();
        assert!(e.contains("sip.outbound_proxy"), "{text:?}: {e}");
    }
}

#[test]
fn options_pings_need_a_trunk_and_an_interval_up_to_an_hour() {
    for text in [
        "[sip]\noptions_ping_s = 30\n",
        "[sip]\noutbound_proxy = \"127.0.0.1:5060\"\noptions_ping_s = 7200\n",
    ] {
        let e = Config::from_toml(text, "t").unwrap_err().to_string();
        assert!(e.contains("sip.options_ping_s"), "{text:?}: {e}");
    }
    let c = Config::from_toml(
        "[sip]\noutbound_proxy = \"127.0.0.1:5060\"\noptions_ping_s = 30\n",
        "t",
    )
    .unwrap();
    assert_eq!(c.sip.options_ping_s, 30);
    assert_eq!(Config::default().sip.options_ping_s, 0, "off by default");
}

#[test]
fn register_needs_credentials_and_somewhere_to_register() {
    for (text, key) in [
        (
            "[sip]\nregister = true\noutbound_proxy = \"127.0.0.1:5060\"\n",
            "sip.user",
        ),
        (
            "[sip]\nregister = true\nuser = \"bot\"\npassword = \"pw\"\n",
            "sip.registrar",
        ),
        ("[sip]\nregister_expires = 1\n", "sip.register_expires"),
        ("[sip]\nregistrar = \"sip:a b\"\n", "sip.registrar"),
    ] {
        let e = Config::from_toml(text, "t").unwrap_err().to_string();
        assert!(e.contains(key), "{text:?}: {e}");
    }
    let c = Config::from_toml(
        "[sip]\nregister = true\nuser = \"bot\"\npassword = \"pw\"\n\
             registrar = \"sip:carrier.example\"\n",
        "t",
    )
    .unwrap();
    assert_eq!(c.sip.register_expires, 3600, "the default lifetime");
}

#[test]
fn the_old_media_speak_delay_names_the_one_that_works() {
    let e = Config::from_toml("[media]\nspeak_delay_ms = 300\n", "t")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("media.speak_delay_ms") && e.contains("[dialogue] speak_delay_ms"),
        "{e}"
    );
}

#[test]
fn bad_proxy_address_is_rejected_with_its_key() {
    let e = Config::from_toml("[sip]\noutbound_proxy = \"not a host\"\n", "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("sip.outbound_proxy"), "{e}");
    let host = |v: &str| {
        Config::from_toml(&format!("[sip]\noutbound_proxy = \"{v}\"\n"), "t")
            .map(|c| c.proxy_host().unwrap().unwrap())
            .map(|p| (p.host, p.port))
    };
    assert_eq!(
        host("127.0.0.1:5060").unwrap(),
        ("127.0.0.1".into(), Some(5060))
    );
    assert_eq!(host("sip:[::1]:5070").unwrap(), ("::1".into(), Some(5070)));
    assert_eq!(host("10.0.0.1").unwrap(), ("10.0.0.1".into(), None));
    assert_eq!(
        host("Trunk.Example.com").unwrap(),
        ("trunk.example.com".into(), None)
    );
    assert_eq!(
        host("trunk.example.com:5080").unwrap(),
        ("trunk.example.com".into(), Some(5080))
    );
    for bad in [
        "trunk..example",
        "trunk.example.com:x",
        "-a.com",
        "a.com:0",
        "a b",
    ] {
        let e = host(bad).unwrap_err().to_string();
        assert!(e.contains("sip.outbound_proxy"), "{bad}: {e}");
    }
}

#[test]
fn campaign_settings_default_and_unknown_key_is_named() {
    let s = Config::from_toml("", "t").unwrap().campaign;
    assert_eq!(
        s.retry_delays(),
        crate::campaign::scheduler::RetryDelays::default(),
        "the documented defaults: busy 10 min, no answer 2 h, voicemail next day"
    );
    let e = Config::from_toml("[campaign]\nretry_bussy_s = 5\n", "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("retry_bussy_s"), "{e}");
    let e = Config::from_toml("[campaign]\nmax_concurrent = 0\n", "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("campaign.max_concurrent"), "{e}");
}

#[test]
fn retry_delays_and_pacing_come_from_the_campaign_table() {
    let c = Config::from_toml(
            "[campaign]\nretry_busy_s = 3\nretry_no_answer_s = 4\nretry_voicemail_s = 5\ncalls_per_second = 0\nmax_attempts = 2\n",
            "t",
        )
        .unwrap();
    let sc = c.campaign.scheduler_config(
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 20, 2, 0, 0).unwrap(),
    );
    assert_eq!(sc.retry.busy, chrono::Duration::seconds(3));
    assert_eq!(sc.retry.no_answer, chrono::Duration::seconds(4));
    assert_eq!(sc.retry.voicemail, chrono::Duration::seconds(5));
    assert_eq!(sc.calls_per_second, None, "0 means unpaced");
    assert_eq!(sc.max_attempts, Some(2));
}
