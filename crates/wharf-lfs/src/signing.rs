//! Signed transfer URLs. A signature binds the operation, repository, object id, size, expiry
//! and the principal the URL was issued to (so that its use can be re-checked against that
//! principal's access); it is an HMAC-SHA256 under the server's secret and is compared in
//! constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// What a signed URL allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferKind {
    Upload,
    Download,
}

impl TransferKind {
    fn as_str(self) -> &'static str {
        match self {
            TransferKind::Upload => "upload",
            TransferKind::Download => "download",
        }
    }
}

/// What one signed URL grants.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    pub kind: TransferKind,
    pub repo_id: i64,
    pub oid: &'a str,
    pub size: u64,
    /// Epoch seconds after which the URL is refused.
    pub expires: i64,
    /// Who the URL was issued to, in the hub's compact form (opaque here).
    pub principal: &'a str,
}

/// Signs and checks transfer URLs with one server secret.
#[derive(Clone)]
pub struct Signer {
    secret: Vec<u8>,
}

impl Signer {
    pub fn new(secret: &[u8]) -> Signer {
        Signer {
            secret: secret.to_vec(),
        }
    }

    fn mac(&self, g: &Grant<'_>) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .expect("HMAC accepts keys of any length");
        mac.update(
            format!(
                "{}\n{}\n{}\n{}\n{}\n{}",
                g.kind.as_str(),
                g.repo_id,
                g.oid,
                g.size,
                g.expires,
                g.principal
            )
            .as_bytes(),
        );
        mac.finalize().into_bytes().to_vec()
    }

    /// Hex signature for this grant.
    pub fn sign(&self, grant: &Grant<'_>) -> String {
        hex::encode(self.mac(grant))
    }

    /// True when `sig` is valid for this grant and it has not expired at `now` (epoch seconds).
    pub fn verify(&self, grant: &Grant<'_>, now: i64, sig: &str) -> bool {
        if grant.expires < now {
            return false;
        }
        let Ok(given) = hex::decode(sig) else {
            return false;
        };
        let expected = self.mac(grant);
        given.len() == expected.len() && bool::from(given.ct_eq(&expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let s = Signer::new(b"secret");
        let g = Grant {
            kind: TransferKind::Upload,
            repo_id: 7,
            oid: "ab",
            size: 10,
            expires: 1000,
            principal: "3.-",
        };
        let sig = s.sign(&g);
        assert!(s.verify(&g, 999, &sig));
        assert!(!s.verify(&g, 1001, &sig), "expired");
        assert!(
            !s.verify(
                &Grant {
                    kind: TransferKind::Download,
                    ..g
                },
                999,
                &sig
            ),
            "other kind"
        );
        assert!(
            !s.verify(&Grant { repo_id: 8, ..g }, 999, &sig),
            "other repo"
        );
        assert!(!s.verify(&Grant { size: 11, ..g }, 999, &sig), "other size");
        assert!(
            !s.verify(
                &Grant {
                    principal: "4.-",
                    ..g
                },
                999,
                &sig
            ),
            "other principal"
        );
        assert!(!s.verify(&g, 999, "zz"), "garbage");
        assert!(!Signer::new(b"other").verify(&g, 999, &sig));
    }
}
