//! `duecall serve` end to end, on a store filled by a real campaign
//! against the simulated debtors: access (401/403 for every route of the
//! OpenAPI document), the claim race, bad input, path traversal, range
//! requests on a recording, the audit log, sessions and CSRF, TLS.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;
use serde_json::Value;

use crate::peers::scratch;
use crate::serve_support::*;

/// Every protected route of the API and the roles that may use it. The
/// test fails if the OpenAPI document has a route this table does not
/// name (or the other way round): a new route must say who may use it.
const ACCESS: &[(&str, &str, &[&str])] = &[
    ("get", "/api/v1/attempts", &["admin", "collector", "qa"]),
    (
        "get",
        "/api/v1/attempts/{id}",
        &["admin", "collector", "qa"],
    ),
    (
        "get",
        "/api/v1/attempts/{id}/recording",
        &["admin", "collector", "qa"],
    ),
    ("post", "/api/v1/attempts/{id}/labels", &["admin", "qa"]),
    ("get", "/api/v1/labels/export", &["admin", "qa"]),
    ("get", "/api/v1/escalations", &["admin", "collector"]),
    ("get", "/api/v1/escalations/{id}", &["admin", "collector"]),
    (
        "post",
        "/api/v1/escalations/{id}/claim",
        &["admin", "collector"],
    ),
    (
        "post",
        "/api/v1/escalations/{id}/unclaim",
        &["admin", "collector"],
    ),
    (
        "post",
        "/api/v1/escalations/{id}/notes",
        &["admin", "collector"],
    ),
    (
        "post",
        "/api/v1/escalations/{id}/close",
        &["admin", "collector"],
    ),
    ("get", "/api/v1/pauses", &["admin", "collector"]),
    (
        "post",
        "/api/v1/pauses/{id}/release",
        &["admin", "collector"],
    ),
    (
        "post",
        "/api/v1/pauses/{id}/extend",
        &["admin", "collector"],
    ),
    ("get", "/api/v1/suppressions", &["admin", "collector"]),
    ("get", "/api/v1/callbacks", &["admin", "collector"]),
    ("get", "/api/v1/accounts", &["admin", "collector"]),
    (
        "get",
        "/api/v1/accounts/{account_id}",
        &["admin", "collector"],
    ),
    ("get", "/api/v1/stats", &["admin", "qa"]),
    ("get", "/api/v1/me", &["admin", "collector", "qa"]),
    ("get", "/api/v1/audit", &["admin"]),
    ("get", "/api/v1/users", &["admin"]),
    ("post", "/api/v1/users", &["admin"]),
    ("get", "/api/v1/tokens", &["admin"]),
    ("post", "/api/v1/tokens", &["admin"]),
    ("delete", "/api/v1/tokens/{name}", &["admin"]),
    ("get", "/metrics", &["admin", "collector", "qa"]),
    ("get", "/api/v1/campaigns", &["admin", "qa"]),
    ("post", "/api/v1/campaigns", &["admin"]),
    ("get", "/api/v1/campaigns/{id}", &["admin", "qa"]),
    ("post", "/api/v1/campaigns/{id}/accounts", &["admin"]),
    ("post", "/api/v1/campaigns/{id}/start", &["admin"]),
    ("post", "/api/v1/campaigns/{id}/pause", &["admin"]),
    ("post", "/api/v1/campaigns/{id}/stop", &["admin"]),
    ("post", "/api/v1/imports/do-not-call", &["admin"]),
    ("post", "/api/v1/imports/payments", &["admin"]),
];

/// Routes anyone may call.
const OPEN: &[(&str, &str)] = &[("get", "/healthz"), ("get", "/openapi.json")];

const ROLES: [&str; 3] = ["admin", "collector", "qa"];

fn concrete(path: &str) -> String {
    path.replace("{id}", "1")
        .replace("{account_id}", "DEMO-01")
        .replace("{name}", "nobody")
}

async fn call(
    c: &reqwest::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
) -> reqwest::Response {
    let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
    let mut r = c.request(m, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.expect("request")
}

fn tokens(data: &std::path::Path) -> BTreeMap<&'static str, String> {
    ROLES
        .iter()
        .map(|r| (*r, token(data, r, &format!("{r}-test"))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_of_the_openapi_document_refuses_anonymous_callers_and_wrong_roles() {
    let data = copy_store("access");
    let tok = tokens(&data);
    let srv = Serve::start(&data, "");
    let c = client();
    let doc = json(call(&c, "get", &format!("{}/openapi.json", srv.url), None).await).await;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "OpenAPI 3: {}",
        doc["openapi"]
    );
    let mut in_doc = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                in_doc.insert((method.clone(), path.clone()));
            }
        }
    }
    let in_table: BTreeSet<(String, String)> = ACCESS
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .chain(OPEN.iter().map(|(m, p)| (m.to_string(), p.to_string())))
        .collect();
    assert_eq!(
        in_doc, in_table,
        "the OpenAPI document and the access table name the same routes"
    );

    for (m, p) in OPEN {
        let r = call(&c, m, &format!("{}{}", srv.url, p), None).await;
        assert_eq!(r.status(), StatusCode::OK, "{m} {p} is open");
    }
    for (m, p, allowed) in ACCESS {
        let url = format!("{}{}", srv.url, concrete(p));
        let r = call(&c, m, &url, None).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "anonymous {m} {p}");
        let body = json(r).await;
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains("Bearer")),
            "{body}"
        );
        let r = call(
            &c,
            m,
            &url,
            Some("dct_0000000000000000000000000000000000000000000000000000000000000000"),
        )
        .await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "unknown token {m} {p}"
        );
        for role in ROLES {
            let r = call(&c, m, &url, Some(&tok[role])).await;
            let status = r.status();
            if allowed.contains(&role) {
                assert!(
                    status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                    "{role} may {m} {p}, got {status}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{role} may not {m} {p}");
                let body = json(r).await;
                assert!(
                    body["error"].as_str().is_some_and(|e| e.contains(role)),
                    "{body}"
                );
            }
        }
    }
}

/// An open escalation of the copy, by reason if given.
async fn open_case(c: &reqwest::Client, srv: &Serve, token: &str, reason: Option<&str>) -> Value {
    let url = format!("{}/api/v1/escalations?status=open&limit=100", srv.url);
    let list = json(call(c, "get", &url, Some(token)).await).await;
    let items = list.as_array().expect("a JSON list").clone();
    items
        .into_iter()
        .find(|e| reason.is_none_or(|r| e["reason"] == r))
        .unwrap_or_else(|| {
            panic!(
                "an open escalation{} in {list}",
                reason.map(|r| format!(" for {r}")).unwrap_or_default()
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_many_concurrent_claims_exactly_one_collector_wins() {
    let data = copy_store("race");
    let collectors: Vec<String> = (0..4)
        .map(|i| token(&data, "collector", &format!("c{i}")))
        .collect();
    let srv = Serve::start(&data, "");
    let c = client();
    let case = open_case(&c, &srv, &collectors[0], None).await;
    let url = format!("{}/api/v1/escalations/{}/claim", srv.url, case["id"]);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (c, url, t) = (c.clone(), url.clone(), collectors[i % 4].clone());
        tasks.push(tokio::spawn(async move {
            c.post(&url)
                .bearer_auth(t)
                .send()
                .await
                .expect("claim")
                .status()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.expect("task"));
    }
    let wins = codes.iter().filter(|s| s.is_success()).count();
    assert_eq!(wins, 1, "exactly one 2xx: {codes:?}");
    assert!(
        codes
            .iter()
            .all(|s| s.is_success() || *s == StatusCode::CONFLICT),
        "{codes:?}"
    );
    // The case now names its one collector.
    let detail = json(
        call(
            &c,
            "get",
            &format!("{}/api/v1/escalations/{}", srv.url, case["id"]),
            Some(&collectors[0]),
        )
        .await,
    )
    .await;
    assert_eq!(detail["status"], "claimed");
    assert!(detail["claimed_by"]
        .as_str()
        .is_some_and(|b| b.starts_with('c')));
}

async fn change_count(c: &reqwest::Client, srv: &Serve, admin: &str) -> usize {
    let log = json(
        call(
            c,
            "get",
            &format!("{}/api/v1/audit?limit=1000", srv.url),
            Some(admin),
        )
        .await,
    )
    .await;
    log.as_array()
        .expect("audit list")
        .iter()
        .filter(|e| !e["action"].as_str().unwrap_or("").ends_with(".read"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_naming_the_field_and_changes_nothing() {
    let data = copy_store("badinput");
    let admin = token(&data, "admin", "root");
    let srv = Serve::start(&data, "");
    let c = client();
    let case = open_case(&c, &srv, &admin, None).await;
    let id = case["id"].as_i64().expect("id");
    let claim = call(
        &c,
        "post",
        &format!("{}/api/v1/escalations/{id}/claim", srv.url),
        Some(&admin),
    )
    .await;
    assert_eq!(claim.status(), StatusCode::OK);
    let before = change_count(&c, &srv, &admin).await;
    let post = |path: String, body: &'static str| {
        let c = c.clone();
        let admin = admin.clone();
        async move {
            let r = c
                .post(&path)
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("post");
            let status = r.status();
            (status, json(r).await)
        }
    };
    let close = format!("{}/api/v1/escalations/{id}/close", srv.url);
    let cases: Vec<(String, &str, &str)> = vec![
        (close.clone(), r#"{"outcome":"pause"}"#, "until"),
        (
            close.clone(),
            r#"{"outcome":"pause","until":"next tuesday"}"#,
            "until",
        ),
        (
            close.clone(),
            r#"{"outcome":"pause","until":"2001-01-01T00:00:00Z"}"#,
            "until",
        ),
        (close.clone(), r#"{"outcome":"explode"}"#, "outcome"),
        (close.clone(), r#"{"outcome":"suppress"}"#, "scope"),
        (
            close.clone(),
            r#"{"outcome":"retry","at":"2001-01-01T00:00:00Z"}"#,
            "at",
        ),
        (
            close.clone(),
            r#"{"outcome":"resolved","colour":"red"}"#,
            "colour",
        ),
        (close.clone(), r#"{"outcome":"resolved""#, "body"),
        (
            format!("{}/api/v1/escalations/{id}/notes", srv.url),
            r#"{"text":"   "}"#,
            "text",
        ),
        (
            format!("{}/api/v1/escalations/{id}/notes", srv.url),
            r#"{"text":5}"#,
            "text",
        ),
        (
            format!("{}/api/v1/attempts/1/labels", srv.url),
            r#"{"verdict":"correct","score":9}"#,
            "score",
        ),
        (
            format!("{}/api/v1/attempts/1/labels", srv.url),
            r#"{"verdict":"correct","score":900}"#,
            "score",
        ),
        (
            format!("{}/api/v1/attempts/1/labels", srv.url),
            r#"{"verdict":"wrong_intent","turn":1}"#,
            "right_intent",
        ),
        (
            format!("{}/api/v1/attempts/1/labels", srv.url),
            r#"{"verdict":"wrong_intent","turn":1,"right_intent":"rich"}"#,
            "right_intent",
        ),
        (
            format!("{}/api/v1/tokens", srv.url),
            r#"{"name":"a b","role":"admin"}"#,
            "name",
        ),
        (
            format!("{}/api/v1/users", srv.url),
            r#"{"name":"bob","role":"qa","password":"short"}"#,
            "password",
        ),
        (
            format!("{}/api/v1/users", srv.url),
            r#"{"name":"bob","role":"boss","password":"long enough pw"}"#,
            "role",
        ),
    ];
    for (url, body, field) in cases {
        let (status, b) = post(url.clone(), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url} {body}: {b}");
        assert_eq!(b["field"], field, "{url} {body}: {b}");
        assert!(
            b["error"].as_str().is_some_and(|e| e.contains(field)),
            "{b}"
        );
    }
    // Not JSON at all.
    let r = c
        .post(&close)
        .bearer_auth(&admin)
        .body("outcome=pause")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(r).await["field"], "content-type");
    // Query strings name the parameter.
    for (q, field) in [
        ("limit=ten", "limit"),
        ("limit=0", "limit"),
        ("disposition=maybe", "disposition"),
        ("since=yesterday", "since"),
        ("intent=rich", "intent"),
        ("colour=red", "colour"),
    ] {
        let r = call(
            &c,
            "get",
            &format!("{}/api/v1/attempts?{q}", srv.url),
            Some(&admin),
        )
        .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(json(r).await["field"], field, "{q}");
    }
    // Unknown ids are 404.
    for (m, p) in [
        ("get", "/api/v1/attempts/999999"),
        ("get", "/api/v1/attempts/999999/recording"),
        ("get", "/api/v1/escalations/999999"),
        ("post", "/api/v1/escalations/999999/claim"),
        ("post", "/api/v1/pauses/999999/release"),
        ("get", "/api/v1/accounts/NO-SUCH-ACCOUNT"),
        ("delete", "/api/v1/tokens/no-such-token"),
    ] {
        let r = call(&c, m, &format!("{}{p}", srv.url), Some(&admin)).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{m} {p}");
    }
    assert_eq!(
        change_count(&c, &srv, &admin).await,
        before,
        "no bad request changed anything"
    );
    let detail = json(
        call(
            &c,
            "get",
            &format!("{}/api/v1/escalations/{id}", srv.url),
            Some(&admin),
        )
        .await,
    )
    .await;
    assert_eq!(detail["status"], "claimed", "the case is as it was");
    assert!(detail["notes"].as_array().is_some_and(|n| n.is_empty()));
}

/// The first call of the copy that kept a recording, and that file.
async fn recorded(c: &reqwest::Client, srv: &Serve, token: &str) -> (i64, std::path::PathBuf) {
    let list = json(
        call(
            c,
            "get",
            &format!("{}/api/v1/attempts?limit=100", srv.url),
            Some(token),
        )
        .await,
    )
    .await;
    let a = list
        .as_array()
        .expect("list")
        .iter()
        .find(|a| a["recording_url"].is_string())
        .expect("a call with a recording")
        .clone();
    let id = a["id"].as_i64().expect("id");
    let conn = rusqlite::Connection::open(srv.data.join("duecall.db")).expect("open");
    let path: String = conn
        .query_row("SELECT recording FROM attempts WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .expect("recording path");
    (id, path.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_is_served_whole_and_by_ranges() {
    let data = copy_store("ranges");
    let qa = token(&data, "qa", "q");
    let srv = Serve::start(&data, "");
    let c = client();
    let (id, path) = recorded(&c, &srv, &qa).await;
    let file = std::fs::read(&path).expect("recording file");
    let len = file.len();
    let url = format!("{}/api/v1/attempts/{id}/recording", srv.url);
    let whole = c.get(&url).bearer_auth(&qa).send().await.expect("get");
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.headers()["content-type"], "audio/wav");
    assert_eq!(whole.bytes().await.expect("body").as_ref(), file.as_slice());
    let range = |h: String| {
        let (c, url, qa) = (c.clone(), url.clone(), qa.clone());
        async move {
            c.get(&url)
                .bearer_auth(&qa)
                .header("range", h)
                .send()
                .await
                .expect("get")
        }
    };
    let head = range("bytes=0-43".into()).await;
    assert_eq!(head.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        head.headers()["content-range"],
        format!("bytes 0-43/{len}").as_str()
    );
    let b = head.bytes().await.expect("body");
    assert_eq!(b.len(), 44);
    assert_eq!(&b[0..4], b"RIFF");
    assert_eq!(&b[8..12], b"WAVE");
    let mid = range(format!("bytes={}-{}", len / 2, len / 2 + 999)).await;
    assert_eq!(mid.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        mid.bytes().await.expect("body").as_ref(),
        &file[len / 2..len / 2 + 1000]
    );
    let tail = range("bytes=-100".into()).await;
    assert_eq!(
        tail.bytes().await.expect("body").as_ref(),
        &file[len - 100..]
    );
    let open = range(format!("bytes={}-", len - 10)).await;
    assert_eq!(
        open.bytes().await.expect("body").as_ref(),
        &file[len - 10..]
    );
    let past = range(format!("bytes={len}-")).await;
    assert_eq!(past.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        past.headers()["content-range"],
        format!("bytes */{len}").as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_reaches_a_file_outside_the_data_directory() {
    let data = copy_store("traversal");
    let admin = token(&data, "admin", "root");
    // A secret beside the data directory.
    let secret = data.parent().expect("parent").join("secret.wav");
    std::fs::write(&secret, b"RIFF-SECRET-DO-NOT-SERVE").expect("write secret");
    let srv = Serve::start(&data, "");
    let c = client();
    let (id, path) = recorded(&c, &srv, &admin).await;
    for target in [
        "/api/v1/attempts/..%2F..%2Fsecret.wav/recording".to_string(),
        "/api/v1/attempts/%2e%2e/recording".to_string(),
        format!("/api/v1/attempts/{id}%2F..%2F..%2Fsecret.wav/recording"),
        "/api/v1/attempts/../../secret.wav".to_string(),
        "/static/..%2F..%2F..%2FCargo.toml".to_string(),
        "/static/../../../../etc/passwd".to_string(),
        "/static/%2e%2e%2fsecret.wav".to_string(),
    ] {
        let (status, body) = raw_get(&srv.addr(), &target, Some(&admin));
        assert!((400..500).contains(&status), "{target}: {status}");
        assert!(
            !body.contains("SECRET") && !body.contains("root:x:0"),
            "{target}: {body}"
        );
    }
    // The stored path itself edited to lead out, or the file swapped for a
    // symlink that does: still refused.
    let conn = rusqlite::Connection::open(data.join("duecall.db")).expect("open");
    let rel = format!("{}/../secret.wav", data.display());
    conn.execute(
        "UPDATE attempts SET recording = ?1 WHERE id = ?2",
        rusqlite::params![rel, id],
    )
    .expect("edit path");
    let url = format!("{}/api/v1/attempts/{id}/recording", srv.url);
    let r = call(&c, "get", &url, Some(&admin)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    conn.execute(
        "UPDATE attempts SET recording = ?1 WHERE id = ?2",
        rusqlite::params![path.display().to_string(), id],
    )
    .expect("restore path");
    std::fs::remove_file(&path).expect("remove recording");
    std::os::unix::fs::symlink(&secret, &path).expect("symlink");
    let r = call(&c, "get", &url, Some(&admin)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(!r.text().await.expect("body").contains("SECRET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_names_who_read_and_who_changed_what() {
    let data = copy_store("audit");
    let collector = token(&data, "collector", "carol");
    let admin = token(&data, "admin", "root");
    let srv = Serve::start(&data, "");
    let c = client();
    let (id, _) = recorded(&c, &srv, &collector).await;
    call(
        &c,
        "get",
        &format!("{}/api/v1/attempts/{id}", srv.url),
        Some(&collector),
    )
    .await;
    c.get(format!("{}/api/v1/attempts/{id}/recording", srv.url))
        .bearer_auth(&collector)
        .header("range", "bytes=0-99")
        .send()
        .await
        .expect("range");
    let case = open_case(&c, &srv, &collector, None).await;
    let cid = case["id"].as_i64().expect("id");
    call(
        &c,
        "get",
        &format!("{}/api/v1/escalations/{cid}", srv.url),
        Some(&collector),
    )
    .await;
    call(
        &c,
        "post",
        &format!("{}/api/v1/escalations/{cid}/claim", srv.url),
        Some(&collector),
    )
    .await;
    let r = c
        .post(format!("{}/api/v1/escalations/{cid}/close", srv.url))
        .bearer_auth(&collector)
        .json(&serde_json::json!({"outcome": "resolved", "note": "paid by card on the phone"}))
        .send()
        .await
        .expect("close");
    assert_eq!(r.status(), StatusCode::OK);
    let log = json(
        call(
            &c,
            "get",
            &format!("{}/api/v1/audit?actor=token:carol", srv.url),
            Some(&admin),
        )
        .await,
    )
    .await;
    let got: Vec<(String, String)> = log
        .as_array()
        .expect("list")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_string(),
                e["target"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for want in [
        ("transcript.read".to_string(), format!("attempt:{id}")),
        ("recording.read".to_string(), format!("attempt:{id}")),
        ("transcript.read".to_string(), format!("escalation:{cid}")),
        ("escalation.claim".to_string(), format!("escalation:{cid}")),
        ("escalation.close".to_string(), format!("escalation:{cid}")),
    ] {
        assert!(got.contains(&want), "{want:?} in {got:?}");
    }
    assert!(log
        .as_array()
        .expect("list")
        .iter()
        .all(|e| e["actor"] == "token:carol" && e["at"].is_string()));
    // Newest first.
    assert_eq!(got[0].0, "escalation.close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_session_is_an_httponly_cookie_and_changes_need_its_csrf_token() {
    let data = copy_store("session");
    user(&data, "carol", "collector", "correct horse battery");
    let srv = Serve::start(&data, "");
    let c = client();
    // Anonymous visitors are sent to the login.
    let r = call(&c, "get", &format!("{}/", srv.url), None).await;
    assert!(r.status().is_redirection());
    assert!(r.headers()["location"]
        .to_str()
        .expect("location")
        .starts_with("/login"));
    // The form sets its double-submit cookie.
    let form = call(&c, "get", &format!("{}/login", srv.url), None).await;
    let login_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("duecall_login="))
        .expect("login cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let html = form.text().await.expect("form");
    assert!(html.contains("name=\"username\"") && html.contains("name=\"password\""));
    let csrf_field = login_cookie
        .trim_start_matches("duecall_login=")
        .to_string();
    let login = |password: &'static str, cookie: String, csrf: String| {
        let c = c.clone();
        let url = format!("{}/login", srv.url);
        async move {
            c.post(url)
                .header("cookie", cookie)
                .form(&[
                    ("username", "carol"),
                    ("password", password),
                    ("csrf", csrf.as_str()),
                    ("next", "/"),
                ])
                .send()
                .await
                .expect("login")
        }
    };
    let wrong = login("wrong password!", login_cookie.clone(), csrf_field.clone()).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let forged = login(
        "correct horse battery",
        "duecall_login=other".into(),
        csrf_field.clone(),
    )
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "login CSRF");
    let ok = login(
        "correct horse battery",
        login_cookie.clone(),
        csrf_field.clone(),
    )
    .await;
    assert!(ok.status().is_redirection(), "{}", ok.status());
    let set = ok
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("duecall_session="))
        .expect("session cookie")
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "no Secure over plain HTTP: {set}");
    let session = set.split(';').next().expect("pair").to_string();
    let me = json(
        c.get(format!("{}/api/v1/me", srv.url))
            .header("cookie", &session)
            .send()
            .await
            .expect("me"),
    )
    .await;
    assert_eq!(me["role"], "collector");
    let csrf = me["csrf_token"].as_str().expect("csrf token").to_string();
    let case = {
        let list = json(
            c.get(format!("{}/api/v1/escalations?status=open", srv.url))
                .header("cookie", &session)
                .send()
                .await
                .expect("list"),
        )
        .await;
        list[0]["id"].as_i64().expect("an open case")
    };
    let claim = format!("{}/api/v1/escalations/{case}/claim", srv.url);
    let no_csrf = c
        .post(&claim)
        .header("cookie", &session)
        .send()
        .await
        .expect("claim");
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
    let bad_csrf = c
        .post(&claim)
        .header("cookie", &session)
        .header("x-csrf-token", "0".repeat(64))
        .send()
        .await
        .expect("claim");
    assert_eq!(bad_csrf.status(), StatusCode::FORBIDDEN);
    let good = c
        .post(&claim)
        .header("cookie", &session)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("claim");
    assert_eq!(good.status(), StatusCode::OK);
    // Log out ends the session.
    let out = c
        .post(format!("{}/logout", srv.url))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("logout");
    assert!(out.status().is_redirection());
    let after = c
        .get(format!("{}/api/v1/me", srv.url))
        .header("cookie", &session)
        .send()
        .await
        .expect("me");
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_terminates_tls_and_marks_the_cookie_secure() {
    if !duecall::testkit::needs().tool("openssl").met() {
        return;
    }
    let dir = scratch("serve-tls");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (scripts/setup installs it)");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    user(&data, "carol", "collector", "correct horse battery");
    let srv = Serve::start(
        &data,
        &format!(
            "[serve]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            cert.display(),
            key.display()
        ),
    );
    assert!(srv.url.starts_with("https://"), "{}", srv.url);
    duecall::crypto::install_crypto();
    let pem = std::fs::read(&cert).expect("cert");
    let c = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("TLS client");
    let h = json(
        c.get(format!("{}/healthz", srv.url))
            .send()
            .await
            .expect("healthz over TLS"),
    )
    .await;
    assert_eq!(h["status"], "ok");
    let form = c
        .get(format!("{}/login", srv.url))
        .send()
        .await
        .expect("form");
    let cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("duecall_login="))
        .expect("login cookie")
        .to_string();
    assert!(cookie.contains("Secure"), "{cookie}");
    let pair = cookie.split(';').next().expect("pair").to_string();
    let csrf = pair.trim_start_matches("duecall_login=").to_string();
    let ok = c
        .post(format!("{}/login", srv.url))
        .header("cookie", pair)
        .form(&[
            ("username", "carol"),
            ("password", "correct horse battery"),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .expect("login");
    let set = ok
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("duecall_session="))
        .expect("session cookie")
        .to_string();
    assert!(set.contains("Secure") && set.contains("HttpOnly"), "{set}");
    // Plain HTTP to the TLS port gets no answer of ours.
    let (status, _) = raw_get(&srv.addr(), "/healthz", None);
    assert_ne!(status, 200);
}

/// schemathesis (PyPI, installed by scripts/setup) fuzzes every operation
/// of the OpenAPI document with an admin token: no answer may be a 5xx.
#[test]
fn schemathesis_finds_no_server_error_in_the_openapi_document() {
    let st = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".local/venv/schemathesis/bin/schemathesis");
    if !duecall::testkit::needs().file(&st, "schemathesis").met() {
        return;
    }
    let data = copy_store("schemathesis");
    let name = format!("fuzz-{}", rand::random::<u32>());
    let admin = token(&data, "admin", &name);
    let srv = Serve::start(&data, "");
    let out = std::process::Command::new(&st)
        .arg("run")
        .arg(format!("{}/openapi.json", srv.url))
        .args(["-H", &format!("Authorization: Bearer {admin}")])
        .args([
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "25",
            "--no-color",
        ])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(data.parent().expect("scratch"))
        .output()
        .expect("run schemathesis");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "schemathesis found failures:\n{text}");
    assert!(text.contains("passed"), "{text}");
    let log = std::fs::read_to_string(&srv.peer.log).unwrap_or_default();
    assert!(
        !log.contains("request failed"),
        "the service logged a server error:\n{log}"
    );
}
