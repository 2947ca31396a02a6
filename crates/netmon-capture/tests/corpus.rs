//! Every capture of the shared corpus reads to the end without error, with as many packets as
//! tshark saw and the timestamps tshark gave the first and last frame of every flow.
//!
//! The corpus is found through `NETMON_CORPUS`, or as a `shared/corpus` directory beside one of
//! this crate's ancestors. `NETMON_SKIP_CORPUS=1` skips the test; otherwise a missing corpus
//! fails it.

use netmon_capture::{CaptureSource, Next, open_file};

use netmon_testkit::parse_epoch as parse_ts;

#[test]
fn corpus_matches_tshark_oracle() {
    let Some(corpus) = netmon_testkit::corpus(env!("CARGO_MANIFEST_DIR")) else {
        return;
    };
    let dir = corpus.dir().to_path_buf();
    let files = corpus.captures();

    let mut failures = Vec::new();
    let mut checked_ts = 0usize;
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let oracle_path = dir.join("oracle").join(format!("{name}.oracle.json"));
        let oracle: serde_json::Value = match std::fs::read(&oracle_path) {
            Ok(b) => serde_json::from_slice(&b).unwrap(),
            Err(e) => {
                failures.push(format!(
                    "{name}: no oracle ({}: {e})",
                    oracle_path.display()
                ));
                continue;
            }
        };
        let mut src = match open_file(path) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{name}: open: {e}"));
                continue;
            }
        };
        let mut stamps = Vec::new();
        loop {
            match src.next_packet() {
                Ok(Next::Packet(p)) => {
                    assert_eq!(p.data.len(), p.meta.cap_len as usize);
                    stamps.push(p.meta.ts);
                }
                Ok(Next::Timeout) => unreachable!(),
                Ok(Next::End) => break,
                Err(e) => {
                    failures.push(format!("{name}: {e}"));
                    break;
                }
            }
        }
        let frames = oracle["summary"]["frames"].as_u64().unwrap();
        if stamps.len() as u64 != frames {
            failures.push(format!(
                "{name}: {} packets, tshark saw {frames}",
                stamps.len()
            ));
            continue;
        }
        if src.bytes_consumed() != std::fs::metadata(path).unwrap().len() {
            failures.push(format!("{name}: stopped at byte {}", src.bytes_consumed()));
        }
        for flow in oracle["flows"].as_array().unwrap() {
            for (frame_key, ts_key) in [("first_frame", "first_ts"), ("last_frame", "last_ts")] {
                let (Some(frame), Some(want)) = (
                    flow[frame_key].as_u64(),
                    flow[ts_key].as_str().and_then(parse_ts),
                ) else {
                    failures.push(format!("{name}: flow without {frame_key}/{ts_key}"));
                    continue;
                };
                let got = frame.checked_sub(1).and_then(|i| stamps.get(i as usize));
                if got != Some(&want) {
                    failures.push(format!(
                        "{name}: frame {frame} at {got:?}, tshark says {want:?} ({})",
                        flow[ts_key]
                    ));
                }
                checked_ts += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files disagree:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} corpus captures match the oracle ({checked_ts} timestamps checked)",
        files.len()
    );
}
