//! Basic auth: htpasswd entries parsed once at load, and the per-request credential check.
//!
//! Hashes: bcrypt (`$2a$`, `$2b$`, `$2y$`; the `bcrypt` crate), apr1 (Apache's MD5-crypt,
//! `$apr1$salt$hash`; computed here over the `md-5` crate) and SHA-1 (`{SHA}base64`).
//! Comparisons of computed and stored hashes are constant-time (`subtle`). No message here
//! ever includes a hash or a password: errors name the user and the problem.

use base64::Engine;
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// One user's stored hash.
#[derive(Clone, PartialEq, Eq)]
enum Hash {
    /// The whole `$2y$cost$salthash` string, checked by `bcrypt::verify`.
    Bcrypt(String),
    /// salt (≤ 8 characters) and the 22-character encoded digest.
    Apr1 {
        salt: String,
        digest: String,
    },
    Sha1([u8; 20]),
}

/// Validated basic-auth settings of a rule.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// Printable ASCII without `"` or `\`, so it can be quoted as is.
    pub realm: String,
    users: Vec<(String, Hash)>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth").field("realm", &self.realm).field("users", &self.users.len()).finish()
    }
}

impl BasicAuth {
    /// Build from htpasswd lines; each error is (line index, reason).
    pub fn new(realm: String, lines: &[String]) -> Result<BasicAuth, Vec<(usize, String)>> {
        let mut users = Vec::with_capacity(lines.len());
        let mut errors = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            match entry(line) {
                Ok(e) if users.iter().any(|(u, _): &(String, Hash)| *u == e.0) => {
                    errors.push((i, format!("user {:?} is listed twice", e.0)))
                }
                Ok(e) => users.push(e),
                Err(reason) => errors.push((i, reason)),
            }
        }
        if users.is_empty() && errors.is_empty() {
            errors.push((0, "no users: nobody could sign in".into()));
        }
        if errors.is_empty() {
            Ok(BasicAuth { realm, users })
        } else {
            Err(errors)
        }
    }

    /// The `WWW-Authenticate` value of a 401.
    pub fn challenge(&self) -> String {
        format!("Basic realm=\"{}\"", self.realm)
    }

    /// Whether an `Authorization` header value carries a listed user's password. A missing,
    /// malformed or non-Basic header fails.
    pub fn check(&self, authorization: Option<&[u8]>) -> bool {
        let Some((user, password)) = authorization.and_then(credentials) else { return false };
        match self.users.iter().find(|(u, _)| u.as_bytes() == user.as_slice()) {
            Some((_, hash)) => verify(hash, &password),
            None => false,
        }
    }
}

/// `Basic base64(user:password)`; the scheme is case-insensitive.
fn credentials(header: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let header = header.trim_ascii();
    let (scheme, rest) = header.split_at(header.iter().position(|b| *b == b' ')?);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim_ascii()).ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

fn verify(hash: &Hash, password: &[u8]) -> bool {
    match hash {
        Hash::Bcrypt(h) => bcrypt::verify(password, h).unwrap_or(false),
        Hash::Apr1 { salt, digest } => {
            apr1_digest(password, salt.as_bytes()).as_bytes().ct_eq(digest.as_bytes()).into()
        }
        Hash::Sha1(want) => {
            use sha1::Sha1;
            let got = Sha1::digest(password);
            got.as_slice().ct_eq(want.as_slice()).into()
        }
    }
}

const BAD_FORMAT: &str = "the hash is not bcrypt ($2a$/$2b$/$2y$), apr1 ($apr1$) or SHA-1 ({SHA}); \
     crypt(3), plain and salted SHA entries are not supported";

fn entry(line: &str) -> Result<(String, Hash), String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let Some((user, hash)) = line.split_once(':') else {
        return Err("is not a user:hash line".into());
    };
    if user.is_empty() || user.bytes().any(|b| b.is_ascii_control()) {
        return Err("has an empty user name or one with control characters".into());
    }
    let named = |why: &str| format!("user {user:?}: {why}");
    let parsed = if let Some(b64) = hash.strip_prefix("{SHA}") {
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| named(BAD_FORMAT))?;
        Hash::Sha1(bytes.try_into().map_err(|_| named("the {SHA} hash is not 20 bytes of base64"))?)
    } else if let Some(rest) = hash.strip_prefix("$apr1$") {
        let (salt, digest) = rest.split_once('$').ok_or_else(|| named("the apr1 hash has no salt"))?;
        let ok_salt = salt.len() <= 8 && salt.bytes().all(is_crypt64);
        if !ok_salt || digest.len() != 22 || !digest.bytes().all(is_crypt64) {
            return Err(named("the apr1 hash is malformed ($apr1$salt$22 characters)"));
        }
        Hash::Apr1 { salt: salt.to_string(), digest: digest.to_string() }
    } else if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
        hash.parse::<bcrypt::HashParts>().map_err(|_| named("the bcrypt hash is malformed"))?;
        Hash::Bcrypt(hash.to_string())
    } else {
        return Err(named(BAD_FORMAT));
    };
    Ok((user.to_string(), parsed))
}

const CRYPT64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn is_crypt64(b: u8) -> bool {
    CRYPT64.contains(&b)
}

/// Apache's apr1 (Poul-Henning Kamp's MD5-crypt with the magic `$apr1$`): the 22-character
/// encoded digest of `password` under `salt`.
fn apr1_digest(password: &[u8], salt: &[u8]) -> String {
    const MAGIC: &[u8] = b"$apr1$";
    let mut alt = Md5::new();
    alt.update(password);
    alt.update(salt);
    alt.update(password);
    let alt = alt.finalize();
    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(MAGIC);
    ctx.update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alt[..n]);
        left -= n;
    }
    let mut bits = password.len();
    while bits > 0 {
        if bits & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        bits >>= 1;
    }
    let mut fin = ctx.finalize();
    for i in 0..1000 {
        let mut round = Md5::new();
        if i & 1 == 1 {
            round.update(password);
        } else {
            round.update(fin);
        }
        if i % 3 != 0 {
            round.update(salt);
        }
        if i % 7 != 0 {
            round.update(password);
        }
        if i & 1 == 1 {
            round.update(fin);
        } else {
            round.update(password);
        }
        fin = round.finalize();
    }
    let mut out = String::with_capacity(22);
    let mut put = |v: u32, n: usize| {
        let mut v = v;
        for _ in 0..n {
            out.push(CRYPT64[(v & 0x3f) as usize] as char);
            v >>= 6;
        }
    };
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        put((u32::from(fin[a]) << 16) | (u32::from(fin[b]) << 8) | u32::from(fin[c]), 4);
    }
    put(u32::from(fin[11]), 2);
    out
}
