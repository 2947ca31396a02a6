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
///
/// While the next packet is more than [`Paced::TICK`] away, `next_packet` returns
/// [`Next::Timeout`] every tick (like a live source on a quiet link) with [`clock`] at the
/// replay position, so consumers end idle flows and close windows during the capture's gaps.
/// The held packet is copied once into a buffer that is reused; a packet already due is
/// handed over in place.
///
/// [`clock`]: CaptureSource::clock
pub struct Paced<S> {
    inner: S,
    speed: Speed,
    /// Wall clock and capture time of the first packet.
    origin: Option<(Instant, Timestamp)>,
    stop: StopHandle,
    /// Longest single wait (a capture with hour-long gaps still answers stops at once).
    slice: Duration,
    /// A packet read but not yet due: its metadata (name apart), name and bytes.
    held: Option<Held>,
    held_name: Option<String>,
    held_data: Vec<u8>,
}

#[derive(Clone, Copy)]
struct Held {
    due: Instant,
    direction: crate::Direction,
    ts: Timestamp,
    iface: u32,
    link_type: crate::LinkType,
    cap_len: u32,
    orig_len: u32,
}

impl<S: CaptureSource> Paced<S> {
    /// How long `next_packet` waits for a packet that is not due before it returns
    /// [`Next::Timeout`].
    pub const TICK: Duration = Duration::from_millis(100);

    /// Wraps `inner`. Its stop handle keeps working (and also interrupts a wait).
    pub fn new(inner: S, speed: Speed) -> Paced<S> {
        let stop = inner.stop_handle();
        Paced {
            inner,
            speed,
            origin: None,
            stop,
            slice: Duration::from_millis(20),
            held: None,
            held_name: None,
            held_data: Vec::new(),
        }
    }

    /// The wrapped source.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: CaptureSource> CaptureSource for Paced<S> {
    fn next_packet(&mut self) -> Result<Next<'_>, CaptureError> {
        let Speed::Times(factor) = self.speed else {
            return self.inner.next_packet();
        };
        if self.held.is_none() {
            let next = self.inner.next_packet()?;
            let Next::Packet(p) = &next else {
                return Ok(next);
            };
            let (t0_wall, t0_ts) = *self.origin.get_or_insert((Instant::now(), p.meta.ts));
            let offset_ns = p.meta.ts.nanos_since(t0_ts).max(0) as f64 / factor;
            let due = t0_wall + Duration::from_nanos(offset_ns.min(u64::MAX as f64) as u64);
            if due <= Instant::now() {
                return Ok(next);
            }
            let m = &p.meta;
            self.held = Some(Held {
                due,
                direction: m.direction,
                ts: m.ts,
                iface: m.iface,
                link_type: m.link_type,
                cap_len: m.cap_len,
                orig_len: m.orig_len,
            });
            match (&mut self.held_name, m.iface_name) {
                (Some(n), Some(new)) => {
                    n.clear();
                    n.push_str(new);
                }
                (n, new) => *n = new.map(str::to_owned),
            }
            self.held_data.clear();
            self.held_data.extend_from_slice(p.data);
        }
        let Some(h) = self.held else {
            return Ok(Next::End);
        };
        let give_up = Instant::now() + Self::TICK;
        loop {
            if self.stop.is_stopped() {
                self.held = None;
                return Ok(Next::End);
            }
            let now = Instant::now();
            if now >= h.due {
                break;
            }
            if now >= give_up {
                return Ok(Next::Timeout);
            }
            std::thread::sleep((h.due.min(give_up) - now).min(self.slice));
        }
        self.held = None;
        Ok(Next::Packet(crate::RawPacket {
            meta: crate::PacketMeta {
                direction: h.direction,
                ts: h.ts,
                iface: h.iface,
                iface_name: self.held_name.as_deref(),
                link_type: h.link_type,
                cap_len: h.cap_len,
                orig_len: h.orig_len,
            },
            data: &self.held_data,
        }))
    }

    fn clock(&self) -> Option<Timestamp> {
        let Speed::Times(factor) = self.speed else {
            return None;
        };
        let (t0_wall, t0_ts) = self.origin?;
        let ns = t0_wall.elapsed().as_nanos() as f64 * factor;
        Some(Timestamp(
            t0_ts.0.saturating_add(ns.min(i64::MAX as f64) as i64),
        ))
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
        loop {
            match src.next_packet() {
                Ok(Next::Packet(_)) => n += 1,
                Ok(Next::Timeout) => {}
                _ => return n,
            }
        }
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
        while let Ok(Next::Timeout) = p.next_packet() {}
        assert!(matches!(p.next_packet(), Ok(Next::End)));
        assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    }

    /// In a gap of the capture the replay ticks like a quiet live link: timeouts about every
    /// `TICK`, its clock at the replay position; the held packet then comes whole.
    #[test]
    fn gaps_tick_with_the_replay_clock() {
        let t0 = Timestamp(1_700_000_000_000_000_000);
        let mut src = capture(&[0, 450]);
        let want: Vec<u8> = match src.next_packet() {
            Ok(Next::Packet(_)) => match src.next_packet() {
                Ok(Next::Packet(p)) => p.data.to_vec(),
                _ => unreachable!(),
            },
            _ => unreachable!(),
        };
        let mut p = Paced::new(capture(&[0, 450]), Speed::Times(1.0));
        assert_eq!(p.clock(), None, "no packet yet, no position");
        assert!(matches!(p.next_packet(), Ok(Next::Packet(_))));
        let mut ticks = Vec::new();
        let got = loop {
            match p.next_packet() {
                Ok(Next::Timeout) => ticks.push(p.clock().unwrap()),
                Ok(Next::Packet(pk)) => {
                    assert_eq!(pk.meta.ts, Timestamp(t0.0 + 450_000_000));
                    assert_eq!((pk.meta.cap_len, pk.meta.orig_len), (60, 60));
                    break pk.data.to_vec();
                }
                other => panic!("{:?}", other.map(|_| ())),
            }
        };
        assert_eq!(got, want);
        // 450 ms at 100 ms per tick: about 4 ticks (fewer on a stalled machine, never more
        // than the gap holds), each later than the one before, all inside the gap.
        assert!((1..=4).contains(&ticks.len()), "{ticks:?}");
        assert!(ticks.windows(2).all(|w| w[0] < w[1]), "{ticks:?}");
        assert!(
            ticks
                .iter()
                .all(|t| t.0 > t0.0 + 50_000_000 && t.0 < t0.0 + 450_000_000),
            "{ticks:?}"
        );
        assert!(matches!(p.next_packet(), Ok(Next::End)));
        // At full speed no clock: only packets move time.
        let mut p = Paced::new(capture(&[0, 450]), Speed::Max);
        let _ = p.next_packet();
        assert_eq!(p.clock(), None);
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
