//! Replaying a capture at its own pace: [`Paced`] wraps any source and holds each packet back
//! until its time has come, at the capture's original rate or a multiple of it.
//!
//! The packets' clock stays the capture's (timestamps are not rewritten); only the wall-clock
//! moment they are handed over changes. A stop interrupts a wait at once.

use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::{CaptureError, CaptureSource, CaptureStats, Interface, Next, StopHandle, Timestamp};

/// How fast a file is replayed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Speed {
    /// As fast as it can be read.
    Max,
    /// `n` times the capture's original rate (`1.0`: real time).
    Times(f64),
}

impl FromStr for Speed {
    type Err = CaptureError;

    /// `max`, `realtime`, or a multiplier such as `10x` or `0.5x`.
    fn from_str(s: &str) -> Result<Speed, CaptureError> {
        let bad = || {
            CaptureError::InvalidArgument(format!(
                "replay speed {s:?}: write max, realtime, or a multiplier such as 10x"
            ))
        };
        match s.trim() {
            "max" => Ok(Speed::Max),
            "realtime" => Ok(Speed::Times(1.0)),
            t => {
                let n: f64 = t
                    .strip_suffix('x')
                    .ok_or_else(bad)?
                    .parse()
                    .map_err(|_| bad())?;
                if n.is_finite() && n > 0.0 && n <= 1e6 {
                    Ok(Speed::Times(n))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

/// A source replayed at a pace; see the [module docs](self).
pub struct Paced<S> {
    inner: S,
    speed: Speed,
    /// Wall clock and capture time of the first packet.
    origin: Option<(Instant, Timestamp)>,
    stop: StopHandle,
    /// Longest single wait (a capture with hour-long gaps still answers stops at once).
    slice: Duration,
}

impl<S: CaptureSource> Paced<S> {
    /// Wraps `inner`. Its stop handle keeps working (and also interrupts a wait).
    pub fn new(inner: S, speed: Speed) -> Paced<S> {
        let stop = inner.stop_handle();
        Paced {
            inner,
            speed,
            origin: None,
            stop,
            slice: Duration::from_millis(20),
        }
    }

    /// The wrapped source.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: CaptureSource> CaptureSource for Paced<S> {
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        let next = self.inner.next_packet()?;
        let Speed::Times(factor) = self.speed else {
            return Ok(next);
        };
        if let Next::Packet(p) = &next {
            let (t0_wall, t0_ts) = *self.origin.get_or_insert((Instant::now(), p.meta.ts));
            let offset_ns = p.meta.ts.nanos_since(t0_ts).max(0) as f64 / factor;
            let due = t0_wall + Duration::from_nanos(offset_ns.min(u64::MAX as f64) as u64);
            loop {
                if self.stop.is_stopped() {
                    return Ok(Next::End);
                }
                let now = Instant::now();
                if now >= due {
                    break;
                }
                std::thread::sleep((due - now).min(self.slice));
            }
        }
        Ok(next)
    }

    fn interfaces(&self) -> &[Interface] {
        self.inner.interfaces()
    }

    fn stats(&self) -> CaptureStats {
        self.inner.stats()
    }

    fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileSource, LinkType, PcapWriter, TsPrecision};

    /// A pcap with one 60-byte frame at each of `offsets_ms` after a fixed start.
    fn capture(offsets_ms: &[i64]) -> FileSource {
        let mut w = PcapWriter::new(Vec::new(), LinkType::ETHERNET, 0, TsPrecision::Nano).unwrap();
        for ms in offsets_ms {
            let ts = Timestamp(1_700_000_000_000_000_000 + ms * 1_000_000);
            w.write_packet(ts, &[0u8; 60], 60).unwrap();
        }
        FileSource::from_reader(std::io::Cursor::new(w.into_inner().unwrap()), "mem").unwrap()
    }

    fn drain(src: &mut dyn CaptureSource) -> usize {
        let mut n = 0;
        while let Ok(Next::Packet(_)) = src.next_packet() {
            n += 1;
        }
        n
    }

    #[test]
    fn packets_wait_for_their_time() {
        // 400 ms of capture at 2x: at least 200 ms of replay; at max speed no wait at all.
        let t = Instant::now();
        let mut p = Paced::new(capture(&[0, 200, 400]), Speed::Times(2.0));
        assert_eq!(drain(&mut p), 3);
        assert!(
            t.elapsed() >= Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
        let mut p = Paced::new(capture(&[0, 3_600_000]), Speed::Max);
        assert_eq!(drain(&mut p), 2);
    }

    #[test]
    fn a_stop_interrupts_the_wait() {
        // An hour between the two packets: the stop ends the wait instead.
        let mut p = Paced::new(capture(&[0, 3_600_000]), Speed::Times(1.0));
        let stop = p.stop_handle();
        assert!(matches!(p.next_packet(), Ok(Next::Packet(_))));
        let t = Instant::now();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            stop.stop();
        });
        assert!(matches!(p.next_packet(), Ok(Next::End)));
        assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    }

    #[test]
    fn speeds_parse() {
        assert_eq!("max".parse::<Speed>().unwrap(), Speed::Max);
        assert_eq!("realtime".parse::<Speed>().unwrap(), Speed::Times(1.0));
        assert_eq!("10x".parse::<Speed>().unwrap(), Speed::Times(10.0));
        assert_eq!("0.5x".parse::<Speed>().unwrap(), Speed::Times(0.5));
        for bad in ["", "10", "x", "-2x", "0x", "nanx", "fast"] {
            assert!(bad.parse::<Speed>().is_err(), "{bad}");
        }
    }
}
