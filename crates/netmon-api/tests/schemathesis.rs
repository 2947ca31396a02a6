//! Optional: schemathesis fuzzes the served API against its own OpenAPI document (random and
//! boundary parameters, wrong types, missing auth; responses checked against the schemas).
//! Skipped when schemathesis is not installed (`pip install schemathesis`); set
//! `NETMON_SCHEMATHESIS` to its path when it is not on `PATH`.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;

fn schemathesis() -> Option<String> {
    if let Ok(p) = std::env::var("NETMON_SCHEMATHESIS") {
        return Some(p);
    }
    let found = Command::new("schemathesis")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    found.then(|| "schemathesis".to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing() {
    let Some(bin) = schemathesis() else {
        eprintln!("schemathesis not installed: skipped");
        return;
    };
    const TOKEN: &str = "schemathesis-token";
    let s = start(Arc::new(TestBackend::new(16)), Some(TOKEN)).await;
    let schema = s.url("/api/v1/openapi.json");
    let base = s.url("");
    // The history's cursor is opaque: a schema-valid cursor the store never issued is rightly
    // a 400, so that operation runs without the "schema-valid data is accepted" check.
    let runs: [&[&str]; 2] = [
        &["--exclude-path", "/api/v1/flows/history"],
        &[
            "--include-path",
            "/api/v1/flows/history",
            "--exclude-checks",
            "positive_data_acceptance",
        ],
    ];
    for extra in runs {
        let (bin, schema, base) = (bin.clone(), schema.clone(), base.clone());
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(bin)
                .args(["run", &schema, "--url", &base])
                .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
                // The event stream never ends: the HTTP tests cover it.
                .args(["--exclude-path", "/api/v1/events"])
                .args(&extra)
                .args(["--checks", "all", "--max-examples", "60", "--seed", "1"])
                .args(["--request-timeout", "10", "--workers", "1"])
                .env("NO_COLOR", "1")
                // Its cache of crashes goes to the working directory: not the repository.
                .current_dir(std::env::temp_dir())
                .output()
                .expect("run schemathesis")
        })
        .await
        .unwrap();
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "schemathesis failed:\n{text}");
        eprintln!("{text}");
    }
    s.shutdown().await.unwrap();
}
