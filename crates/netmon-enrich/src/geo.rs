//! GeoIP and ASN from MaxMind DB files (GeoLite2/GeoIP2 City or Country, and ASN) that the
//! user gives: no network lookups, ever (a lookup service would learn every address seen).
//!
//! A database is read into memory once; a lookup walks its search tree (a few hundred
//! nanoseconds) and is meant to run once per flow, at its first packet, for the remote end.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{Reader, geoip2};
use serde::Serialize;

/// Why a database could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GeoError {
    /// The file could not be read or is not a MaxMind DB file.
    #[error("{path}: {source} (expected a MaxMind DB file such as GeoLite2-City.mmdb)")]
    Open {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        #[source]
        source: maxminddb::MaxMindDbError,
    },
    /// The file is a MaxMind DB of another kind than its slot needs.
    #[error("{path}: a {found} database where a {expected} one is needed")]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// Its `database_type`.
        found: String,
        /// What the slot takes.
        expected: &'static str,
    },
}

/// Where an address is, as far as the City or Country database knows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Geo {
    /// ISO 3166-1 alpha-2 country code (`SE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The country's English name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country_name: Option<String>,
    /// The city's English name (City databases).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Latitude, degrees (City databases).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Longitude, degrees (City databases).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
}

/// The autonomous system an address is announced by.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Asn {
    /// AS number.
    pub number: u32,
    /// The organisation behind it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

/// The open databases.
#[derive(Default)]
pub struct GeoDb {
    location: Option<Reader<Vec<u8>>>,
    asn: Option<Reader<Vec<u8>>>,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = |r: &Option<Reader<Vec<u8>>>| {
            r.as_ref()
                .map(|r| r.metadata().database_type.clone())
                .unwrap_or_default()
        };
        f.debug_struct("GeoDb")
            .field("location", &kind(&self.location))
            .field("asn", &kind(&self.asn))
            .finish()
    }
}

fn check(
    path: &Path,
    r: Reader<Vec<u8>>,
    expected: &'static str,
    ok: &[&str],
) -> Result<Reader<Vec<u8>>, GeoError> {
    let found = &r.metadata().database_type;
    if ok.iter().any(|k| found.contains(k)) {
        Ok(r)
    } else {
        Err(GeoError::WrongKind {
            path: path.to_owned(),
            found: found.clone(),
            expected,
        })
    }
}

impl GeoDb {
    /// Opens a City or Country database (`location`) and an ASN database (`asn`); either may
    /// be left out.
    pub fn open(location: Option<&Path>, asn: Option<&Path>) -> Result<GeoDb, GeoError> {
        let read = |p: &Path| {
            Reader::open_readfile(p).map_err(|source| GeoError::Open {
                path: p.to_owned(),
                source,
            })
        };
        Ok(GeoDb {
            location: location
                .map(|p| check(p, read(p)?, "City or Country", &["City", "Country"]))
                .transpose()?,
            asn: asn
                .map(|p| check(p, read(p)?, "ASN", &["ASN"]))
                .transpose()?,
        })
    }

    /// Databases from bytes already in memory (tests, embedded copies).
    pub fn from_bytes(location: Option<Vec<u8>>, asn: Option<Vec<u8>>) -> Result<GeoDb, GeoError> {
        let mem = Path::new("<memory>");
        let read = |b: Vec<u8>| {
            Reader::from_source(b).map_err(|source| GeoError::Open {
                path: mem.to_owned(),
                source,
            })
        };
        Ok(GeoDb {
            location: location
                .map(|b| check(mem, read(b)?, "City or Country", &["City", "Country"]))
                .transpose()?,
            asn: asn
                .map(|b| check(mem, read(b)?, "ASN", &["ASN"]))
                .transpose()?,
        })
    }

    /// No database open: every lookup answers `None`.
    pub fn is_empty(&self) -> bool {
        self.location.is_none() && self.asn.is_none()
    }

    /// Where `ip` is; `None` when no location database is open or it has nothing for `ip`
    /// (private addresses never have a record). A damaged record counts as nothing.
    pub fn geo(&self, ip: IpAddr) -> Option<Geo> {
        let r = self.location.as_ref()?;
        let c: geoip2::City<'_> = r.lookup(ip).ok()?.decode().ok()??;
        let g = Geo {
            country: c.country.iso_code.map(str::to_owned),
            country_name: c.country.names.english.map(str::to_owned),
            city: c.city.names.english.map(str::to_owned),
            latitude: c.location.latitude.filter(|v| v.is_finite()),
            longitude: c.location.longitude.filter(|v| v.is_finite()),
        };
        (g != Geo::default()).then_some(g)
    }

    /// The AS announcing `ip`; `None` when no ASN database is open or it has nothing.
    pub fn asn(&self, ip: IpAddr) -> Option<Asn> {
        let r = self.asn.as_ref()?;
        let a: geoip2::Asn<'_> = r.lookup(ip).ok()?.decode().ok()??;
        Some(Asn {
            number: a.autonomous_system_number?,
            org: a.autonomous_system_organization.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmon_testkit::mmdb::{Value, build};

    fn city_db() -> Vec<u8> {
        let rec = |iso: &str, country: &str, city: &str, lat: f64, lon: f64| {
            Value::map([
                (
                    "city",
                    Value::map([("names", Value::map([("en", Value::str(city))]))]),
                ),
                (
                    "country",
                    Value::map([
                        ("iso_code", Value::str(iso)),
                        ("names", Value::map([("en", Value::str(country))])),
                    ]),
                ),
                (
                    "location",
                    Value::map([
                        ("latitude", Value::Double(lat)),
                        ("longitude", Value::Double(lon)),
                    ]),
                ),
            ])
        };
        build(
            "GeoLite2-City",
            &[
                (
                    "89.160.20.0".parse().unwrap(),
                    24,
                    rec("SE", "Sweden", "Linköping", 58.4167, 15.6167),
                ),
                (
                    "2a02:d300::".parse().unwrap(),
                    32,
                    rec("DE", "Germany", "Berlin", 52.52, 13.405),
                ),
                (
                    "64.13.134.0".parse().unwrap(),
                    24,
                    Value::map([("country", Value::map([("iso_code", Value::str("US"))]))]),
                ),
            ],
        )
    }

    fn asn_db() -> Vec<u8> {
        build(
            "GeoLite2-ASN",
            &[
                (
                    "89.160.0.0".parse().unwrap(),
                    16,
                    Value::map([
                        ("autonomous_system_number", Value::U32(29518)),
                        ("autonomous_system_organization", Value::str("Bredband2 AB")),
                    ]),
                ),
                (
                    "1.0.0.0".parse().unwrap(),
                    24,
                    Value::map([("autonomous_system_number", Value::U32(13335))]),
                ),
            ],
        )
    }

    #[test]
    fn city_and_asn_lookups() {
        let db = GeoDb::from_bytes(Some(city_db()), Some(asn_db())).unwrap();
        let g = db.geo("89.160.20.128".parse().unwrap()).unwrap();
        assert_eq!(g.country.as_deref(), Some("SE"));
        assert_eq!(g.country_name.as_deref(), Some("Sweden"));
        assert_eq!(g.city.as_deref(), Some("Linköping"));
        assert_eq!(g.latitude, Some(58.4167));
        let g = db.geo("2a02:d300::1".parse().unwrap()).unwrap();
        assert_eq!(g.city.as_deref(), Some("Berlin"));
        // A country-only record.
        let g = db.geo("64.13.134.52".parse().unwrap()).unwrap();
        assert_eq!((g.country.as_deref(), g.city), (Some("US"), None));
        // Outside every network, and an IPv4-mapped IPv6 address outside too.
        assert_eq!(db.geo("89.160.21.1".parse().unwrap()), None);
        assert_eq!(db.geo("10.0.0.1".parse().unwrap()), None);
        let a = db.asn("89.160.255.1".parse().unwrap()).unwrap();
        assert_eq!(
            a,
            Asn {
                number: 29518,
                org: Some("Bredband2 AB".into())
            }
        );
        assert_eq!(db.asn("1.0.0.1".parse().unwrap()).unwrap().org, None);
        assert_eq!(db.asn("8.8.8.8".parse().unwrap()), None);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"number":29518,"org":"Bredband2 AB"}"#
        );
    }

    #[test]
    fn wrong_or_missing_databases_are_errors() {
        let e = GeoDb::from_bytes(Some(asn_db()), None).unwrap_err();
        assert!(
            e.to_string()
                .contains("a GeoLite2-ASN database where a City or Country one is needed"),
            "{e}"
        );
        let e = GeoDb::from_bytes(None, Some(city_db())).unwrap_err();
        assert!(matches!(e, GeoError::WrongKind { .. }), "{e}");
        let e = GeoDb::open(Some(Path::new("/nonexistent/GeoLite2-City.mmdb")), None).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/nonexistent/GeoLite2-City.mmdb: "),
            "{e}"
        );
        let e = GeoDb::from_bytes(Some(b"not a database".to_vec()), None).unwrap_err();
        assert!(matches!(e, GeoError::Open { .. }), "{e}");
        let none = GeoDb::default();
        assert!(none.is_empty());
        assert_eq!(none.geo("8.8.8.8".parse().unwrap()), None);
    }

    #[test]
    fn damaged_databases_never_panic() {
        // Every single-byte corruption of a valid file: an error or an answer, never a panic.
        let good = city_db();
        for i in (0..good.len()).step_by(3) {
            let mut bad = good.clone();
            bad[i] ^= 0xa5;
            if let Ok(db) = GeoDb::from_bytes(Some(bad), None) {
                for ip in ["89.160.20.128", "2a02:d300::1", "64.13.134.52", "10.1.1.1"] {
                    let _ = db.geo(ip.parse().unwrap());
                }
            }
        }
    }
}
