//! Table-driven tests of access control: the IP decisions, the client address, htpasswd
//! formats and the credential check, and the file format's field errors.

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine;

use super::*;
use crate::{ConfigError, RouteTable, TableDoc};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|_| panic!("fixture address {s}"))
}

fn set(nets: &[&str]) -> CidrSet {
    CidrSet::new(
        &nets.iter().map(|n| n.parse().unwrap_or_else(|_| panic!("fixture net {n}"))).collect::<Vec<_>>(),
    )
}

#[test]
fn a_cidr_set_contains_exactly_its_ranges_in_both_families() {
    let s = set(&["10.0.0.0/8", "192.168.1.0/24", "192.168.1.128/25", "2001:db8::/32", "::1/128"]);
    let cases = [
        ("10.0.0.0", true),
        ("10.255.255.255", true),
        ("11.0.0.0", false),
        ("9.255.255.255", false),
        ("192.168.1.200", true),
        ("192.168.2.1", false),
        ("2001:db8:ffff::1", true),
        ("2001:db9::", false),
        ("::1", true),
        ("::2", false),
        // a dual-stack socket's IPv4 client is judged as IPv4
        ("::ffff:10.1.2.3", true),
        ("::ffff:11.1.2.3", false),
    ];
    for (addr, want) in cases {
        assert_eq!(s.contains(ip(addr)), want, "{addr}");
    }
    assert!(!CidrSet::default().contains(ip("10.0.0.1")));
}

#[test]
fn the_denylist_is_checked_before_the_allowlist_and_an_unknown_address_is_refused() {
    let rules = IpRules { allow: set(&["10.0.0.0/8"]), deny: set(&["10.1.0.0/16"]) };
    let only_deny = IpRules { allow: CidrSet::default(), deny: set(&["10.1.0.0/16"]) };
    let cases = [
        (&rules, Some("10.2.0.1"), true),
        (&rules, Some("10.1.0.1"), false),
        (&rules, Some("8.8.8.8"), false),
        (&rules, None, false),
        (&only_deny, Some("8.8.8.8"), true),
        (&only_deny, Some("10.1.9.9"), false),
        (&only_deny, None, false),
    ];
    for (r, client, want) in cases {
        assert_eq!(r.permits(client.map(ip)), want, "{client:?} against {r:?}");
    }
}

#[test]
fn the_forwarded_client_is_the_rightmost_untrusted_hop_and_only_trusted_peers_are_believed() {
    let from = ClientAddress::ForwardedFor { trusted: set(&["10.0.0.0/8", "fd00::/8"]) };
    // (peer, X-Forwarded-For headers in order, client)
    let cases: &[(&str, &[&str], Option<&str>)] = &[
        ("203.0.113.9", &["1.2.3.4"], Some("203.0.113.9")), // untrusted peer: header ignored
        ("10.0.0.2", &[], Some("10.0.0.2")),
        ("10.0.0.2", &["198.51.100.7"], Some("198.51.100.7")),
        ("10.0.0.2", &["6.6.6.6, 198.51.100.7, 10.0.0.9"], Some("198.51.100.7")), // forged left entry
        ("10.0.0.2", &["6.6.6.6", "198.51.100.7,10.0.0.9"], Some("198.51.100.7")), // repeated header
        ("10.0.0.2", &["10.9.9.9, 10.0.0.9"], Some("10.9.9.9")),                  // all trusted: leftmost
        ("fd00::2", &["[2001:db8::5]"], Some("2001:db8::5")),
        ("10.0.0.2", &["198.51.100.7, garbage"], None), // unparsable: unknown, never the trusted hop
        ("10.0.0.2", &["198.51.100.7, , "], Some("198.51.100.7")),
    ];
    for (peer, headers, want) in cases {
        let got = from.forwarded_client(ip(peer), headers.iter().map(|h| h.as_bytes()));
        assert_eq!(got, want.map(ip), "peer {peer} xff {headers:?}");
    }
    assert_eq!(
        ClientAddress::Peer.forwarded_client(ip("1.1.1.1"), ["2.2.2.2".as_bytes()].into_iter()),
        Some(ip("1.1.1.1"))
    );
}

/// (user, password, htpasswd line): openssl passwd -apr1 -salt saltsalt, openssl dgst -sha1 |
/// base64, and the OpenWall crypt_blowfish vector (as $2a$ and $2y$).
const USERS: [(&str, &str, &str); 4] = [
    ("apr", "p@ss word", "apr:$apr1$saltsalt$11QAx5Oiaores.cTy1Ple."),
    ("sha", "secret", "sha:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="),
    ("bca", "U*U", "bca:$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
    ("bcy", "U*U", "bcy:$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
];

fn basic(user: &str, password: &str) -> Vec<u8> {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
        .into_bytes()
}

#[test]
fn each_hash_format_accepts_its_password_and_nothing_else() {
    let lines: Vec<String> = USERS.iter().map(|u| u.2.to_string()).collect();
    let auth = BasicAuth::new("r".into(), &lines).unwrap_or_else(|e| panic!("{e:?}"));
    for (user, password, _) in USERS {
        assert!(auth.check(Some(&basic(user, password))), "{user} with the right password");
        assert!(!auth.check(Some(&basic(user, &format!("{password}x")))), "{user} with a wrong password");
        assert!(!auth.check(Some(&basic(user, ""))), "{user} with an empty password");
    }
    let other = USERS[1];
    assert!(!auth.check(Some(&basic(USERS[0].0, other.1))), "another user's password");
    assert!(!auth.check(Some(&basic("nobody", "secret"))), "unknown user");
    assert!(!auth.check(None), "no header");
    assert!(!auth.check(Some(b"Bearer abc")), "other scheme");
    assert!(!auth.check(Some(b"Basic !!notbase64")), "bad base64");
    let no_colon = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("sha"));
    assert!(!auth.check(Some(no_colon.as_bytes())), "no colon");
    let lower = String::from_utf8(basic("sha", "secret")).unwrap_or_default().replacen("Basic", "basic", 1);
    assert!(auth.check(Some(lower.as_bytes())), "the scheme is case-insensitive");
    assert_eq!(auth.challenge(), "Basic realm=\"r\"");
}

#[test]
fn a_bcrypt_hash_made_now_verifies() {
    let hash =
        bcrypt::hash_with_salt("hunter2", 4, [7u8; 16]).map(|h| h.format_for_version(bcrypt::Version::TwoY));
    let line = format!("u:{}", hash.unwrap_or_default());
    let auth = BasicAuth::new(String::new(), &[line]).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(auth.check(Some(&basic("u", "hunter2"))));
    assert!(!auth.check(Some(&basic("u", "hunter3"))));
}

#[test]
fn unusable_htpasswd_lines_are_named_by_user_and_never_echo_the_hash() {
    let cases = [
        ("alice:abJnggxhB/yWI", "user \"alice\": the hash is not bcrypt"), // crypt(3)
        ("alice:{SSHA}c2VjcmV0c2FsdA==", "not bcrypt"),
        ("alice:{SHA}dG9vc2hvcnQ=", "not 20 bytes"),
        ("alice:$apr1$saltsalt$short", "apr1 hash is malformed"),
        ("alice:$2y$05$tooshort", "bcrypt hash is malformed"),
        ("no colon here", "is not a user:hash line"),
        (":{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", "empty user name"),
    ];
    for (line, want) in cases {
        let errs = BasicAuth::new(String::new(), &[line.to_string()]).err().unwrap_or_default();
        assert_eq!(errs.len(), 1, "{line}");
        assert!(errs[0].1.contains(want), "{line}: {}", errs[0].1);
        let hash = line.split_once(':').map_or("", |(_, h)| h);
        assert!(hash.len() < 4 || !errs[0].1.contains(hash), "{line}: the hash is echoed");
    }
    let twice = [
        "a:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=".to_string(),
        "a:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=".to_string(),
    ];
    assert_eq!(BasicAuth::new(String::new(), &twice).err().map(|e| e[0].0), Some(1));
    assert!(BasicAuth::new(String::new(), &[]).is_err(), "no users at all");
}

fn errors(yaml: &str) -> Vec<String> {
    match RouteTable::parse(yaml) {
        Ok(_) => panic!("expected the document to be rejected:\n{yaml}"),
        Err(ConfigError::Invalid(errs)) => errs.iter().map(|e| e.to_string()).collect(),
        Err(e) => panic!("expected field errors, got {e}"),
    }
}

/// One rule with this `access:` (or other rule fields), indented 8.
fn rule_doc(fields: &str) -> String {
    format!("schema: weir/v1\nhosts:\n  - host: a.example.com\n    rules:\n      - path: /\n        backend: {{ endpoints: [127.0.0.1:1] }}\n{fields}")
}

#[test]
fn bad_access_settings_are_field_errors_naming_the_field() {
    let r = "hosts[0].rules[0]";
    let cases = [
        ("        access: { allow: [10.0.0.1/8] }\n", format!("{r}.access.allow[0]: \"10.0.0.1/8\" has host bits set under its mask; did you mean 10.0.0.0/8?")),
        ("        access: { deny: [10.0.0.0/33] }\n", format!("{r}.access.deny[0]: \"10.0.0.0/33\" is not an IPv4/IPv6 address")),
        ("        access: { externalAuth: { url: 'http://a/$host' } }\n", format!("{r}.access.externalAuth.url: must not contain")),
        ("        access: { externalAuth: { url: 'http://a/x;proxy_pass' } }\n", format!("{r}.access.externalAuth.url: must not contain")),
        ("        access: { externalAuth: { url: 'ftp://a/' } }\n", format!("{r}.access.externalAuth.url: \"ftp://a/\" is not an absolute")),
        ("        access: { externalAuth: { url: '/oauth2/auth' } }\n", format!("{r}.access.externalAuth.url: \"/oauth2/auth\" is not an absolute")),
        ("        access: { externalAuth: { url: 'http://u:p@a/' } }\n", format!("{r}.access.externalAuth.url: \"http://u:p@a/\": credentials")),
        ("        access: { externalAuth: { url: 'http://a/', method: get } }\n", format!("{r}.access.externalAuth.method: \"get\" is not one of")),
        ("        access: { externalAuth: { url: 'http://a/', signin: 'https://$host/start?rd=$args' } }\n", format!("{r}.access.externalAuth.signin: uses $args")),
        ("        access: { externalAuth: { url: 'http://a/', signin: '/start' } }\n", format!("{r}.access.externalAuth.signin: \"/start\" is not an absolute")),
        ("        access: { externalAuth: { url: 'http://a/', responseHeaders: [Content-Length] } }\n", format!("{r}.access.externalAuth.responseHeaders[0]: \"Content-Length\" cannot be copied")),
        ("        access: { externalAuth: { url: 'http://a/', cache: { key: '' } } }\n", format!("{r}.access.externalAuth.cache.key: is required")),
        ("        access: { externalAuth: { url: 'http://a/', cache: { key: '$foo' } } }\n", format!("{r}.access.externalAuth.cache.key: uses $foo")),
        ("        access: { externalAuth: { url: 'http://a/', timeout: 0s } }\n", format!("{r}.access.externalAuth.timeout: \"0s\" must be greater than zero")),
        ("        access: { basicAuth: { realm: 'a\"b', users: ['u:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ='] } }\n", format!("{r}.access.basicAuth.realm: must be")),
        ("        access: { basicAuth: { users: ['u:plain'], source: ns/s } }\n", format!("{r}.access.basicAuth.users[0]: user \"u\": the hash is not bcrypt")),
        ("        deny: { status: 302, reason: x }\n", format!("{r}.deny.status: 302 is not a 4xx or 5xx status")),
        ("        deny: { reason: ' ' }\n", format!("{r}.deny.reason: is required")),
    ];
    for (fields, want) in cases {
        let errs = errors(&rule_doc(fields));
        assert!(errs.iter().any(|e| e.starts_with(&want)), "{fields}: want {want:?}, got {errs:?}");
        if fields.contains("ns/s") {
            assert!(errs[0].contains("(from ns/s)"), "{errs:?}");
        }
    }
}

#[test]
fn bad_client_address_settings_are_field_errors() {
    let base = "schema: weir/v1\nclientAddress:\n";
    let cases = [
        ("  from: forwardedFor\n", "clientAddress.trustedProxies: is required with `from: forwardedFor`"),
        ("  trustedProxies: [10.0.0.0/8]\n", "clientAddress.trustedProxies: is used only with"),
        ("  from: xff\n", "clientAddress.from: \"xff\" is not one of peer, forwardedFor, proxyProtocol"),
        (
            "  from: forwardedFor\n  trustedProxies: [10.0.0.0/8, nope]\n",
            "clientAddress.trustedProxies[1]: \"nope\"",
        ),
    ];
    for (yaml, want) in cases {
        let errs = errors(&format!("{base}{yaml}"));
        assert!(errs.iter().any(|e| e.starts_with(want)), "{yaml}: {errs:?}");
    }
}

#[test]
fn a_valid_access_rule_loads_with_every_setting_in_the_model() {
    let yaml = rule_doc(
        "        access:
          allow: [192.168.0.0/16, '2001:db8::/32', 203.0.113.7]
          deny: [192.168.9.0/24]
          basicAuth: { realm: Staff only, users: ['sha:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ='] }
          externalAuth:
            url: http://oauth2-proxy.auth.svc:4180/oauth2/auth
            method: POST
            signin: https://$host/oauth2/start
            responseHeaders: [X-Auth-Request-User, X-Auth-Request-Email]
            proxySetHeaders: { X-Tenant: blue }
            cache: { key: '$http_authorization$cookie__oauth2_proxy', durations: [{ statuses: [200], duration: 1m }] }
            timeout: 2s
",
    )
    .replacen(
        "schema: weir/v1\n",
        "schema: weir/v1\nclientAddress: { from: forwardedFor, trustedProxies: [10.0.0.0/8, 'fd00::/8'] }\n",
        1,
    );
    let t = RouteTable::parse(&yaml).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(t.client_address(), ClientAddress::ForwardedFor { .. }));
    let route = t.match_route("a.example.com", "/").ok().flatten().unwrap_or_else(|| panic!("route"));
    let access = route.access.as_deref().unwrap_or_else(|| panic!("access"));
    let ip_rules = access.ip.as_ref().unwrap_or_else(|| panic!("ip rules"));
    assert!(ip_rules.permits(Some(ip("192.168.1.1"))) && !ip_rules.permits(Some(ip("192.168.9.1"))));
    assert!(ip_rules.permits(Some(ip("203.0.113.7"))) && !ip_rules.permits(Some(ip("203.0.113.8"))));
    assert_eq!(access.basic.as_ref().map(|b| b.realm.as_str()), Some("Staff only"));
    let ext = access.external.as_ref().unwrap_or_else(|| panic!("external"));
    assert_eq!(
        (ext.method.as_str(), ext.timeout.as_secs(), ext.signin_redirect_param.as_str()),
        ("POST", 2, "rd")
    );
    assert_eq!(ext.response_headers.len(), 2);
    let signin = ext.signin.as_ref().map(|s| s.render(|v| format!("<{v:?}>")));
    assert_eq!(signin.as_deref(), Some("https://<Host>/oauth2/start"));
    let cache = ext.cache.as_ref().unwrap_or_else(|| panic!("cache"));
    assert_eq!((cache.duration(200).map(|d| d.as_secs()), cache.duration(401)), (Some(60), None));
    assert_eq!(cache.key.parts.len(), 2);
    assert!(route.deny.is_none());
}

#[test]
fn a_deny_rule_needs_no_backend_and_defaults_to_503() {
    let t = RouteTable::parse(
        "schema: weir/v1\nhosts:\n  - host: a.example.com\n    rules:\n      - path: /admin\n        deny: { reason: 'refused: auth-snippet' }\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let route = t.match_route("a.example.com", "/admin/x").ok().flatten().unwrap_or_else(|| panic!("route"));
    let deny = route.deny.as_ref().unwrap_or_else(|| panic!("deny"));
    assert_eq!((deny.status.as_u16(), deny.reason.as_str()), (503, "refused: auth-snippet"));
}

#[test]
fn until_the_proxy_enforces_them_deny_and_access_rules_forward_nothing() {
    let t = RouteTable::parse(&rule_doc(
        "        canary: { backend: { endpoints: [127.0.0.1:2] }, weight: 50 }
        access: { allow: [10.0.0.0/8] }
      - path: /open
        backend: { endpoints: [127.0.0.1:3] }
      - path: /denied
        backend: { endpoints: [127.0.0.1:4] }
        deny: { reason: refused }
",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let route = |p: &str| t.match_route("a.example.com", p).ok().flatten().unwrap_or_else(|| panic!("{p}"));
    for path in ["/", "/denied"] {
        let r = route(path);
        assert_eq!(r.stable.endpoints.is_empty() && r.canary.is_none(), !ENFORCED, "{path}");
        assert!(
            Arc::ptr_eq(&t.backends()[r.stable.index()], &r.stable),
            "{path}: the backend index stays true"
        );
    }
    assert_eq!(route("/open").stable.endpoints.len(), 1, "a rule without access is untouched");
}

#[test]
fn get_config_and_debug_output_never_show_a_password_hash() {
    let yaml =
        rule_doc("        access: { basicAuth: { users: ['sha:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ='] } }\n");
    let doc: TableDoc = serde_yaml_ng::from_str(&yaml).unwrap_or_default();
    let shown = serde_json::to_string(&doc.redacted()).unwrap_or_default();
    assert!(shown.contains("sha:<redacted>") && !shown.contains("5en6G6"), "{shown}");
    assert!(!format!("{doc:?}").contains("5en6G6"));
    let table = RouteTable::from_doc(&doc).unwrap_or_else(|e| panic!("{e}"));
    assert!(!format!("{:?}", table.routes()).contains("5en6G6"));
    // the redacted copy is for showing only: it does not load (nobody could sign in with it)
    assert!(RouteTable::from_doc(&doc.redacted()).is_err());
}
