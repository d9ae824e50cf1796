//! The shared PostgreSQL store through the command line: a real cluster
//! (Debian's postgresql, `initdb` into a temporary directory, stopped by
//! PID), `duecall migrate --store URL` from several processes at once, and
//! the store's commands (`suppress`, `payments`, `export`) on it, seeing
//! what each other wrote while the nodes' data directories stay apart.

use std::process::Command;

use duecall::store::pg_cluster;
use duecall::store::Store;

fn duecall(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_duecall"))
        .args(args)
        .env_remove("DUECALL_STORE")
        .env_remove("DUECALL_DATA")
        .output()
        .expect("run duecall")
}

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "duecall failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn migrate_from_three_nodes_at_once_applies_each_migration_once() {
    let Some(cluster) = pg_cluster::for_test("migrate") else {
        return;
    };
    let url = cluster.create_database("campaign").unwrap();
    let tmp = std::env::temp_dir().join(format!("duecall-pg-migrate-{}", std::process::id()));
    let nodes: Vec<_> = (0..3)
        .map(|i| {
            let dir = tmp.join(format!("node{i}"));
            let url = url.clone();
            std::thread::spawn(move || {
                duecall(&[
                    "migrate",
                    "--data-dir",
                    dir.to_str().unwrap(),
                    "--store",
                    &url,
                ])
            })
        })
        .collect();
    let latest = Store::open_postgres(&url)
        .unwrap()
        .schema_version()
        .unwrap();
    for n in nodes {
        let out = n.join().unwrap();
        let text = ok(&out);
        assert!(
            text.starts_with("postgresql postgres://duecall@127.0.0.1:")
                && text
                    .trim_end()
                    .ends_with(&format!("schema version {latest}")),
            "{text}"
        );
    }
    // Each version recorded once: a second node never re-ran a migration.
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let rows: i64 = c
        .query_one("SELECT COUNT(*) FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, latest);
    // Nothing about the store went to the data directories but what is
    // node-local: no SQLite database was made there.
    for i in 0..3 {
        assert!(
            !tmp.join(format!("node{i}")).join("duecall.db").exists(),
            "node {i} made a SQLite database beside the shared one"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn what_one_node_imports_another_node_lists() {
    let Some(cluster) = pg_cluster::for_test("lists") else {
        return;
    };
    let url = cluster.create_database("campaign").unwrap();
    let tmp = std::env::temp_dir().join(format!("duecall-pg-lists-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let csv = tmp.join("dnc.csv");
    std::fs::write(
        &csv,
        "phone,scope,reason\n+14155550100,number,asked never to be called\n",
    )
    .unwrap();
    let a = tmp.join("a");
    let b = tmp.join("b");
    let text = ok(&duecall(&[
        "suppress",
        "import",
        csv.to_str().unwrap(),
        "--data-dir",
        a.to_str().unwrap(),
        "--store",
        &url,
    ]));
    assert!(text.starts_with("1 new do-not-call entries"), "{text}");
    // The same list imported from the other node adds nothing.
    let text = ok(&duecall(&[
        "suppress",
        "import",
        csv.to_str().unwrap(),
        "--data-dir",
        b.to_str().unwrap(),
        "--store",
        &url,
    ]));
    assert!(text.starts_with("0 new do-not-call entries"), "{text}");
    let list = ok(&duecall(&[
        "suppress",
        "list",
        "--data-dir",
        b.to_str().unwrap(),
        "--store",
        &url,
    ]));
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(
        list.contains("+14155550100") && list.contains("asked never to be called"),
        "{list}"
    );
    // Payments imported on one node, again on the other: stored once.
    let paid = tmp.join("paid.csv");
    std::fs::write(&paid, "account_id,amount,paid_at\nA1,25.00,2026-11-20\n").unwrap();
    for node in [&a, &b] {
        let text = ok(&duecall(&[
            "payments",
            paid.to_str().unwrap(),
            "--data-dir",
            node.to_str().unwrap(),
            "--store",
            &url,
        ]));
        let want = if node == &a {
            "1 new payments"
        } else {
            "0 new payments"
        };
        assert!(text.starts_with(want), "{text}");
    }
    // export and holds read the shared store too (nothing dialled yet).
    let csv_out = ok(&duecall(&[
        "export",
        "--since",
        "2026-11-01",
        "--format",
        "csv",
        "--data-dir",
        b.to_str().unwrap(),
        "--store",
        &url,
    ]));
    assert_eq!(csv_out.lines().count(), 1, "a header only: {csv_out}");
    let holds = ok(&duecall(&[
        "holds",
        "list",
        "--data-dir",
        a.to_str().unwrap(),
        "--store",
        &url,
    ]));
    assert_eq!(holds, "");
    // Without --store, node b has no store of its own: the shared
    // database is the only one, and no SQLite file was made beside it.
    let local = duecall(&["suppress", "list", "--data-dir", b.to_str().unwrap()]);
    assert!(!local.status.success());
    let err = String::from_utf8_lossy(&local.stderr);
    assert!(err.contains("no duecall database"), "{err}");
    assert!(!b.join("duecall.db").exists() && !a.join("duecall.db").exists());
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_store_url_that_is_not_postgres_is_refused_naming_it_without_its_password() {
    let tmp = std::env::temp_dir().join(format!("duecall-pg-badurl-{}", std::process::id()));
    let out = duecall(&[
        "migrate",
        "--data-dir",
        tmp.to_str().unwrap(),
        "--store",
        "mysql://root:hunter2@db/x",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mysql://root:***@db/x") && err.contains("postgres://"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "the password was printed: {err}");
    // An unreachable server: the error names the store, and no SQLite
    // database is made in its place.
    let out = duecall(&[
        "migrate",
        "--data-dir",
        tmp.to_str().unwrap(),
        "--store",
        "postgres://duecall:secret@127.0.0.1:1/x",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("postgres://duecall:***@127.0.0.1:1/x"),
        "{err}"
    );
    assert!(!err.contains("secret"), "the password was printed: {err}");
    assert!(!tmp.join("duecall.db").exists());
    let _ = std::fs::remove_dir_all(&tmp);
}
