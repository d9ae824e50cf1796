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

const TWO_TRUNKS: &str = r#"
[[trunk]]
name = "carrier-a"
address = "sip:trunk-a.example.com:5060"
user = "acme"
password = "pw"
caller_id = "+14155550100"
priority = 0
weight = 3
max_concurrent = 10

[[trunk]]
name = "carrier-b"
address = "192.0.2.7:5080"
priority = 1
"#;

#[test]
fn trunk_tables_parse_and_the_first_priority_is_the_gateways_trunk() {
    let c = Config::from_toml(TWO_TRUNKS, "t").unwrap();
    let t = c.trunks();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].name, "carrier-a");
    assert_eq!(t[0].weight, 3);
    assert_eq!(t[0].max_concurrent, Some(10));
    assert_eq!(t[0].caller_id.as_deref(), Some("+14155550100"));
    assert_eq!(t[1].weight, 1, "weight defaults to 1");
    assert_eq!(t[1].max_concurrent, None);
    // The gateway reads the trunk tried first through [sip].
    assert_eq!(
        c.sip.outbound_proxy.as_deref(),
        Some("sip:trunk-a.example.com:5060")
    );
    assert_eq!(c.sip.user.as_deref(), Some("acme"));
    assert_eq!(
        c.trunk_addresses(),
        vec!["sip:trunk-a.example.com:5060", "192.0.2.7:5080"]
    );
    let swapped = TWO_TRUNKS.replace("priority = 1", "priority = 0").replacen(
        "priority = 0",
        "priority = 2",
        1,
    );
    let c = Config::from_toml(&swapped, "t").unwrap();
    assert_eq!(c.primary_trunk().unwrap().name, "carrier-b");
    assert_eq!(c.sip.outbound_proxy.as_deref(), Some("192.0.2.7:5080"));
    assert_eq!(c.sip.user, None, "carrier-b has no credentials");
}

#[test]
fn the_old_sip_keys_are_one_trunk_named_default() {
    let c = Config::from_toml(
        "[sip]\noutbound_proxy = \"127.0.0.1:5060\"\ntransport = \"tcp\"\nuser = \"u\"\npassword = \"p\"\n",
        "t",
    )
    .unwrap();
    let t = c.trunks();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].name, DEFAULT_TRUNK);
    assert_eq!(t[0].address.as_deref(), Some("127.0.0.1:5060"));
    assert_eq!(t[0].effective_transport(), SipTransport::Tcp);
    assert_eq!(t[0].user.as_deref(), Some("u"));
    assert!(Config::from_toml("", "t").unwrap().trunks().is_empty());
}

#[test]
fn an_old_sip_key_next_to_trunk_tables_names_both() {
    for k in [
        "outbound_proxy = \"127.0.0.1:5060\"",
        "transport = \"udp\"",
        "user = \"u\"",
        "register = false",
        "register_expires = 60",
    ] {
        let key = k.split(' ').next().unwrap();
        let e = Config::from_toml(&format!("[sip]\n{k}\n{TWO_TRUNKS}"), "t")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("sip.{key}")) && e.contains("[[trunk]]"),
            "{k}: {e}"
        );
    }
    // [sip] keys that are not the trunk's stay where they are.
    let c = Config::from_toml(&format!("[sip]\nring_timeout_s = 20\n{TWO_TRUNKS}"), "t").unwrap();
    assert_eq!(c.sip.ring_timeout_s, 20);
}

#[test]
fn a_bad_trunk_value_names_the_trunk_and_the_key() {
    let cases = [
        (
            "address = \"192.0.2.7:5080\"",
            "address = \"not a host\"",
            "trunk.carrier-b.address",
        ),
        (
            "address = \"192.0.2.7:5080\"",
            "",
            "trunk.carrier-b.address",
        ),
        (
            "priority = 1",
            "priority = 1\nweight = 0",
            "trunk.carrier-b.weight",
        ),
        (
            "priority = 1",
            "priority = 1\nmax_concurrent = 0",
            "trunk.carrier-b.max_concurrent",
        ),
        (
            "priority = 1",
            "priority = 1\ncaller_id = \"4155550100\"",
            "trunk.carrier-b.caller_id",
        ),
        (
            "priority = 1",
            "priority = 1\nuser = \"x\"",
            "trunk.carrier-b.password",
        ),
        (
            "priority = 1",
            "priority = 1\ntransport = \"ws\"",
            "trunk.carrier-b.transport",
        ),
        (
            "priority = 1",
            "priority = 1\npai = true",
            "trunk.carrier-b.pai",
        ),
        (
            "priority = 1",
            "priority = 1\nregister = true",
            "trunk.carrier-b.user",
        ),
        (
            "name = \"carrier-b\"",
            "name = \"carrier-a\"",
            "trunk.carrier-a.name",
        ),
        (
            "priority = 1",
            "priority = 1\nregistrar = \"sip:a b\"",
            "trunk.carrier-b.registrar",
        ),
    ];
    for (from, to, key) in cases {
        let text = TWO_TRUNKS.replace(from, to);
        let e = Config::from_toml(&text, "t").unwrap_err().to_string();
        assert!(e.contains(key), "{to:?}: {e}");
    }
    let e = Config::from_toml(&TWO_TRUNKS.replace("priority = 1", "colour = 1"), "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("colour"), "unknown keys refused: {e}");
    assert!(is_e164("+14155550100") && !is_e164("+0123") && !is_e164("+1415 555"));
}

#[test]
fn the_trunk_flag_picks_a_table_or_makes_a_one_off_trunk() {
    let mut c = Config::from_toml(TWO_TRUNKS, "t").unwrap();
    assert!(
        !c.select_trunk("carrier-b").unwrap(),
        "a name, not an address"
    );
    assert_eq!(c.trunks().len(), 1);
    assert_eq!(c.sip.outbound_proxy.as_deref(), Some("192.0.2.7:5080"));
    assert_eq!(c.sip.user, None);

    let mut c = Config::from_toml(TWO_TRUNKS, "t").unwrap();
    let e = c.select_trunk("carrier-c").unwrap_err().to_string();
    assert!(
        e.contains("--trunk") && e.contains("carrier-a, carrier-b"),
        "{e}"
    );
    assert!(c.select_trunk("127.0.0.1:5070").unwrap());
    assert_eq!(c.trunks()[0].name, "127.0.0.1:5070");
    assert_eq!(c.trunks()[0].user, None, "a one-off among several: bare");

    // The old `call --proxy` over [sip] credentials keeps them.
    let mut c = Config::from_toml(
        "[sip]\ntransport = \"tcp\"\nuser = \"u\"\npassword = \"p\"\n",
        "t",
    )
    .unwrap();
    assert!(c.select_trunk("127.0.0.1:5070").unwrap());
    assert_eq!(c.sip.outbound_proxy.as_deref(), Some("127.0.0.1:5070"));
    assert_eq!(c.sip.user.as_deref(), Some("u"));
    assert_eq!(c.sip_transport(), SipTransport::Tcp);
    c.set_credentials(Some("v".into()), Some("q".into()));
    assert_eq!(c.trunks()[0].user.as_deref(), Some("v"));
    assert_eq!(c.sip.user.as_deref(), Some("v"));
    let e = Config::default()
        .select_trunk("not a host")
        .unwrap_err()
        .to_string();
    assert!(e.contains("--trunk"), "{e}");
}

#[test]
fn a_registering_tls_trunk_folds_into_the_gateways_registration() {
    let c = Config::from_toml(
        r#"
[sip]
tls_ca_file = "ca.pem"

[[trunk]]
name = "carrier"
address = "sips:trunk.example.com"
user = "acme"
password = "pw"
register = true
register_expires = 600
"#,
        "t",
    )
    .unwrap();
    assert!(c.sip.register);
    assert_eq!(c.sip.register_expires, 600);
    assert_eq!(c.sip_transport(), SipTransport::Tls);
    let e = Config::from_toml(
        "[[trunk]]\nname = \"c\"\naddress = \"127.0.0.1\"\nregister = true\n",
        "t",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("trunk.c.user"), "{e}");
}

#[test]
fn caller_ids_are_e164_in_the_campaign_and_pai_needs_one() {
    let c = Config::from_toml("[campaign]\ncaller_id = \"+14155550100\"\n", "t").unwrap();
    assert_eq!(c.campaign.caller_id.as_deref(), Some("+14155550100"));
    let e = Config::from_toml("[campaign]\ncaller_id = \"555-0100\"\n", "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("campaign.caller_id"), "{e}");
    // pai = true with the campaign's caller ID to assert is fine.
    let text = "[campaign]\ncaller_id = \"+14155550100\"\n\
                [[trunk]]\nname = \"c\"\naddress = \"127.0.0.1\"\npai = true\nprivacy = \"id\"\n";
    let c = Config::from_toml(text, "t").unwrap();
    assert_eq!(c.trunks()[0].privacy, Some(Privacy::Id));
    let e = Config::from_toml(&text.replace("\"id\"", "\"all\""), "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("privacy"), "{e}");
}

#[test]
fn every_trunk_may_register_with_its_own_credentials() {
    let text = TWO_TRUNKS.replace(
        "priority = 1",
        "priority = 1\nregister = true\nuser = \"b-user\"\npassword = \"b-pw\"\nregister_expires = 120",
    );
    let c = Config::from_toml(&text, "t").expect("a second registering trunk is fine");
    let b = c
        .trunks()
        .into_iter()
        .find(|t| t.name == "carrier-b")
        .unwrap();
    assert!(b.register);
    assert_eq!(b.register_expires, Some(120));
    assert!(!c.sip.register, "the primary (carrier-a) does not register");
}

#[test]
fn trunks_on_udp_tcp_and_tls_share_one_process() {
    let text = format!(
        "{TWO_TRUNKS}\n[[trunk]]\nname = \"carrier-c\"\naddress = \"sips:trunk-c.example.com\"\npriority = 2\n"
    )
    .replace("priority = 1", "priority = 1\ntransport = \"tcp\"");
    let c = Config::from_toml(&text, "t").expect("udp, tcp and tls trunks together");
    let kinds: Vec<SipTransport> = c.trunks().iter().map(|t| t.effective_transport()).collect();
    assert_eq!(
        kinds,
        [SipTransport::Udp, SipTransport::Tcp, SipTransport::Tls]
    );
    assert_eq!(c.sip_transport(), SipTransport::Udp, "the primary's");
}

#[test]
fn keepalive_s_defaults_to_30_and_is_bounded() {
    assert_eq!(Config::default().sip.keepalive_s, 30);
    let c = Config::from_toml("[sip]\nkeepalive_s = 0\n", "t").expect("0 turns them off");
    assert_eq!(c.sip.keepalive_s, 0);
    let e = Config::from_toml("[sip]\nkeepalive_s = 3601\n", "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("sip.keepalive_s"), "{e}");
}
