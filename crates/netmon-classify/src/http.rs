//! HTTP/1.x: requests (method, host, path, user agent, referer) and response statuses, from
//! the in-order payload of each direction, with httparse.
//!
//! Each direction is a small state machine over the byte stream: collect a header block (up
//! to [`MAX_HEADER`] bytes, also when it spans segments — user agents split over two packets
//! are common), parse it, then skip the body (`Content-Length`, `chunked`, or none), so that
//! the next request of a keep-alive or pipelined connection is found where it starts.
//! Requests and statuses are kept in a bounded list per flow ([`MAX_TRANSACTIONS`]).
//!
//! ```text
//! request  = method SP target SP "HTTP/1." DIGIT CRLF *(header CRLF) CRLF [body]
//! response = "HTTP/1." DIGIT SP status SP reason CRLF *(header CRLF) CRLF [body]
//! ```

use crate::Text;

/// Largest header block collected across segments (RFC 9112 has no limit; servers use 8–64 KiB).
pub const MAX_HEADER: usize = 16 * 1024;
/// Most request/response pairs kept per flow.
pub const MAX_TRANSACTIONS: usize = 32;
/// Longest chunk-size or trailer line, without its LF.
const MAX_LINE: usize = 1024;
/// Most headers parsed per message (httparse needs a fixed array).
const MAX_HEADERS: usize = 96;

/// One request and, once seen, its response status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpTransaction {
    /// Request method.
    pub method: Option<Text>,
    /// `Host` header (HTTP/1.1) or the authority of an absolute-form target.
    pub host: Option<Text>,
    /// Request target (path and query, or the absolute URI as sent).
    pub path: Option<Text>,
    /// `User-Agent` header.
    pub user_agent: Option<Text>,
    /// `Referer` header.
    pub referer: Option<Text>,
    /// Response status code, when the response was seen.
    pub status: Option<u16>,
    /// `Upgrade` header (e.g. `h2c`, `websocket`): the protocol a `101` switches to.
    pub upgrade: Option<Text>,
}

/// What the first bytes of a direction look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Looks {
    /// An HTTP/1.x request line is starting.
    Request,
    /// An HTTP/1.x status line is starting.
    Response,
    /// The HTTP/2 connection preface (`PRI * HTTP/2.0`).
    Http2Preface,
    /// Too few bytes to tell: they are the start of one of the above.
    Maybe,
    /// Not HTTP/1.x.
    No,
}

const METHODS: [&[u8]; 16] = [
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
    b"PROPFIND ",
    b"PROPPATCH ",
    b"MKCOL ",
    b"COPY ",
    b"MOVE ",
    b"M-SEARCH ",
    b"NOTIFY ",
];

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Classifies the first bytes of a direction. Cheap; allocates nothing.
pub fn looks(first: &[u8]) -> Looks {
    let prefix_of = |full: &[u8]| first.len() < full.len() && full.starts_with(first);
    if first.is_empty()
        || prefix_of(b"PRI * HTTP/2.0")
        || prefix_of(b"HTTP/1.")
        || METHODS.iter().any(|m| prefix_of(m))
    {
        return Looks::Maybe;
    }
    if first.starts_with(b"PRI * HTTP/2.0") {
        return Looks::Http2Preface;
    }
    if first.starts_with(b"HTTP/1.") {
        return Looks::Response;
    }
    if !METHODS.iter().any(|m| first.starts_with(m)) {
        return Looks::No;
    }
    // The request line must carry " HTTP/1." before its end (or before what was captured
    // ends), after printable characters only: this rejects SIP, RTSP and random binary that
    // happens to start with "GET ". The verdict on a prefix of a line never contradicts the
    // verdict on the whole line, so a stream parser decides the same however the line is
    // split into segments (a line too long for a header block is stopped by `MAX_HEADER`).
    let line_end = first
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(first.len());
    let line = first.get(..line_end).unwrap_or(first);
    let printable = |b: &[u8]| b.iter().all(|&c| c >= 0x20 && c != 0x7f);
    match find(line, b" HTTP/1.") {
        Some(k) if printable(line.get(..k).unwrap_or(line)) => Looks::Request,
        // The line goes on past what we have: plausible, decide on more data.
        None if line_end == first.len() && printable(line) => Looks::Request,
        _ => Looks::No,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Where a direction's parser is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum State {
    /// Collecting a header block.
    #[default]
    Header,
    /// Skipping `n` body bytes.
    Body(u64),
    /// Skipping a chunked body.
    Chunked(Chunk),
    /// The rest of the direction is not HTTP/1.x (after `101 Switching Protocols`, a body
    /// without length, a parse error): stop looking.
    Done,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line.
    #[default]
    Size,
    /// Skipping chunk data plus its CRLF.
    Data(u64),
    /// Reading trailer lines until an empty one.
    Trailer,
}

/// One direction's parser: feed it in-order payload bytes.
#[derive(Clone, Debug, Default)]
pub struct HttpStream {
    state: State,
    /// Header bytes collected so far (allocated only while a header spans segments).
    buf: Vec<u8>,
    /// Chunk-size / trailer line bytes collected so far.
    line: Vec<u8>,
    /// Messages parsed in this direction.
    pub messages: u32,
}

/// What a parsed message tells the flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(HttpTransaction),
    /// A response status (with `Upgrade: h2c` accepted when 101).
    Response {
        /// Status code.
        status: u16,
        /// The connection switches protocol (101).
        switching: bool,
    },
}

impl HttpStream {
    /// Whether the parser has given up on this direction (or it switched protocol).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Heap bytes held (the header and chunk-line buffers' capacity): at most about
    /// 2 × [`MAX_HEADER`] plus a chunk line.
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity() + self.line.capacity()
    }

    /// Stops parsing this direction and frees its buffers.
    pub fn stop(&mut self) {
        self.state = State::Done;
        self.buf = Vec::new();
        self.line = Vec::new();
    }

    /// Feeds the next in-order bytes of the direction. `request_side` tells whether this is
    /// the client → server direction. `head_pending` says whether the oldest unanswered request
    /// was a HEAD (its response has no body). Each parsed message is passed to `out`.
    pub fn push(
        &mut self,
        mut data: &[u8],
        request_side: bool,
        head_pending: bool,
        out: &mut impl FnMut(Message),
    ) {
        while !data.is_empty() {
            let before = data.len();
            match self.state {
                State::Done => return,
                State::Body(n) => {
                    let take = (data.len() as u64).min(n);
                    data = data.get(take as usize..).unwrap_or(&[]);
                    self.state = if n > take {
                        State::Body(n - take)
                    } else {
                        State::Header
                    };
                }
                State::Chunked(c) => data = self.chunked(c, data),
                State::Header => data = self.header(data, request_side, head_pending, out),
            }
            // Every state consumes at least one byte per round (so the loop ends within
            // `data.len()` rounds); should one not, stop rather than spin or skip bytes.
            if data.len() >= before {
                self.stop();
                return;
            }
        }
    }

    /// Collects and parses a header block; returns the bytes after it.
    fn header<'d>(
        &mut self,
        data: &'d [u8],
        request_side: bool,
        head_pending: bool,
        out: &mut impl FnMut(Message),
    ) -> &'d [u8] {
        // Fast path: the whole header block is in this segment (no copy).
        let (block, rest, buffered) = if self.buf.is_empty() {
            if data.first().is_some_and(|&b| b == b'\r' || b == b'\n') {
                // Stray CRLF between messages (allowed by RFC 9112 §2.2).
                return data.get(1..).unwrap_or(&[]);
            }
            match looks(data) {
                Looks::No | Looks::Http2Preface => {
                    self.stop();
                    return &[];
                }
                Looks::Response if request_side => {
                    self.stop();
                    return &[];
                }
                Looks::Request if !request_side => {
                    self.stop();
                    return &[];
                }
                _ => {}
            }
            // A block longer than `MAX_HEADER` is refused here as it is when it spans segments.
            match find(data.get(..MAX_HEADER).unwrap_or(data), b"\r\n\r\n") {
                Some(i) => (
                    data.get(..i + 4).unwrap_or(data),
                    data.get(i + 4..).unwrap_or(&[]),
                    false,
                ),
                None => {
                    if data.len() > MAX_HEADER {
                        self.stop();
                    } else {
                        self.buf.extend_from_slice(data);
                    }
                    return &[];
                }
            }
        } else {
            // Continue a header block that spans segments. The terminator may straddle.
            let start = self.buf.len().saturating_sub(3);
            let room = MAX_HEADER.saturating_sub(self.buf.len());
            let add = data.get(..room.min(data.len())).unwrap_or(data);
            self.buf.extend_from_slice(add);
            let wrong = match looks(&self.buf) {
                Looks::No | Looks::Http2Preface => true,
                Looks::Response => request_side,
                Looks::Request => !request_side,
                Looks::Maybe => false,
            };
            if wrong {
                self.stop();
                return &[];
            }
            match find(self.buf.get(start..).unwrap_or(&[]), b"\r\n\r\n") {
                Some(i) => {
                    let end = start + i + 4;
                    let used = end.saturating_sub(self.buf.len() - add.len());
                    self.buf.truncate(end);
                    (&[][..], data.get(used..).unwrap_or(&[]), true)
                }
                None => {
                    if self.buf.len() >= MAX_HEADER {
                        self.stop();
                    }
                    return &[];
                }
            }
        };
        let buf = core::mem::take(&mut self.buf);
        let block = if buffered { &buf[..] } else { block };
        let body = if request_side {
            self.request(block, out)
        } else {
            self.response(block, head_pending, out)
        };
        self.messages = self.messages.saturating_add(1);
        // Keep the allocation for the next header that spans segments.
        self.buf = buf;
        self.buf.clear();
        match body {
            Some(Body::None | Body::Unknown) => {}
            Some(Body::Length(n)) => self.state = State::Body(n),
            Some(Body::Chunked) => self.state = State::Chunked(Chunk::Size),
            Some(Body::Switch) | None => self.stop(),
        }
        rest
    }

    fn request(&mut self, block: &[u8], out: &mut impl FnMut(Message)) -> Option<Body> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(block) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return None,
        }
        let mut t = HttpTransaction {
            method: req.method.map(Text::from),
            path: req.path.map(Text::from),
            ..HttpTransaction::default()
        };
        let mut body = Body::None;
        for h in req.headers.iter() {
            let name = h.name.as_bytes();
            if name.eq_ignore_ascii_case(b"host") && t.host.is_none() {
                t.host = Some(Text::new(h.value));
            } else if name.eq_ignore_ascii_case(b"user-agent") && t.user_agent.is_none() {
                t.user_agent = Some(Text::new(h.value));
            } else if name.eq_ignore_ascii_case(b"referer") && t.referer.is_none() {
                t.referer = Some(Text::new(h.value));
            } else if name.eq_ignore_ascii_case(b"upgrade") && t.upgrade.is_none() {
                t.upgrade = Some(Text::new(h.value));
            }
            body = body.with_header(name, h.value);
        }
        if t.host.is_none() {
            // Absolute-form target (proxies): the authority is the host.
            t.host = req.path.and_then(authority).map(Text::from);
        }
        out(Message::Request(t));
        Some(body)
    }

    fn response(
        &mut self,
        block: &[u8],
        head: bool,
        out: &mut impl FnMut(Message),
    ) -> Option<Body> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut headers);
        match res.parse(block) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return None,
        }
        let status = res.code?;
        let mut body = Body::Unknown;
        for h in res.headers.iter() {
            body = body.with_header(h.name.as_bytes(), h.value);
        }
        let switching = status == 101;
        out(Message::Response { status, switching });
        // RFC 9112 §6.3: no body for HEAD, 1xx, 204, 304; else length, chunked, or until close.
        Some(if switching {
            Body::Switch
        } else if head || (100..200).contains(&status) || status == 204 || status == 304 {
            Body::None
        } else if body == Body::Unknown {
            // Read until the connection closes: nothing more to parse in this direction.
            Body::Switch
        } else {
            body
        })
    }

    /// Skips chunked body bytes; returns what follows the body, if it ended here.
    fn chunked<'d>(&mut self, c: Chunk, data: &'d [u8]) -> &'d [u8] {
        match c {
            Chunk::Data(n) => {
                let take = (data.len() as u64).min(n);
                self.state = State::Chunked(if n > take {
                    Chunk::Data(n - take)
                } else {
                    Chunk::Size
                });
                data.get(take as usize..).unwrap_or(&[])
            }
            Chunk::Size | Chunk::Trailer => {
                let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                    if self.line.len() + data.len() > MAX_LINE {
                        self.stop();
                    } else {
                        self.line.extend_from_slice(data);
                    }
                    return &[];
                };
                // The same bound whether or not the line ends in this segment.
                if self.line.len() + nl > MAX_LINE {
                    self.stop();
                    return &[];
                }
                self.line.extend_from_slice(data.get(..=nl).unwrap_or(data));
                let rest = data.get(nl + 1..).unwrap_or(&[]);
                let line = core::mem::take(&mut self.line);
                let trimmed = trim_crlf(&line);
                self.state = match c {
                    Chunk::Size if trimmed.is_empty() => State::Chunked(Chunk::Size), // CRLF after data
                    Chunk::Size => match chunk_size(trimmed) {
                        Some(0) => State::Chunked(Chunk::Trailer),
                        Some(n) => State::Chunked(Chunk::Data(n)),
                        None => State::Done,
                    },
                    _ if trimmed.is_empty() => State::Header,
                    _ => State::Chunked(Chunk::Trailer),
                };
                self.line = line;
                self.line.clear();
                if self.state == State::Done {
                    self.stop();
                }
                rest
            }
        }
    }
}

fn trim_crlf(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

/// Hex chunk size before any `;extension`.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let hex = line.split(|&b| b == b';').next()?.trim_ascii();
    if hex.is_empty() || hex.len() > 15 {
        return None;
    }
    u64::from_str_radix(core::str::from_utf8(hex).ok()?, 16).ok()
}

/// The authority of an absolute-form target (`http://host:port/path`).
fn authority(target: &str) -> Option<&str> {
    let rest = target.split_once("://")?.1;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest.get(..end).filter(|a| !a.is_empty())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    None,
    Length(u64),
    Chunked,
    /// No length given (responses: read until close).
    Unknown,
    /// Protocol switch / until close: stop parsing.
    Switch,
}

impl Body {
    fn with_header(self, name: &[u8], value: &[u8]) -> Body {
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let v = value.to_ascii_lowercase();
            if find(&v, b"chunked").is_some() {
                return Body::Chunked;
            }
        }
        if name.eq_ignore_ascii_case(b"content-length") && self != Body::Chunked {
            let n = core::str::from_utf8(value)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok());
            return match n {
                Some(0) => Body::None,
                Some(n) => Body::Length(n),
                None => Body::Switch, // a lying length: stop rather than desynchronise
            };
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(side: bool, chunks: &[&[u8]]) -> (Vec<Message>, HttpStream) {
        let mut s = HttpStream::default();
        let mut got = Vec::new();
        for c in chunks {
            s.push(c, side, false, &mut |m| got.push(m));
        }
        (got, s)
    }

    fn req(m: &Message) -> &HttpTransaction {
        match m {
            Message::Request(t) => t,
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn detection() {
        assert_eq!(looks(b"GET / HTTP/1.1\r\n"), Looks::Request);
        assert_eq!(
            looks(b"GET /very/long/path/without/end"),
            Looks::Request,
            "line continues"
        );
        assert_eq!(
            looks(b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n"),
            Looks::Request
        );
        assert_eq!(looks(b"HTTP/1.1 200 OK\r\n"), Looks::Response);
        assert_eq!(looks(H2_PREFACE), Looks::Http2Preface);
        assert_eq!(looks(b"INVITE sip:bob@example.com SIP/2.0\r\n"), Looks::No);
        assert_eq!(looks(b"GET \x00\x01\x02"), Looks::No);
        assert_eq!(looks(b"GET / RTSP/1.0\r\n"), Looks::No);
        assert_eq!(looks(b"\x16\x03\x01"), Looks::No);
        assert_eq!(looks(b"G"), Looks::Maybe);
        assert_eq!(looks(b"HTTP/"), Looks::Maybe);
        assert_eq!(looks(b""), Looks::Maybe);
    }

    #[test]
    fn request_fields_and_header_split_over_segments() {
        let full = b"GET /download/CHANGES.txt HTTP/1.1\r\nUser-Agent: Wget/1.14 (darwin12.2.0)\r\nAccept: */*\r\nHost: bro.org\r\nReferer: http://x/\r\nConnection: Keep-Alive\r\n\r\n";
        for cut in 1..full.len() {
            let (got, _) = run(true, &[&full[..cut], &full[cut..]]);
            assert_eq!(got.len(), 1, "cut at {cut}");
            let t = req(&got[0]);
            assert_eq!(t.method.as_ref().unwrap().as_bytes(), b"GET");
            assert_eq!(t.host.as_ref().unwrap().as_bytes(), b"bro.org");
            assert_eq!(
                t.path.as_ref().unwrap().as_bytes(),
                b"/download/CHANGES.txt"
            );
            assert_eq!(
                t.user_agent.as_ref().unwrap().as_bytes(),
                b"Wget/1.14 (darwin12.2.0)"
            );
            assert_eq!(t.referer.as_ref().unwrap().as_bytes(), b"http://x/");
        }
    }

    #[test]
    fn pipelined_and_keep_alive_with_bodies() {
        let data: &[u8] = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: h\r\n\r\nPOST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nHELLO\r\n0\r\nT: v\r\n\r\nGET /d HTTP/1.1\r\nHost: h\r\n\r\n";
        let (got, _) = run(true, &[data]);
        let paths: Vec<_> = got.iter().map(|m| req(m).path.clone().unwrap()).collect();
        assert_eq!(
            paths,
            [
                Text::from("/a"),
                Text::from("/b"),
                Text::from("/c"),
                Text::from("/d")
            ]
        );
        // The same stream byte by byte.
        let chunks: Vec<&[u8]> = data.chunks(1).collect();
        let (got, _) = run(true, &chunks);
        assert_eq!(got.len(), 4);
    }

    #[test]
    fn responses_statuses_and_switching() {
        let data: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 304 Not Modified\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n\x00\x00\x12\x04";
        let (got, s) = run(false, &[data]);
        assert_eq!(
            got,
            [
                Message::Response {
                    status: 200,
                    switching: false
                },
                Message::Response {
                    status: 304,
                    switching: false
                },
                Message::Response {
                    status: 101,
                    switching: true
                },
            ]
        );
        assert!(s.is_done());
        // A response without length reads until close: parsing stops there.
        let (got, s) = run(
            false,
            &[b"HTTP/1.0 200 OK\r\n\r\nbody...HTTP/1.1 200 OK\r\n\r\n"],
        );
        assert_eq!(got.len(), 1);
        assert!(s.is_done());
    }

    #[test]
    fn hostile_input_is_bounded() {
        // An endless header never completes: collection stops at MAX_HEADER.
        let mut s = HttpStream::default();
        let line = b"X-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        s.push(b"GET / HTTP/1.1\r\n", true, false, &mut |_| panic!());
        for _ in 0..1000 {
            s.push(line, true, false, &mut |_| panic!("no message"));
        }
        assert!(s.is_done());
        assert!(s.buf.capacity() <= 2 * MAX_HEADER);
        // A lying Content-Length stops parsing instead of desynchronising.
        let (got, s) = run(
            true,
            &[b"POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\nGET / HTTP/1.1\r\n\r\n"],
        );
        assert_eq!(got.len(), 1);
        assert!(s.is_done());
        // Not HTTP at all.
        let (got, s) = run(true, &[b"\x16\x03\x01\x02\x00"]);
        assert!(got.is_empty() && s.is_done());
    }

    #[test]
    fn absolute_form_gives_the_host() {
        let (got, _) = run(true, &[b"GET http://example.com:8080/x?y HTTP/1.1\r\n\r\n"]);
        assert_eq!(
            req(&got[0]).host.as_ref().unwrap().as_bytes(),
            b"example.com:8080"
        );
    }

    /// `data` in one push and cut at `cuts` give the same messages and end state; returns them.
    fn same_however_cut(side: bool, data: &[u8], cuts: &[usize]) -> (Vec<Message>, bool) {
        let (whole, w) = run(side, &[data]);
        let mut pieces = Vec::new();
        let mut prev = 0;
        for &c in cuts.iter().chain([&data.len()]) {
            pieces.push(&data[prev..c]);
            prev = c;
        }
        let (split, s) = run(side, &pieces);
        assert_eq!(whole, split, "cut at {cuts:?}");
        assert_eq!((w.messages, w.is_done()), (s.messages, s.is_done()));
        (whole, w.is_done())
    }

    #[test]
    fn a_non_printable_request_line_is_refused_however_cut() {
        // Found by the `http` fuzz target: a request line that turns non-printable before
        // " HTTP/1." was refused when its start came alone and accepted when whole.
        let line = b"TRACE \x0f\x0f\x0f\x0f\x0f*\xe2; HTTPRI * HTTP/1.\xd0.";
        let (got, done) = same_however_cut(true, line, &[9]);
        assert!(got.is_empty() && done);
        assert_eq!(looks(line), Looks::No);
    }

    #[test]
    fn a_long_request_line_is_accepted_however_cut() {
        // A request line longer than 2 KiB (long query strings) is accepted however it
        // arrives (it was refused when a segment ended after 2048 bytes of it).
        let long = [
            &b"GET /search?q="[..],
            &[b'a'; 3000],
            b" HTTP/1.1\r\nHost: h\r\n\r\n",
        ]
        .concat();
        let (got, done) = same_however_cut(true, &long, &[1000, 2100]);
        assert_eq!(got.len(), 1);
        assert!(!done);
    }

    #[test]
    fn more_than_1024_pipelined_messages_in_one_push() {
        // More than 1024 pipelined messages in one push: every one is parsed (bytes after
        // the 1024th round used to be skipped, desynchronising the direction).
        let many = b"GET / HTTP/1.1\r\n\r\n".repeat(1100);
        let (got, _) = same_however_cut(true, &many, &[18 * 500]);
        assert_eq!(got.len(), 1100);
    }

    #[test]
    fn an_oversized_header_block_is_refused_in_one_segment_too() {
        // A header block longer than MAX_HEADER is refused also when it comes in one segment.
        let big = [
            &b"GET / HTTP/1.1\r\nX: "[..],
            &vec![b'x'; MAX_HEADER],
            b"\r\n\r\n",
        ]
        .concat();
        let (got, done) = same_however_cut(true, &big, &[100, 9000]);
        assert!(got.is_empty() && done);
    }

    #[test]
    fn a_long_chunk_line_is_refused_in_one_segment_too() {
        // A chunk line longer than MAX_LINE is refused also when its LF is in the same segment.
        let chunked = |ext: &[u8]| {
            [
                &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;"[..],
                ext,
                b"\r\nhello\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            ]
            .concat()
        };
        let (got, done) = same_however_cut(false, &chunked(&[b'e'; MAX_LINE]), &[60, 600]);
        assert_eq!(got.len(), 1, "parsing stopped at the long line");
        assert!(done);
        let (got, done) = same_however_cut(false, &chunked(b"e=1"), &[60]);
        assert_eq!(got.len(), 2, "a short line is fine");
        assert!(!done);
    }
}
