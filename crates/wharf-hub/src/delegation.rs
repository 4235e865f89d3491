//! Credentials one request hands to later ones: signed LFS transfer URLs, Xet tokens and Xet
//! fetch URLs. Each names who it was issued to (the user and the hub token of the request that
//! minted it), and every use takes the access decision again for that principal as things
//! stand now. Making a repository private, deleting it, removing a member from an organization
//! or revoking the token stops such a credential at once, not when it expires.

use crate::Hub;
use crate::access::{Caller, Need};
use wharf_core::{Result, Role};
use wharf_meta::Repo;

/// Who a delegated credential was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Principal {
    /// `None`: an anonymous caller (public repositories only).
    pub user_id: Option<i64>,
    /// The hub token the minting request presented (`None` for a password or a web session).
    pub token_id: Option<i64>,
}

impl Principal {
    /// A compact form for URLs and signatures: `{user}.{token}`, `-` for none.
    pub fn encode(&self) -> String {
        let part = |v: Option<i64>| v.map_or_else(|| "-".to_string(), |n| n.to_string());
        format!("{}.{}", part(self.user_id), part(self.token_id))
    }

    /// Parses [`encode`](Principal::encode)'s form; `None` for anything else.
    pub fn decode(s: &str) -> Option<Principal> {
        let (user, token) = s.split_once('.')?;
        let part = |p: &str| -> Option<Option<i64>> {
            if p == "-" {
                Some(None)
            } else {
                p.parse::<i64>().ok().filter(|n| *n > 0).map(Some)
            }
        };
        Some(Principal {
            user_id: part(user)?,
            token_id: part(token)?,
        })
    }
}

impl Caller {
    /// The principal a credential minted for this caller names.
    pub(crate) fn principal(&self) -> Principal {
        Principal {
            user_id: self.user.as_ref().map(|u| u.id),
            token_id: self.token_id,
        }
    }
}

impl Hub {
    /// The caller a delegated credential stands for, as of now, with at most `scope`. `None`
    /// when the user is gone or the token was revoked (or belongs to someone else).
    pub(crate) async fn delegated_caller(
        &self,
        principal: Principal,
        scope: Role,
    ) -> Result<Option<Caller>> {
        let Some(user_id) = principal.user_id else {
            return Ok(Some(Caller::anonymous()));
        };
        let Some(user) = self.meta.account_by_id(user_id).await? else {
            return Ok(None);
        };
        let mut scope = scope;
        if let Some(token_id) = principal.token_id {
            match self.meta.live_token(token_id).await? {
                Some(token) if token.user_id == user_id => scope = scope.min(token.role),
                _ => return Ok(None),
            }
        }
        let orgs = self.meta.orgs_of_user(user_id).await?;
        Ok(Some(Caller {
            user: Some(user),
            scope: Some(scope),
            token_label: None,
            token_id: principal.token_id,
            orgs,
        }))
    }

    /// Takes the access decision again for a delegated credential: the repository still exists
    /// and the principal may still do `need` to it. `None` on any refusal, which the caller
    /// reports the way its protocol expects (an expired URL, an invalid token).
    pub(crate) async fn recheck_delegation(
        &self,
        principal: Principal,
        repo_id: i64,
        need: Need,
    ) -> Result<Option<(Caller, Repo)>> {
        let scope = match need {
            Need::Read | Need::Download => Role::Read,
            Need::Write => Role::Write,
            Need::Admin => Role::Admin,
        };
        let Some(repo) = self.meta.repo_by_id(repo_id).await? else {
            return Ok(None);
        };
        let Some(caller) = self.delegated_caller(principal, scope).await? else {
            return Ok(None);
        };
        match self.authorize(&caller, &repo, need).await {
            Ok(()) => Ok(Some((caller, repo))),
            Err(e) if e.kind == wharf_core::ErrorKind::Internal => Err(e),
            Err(_) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_round_trip() {
        for p in [
            Principal::default(),
            Principal {
                user_id: Some(7),
                token_id: None,
            },
            Principal {
                user_id: Some(7),
                token_id: Some(12),
            },
        ] {
            assert_eq!(Principal::decode(&p.encode()), Some(p));
        }
        for bad in ["", "7", "x.1", "1.y", "0.1", "-1.-", "1.2.3", " 1.2"] {
            assert_eq!(Principal::decode(bad), None, "{bad:?}");
        }
    }
}
