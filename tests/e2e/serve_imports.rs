//! The lender's do-not-call list and payments file through the API, on a
//! store filled by a real campaign: admins only (collectors and QA get 403
//! and nothing is stored), an import lands with its audit line, what it
//! says reaches the gate (a listed number stops the account's next dial;
//! payments show in the account), an import twice stores nothing twice, and
//! a file with one bad row is refused whole, naming the line, with nothing
//! already stored lost.

use reqwest::StatusCode;
use serde_json::Value;

use crate::serve_support::*;

async fn post_csv(
    c: &reqwest::Client,
    url: &str,
    token: &str,
    body: &str,
    content_type: &str,
) -> reqwest::Response {
    c.post(url)
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .expect("request")
}

async fn get(c: &reqwest::Client, url: &str, token: &str) -> Value {
    let r = c.get(url).bearer_auth(token).send().await.expect("request");
    assert_eq!(r.status(), StatusCode::OK, "GET {url}");
    json(r).await
}

fn count(data: &std::path::Path, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(data.join("duecall.db")).expect("open");
    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

async fn audit(c: &reqwest::Client, srv: &Serve, admin: &str, action: &str) -> Vec<Value> {
    get(
        c,
        &format!("{}/api/v1/audit?action={action}", srv.url),
        admin,
    )
    .await
    .as_array()
    .expect("audit list")
    .clone()
}

/// An account of the campaign the gate allows now, with its number.
async fn callable_account(c: &reqwest::Client, srv: &Serve, admin: &str) -> (String, String) {
    let list = get(c, &format!("{}/api/v1/accounts?limit=100", srv.url), admin).await;
    for a in list.as_array().expect("accounts") {
        let id = a["account_id"].as_str().expect("account_id");
        let d = get(c, &format!("{}/api/v1/accounts/{id}", srv.url), admin).await;
        let blocked = d["next_dial"]["blocked_by"].as_array().expect("blocked_by");
        let suppressed = d["state"]["suppressed_account"].as_bool() == Some(true)
            || !d["state"]["suppressed_numbers"]
                .as_array()
                .expect("numbers")
                .is_empty();
        // Not suppressed: whatever else holds it (hours, a pause), a listed
        // number must add the do-not-call rule.
        if !suppressed
            && !blocked
                .iter()
                .any(|b| b.as_str().unwrap_or("").contains("suppress"))
        {
            let phone = d["account"]["phone"].as_str().expect("phone").to_string();
            return (id.to_string(), phone);
        }
    }
    panic!("no account without a suppression in the campaign: {list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_do_not_call_list_is_imported_by_admins_only_whole_or_not_at_all_and_stops_the_dial() {
    let data = copy_store("import-dnc");
    let admin = token(&data, "admin", "importer");
    let collector = token(&data, "collector", "desk");
    let qa = token(&data, "qa", "review");
    let srv = Serve::start(&data, "");
    let c = client();
    let url = format!("{}/api/v1/imports/do-not-call", srv.url);
    let (account, phone) = callable_account(&c, &srv, &admin).await;
    let before = count(&data, "dnc_numbers") + count(&data, "suppressions");

    let good = format!(
        "phone,account_id,scope,reason\n{phone},,number,asked by letter\n,LIST-ONLY-1,account,lawyer\n+12025550199,,account,deceased\n"
    );
    for t in [&collector, &qa] {
        let r = post_csv(&c, &url, t, &good, "text/csv").await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        count(&data, "dnc_numbers") + count(&data, "suppressions"),
        before,
        "a refused role stores nothing"
    );

    let r = post_csv(&c, &url, &admin, &good, "text/csv").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json(r).await;
    assert_eq!(body["rows"], 3, "{body}");
    assert_eq!(body["added"], 3, "{body}");
    let after = count(&data, "dnc_numbers") + count(&data, "suppressions");
    assert_eq!(after, before + 3);
    let lines = audit(&c, &srv, &admin, "dnc.import").await;
    assert_eq!(lines.len(), 1, "one audit line: {lines:?}");
    assert_eq!(lines[0]["actor"], "token:importer");
    assert_eq!(lines[0]["detail"]["rows"], 3);
    assert_eq!(lines[0]["detail"]["new"], 3);

    // The gate reads it: the listed number stops the account's next dial.
    let d = get(
        &c,
        &format!("{}/api/v1/accounts/{account}", srv.url),
        &admin,
    )
    .await;
    assert_eq!(d["next_dial"]["allowed_now"], false, "{}", d["next_dial"]);
    assert!(
        d["next_dial"]["blocked_by"]
            .as_array()
            .expect("blocked_by")
            .iter()
            .any(|b| b
                .as_str()
                .unwrap_or("")
                .contains("do-not-call list: asked by letter")),
        "the listed number is named among what denies now: {}",
        d["next_dial"]
    );
    assert!(
        d["state"]["suppressed_numbers"]
            .as_array()
            .is_some_and(|n| !n.is_empty()),
        "the account shows its listed number: {}",
        d["state"]
    );
    // The holds list shows the list's entries, by number too.
    let supp = get(&c, &format!("{}/api/v1/suppressions", srv.url), &admin).await;
    let listed: Vec<&Value> = supp
        .as_array()
        .expect("suppressions")
        .iter()
        .filter(|s| s["source"] == "list")
        .collect();
    assert_eq!(listed.len(), 3, "{supp}");
    assert!(listed
        .iter()
        .any(|s| s["account_id"].is_null() && s["reason"] == "asked by letter"));
    assert!(
        !supp.to_string().contains(&phone),
        "numbers are masked in the list"
    );

    // The same file again stores nothing twice.
    let r = post_csv(&c, &url, &admin, &good, "text/csv").await;
    assert_eq!(json(r).await["added"], 0);

    // One bad row refuses the file whole, naming its line; nothing stored
    // before is lost, nothing of the file is stored.
    let bad = "phone,reason\n+12025550111,fine\n+12025550112,fine too\n12ab,not a number\n";
    let r = post_csv(&c, &url, &admin, bad, "text/csv").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e = json(r).await;
    assert_eq!(e["field"], "csv line 4", "{e}");
    assert!(e["error"].as_str().unwrap_or("").contains("12ab"), "{e}");
    assert!(
        e["error"]
            .as_str()
            .unwrap_or("")
            .contains("nothing was stored"),
        "{e}"
    );
    assert_eq!(
        count(&data, "dnc_numbers") + count(&data, "suppressions"),
        after
    );
    assert_eq!(audit(&c, &srv, &admin, "dnc.import").await.len(), 2);

    // Not CSV, an unknown column, a bad region: 400 naming the field.
    let r = post_csv(&c, &url, &admin, &good, "application/json").await;
    assert_eq!(json(r).await["field"], "content-type");
    let r = post_csv(&c, &url, &admin, "phon,reason\n1,x\n", "text/csv").await;
    assert_eq!(json(r).await["field"], "csv line 1");
    let r = post_csv(&c, &format!("{url}?region=USA"), &admin, &good, "text/csv").await;
    assert_eq!(json(r).await["field"], "region");
    assert_eq!(
        count(&data, "dnc_numbers") + count(&data, "suppressions"),
        after
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_are_imported_by_admins_only_once_each_and_a_bad_row_refuses_the_file() {
    let data = copy_store("import-payments");
    let admin = token(&data, "admin", "importer");
    let collector = token(&data, "collector", "desk");
    let srv = Serve::start(&data, "");
    let c = client();
    let url = format!("{}/api/v1/imports/payments", srv.url);
    let (account, _) = callable_account(&c, &srv, &admin).await;
    let before = count(&data, "payments");

    let good = format!(
        "account_id,amount,paid_at\n{account},100.10,2026-11-20T10:00:00+08:00\n{account},25.40,2026-11-21\nNOT-UPLOADED-YET,5,2026-11-21\n"
    );
    let r = post_csv(&c, &url, &collector, &good, "text/csv").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(count(&data, "payments"), before);

    let r = post_csv(&c, &url, &admin, &good, "text/csv").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = json(r).await;
    assert_eq!(body["rows"], 3, "{body}");
    assert_eq!(body["added"], 3, "{body}");
    assert!(
        body["warnings"].to_string().contains("NOT-UPLOADED-YET"),
        "a payment for an unknown account is named: {body}"
    );
    assert_eq!(count(&data, "payments"), before + 3);
    let d = get(
        &c,
        &format!("{}/api/v1/accounts/{account}", srv.url),
        &admin,
    )
    .await;
    assert_eq!(d["paid_total"], "125.50", "{}", d["paid_total"]);
    let lines = audit(&c, &srv, &admin, "payments.import").await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["actor"], "token:importer");
    assert_eq!(lines[0]["detail"]["new"], 3);

    let r = post_csv(&c, &url, &admin, &good, "text/csv").await;
    assert_eq!(json(r).await["added"], 0, "a payment is imported once");
    assert_eq!(count(&data, "payments"), before + 3);

    let bad =
        format!("account_id,amount,paid_at\n{account},7,2026-11-22\n{account},-3,2026-11-22\n");
    let r = post_csv(&c, &url, &admin, &bad, "text/csv").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e = json(r).await;
    assert_eq!(e["field"], "csv line 3", "{e}");
    assert!(e["error"].as_str().unwrap_or("").contains("-3"), "{e}");
    assert_eq!(
        count(&data, "payments"),
        before + 3,
        "nothing of a refused file"
    );
    let d = get(
        &c,
        &format!("{}/api/v1/accounts/{account}", srv.url),
        &admin,
    )
    .await;
    assert_eq!(d["paid_total"], "125.50");
}
