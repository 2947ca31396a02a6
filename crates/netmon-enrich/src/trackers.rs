//! Tracker lists and the per-application privacy score.
//!
//! Lists are files the user gives, each with a [`Category`]: hosts files
//! (`0.0.0.0 ads.example.com`) or plain domain lists (`ads.example.com`), `#` comments. A
//! flow's names (SNI, HTTP Host, DNS question, learnt domain) match an entry when the name is
//! the entry or a subdomain of it — checked from the full name up to its registrable domain
//! (public-suffix rules from the `psl` crate), never above: an entry `co.uk` matches nothing.
//!
//! ## The privacy score
//!
//! Per application (a process; for a capture file, the local host), from the distinct
//! tracker domains it contacted, each weighted by its category ([`Category::weight`]:
//! fingerprinting 1.0, ads 0.8, analytics 0.6, social 0.5, other 0.4, CDN 0.1):
//!
//! ```text
//! exposure E = Σ weight(category of d)   over distinct tracker domains d
//! score      = round(100 · e^(−E / 2))   100: no tracker; 0: heavily tracked
//! ```
//!
//! One ad domain scores 67, one CDN 95, five ad domains 14, a fingerprinting and two
//! analytics domains 33. Distinct domains count, not connections: an app that reconnects to
//! one tracker all day is not worse than one that called it once, and one that talks to many
//! trackers is.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// What a listed domain does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Advertising.
    Ads,
    /// Analytics and telemetry.
    Analytics,
    /// Social networks' widgets and pixels.
    Social,
    /// Browser or device fingerprinting.
    Fingerprinting,
    /// Content delivery (listed because it also sees every request).
    Cdn,
    /// Anything else a list is about.
    Other,
}

impl Category {
    /// Every category with its configuration name.
    pub const ALL: [(&'static str, Category); 6] = [
        ("ads", Category::Ads),
        ("analytics", Category::Analytics),
        ("social", Category::Social),
        ("fingerprinting", Category::Fingerprinting),
        ("cdn", Category::Cdn),
        ("other", Category::Other),
    ];

    /// `ads`, `analytics`, `social`, `fingerprinting`, `cdn`, `other`.
    pub fn name(self) -> &'static str {
        Category::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("other", |(n, _)| n)
    }

    /// The category called `name` (case-insensitive).
    pub fn parse(name: &str) -> Option<Category> {
        Category::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
            .map(|(_, c)| *c)
    }

    /// Its weight in the privacy score (see the [module docs](self)).
    pub fn weight(self) -> f64 {
        match self {
            Category::Fingerprinting => 1.0,
            Category::Ads => 0.8,
            Category::Analytics => 0.6,
            Category::Social => 0.5,
            Category::Other => 0.4,
            Category::Cdn => 0.1,
        }
    }
}

/// A list that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrackerError {
    /// The file could not be read.
    #[error("tracker list {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A flow name found on a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackerMatch {
    /// The listed entry that matched (the name or one of its parents).
    pub domain: String,
    /// Its category.
    pub category: Category,
    /// The list it is on.
    pub list: String,
}

/// Longest name considered (DNS's limit).
const MAX_NAME: usize = 253;

/// Every loaded list, as one table.
#[derive(Clone, Debug, Default)]
pub struct TrackerLists {
    entries: HashMap<String, (Category, u16)>,
    lists: Vec<String>,
}

/// A name lower-cased, without a trailing dot; `None` when it is not a plausible DNS name.
fn normalise(name: &str) -> Option<String> {
    let n = name.trim().trim_end_matches('.');
    let ok = !n.is_empty()
        && n.len() <= MAX_NAME
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then(|| n.to_ascii_lowercase())
}

impl TrackerLists {
    /// No list.
    pub fn new() -> TrackerLists {
        TrackerLists::default()
    }

    /// Loads a list file with its category; returns the entries added.
    pub fn load(&mut self, path: &Path, category: Category) -> Result<usize, TrackerError> {
        let text = std::fs::read(path).map_err(|source| TrackerError::Read {
            path: path.to_owned(),
            source,
        })?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        Ok(self.add_text(&name, &String::from_utf8_lossy(&text), category))
    }

    /// Adds the entries of a list's text (hosts-file or plain domain-list lines); returns the
    /// entries added. Lines that are neither are skipped.
    pub fn add_text(&mut self, list: &str, text: &str, category: Category) -> usize {
        let id = u16::try_from(self.lists.len()).unwrap_or(u16::MAX);
        self.lists.push(list.to_owned());
        let mut added = 0;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut words = line.split_whitespace();
            let (Some(first), second) = (words.next(), words.next()) else {
                continue;
            };
            // hosts file: an address, then the name(s); plain list: the name alone.
            let names: Vec<&str> = if first.parse::<std::net::IpAddr>().is_ok() {
                second.into_iter().chain(words).collect()
            } else if second.is_none() {
                vec![first]
            } else {
                continue;
            };
            for n in names {
                let Some(n) = normalise(n) else { continue };
                if matches!(
                    n.as_str(),
                    "localhost" | "localhost.localdomain" | "local" | "broadcasthost"
                ) || !n.contains('.')
                {
                    continue;
                }
                // The first list to name a domain keeps it.
                if let std::collections::hash_map::Entry::Vacant(e) = self.entries.entry(n) {
                    e.insert((category, id));
                    added += 1;
                }
            }
        }
        added
    }

    /// Entries loaded.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entry loaded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry `name` falls under: the name itself or a parent down to its registrable
    /// domain, the most specific first.
    pub fn lookup(&self, name: &str) -> Option<TrackerMatch> {
        if self.entries.is_empty() {
            return None;
        }
        let n = normalise(name)?;
        let registrable = psl::domain_str(&n).map_or(n.len(), str::len);
        let mut rest = n.as_str();
        loop {
            if let Some((cat, id)) = self.entries.get(rest) {
                return Some(TrackerMatch {
                    domain: rest.to_owned(),
                    category: *cat,
                    list: self
                        .lists
                        .get(usize::from(*id))
                        .cloned()
                        .unwrap_or_default(),
                });
            }
            if rest.len() <= registrable {
                return None;
            }
            rest = rest.split_once('.')?.1;
        }
    }
}

/// One application's privacy picture.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AppPrivacy {
    /// The application (process name, or the local host for a capture file).
    pub app: String,
    /// Flows seen.
    pub flows: u64,
    /// Flows to a listed domain.
    pub tracker_flows: u64,
    /// The distinct tracker domains and their categories.
    pub trackers: Vec<(String, Category)>,
    /// Exposure `E` (see the [module docs](self)).
    pub exposure: f64,
    /// 0–100, higher is better.
    pub score: u8,
}

/// The score of an exposure: `round(100 · e^(−E/2))`.
pub fn score(exposure: f64) -> u8 {
    if !exposure.is_finite() || exposure < 0.0 {
        return if exposure.is_nan() || exposure < 0.0 {
            100
        } else {
            0
        };
    }
    (100.0 * (-exposure / 2.0).exp()).round().clamp(0.0, 100.0) as u8
}

/// The exposure of a set of tracker domains' categories.
pub fn exposure<'a>(categories: impl IntoIterator<Item = &'a Category>) -> f64 {
    categories.into_iter().map(|c| c.weight()).sum()
}

/// Accumulates flows per application and scores them.
#[derive(Clone, Debug, Default)]
pub struct PrivacyTally {
    apps: BTreeMap<String, (u64, u64, BTreeMap<String, Category>)>,
}

impl PrivacyTally {
    /// Nothing counted.
    pub fn new() -> PrivacyTally {
        PrivacyTally::default()
    }

    /// One flow of `app`, to a tracker or not.
    pub fn add(&mut self, app: &str, tracker: Option<&TrackerMatch>) {
        let e = self.apps.entry(app.to_owned()).or_default();
        e.0 += 1;
        if let Some(t) = tracker {
            e.1 += 1;
            e.2.entry(t.domain.clone()).or_insert(t.category);
        }
    }

    /// Every application, the worst score first (then by name).
    pub fn report(&self) -> Vec<AppPrivacy> {
        let mut v: Vec<AppPrivacy> = self
            .apps
            .iter()
            .map(|(app, (flows, tf, domains))| {
                let e = exposure(domains.values());
                AppPrivacy {
                    app: app.clone(),
                    flows: *flows,
                    tracker_flows: *tf,
                    trackers: domains.iter().map(|(d, c)| (d.clone(), *c)).collect(),
                    exposure: e,
                    score: score(e),
                }
            })
            .collect();
        v.sort_by(|a, b| a.score.cmp(&b.score).then_with(|| a.app.cmp(&b.app)));
        v
    }

    /// The distinct categories seen, for summaries.
    pub fn categories(&self) -> BTreeSet<Category> {
        self.apps
            .values()
            .flat_map(|(_, _, d)| d.values().copied())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists() -> TrackerLists {
        let mut l = TrackerLists::new();
        let hosts = "# a hosts file\n0.0.0.0 ads.example.com\n127.0.0.1 localhost\n\
                     0.0.0.0 pixel.social.test tracker.co.uk # two names\n::1 ip6-localhost\n";
        assert_eq!(l.add_text("hosts.txt", hosts, Category::Ads), 3);
        let plain = "metrics.example.net\n\nco.uk\nADS.example.com\nnot a domain line\nbad..name\n";
        // ads.example.com is already listed (as ads); co.uk is kept but can never match.
        assert_eq!(l.add_text("analytics.txt", plain, Category::Analytics), 2);
        l
    }

    #[test]
    fn names_and_their_parents_match_down_to_the_registrable_domain() {
        let l = lists();
        let m = l.lookup("ads.example.com").unwrap();
        assert_eq!(
            (m.domain.as_str(), m.category, m.list.as_str()),
            ("ads.example.com", Category::Ads, "hosts.txt")
        );
        let m = l.lookup("eu.cdn.ADS.example.com.").unwrap();
        assert_eq!(m.domain, "ads.example.com");
        assert_eq!(l.lookup("example.com"), None);
        assert_eq!(l.lookup("badads.example.com"), None);
        assert_eq!(
            l.lookup("x.metrics.example.net").unwrap().category,
            Category::Analytics
        );
        // A public suffix on a list matches nothing.
        assert_eq!(l.lookup("www.bbc.co.uk"), None);
        assert_eq!(l.lookup("a.tracker.co.uk").unwrap().domain, "tracker.co.uk");
        for bad in ["", ".", "a b.com", "<img src=x>.com", &"a.".repeat(200)] {
            assert_eq!(l.lookup(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_score_formula() {
        assert_eq!(score(0.0), 100);
        assert_eq!(score(exposure(&[Category::Ads])), 67);
        assert_eq!(score(exposure(&[Category::Cdn])), 95);
        assert_eq!(score(exposure(&[Category::Ads; 5])), 14);
        assert_eq!(
            score(exposure(&[
                Category::Fingerprinting,
                Category::Analytics,
                Category::Analytics
            ])),
            33
        );
        assert_eq!(score(1e9), 0);
        assert_eq!(score(f64::INFINITY), 0);
        assert_eq!(score(f64::NAN), 100);
        // More exposure never scores better.
        let mut last = 100;
        for i in 0..200 {
            let s = score(f64::from(i) * 0.05);
            assert!(s <= last);
            last = s;
        }
    }

    #[test]
    fn tally_counts_distinct_domains_per_app() {
        let l = lists();
        let mut t = PrivacyTally::new();
        for _ in 0..50 {
            t.add("browser", l.lookup("ads.example.com").as_ref());
        }
        t.add("browser", l.lookup("www.example.org").as_ref());
        t.add("mailer", l.lookup("x.metrics.example.net").as_ref());
        t.add("mailer", l.lookup("y.metrics.example.net").as_ref());
        t.add("mailer", l.lookup("pixel.social.test").as_ref());
        t.add("backup", None);
        let r = t.report();
        let names: Vec<&str> = r.iter().map(|a| a.app.as_str()).collect();
        // mailer: analytics 0.6 + ads 0.8 → 50; browser: one ad domain → 67; backup: 100.
        assert_eq!(names, ["mailer", "browser", "backup"]);
        assert_eq!(r.iter().map(|a| a.score).collect::<Vec<_>>(), [50, 67, 100]);
        assert_eq!((r[1].flows, r[1].tracker_flows), (51, 50));
        assert_eq!(r[0].trackers.len(), 2);
        assert_eq!(
            t.categories().into_iter().collect::<Vec<_>>(),
            [Category::Ads, Category::Analytics]
        );
    }

    #[test]
    fn categories_parse() {
        assert_eq!(Category::parse(" Ads "), Some(Category::Ads));
        assert_eq!(Category::parse("cdn"), Some(Category::Cdn));
        assert_eq!(Category::parse("spyware"), None);
        for (n, c) in Category::ALL {
            assert_eq!(c.name(), n);
        }
    }

    #[test]
    fn load_reads_files_and_names_missing_ones() {
        let dir = std::env::temp_dir().join(format!("netmon-trackers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("fp.txt");
        std::fs::write(&f, "fp.example.org\n").unwrap();
        let mut l = TrackerLists::new();
        assert_eq!(l.load(&f, Category::Fingerprinting).unwrap(), 1);
        assert_eq!(l.lookup("a.fp.example.org").unwrap().list, "fp.txt");
        let e = l.load(&dir.join("missing.txt"), Category::Ads).unwrap_err();
        assert!(e.to_string().contains("missing.txt"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
