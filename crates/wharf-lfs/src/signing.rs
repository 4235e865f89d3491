//! Signed transfer URLs. A signature binds the operation, repository, object id, size and
//! expiry; it is an HMAC-SHA256 under the server's secret and is compared in constant time.

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

/// Signs and checks transfer URLs with one server secret.
#[derive(Clone)]
pub struct Signer {
    secret: Vec<u8>,
}

impl Signer {
    pub fn new(secret: &[u8]) -> Signer {
        Signer { secret: secret.to_vec() }
    }

    fn mac(&self, kind: TransferKind, repo_id: i64, oid: &str, size: u64, expires: i64) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret).expect("HMAC accepts keys of any length");
        mac.update(format!("{}\n{repo_id}\n{oid}\n{size}\n{expires}", kind.as_str()).as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Hex signature for these parameters.
    pub fn sign(&self, kind: TransferKind, repo_id: i64, oid: &str, size: u64, expires: i64) -> String {
        hex::encode(self.mac(kind, repo_id, oid, size, expires))
    }

    /// True when `sig` is valid for these parameters and `expires` (epoch seconds) is not past `now`.
    pub fn verify(&self, kind: TransferKind, repo_id: i64, oid: &str, size: u64, expires: i64, now: i64, sig: &str) -> bool {
        if expires < now {
            return false;
        }
        let Ok(given) = hex::decode(sig) else { return false };
        let expected = self.mac(kind, repo_id, oid, size, expires);
        given.len() == expected.len() && bool::from(given.ct_eq(&expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let s = Signer::new(b"secret");
        let sig = s.sign(TransferKind::Upload, 7, "ab", 10, 1000);
        assert!(s.verify(TransferKind::Upload, 7, "ab", 10, 1000, 999, &sig));
        assert!(!s.verify(TransferKind::Upload, 7, "ab", 10, 1000, 1001, &sig), "expired");
        assert!(!s.verify(TransferKind::Download, 7, "ab", 10, 1000, 999, &sig), "other kind");
        assert!(!s.verify(TransferKind::Upload, 8, "ab", 10, 1000, 999, &sig), "other repo");
        assert!(!s.verify(TransferKind::Upload, 7, "ab", 11, 1000, 999, &sig), "other size");
        assert!(!s.verify(TransferKind::Upload, 7, "ab", 10, 1000, 999, "zz"), "garbage");
        assert!(!Signer::new(b"other").verify(TransferKind::Upload, 7, "ab", 10, 1000, 999, &sig));
    }
}
