//! `netmon privacy`: per local host, the tracker domains contacted and the score, on a corpus
//! capture with lists written by the test.

mod common;
use common::*;

#[test]
fn scores_per_host_from_the_lists() {
    let Some(corpus) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let file = corpus.dir().join("ndpi_1kxun.pcap");
    let dir = std::env::temp_dir().join(format!("netmon-privacy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ads = dir.join("ads.txt");
    std::fs::write(&ads, "0.0.0.0 1kxun.mobi\n").unwrap();
    let an = dir.join("analytics.txt");
    std::fs::write(&an, "google-analytics.com\n").unwrap();
    let (ads_arg, an_arg) = (
        format!("ads={}", ads.display()),
        format!("analytics={}", an.display()),
    );
    let out = netmon(&[
        "privacy",
        file.to_str().unwrap(),
        "--trackers",
        &ads_arg,
        "--trackers",
        &an_arg,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let apps: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // Worst first; the flows of every host add up to the capture's flows.
    let scores: Vec<u64> = apps.iter().map(|a| a["score"].as_u64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] <= w[1]), "{scores:?}");
    let flows: u64 = apps.iter().map(|a| a["flows"].as_u64().unwrap()).sum();
    let records = netmon(&["flows", file.to_str().unwrap(), "--format", "jsonl"]);
    assert_eq!(flows as usize, stdout(&records).lines().count());
    // The host that reached both lists: one ad and one analytics domain, E = 1.4 → 50.
    let worst = &apps[0];
    assert_eq!(worst["app"], "host 192.168.2.126");
    assert_eq!(worst["score"], 50);
    assert_eq!(worst["trackers"].as_array().unwrap().len(), 2);
    // One ad domain only: 67.
    assert!(
        apps.iter()
            .any(|a| a["app"] == "host 192.168.115.8" && a["score"] == 67)
    );
    // Hosts without tracker flows score 100.
    assert!(
        apps.iter()
            .filter(|a| a["tracker_flows"] == 0)
            .all(|a| a["score"] == 100)
    );
    // No list: a usage error.
    let out = netmon(&["privacy", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
