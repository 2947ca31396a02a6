#![no_main]
//! HTTP/1.x stream parsing: arbitrary bytes cut into segments, each pushed into the parser of
//! its direction (client → requests, server → responses), as the classifier does with a TCP
//! flow's in-order payload. Nothing may panic or hang; what comes out must be bounded:
//!
//! - every recorded string at most `MAX_TEXT` bytes; a request has a method and a target; a
//!   status is three digits, and only 101 switches protocol (after which the direction is done);
//! - a direction that is done stays done and yields nothing more;
//! - at most one message per 16 bytes pushed (the shortest is `HTTP/1.1 200\r\n\r\n`), so the
//!   classifier's per-flow request list can only grow with the traffic (it keeps at most
//!   `MAX_TRANSACTIONS`); the parser's buffers stay within 2 × `MAX_HEADER` plus a chunk line;
//! - **segmentation does not matter**: each direction's bytes pushed in one piece give the
//!   same messages, message count and final state as the segments did (headers and chunk
//!   lines that span segments, terminators that straddle them).
//!
//! Input: one flags byte (bit 0: the oldest request was a HEAD, so responses have no body),
//! then segments, each a big-endian `u16` header (bit 15: server → client, bits 0-13: length)
//! and that many bytes (the last one may be shorter).

use libfuzzer_sys::fuzz_target;
use netmon_classify::MAX_TEXT;
use netmon_classify::http::{HttpStream, MAX_HEADER, Message};

/// The shortest message the parser can deliver: `HTTP/1.1 200\r\n\r\n`.
const MIN_MESSAGE: usize = 16;

fn check(m: &Message, request_side: bool) {
    match m {
        Message::Request(t) => {
            assert!(request_side, "a request from the server: {t:?}");
            assert!(t.method.as_ref().is_some_and(|x| !x.as_bytes().is_empty()));
            assert!(t.path.as_ref().is_some_and(|x| !x.as_bytes().is_empty()));
            for x in [
                &t.method,
                &t.host,
                &t.path,
                &t.user_agent,
                &t.referer,
                &t.upgrade,
            ]
            .into_iter()
            .flatten()
            {
                assert!(x.as_bytes().len() <= MAX_TEXT);
            }
            assert_eq!(t.status, None);
        }
        Message::Response { status, switching } => {
            assert!(!request_side, "a response from the client");
            assert!(*status < 1000, "{status}");
            assert_eq!(*switching, *status == 101);
        }
    }
}

#[derive(Default)]
struct Direction {
    stream: HttpStream,
    got: Vec<Message>,
    bytes: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let head = flags & 1 != 0;
    let mut dirs = [Direction::default(), Direction::default()];
    // Each segment consumes at least its 2-byte header: bounded by the input length.
    while let [a, b, tail @ ..] = rest {
        let hdr = u16::from_be_bytes([*a, *b]);
        let len = usize::from(hdr & 0x3fff).min(tail.len());
        let (seg, next) = tail.split_at(len);
        rest = next;
        let d = usize::from(hdr & 0x8000 != 0);
        let request_side = d == 0;
        let Direction { stream, got, bytes } = &mut dirs[d];
        let (was_done, before) = (stream.is_done(), got.len());
        stream.push(seg, request_side, head, &mut |m| {
            check(&m, request_side);
            got.push(m);
        });
        if was_done {
            assert_eq!(got.len(), before, "a done direction yielded a message");
        }
        if got[before..].iter().any(|m| {
            matches!(
                m,
                Message::Response {
                    switching: true,
                    ..
                }
            )
        }) {
            assert!(stream.is_done(), "a protocol switch ends parsing");
        }
        assert!(
            stream.heap_bytes() <= 2 * MAX_HEADER + 2048,
            "{}",
            stream.heap_bytes()
        );
        bytes.extend_from_slice(seg);
    }
    for (d, dir) in dirs.iter().enumerate() {
        assert!(dir.got.len() * MIN_MESSAGE <= dir.bytes.len());
        assert!(dir.got.len() <= dir.stream.messages as usize);
        let mut whole = HttpStream::default();
        let mut got = Vec::new();
        whole.push(&dir.bytes, d == 0, head, &mut |m| got.push(m));
        assert_eq!(got, dir.got, "the same bytes in one segment");
        assert_eq!(whole.messages, dir.stream.messages);
        assert_eq!(whole.is_done(), dir.stream.is_done());
    }
});
