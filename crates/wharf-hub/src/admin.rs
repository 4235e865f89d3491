//! Accounts, organizations and tokens: what the `wharf user|org|token` commands and
//! `whoami-v2` do.

use crate::access::hash_token;
use crate::{Caller, Hub};
use wharf_core::{Error, Result, Role, time::now_ms, validate_namespace};
use wharf_meta::{Account, AccountKind, NewAccount, NewToken};

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub email: String,
    pub fullname: Option<String>,
    pub password: Option<String>,
    pub admin: bool,
}

/// What `whoami-v2` reports.
#[derive(Debug, Clone)]
pub struct WhoAmI {
    pub user: Account,
    pub orgs: Vec<(Account, Role)>,
    pub token_role: Role,
    pub token_label: String,
}

/// A token in the Hub's shape: `hf_` and 34 letters.
fn generate_token() -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut raw = [0u8; 34];
    getrandom::fill(&mut raw).map_err(Error::internal)?;
    // 256 is a multiple of 52 minus 48, so drop the biased top values by re-drawing them.
    let mut out = String::from("hf_");
    for mut b in raw {
        while b >= 208 {
            let mut one = [0u8; 1];
            getrandom::fill(&mut one).map_err(Error::internal)?;
            b = one[0];
        }
        out.push(ALPHABET[(b % 52) as usize] as char);
    }
    Ok(out)
}

fn valid_imported_token(value: &str) -> bool {
    value.len() >= 8 && value.len() <= 256 && value.bytes().all(|b| b.is_ascii_graphic())
}

impl Hub {
    pub async fn add_user(&self, new: NewUser) -> Result<Account> {
        validate_namespace(&new.name)?;
        crate::sessions::check_not_reserved(&new.name)?;
        let password_hash = match new.password {
            Some(p) => Some(self.hash_new_password(&p).await?),
            None => None,
        };
        self.meta
            .create_account(NewAccount {
                fullname: new.fullname.unwrap_or_else(|| new.name.clone()),
                name: new.name,
                kind: AccountKind::User,
                email: Some(new.email),
                password_hash,
                is_admin: new.admin,
                created_at: now_ms(),
            })
            .await
    }

    pub async fn add_org(
        &self,
        name: &str,
        owner: &str,
        fullname: Option<String>,
    ) -> Result<Account> {
        validate_namespace(name)?;
        crate::sessions::check_not_reserved(name)?;
        let owner = self.user_by_name(owner).await?;
        let org = self
            .meta
            .create_account(NewAccount {
                name: name.to_string(),
                kind: AccountKind::Org,
                fullname: fullname.unwrap_or_else(|| name.to_string()),
                email: None,
                password_hash: None,
                is_admin: false,
                created_at: now_ms(),
            })
            .await?;
        self.meta
            .set_membership(org.id, owner.id, Role::Admin)
            .await?;
        Ok(org)
    }

    pub async fn set_org_member(&self, org: &str, user: &str, role: Role) -> Result<()> {
        let org = self
            .meta
            .account_by_name(org)
            .await?
            .filter(|a| a.kind == AccountKind::Org);
        let org = org.ok_or_else(|| Error::bad_request("No such organization"))?;
        let user = self.user_by_name(user).await?;
        self.meta.set_membership(org.id, user.id, role).await
    }

    /// Creates a token (or imports `value`) and returns its clear value; only its hash is stored.
    pub async fn add_token(
        &self,
        user: &str,
        role: Role,
        label: Option<String>,
        value: Option<String>,
    ) -> Result<String> {
        let user = self.user_by_name(user).await?;
        let token = match value {
            Some(v) if valid_imported_token(&v) => v,
            Some(_) => {
                return Err(Error::bad_request(
                    "An imported token must be 8 to 256 printable characters",
                ));
            }
            None => generate_token()?,
        };
        let label = label.unwrap_or_else(|| format!("{}-{}", user.name, role.as_str()));
        let new = NewToken {
            user_id: user.id,
            token_hash: hash_token(&token),
            role,
            label,
            created_at: now_ms(),
        };
        self.meta.create_token(new).await?;
        Ok(token)
    }

    pub async fn revoke_token(&self, token: &str) -> Result<bool> {
        self.meta.revoke_token(&hash_token(token)).await
    }

    async fn user_by_name(&self, name: &str) -> Result<Account> {
        let account = self
            .meta
            .account_by_name(name)
            .await?
            .filter(|a| a.kind == AccountKind::User);
        account.ok_or_else(|| Error::bad_request(format!("No such user '{name}'")))
    }

    /// `whoami-v2`: needs an authenticated caller.
    pub fn whoami(&self, caller: &Caller) -> Result<WhoAmI> {
        let user = caller
            .user
            .clone()
            .ok_or_else(|| Error::unauthorized("Invalid credentials in Authorization header"))?;
        Ok(WhoAmI {
            user,
            orgs: caller.orgs.clone(),
            token_role: caller.scope.unwrap_or(Role::Read),
            token_label: caller.token_label.clone().unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_look_like_the_hubs() {
        let t = generate_token().expect("token");
        assert_eq!(t.len(), 37);
        assert!(t.starts_with("hf_") && t[3..].bytes().all(|b| b.is_ascii_alphabetic()));
    }
}
