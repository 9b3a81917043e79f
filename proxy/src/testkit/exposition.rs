//! A small reader of the Prometheus text format, for tests: samples, labels and types.

use std::collections::BTreeMap;
use std::time::Duration;

use super::client::get;
use super::wait::{within, WAIT};
use crate::Running;

/// One sample line.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of `text`, in order. Panics on a line it cannot read (a test failure).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).map(parse_line).collect()
}

fn parse_line(line: &str) -> Sample {
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => {
            let (name, value) = line.split_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
            return Sample { name: name.into(), labels: BTreeMap::new(), value: value_of(value, line) };
        }
    };
    let mut labels = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    loop {
        if chars.peek() == Some(&'}') {
            chars.next();
            break;
        }
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label {key} of {line}");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("bad escape in {line}"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        assert!(labels.insert(key.clone(), value).is_none(), "label {key} twice in {line}");
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    let value: String = chars.collect();
    Sample { name: name.into(), labels, value: value_of(value.trim(), line) }
}

fn value_of(v: &str, line: &str) -> f64 {
    match v {
        "+Inf" => f64::INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
    }
}

/// `# TYPE` of every family.
pub fn types(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

/// Samples named `name` carrying every label of `want`.
pub fn find<'a>(samples: &'a [Sample], name: &str, want: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| {
            s.name == name && want.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The sum of the matching samples' values (0 when none match).
pub fn sum(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
    find(samples, name, want).iter().map(|s| s.value).sum()
}

/// The metrics text weir serves now.
pub async fn scrape(running: &Running) -> String {
    let addr = running.metrics_addr.expect("metrics listener");
    let reply = get(addr, "weir", "/metrics", &[]).await;
    assert_eq!(reply.status, 200);
    reply.text()
}

/// Scrape until `ready` holds for the samples (a request is recorded when its response
/// body is dropped, just after the client has read it), at most [`WAIT`]; the last scrape
/// either way.
pub async fn scrape_until(running: &Running, ready: impl Fn(&[Sample]) -> bool) -> Vec<Sample> {
    let deadline = std::time::Instant::now() + WAIT;
    for _ in 0..10_000 {
        let samples = parse(&within("a scrape", scrape(running)).await);
        if ready(&samples) || std::time::Instant::now() > deadline {
            return samples;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    parse(&scrape(running).await)
}
