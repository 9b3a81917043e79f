//! ingress-nginx's annotation value validators (v1.15.1 `parser/validators.go`), as pure checks.
//!
//! ingress-nginx runs one validator per key before it uses a value; a value that fails is
//! treated as absent (most keys fall back to their default with a warning). These functions
//! reproduce the validators' accepted sets exactly, so weir drops the same values ingress-nginx
//! drops. Each returns `Err(reason)` with a one-line reason naming what is wrong; the catalog
//! prefixes it with the annotation key.

use std::net::IpAddr;

/// ingress-nginx's `alphaNumericChars`: letters, digits and `- . _ ~ / :`.
fn alphanumeric(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~/:".contains(c)
}

/// The character sets ingress-nginx's `ValidateRegex` validators use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharSet {
    /// `BasicCharsRegex`: `alphaNumericChars` (header and cookie names, `namespace/name`).
    Basic,
    /// `ExtendedCharsRegex`: Basic plus `,` and space.
    Extended,
    /// `CharsWithSpace`: Basic plus space.
    WithSpace,
    /// `IsValidRegex`: Basic plus the regex characters `^ $ [ ] ( ) { } * + ? | & = \`.
    Regex,
    /// `URLIsValidRegex`: Basic plus `, : ? & =`.
    Url,
    /// `URLWithNginxVariableRegex`: Extended plus `, : ? & =` and `$`.
    UrlWithVariables,
    /// `HeadersVariable`: letters, digits, `-`, `_`, `,` and space.
    HeaderList,
    /// `NGINXVariable`: letters, digits, `- _ $ { }`.
    NginxVariable,
}

impl CharSet {
    pub fn allows(self, c: char) -> bool {
        match self {
            CharSet::Basic => alphanumeric(c),
            CharSet::Extended => alphanumeric(c) || c == ',' || c == ' ',
            CharSet::WithSpace => alphanumeric(c) || c == ' ',
            CharSet::Regex => alphanumeric(c) || "^$[](){}*+?|&=\\".contains(c),
            CharSet::Url => alphanumeric(c) || ",:?&=".contains(c),
            CharSet::UrlWithVariables => alphanumeric(c) || ", :?&=$".contains(c),
            CharSet::HeaderList => c.is_ascii_alphanumeric() || "-_, ".contains(c),
            CharSet::NginxVariable => c.is_ascii_alphanumeric() || "-_${}".contains(c),
        }
    }

    /// How the set reads in messages and in the README.
    pub fn describe(self) -> &'static str {
        match self {
            CharSet::Basic => "letters, digits and - . _ ~ / :",
            CharSet::Extended => "letters, digits, - . _ ~ / : , and space",
            CharSet::WithSpace => "letters, digits, - . _ ~ / : and space",
            CharSet::Regex => "letters, digits, - . _ ~ / : and ^ $ [ ] ( ) { } * + ? | & = \\",
            CharSet::Url => "letters, digits and - . _ ~ / : , ? & =",
            CharSet::UrlWithVariables => "letters, digits, space and - . _ ~ / : , ? & = $",
            CharSet::HeaderList => "letters, digits, - _ , and space",
            CharSet::NginxVariable => "letters, digits and - _ $ { }",
        }
    }
}

/// `ValidateRegex(set, removeSpace)`: every character in `set` (after removing spaces when
/// `remove_space`), and never a CR or LF (ingress-nginx's `MaliciousRegex`).
pub fn chars(value: &str, set: CharSet, remove_space: bool) -> Result<(), String> {
    let bad = value.chars().filter(|c| !(remove_space && *c == ' ')).find(|c| !set.allows(*c));
    match bad {
        None => Ok(()),
        Some(c) => Err(format!("contains {c:?}; allowed are {}", set.describe())),
    }
}

/// Go's `strconv.ParseBool` (`ValidateBool`).
pub fn go_bool(value: &str) -> Result<bool, String> {
    super::lenient::parse_bool(value)
        .ok_or_else(|| "is not a boolean (true, false, 1, 0, t, f, …)".to_string())
}

/// Go's `strconv.Atoi` (`ValidateInt`).
pub fn go_int(value: &str) -> Result<i64, String> {
    super::lenient::parse_int(value).ok_or_else(|| "is not an integer".to_string())
}

/// `ValidateOptions(options, caseSensitive, trimSpace)`: returns the matching option.
pub fn one_of(
    value: &str,
    options: &[&'static str],
    case_sensitive: bool,
    trim: bool,
) -> Result<&'static str, String> {
    let v = if trim { value.trim() } else { value };
    options
        .iter()
        .find(|o| if case_sensitive { **o == v } else { o.eq_ignore_ascii_case(v) })
        .copied()
        .ok_or_else(|| format!("is not one of {}", options.join(", ")))
}

/// ingress-nginx's `SizeRegex` (`^(?i)\d+[bkmg]?$`, spaces removed first): nginx sizes.
pub fn nginx_size(value: &str) -> Result<(), String> {
    let v: String = value.chars().filter(|c| *c != ' ').collect();
    let digits = v.strip_suffix(['b', 'k', 'm', 'g', 'B', 'K', 'M', 'G']).unwrap_or(&v);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err("is not a size like 1048576, 512k, 8m or 1g".into())
    }
}

/// ingress-nginx's `ParseCIDRs` (`ValidateCIDRs`): a comma-separated list of IPv4/IPv6
/// addresses and CIDRs, each trimmed. An empty entry (`a,,b`, a trailing comma) is an error,
/// as in Go; host bits under the mask are allowed (`10.0.0.1/8` means `10.0.0.0/8`).
pub fn cidrs(value: &str) -> Result<Vec<(IpAddr, u8)>, String> {
    value
        .split(',')
        .map(|entry| {
            let e = entry.trim();
            let (addr, bits) = match e.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (e, None),
            };
            let ip: IpAddr = addr.parse().map_err(|_| format!("{e:?} is not an IP address or CIDR"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) if !b.is_empty() && b.len() <= 3 && b.bytes().all(|d| d.is_ascii_digit()) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|n| *n <= max)
                    .ok_or_else(|| format!("{e:?}: prefix length above {max}"))?,
                Some(_) => return Err(format!("{e:?} is not an IP address or CIDR")),
            };
            Ok((ip, bits))
        })
        .collect()
}

/// ingress-nginx's `StringToURL` after its character check: an absolute URL with a scheme
/// and a host, and no `..` in the host (used for auth-url and auth-signin).
pub fn absolute_url(value: &str) -> Result<(), String> {
    let Some((scheme, rest)) = value.split_once("://") else {
        return Err("is not an absolute URL (scheme://host/…)".into());
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return Err("has no valid URL scheme".into());
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.is_empty() {
        return Err("has no host".into());
    }
    if host.contains("..") {
        return Err("has an invalid host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_sets_accept_exactly_ingress_nginx_s_characters() {
        // (value, set, remove_space, accepted)
        let cases = [
            ("X-Canary", CharSet::Basic, true, true),
            ("x_canary.v2~/:", CharSet::Basic, true, true),
            ("X Canary", CharSet::Basic, true, true),
            ("X Canary", CharSet::Basic, false, false),
            ("a,b", CharSet::Basic, true, false),
            ("a=b", CharSet::Basic, true, false),
            ("a;b", CharSet::Basic, true, false),
            ("a\nb", CharSet::Basic, true, false),
            ("\"quoted\"", CharSet::Basic, true, false),
            ("^v(1|2)\\.[0-9]+$", CharSet::Regex, false, true),
            ("(?i)beta", CharSet::Regex, false, true),
            ("a b", CharSet::Regex, false, false),
            ("a,b", CharSet::Regex, false, false),
            ("@admin", CharSet::Regex, false, false),
            (
                "https://auth.example.com/oauth2/auth?rd=$escaped_request_uri",
                CharSet::UrlWithVariables,
                true,
                true,
            ),
            ("http://a/b;proxy_pass x", CharSet::UrlWithVariables, true, false),
            ("X-Auth-Request-User, X-Auth-Request-Email", CharSet::HeaderList, true, true),
            ("X-User:evil", CharSet::HeaderList, true, false),
            ("$remote_addr${host}", CharSet::NginxVariable, true, true),
            ("$remote_addr;", CharSet::NginxVariable, true, false),
        ];
        for (value, set, remove_space, ok) in cases {
            assert_eq!(
                chars(value, set, remove_space).is_ok(),
                ok,
                "{value:?} in {set:?} (remove_space {remove_space})"
            );
        }
    }

    #[test]
    fn a_rejected_value_names_the_first_bad_character_and_the_set() {
        let err = chars("v1,v2", CharSet::Basic, true).unwrap_err();
        assert_eq!(err, "contains ','; allowed are letters, digits and - . _ ~ / :");
    }

    #[test]
    fn options_match_per_case_and_trim_settings() {
        let protocols = ["http", "https", "grpc"];
        assert_eq!(one_of(" HTTPS ", &protocols, false, true), Ok("https"));
        assert!(one_of("HTTPS", &protocols, true, true).is_err());
        assert!(one_of(" https", &protocols, false, false).is_err());
        assert_eq!(one_of("ajp", &protocols, false, true), Err("is not one of http, https, grpc".into()));
    }

    #[test]
    fn nginx_sizes_take_digits_and_one_unit_letter_with_spaces_ignored() {
        for ok in ["0", "1048576", "512k", "8M", "1g", "10b", "1 m"] {
            assert!(nginx_size(ok).is_ok(), "{ok}");
        }
        for bad in ["", "m", "1.5m", "1mb", "-1", "8 mm", "1t"] {
            assert!(nginx_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_lists_parse_like_go_including_bare_addresses_and_ipv6() {
        let ok = cidrs("10.0.0.0/8, 192.168.1.7 ,2001:db8::/32,::1").unwrap_or_default();
        assert_eq!(ok.len(), 4);
        assert_eq!(ok[1], ("192.168.1.7".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])), 32));
        assert_eq!(ok[3].1, 128);
        assert!(cidrs("10.0.0.1/8").is_ok(), "host bits are allowed, as in Go");
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/8,",
            "10.0.0.0/8,,10.1.0.0/16",
            "10.0.0",
            "::1/129",
            "10.0.0.0/+8",
            "a.b.c.d",
        ] {
            assert!(cidrs(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn absolute_urls_need_a_scheme_and_a_host() {
        for ok in
            ["https://auth.example.com/oauth2/auth", "http://oauth2-proxy.auth.svc:4180/oauth2/auth?x=1"]
        {
            assert!(absolute_url(ok).is_ok(), "{ok}");
        }
        for bad in ["/oauth2/auth", "auth.example.com", "https:///path", "https://a..b/", "1http://x/"] {
            assert!(absolute_url(bad).is_err(), "{bad}");
        }
    }
}
