//! What ingress-nginx's controller-health families read, for weir: the table in force
//! (its hash, its certificates' expiry), computed once per install, and the process's CPU,
//! memory and I/O, read from `/proc/self` at scrape time.
//!
//! The connection counters (`nginx_process_connections*`, `_requests_total`) are kept by
//! the listeners ([`crate::conn::ConnStats`]); the reload outcome by `Metrics` (metrics.rs).

use std::collections::HashMap;

use weir_config::{RouteTable, TableDoc};

/// Per table: what its controller-health series say. Plain data of the snapshot.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TableHealth {
    /// `config_hash`: a 52-bit FNV-1a hash of the document (exact in a float gauge).
    pub config_hash: u64,
    /// One per certificate of the table (hosts, then the default), with its expiry.
    pub certificates: Vec<CertExpiry>,
}

/// One certificate's `ssl_expire_time_seconds` sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertExpiry {
    /// The TLS host (`*.example.com` for a wildcard, `_` for the default certificate).
    pub host: String,
    /// `namespace` / `secret_name` of the Secret it came from (`source`), empty if unknown.
    pub namespace: String,
    pub secret_name: String,
    /// ingress-nginx's identifier: the issuer's serialNumber attribute, `-`, the leaf's
    /// serial number in decimal.
    pub identifier: String,
    /// The leaf certificate's `notAfter`, Unix seconds.
    pub not_after: i64,
}

const HASH_BITS: u32 = 52;

/// FNV-1a 64 of `bytes`, folded to [`HASH_BITS`] bits.
fn fnv52(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> HASH_BITS)) & ((1 << HASH_BITS) - 1)
}

impl TableHealth {
    /// The health data of `table`, built from `doc`. Certificates were checked when the
    /// table was built; one whose leaf cannot be read as X.509 is left out (it would not
    /// serve a handshake either).
    pub fn of(doc: &TableDoc, table: &RouteTable) -> TableHealth {
        // Every field of a TableDoc is a struct, a Vec or a scalar: the JSON is canonical.
        let config_hash = serde_json::to_vec(doc).map_or(0, |json| fnv52(&json));
        let mut sources: HashMap<String, &str> = HashMap::new();
        for host in &doc.hosts {
            if let (Some(name), Some(source)) =
                (host.host.as_deref(), host.tls.as_ref().and_then(|t| t.source.as_deref()))
            {
                sources.insert(name.to_ascii_lowercase(), source);
            }
        }
        let default_source =
            doc.tls.as_ref().and_then(|t| t.default_certificate.as_ref()).and_then(|t| t.source.as_deref());
        let mut certificates = Vec::new();
        let hosts = table.certificates().iter().map(|c| (c, sources.get(&c.name).copied()));
        for (cert, source) in hosts.chain(table.default_certificate().map(|c| (c, default_source))) {
            let Some(leaf) = cert.chain.first() else { continue };
            let Ok((_, x509)) = x509_parser::parse_x509_certificate(leaf) else { continue };
            let (namespace, secret_name) = match source.map(|s| s.split_once('/').unwrap_or(("", s))) {
                Some((ns, name)) => (ns.to_string(), name.to_string()),
                None => (String::new(), String::new()),
            };
            let issuer_serial = x509
                .issuer()
                .iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER)
                .next()
                .and_then(|a| a.as_str().ok())
                .unwrap_or("");
            certificates.push(CertExpiry {
                host: cert.name.clone(),
                namespace,
                secret_name,
                identifier: format!("{issuer_serial}-{}", x509.tbs_certificate.serial),
                not_after: x509.validity().not_after.timestamp(),
            });
        }
        TableHealth { config_hash, certificates }
    }
}

/// The weir process as `/proc/self` shows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessSample {
    /// User + system CPU seconds.
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    /// Unix seconds.
    pub start_time: f64,
    /// Storage bytes read and written (`/proc/self/io`), when readable.
    pub io: Option<(u64, u64)>,
}

impl ProcessSample {
    /// `None` where `/proc` cannot be read (not Linux, an odd sandbox).
    pub fn read() -> Option<ProcessSample> {
        let me = procfs::process::Process::myself().ok()?;
        let stat = me.stat().ok()?;
        let ticks = procfs::ticks_per_second().max(1) as f64;
        let boot = procfs::boot_time_secs().ok()? as f64;
        Some(ProcessSample {
            cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
            resident_bytes: stat.rss.saturating_mul(procfs::page_size()),
            virtual_bytes: stat.vsize,
            start_time: boot + stat.starttime as f64 / ticks,
            io: me.io().ok().map(|io| (io.read_bytes, io.write_bytes)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_fits_a_float_exactly_and_follows_the_content() {
        let a = fnv52(b"schema: weir/v1");
        assert!(a < 1 << HASH_BITS && a != 0);
        assert_eq!(a as f64 as u64, a);
        assert_ne!(a, fnv52(b"schema: weir/v2"));
        assert_eq!(a, fnv52(b"schema: weir/v1"));
    }

    #[test]
    fn this_process_reads_from_proc() {
        let p = ProcessSample::read().expect("/proc/self is readable on Linux");
        assert!(p.resident_bytes > 0 && p.virtual_bytes >= p.resident_bytes, "{p:?}");
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
        // Started before now, and (at most) a day before: a test run, not a boot-time guess.
        assert!(p.start_time <= now + 1.0 && p.start_time > now - 86_400.0, "{p:?} vs {now}");
        // Burn CPU until the reading grows (the clock ticks every 10 ms): at most 5 s.
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        let grew = loop {
            for _ in 0..100_000 {
                x = x.wrapping_add(std::hint::black_box(1));
            }
            let later = ProcessSample::read().expect("readable");
            if later.cpu_seconds > p.cpu_seconds {
                break true;
            }
            if spin.elapsed() > std::time::Duration::from_secs(5) {
                break false;
            }
        };
        assert!(grew && x > 0, "CPU seconds never grew from {}", p.cpu_seconds);
    }
}
