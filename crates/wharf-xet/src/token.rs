//! Xet access tokens and signed fetch URLs (§3.1, §3.7 of `docs/xet.md`).
//!
//! Token wire form: `wx1.{base64url(claims as compact JSON)}.{hex HMAC-SHA256}`, where the MAC
//! covers `wx1.{payload}` and its key is `HMAC-SHA256(server secret, "wharf xet token v1")`.
//! Tokens are stateless: verified on every CAS call, valid until `exp`. Fetch URLs carry
//! `HMAC-SHA256(HMAC(secret, "wharf xet fetch v1"), "{xorb}\n{first}\n{last}\n{exp}")`; the
//! derived keys keep both apart from each other and from the LFS transfer signatures, which use
//! the raw secret. All comparisons are constant-time, and a token's MAC is checked before its
//! payload is decoded.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::{Result, XetError};
use crate::hash::XetHash;
use crate::limits::MAX_TOKEN_BYTES;

const TOKEN_PREFIX: &str = "wx1.";
const TOKEN_KEY_LABEL: &[u8] = b"wharf xet token v1";
const FETCH_KEY_LABEL: &[u8] = b"wharf xet fetch v1";

/// What a token allows. `Write` includes `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    /// Whether a token with this scope may do something that needs `need`.
    pub fn allows(self, need: Scope) -> bool {
        matches!((self, need), (Scope::Write, _) | (Scope::Read, Scope::Read))
    }
}

/// The signed content of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    pub scope: Scope,
    /// The repository the token is bound to: uploads are linked to it, reads limited to it.
    pub repo_id: i64,
    /// The user it was issued to (`None`: anonymous read of a public repository).
    pub user_id: Option<i64>,
    /// The hub token the user presented when asking for it: revoking that token stops this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<i64>,
    /// The revision it was issued for (informational).
    pub rev: String,
    /// Expiry, epoch seconds; the token is refused once `now > exp`.
    pub exp: i64,
}

impl TokenClaims {
    /// `Ok` when the scope covers `need`, else `ReadOnlyToken` (403).
    pub fn require(&self, need: Scope) -> Result<()> {
        if self.scope.allows(need) {
            Ok(())
        } else {
            Err(XetError::ReadOnlyToken)
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m =
        <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Constant-time check of a hex MAC given by a client.
fn hex_mac_matches(given_hex: &str, expected: &[u8; 32]) -> bool {
    let mut given = [0u8; 32];
    if given_hex.len() != 64 || hex::decode_to_slice(given_hex, &mut given).is_err() {
        return false;
    }
    bool::from(given.ct_eq(expected))
}

/// Issues and checks Xet tokens and fetch-URL signatures with keys derived from the server
/// secret (`secret.key`).
#[derive(Clone)]
pub struct XetTokenSigner {
    token_key: [u8; 32],
    fetch_key: [u8; 32],
}

impl std::fmt::Debug for XetTokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("XetTokenSigner { .. }")
    }
}

impl XetTokenSigner {
    pub fn new(secret: &[u8]) -> XetTokenSigner {
        XetTokenSigner {
            token_key: mac(secret, &[TOKEN_KEY_LABEL]),
            fetch_key: mac(secret, &[FETCH_KEY_LABEL]),
        }
    }

    /// The token string for `claims`.
    pub fn issue(&self, claims: &TokenClaims) -> Result<String> {
        let json = serde_json::to_vec(claims)
            .map_err(|e| XetError::Internal(format!("cannot encode token claims: {e}")))?;
        let payload = URL_SAFE_NO_PAD.encode(json);
        let sig = mac(
            &self.token_key,
            &[TOKEN_PREFIX.as_bytes(), payload.as_bytes()],
        );
        Ok(format!("{TOKEN_PREFIX}{payload}.{}", hex::encode(sig)))
    }

    /// The claims of a genuine, unexpired token (`now` in epoch seconds). Every failure is
    /// `InvalidToken` (401), so the client refreshes its token.
    pub fn verify(&self, token: &str, now: i64) -> Result<TokenClaims> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(XetError::InvalidToken);
        }
        let rest = token
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(XetError::InvalidToken)?;
        let (payload, sig) = rest.rsplit_once('.').ok_or(XetError::InvalidToken)?;
        let expected = mac(
            &self.token_key,
            &[TOKEN_PREFIX.as_bytes(), payload.as_bytes()],
        );
        if !hex_mac_matches(sig, &expected) {
            return Err(XetError::InvalidToken);
        }
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| XetError::InvalidToken)?;
        let claims: TokenClaims =
            serde_json::from_slice(&json).map_err(|_| XetError::InvalidToken)?;
        if now > claims.exp {
            return Err(XetError::InvalidToken);
        }
        Ok(claims)
    }

    /// Hex signature of a fetch URL for bytes `first..=last` of `xorb`, valid until `exp`.
    /// `binding` names who may use it (opaque here: the hub re-checks it on every fetch).
    pub fn fetch_sig(
        &self,
        xorb: &XetHash,
        first: u64,
        last: u64,
        exp: i64,
        binding: &str,
    ) -> String {
        hex::encode(self.fetch_mac(xorb, first, last, exp, binding))
    }

    /// Whether `sig` signs exactly this xorb, range, expiry and binding, and `now ≤ exp`.
    #[expect(
        clippy::too_many_arguments,
        reason = "every signed field of a fetch URL"
    )]
    pub fn verify_fetch(
        &self,
        xorb: &XetHash,
        first: u64,
        last: u64,
        exp: i64,
        binding: &str,
        sig: &str,
        now: i64,
    ) -> bool {
        if now > exp {
            return false;
        }
        hex_mac_matches(sig, &self.fetch_mac(xorb, first, last, exp, binding))
    }

    fn fetch_mac(
        &self,
        xorb: &XetHash,
        first: u64,
        last: u64,
        exp: i64,
        binding: &str,
    ) -> [u8; 32] {
        let msg = format!("{xorb}\n{first}\n{last}\n{exp}\n{binding}");
        mac(&self.fetch_key, &[msg.as_bytes()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(scope: Scope) -> TokenClaims {
        TokenClaims {
            scope,
            repo_id: 42,
            user_id: Some(7),
            token_id: Some(3),
            rev: "main".into(),
            exp: 1_000,
        }
    }

    #[test]
    fn issue_and_verify() {
        let s = XetTokenSigner::new(b"secret");
        let t = s.issue(&claims(Scope::Write)).expect("issue");
        assert!(t.starts_with("wx1."));
        assert!(t.len() < 300, "fits comfortably in a header: {}", t.len());
        assert_eq!(s.verify(&t, 999).expect("valid"), claims(Scope::Write));
        assert_eq!(
            s.verify(&t, 1_000).expect("valid at exp"),
            claims(Scope::Write)
        );
        let anon = TokenClaims {
            user_id: None,
            token_id: None,
            ..claims(Scope::Read)
        };
        let t = s.issue(&anon).expect("issue");
        assert_eq!(s.verify(&t, 0).expect("valid"), anon);
    }

    #[test]
    fn expiry() {
        let s = XetTokenSigner::new(b"secret");
        let t = s.issue(&claims(Scope::Read)).expect("issue");
        assert_eq!(s.verify(&t, 1_001), Err(XetError::InvalidToken));
    }

    #[test]
    fn tampering_is_refused() {
        let s = XetTokenSigner::new(b"secret");
        let t = s.issue(&claims(Scope::Read)).expect("issue");
        // Another secret.
        assert!(XetTokenSigner::new(b"other").verify(&t, 0).is_err());
        // Claims swapped for write scope / later expiry / another repo, old signature kept.
        let sig = t.rsplit_once('.').expect("dot").1;
        for forged in [
            claims(Scope::Write),
            TokenClaims {
                exp: i64::MAX,
                ..claims(Scope::Read)
            },
            TokenClaims {
                repo_id: 43,
                ..claims(Scope::Read)
            },
        ] {
            let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"));
            let forged = format!("wx1.{payload}.{sig}");
            assert_eq!(s.verify(&forged, 0), Err(XetError::InvalidToken));
        }
        // Every single-character change is refused.
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(b).expect("ascii");
            if changed != t {
                assert!(s.verify(&changed, 0).is_err(), "position {i}");
            }
        }
        // Garbage and oversized input.
        for bad in [
            "",
            "wx1.",
            "wx1..",
            "hf_abc",
            "wx1.e30.00",
            "Bearer wx1.x.y",
        ] {
            assert_eq!(s.verify(bad, 0), Err(XetError::InvalidToken), "{bad:?}");
        }
        assert!(
            s.verify(&format!("wx1.{}.00", "A".repeat(10_000)), 0)
                .is_err()
        );
        // A correctly signed payload that is not our claims shape.
        let payload = URL_SAFE_NO_PAD.encode(br#"{"scope":"admin"}"#);
        let sig = hex::encode(mac(&s.token_key, &[b"wx1.", payload.as_bytes()]));
        assert!(s.verify(&format!("wx1.{payload}.{sig}"), 0).is_err());
    }

    #[test]
    fn scope() {
        assert!(Scope::Write.allows(Scope::Read));
        assert!(Scope::Write.allows(Scope::Write));
        assert!(Scope::Read.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Write));
        assert_eq!(
            claims(Scope::Read).require(Scope::Write),
            Err(XetError::ReadOnlyToken)
        );
        assert!(claims(Scope::Write).require(Scope::Write).is_ok());
        assert!(claims(Scope::Read).require(Scope::Read).is_ok());
    }

    #[test]
    fn fetch_signatures() {
        let s = XetTokenSigner::new(b"secret");
        let x = XetHash::parse("5d8d74fff21a49bf3e66d5854e81bd6c2efea4e757846885a66a7666e038733f")
            .expect("hash");
        let y = XetHash::default();
        let sig = s.fetch_sig(&x, 0, 99, 500, "b");
        assert!(s.verify_fetch(&x, 0, 99, 500, "b", &sig, 500));
        assert!(!s.verify_fetch(&x, 0, 99, 500, "b", &sig, 501), "expired");
        assert!(
            !s.verify_fetch(&x, 0, 100, 500, "b", &sig, 0),
            "other range"
        );
        assert!(!s.verify_fetch(&x, 1, 99, 500, "b", &sig, 0), "other range");
        assert!(
            !s.verify_fetch(&x, 0, 99, 501, "b", &sig, 0),
            "other expiry"
        );
        assert!(
            !s.verify_fetch(&x, 0, 99, 500, "c", &sig, 0),
            "other binding"
        );
        assert!(!s.verify_fetch(&y, 0, 99, 500, "b", &sig, 0), "other xorb");
        assert!(!s.verify_fetch(&x, 0, 99, 500, "b", "zz", 0), "garbage");
        assert!(!XetTokenSigner::new(b"other").verify_fetch(&x, 0, 99, 500, "b", &sig, 0));
        // Token and fetch keys are separate: a fetch signature is not a token MAC and vice versa.
        assert_ne!(s.token_key, s.fetch_key);
    }
}
