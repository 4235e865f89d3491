//! The web interface's accounts side: signing up, logging in and out with browser sessions,
//! CSRF tokens for forms, managing one's own API tokens, and public account pages.
//!
//! A session value is 64 random hex digits; like API tokens only its SHA-256 is stored, and it
//! lasts [`SESSION_LIFETIME_MS`]. A session authenticates as the password does: scope `Write`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use wharf_core::{Error, ErrorKind, Result, Role, time::now_ms, validate_namespace};
use wharf_meta::{Account, AccountKind, NewAccount, NewSession, Token};

use crate::access::hash_token;
use crate::{Caller, Hub};

/// How long a browser session stays valid: 30 days.
pub const SESSION_LIFETIME_MS: i64 = 30 * 24 * 3600 * 1000;

/// Names that would collide with the web interface's own routes.
const RESERVED_NAMES: &[&str] = &[
    "models",
    "datasets",
    "spaces",
    "new",
    "login",
    "join",
    "logout",
    "settings",
    "api",
    "static",
    "docs",
    "search",
    "organizations",
];

const MIN_PASSWORD_CHARS: usize = 8;
/// Argon2 takes any length, but nobody needs more and hashing time grows with it.
const MAX_PASSWORD_BYTES: usize = 1024;
const MAX_EMAIL_BYTES: usize = 254;
const MAX_TOKEN_LABEL_CHARS: usize = 100;

/// A token just made by [`Hub::create_token_for`]: its value (shown once, never stored in
/// clear) and the label it was stored under.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    pub value: String,
    pub label: String,
}

/// The label a new token is stored under: `label` trimmed, at most 100 characters (not
/// bytes), `{user}-{role}` when empty. The one rule for every surface that names tokens.
fn token_label(user: &str, role: Role, label: &str) -> Result<String> {
    let label = label.trim();
    if label.chars().count() > MAX_TOKEN_LABEL_CHARS {
        return Err(Error::bad_request(format!(
            "A token name has at most {MAX_TOKEN_LABEL_CHARS} characters"
        )));
    }
    if label.is_empty() {
        return Ok(format!("{user}-{}", role.as_str()));
    }
    Ok(label.to_string())
}

fn invalid_login() -> Error {
    Error::unauthorized("Invalid username or password")
}

/// 32 random bytes as 64 hex digits.
fn new_session_value() -> Result<String> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(Error::internal)?;
    Ok(hex::encode(raw))
}

fn is_session_shaped(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Refuses names the web interface needs for itself (case-insensitively).
pub(crate) fn check_not_reserved(name: &str) -> Result<()> {
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(Error::bad_request(format!("The name '{name}' is reserved")));
    }
    Ok(())
}

fn check_email(email: &str) -> Result<()> {
    let ok = email.len() <= MAX_EMAIL_BYTES
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request("Please enter a valid e-mail address"))
    }
}

fn check_new_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::bad_request(format!(
            "The password must be at least {MIN_PASSWORD_CHARS} characters long"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::bad_request("The password is too long"));
    }
    Ok(())
}

/// An account as shown to others: without its password hash.
fn public(mut account: Account) -> Account {
    account.password_hash = None;
    account
}

fn signed_in_user(caller: &Caller) -> Result<&Account> {
    caller
        .user
        .as_ref()
        .ok_or_else(|| Error::unauthorized("You must be logged in to do this"))
}

fn check_may_manage_tokens(caller: &Caller) -> Result<&Account> {
    let user = signed_in_user(caller)?;
    if !caller.may_write() {
        return Err(Error::forbidden(
            "This token has read access only; a write token is needed",
        ));
    }
    Ok(user)
}

impl Hub {
    /// Creates a user account from the sign-up form and logs it in: returns a new session
    /// value. The name follows the namespace rules and may not be one of the web interface's
    /// reserved words; the e-mail must contain an `@` and not belong to another user; the
    /// password has at least 8 characters. `Conflict` when the name or e-mail is taken.
    pub async fn sign_up(&self, name: &str, email: &str, password: &str) -> Result<String> {
        validate_namespace(name)?;
        check_not_reserved(name)?;
        let email = email.trim();
        check_email(email)?;
        check_new_password(password)?;
        if self.meta.account_by_name(name).await?.is_some() {
            return Err(Error::conflict(format!(
                "The name '{name}' is already taken"
            )));
        }
        if self.meta.user_by_email(email).await?.is_some() {
            return Err(Error::conflict(
                "An account with this e-mail address already exists",
            ));
        }
        let password_hash = self.hash_new_password(password).await?;
        let account = self
            .meta
            .create_account(NewAccount {
                name: name.to_string(),
                kind: AccountKind::User,
                fullname: name.to_string(),
                email: Some(email.to_string()),
                password_hash: Some(password_hash),
                is_admin: false,
                created_at: now_ms(),
            })
            .await?;
        self.start_session(account.id).await
    }

    /// Logs in with a user name or e-mail address and the password, from address `origin`;
    /// returns a new session value. Every failure is the same `Unauthorized` "Invalid username
    /// or password", and takes about the same time; too many failures for the address or the
    /// account are refused (`TooManyRequests`) before the password is looked at.
    pub async fn log_in(
        &self,
        name_or_email: &str,
        password: &str,
        origin: &str,
    ) -> Result<String> {
        let key = name_or_email.trim();
        self.rate_limiter.check_sign_in(origin, Some(key))?;
        let account = if key.contains('@') {
            self.meta.user_by_email(key).await?
        } else {
            self.meta
                .account_by_name(key)
                .await?
                .filter(|a| a.kind == AccountKind::User)
        };
        // Failures count against the account whichever of its name or e-mail was typed.
        let counted = account.as_ref().map_or(key, |a| a.name.as_str());
        self.rate_limiter.check_sign_in(origin, Some(counted))?;
        let hash = account.as_ref().and_then(|a| a.password_hash.clone());
        let ok = self.password_matches(hash, password).await?;
        match account {
            Some(account) if ok => self.start_session(account.id).await,
            _ => {
                self.rate_limiter.sign_in_failed(origin, Some(counted));
                Err(invalid_login())
            }
        }
    }

    async fn start_session(&self, user_id: i64) -> Result<String> {
        let now = now_ms();
        // Housekeeping: log-ins are rare enough to carry it.
        self.meta.delete_expired_sessions(now).await?;
        let value = new_session_value()?;
        self.meta
            .create_session(NewSession {
                user_id,
                session_hash: hash_token(&value),
                created_at: now,
                expires_at: now.saturating_add(SESSION_LIFETIME_MS),
            })
            .await?;
        Ok(value)
    }

    /// Ends a session. Unknown or expired sessions are fine: the result is the same.
    pub async fn log_out(&self, session: &str) -> Result<()> {
        if is_session_shaped(session) {
            self.meta.delete_session(&hash_token(session)).await?;
        }
        Ok(())
    }

    /// The caller behind a live session: its user with scope `Write` and organizations filled.
    /// `Unauthorized` when the session is unknown or expired.
    pub async fn session_caller(&self, session: &str) -> Result<Caller> {
        let expired = || {
            Error::new(
                ErrorKind::Unauthorized,
                "Your session has expired; please log in again",
            )
        };
        if !is_session_shaped(session) {
            return Err(expired());
        }
        let Some((_, user)) = self
            .meta
            .session_by_hash(&hash_token(session), now_ms())
            .await?
        else {
            return Err(expired());
        };
        let orgs = self.meta.orgs_of_user(user.id).await?;
        Ok(Caller {
            user: Some(user),
            scope: Some(Role::Write),
            token_label: None,
            token_id: None,
            orgs,
        })
    }

    fn csrf_mac(&self, session: &str) -> Option<Vec<u8>> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret).ok()?;
        mac.update(b"csrf\n");
        mac.update(session.as_bytes());
        Some(mac.finalize().into_bytes().to_vec())
    }

    /// The CSRF token for forms of this session: HMAC-SHA256 under the server secret of
    /// `"csrf\n" + session`, in hex.
    pub fn csrf_token(&self, session: &str) -> String {
        self.csrf_mac(session).map(hex::encode).unwrap_or_default()
    }

    /// Whether `given` is this session's CSRF token (compared in constant time).
    pub fn check_csrf(&self, session: &str, given: &str) -> bool {
        let (Some(expected), Ok(given)) = (self.csrf_mac(session), hex::decode(given.trim()))
        else {
            return false;
        };
        !given.is_empty() && given.len() == expected.len() && bool::from(given.ct_eq(&expected))
    }

    /// The caller's own live API tokens, newest first (values are never stored, so not shown).
    pub async fn list_tokens(&self, caller: &Caller) -> Result<Vec<Token>> {
        let user = signed_in_user(caller)?;
        self.meta.tokens_of_user(user.id).await
    }

    /// Creates an API token for the caller and returns its value, which is shown only once, with
    /// the label it was stored under. `role` is `Read` or `Write`; the label is trimmed, has at
    /// most 100 characters, and an empty one gets a default (`{user}-{role}`).
    pub async fn create_token_for(
        &self,
        caller: &Caller,
        role: Role,
        label: &str,
    ) -> Result<CreatedToken> {
        let user = check_may_manage_tokens(caller)?;
        if role == Role::Admin {
            return Err(Error::bad_request(
                "A token's role is either 'read' or 'write'",
            ));
        }
        let label = token_label(&user.name, role, label)?;
        let value = self
            .add_token(&user.name, role, Some(label.clone()), None)
            .await?;
        Ok(CreatedToken { value, label })
    }

    /// Revokes one of the caller's own tokens by id; `NotFound` for anyone else's, or an
    /// unknown or already revoked one.
    pub async fn revoke_token_id(&self, caller: &Caller, token_id: i64) -> Result<()> {
        let user = check_may_manage_tokens(caller)?;
        if self.meta.revoke_token_of_user(user.id, token_id).await? {
            Ok(())
        } else {
            Err(Error::new(ErrorKind::NotFound, "Token not found"))
        }
    }

    /// A user or organization by name (case-insensitive), without its password hash.
    pub async fn account(&self, name: &str) -> Result<Option<Account>> {
        Ok(self.meta.account_by_name(name).await?.map(public))
    }

    /// The members of an organization with their roles, ordered by name (without password
    /// hashes). `NotFound` when there is no such organization.
    pub async fn org_members(&self, org: &str) -> Result<Vec<(Account, Role)>> {
        let org = self
            .meta
            .account_by_name(org)
            .await?
            .filter(|a| a.kind == AccountKind::Org)
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "Organization not found"))?;
        let members = self.meta.org_members(org.id).await?;
        Ok(members.into_iter().map(|(a, r)| (public(a), r)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::test_support::{hub, user_caller};

    #[tokio::test]
    async fn sign_up_log_in_and_out() {
        let (_dir, hub) = hub().await;
        let session = hub
            .sign_up("alice", " alice@example.com ", "long-password")
            .await
            .expect("sign up");
        let caller = hub.session_caller(&session).await.expect("caller");
        assert_eq!(caller.name(), Some("alice"));
        assert_eq!(caller.scope, Some(Role::Write));
        let account = caller.user.as_ref().expect("user");
        assert_eq!(account.email.as_deref(), Some("alice@example.com"));

        // Name or e-mail, any case for both.
        let by_name = hub
            .log_in("ALICE", "long-password", "test")
            .await
            .expect("by name");
        let by_email = hub
            .log_in("Alice@Example.com", "long-password", "test")
            .await
            .expect("by email");
        assert_ne!(by_name, by_email);
        assert!(hub.session_caller(&by_email).await.is_ok());

        for (who, pw) in [
            ("alice", "wrong-password"),
            ("nobody", "long-password"),
            ("nobody@example.com", "long-password"),
            ("", ""),
        ] {
            let e = hub.log_in(who, pw, "test").await.expect_err("bad log-in");
            assert_eq!(e.kind, ErrorKind::Unauthorized);
            assert_eq!(e.message, "Invalid username or password");
        }

        hub.log_out(&session).await.expect("log out");
        let e = hub.session_caller(&session).await.expect_err("ended");
        assert_eq!(e.kind, ErrorKind::Unauthorized);
        hub.log_out(&session).await.expect("twice is fine");
        hub.log_out("garbage").await.expect("garbage is fine");
        assert!(hub.session_caller(&by_name).await.is_ok(), "others live on");
        assert!(hub.session_caller("garbage").await.is_err());
        assert!(hub.session_caller(&"0".repeat(64)).await.is_err());
    }

    #[tokio::test]
    async fn sign_up_rules() {
        let (_dir, hub) = hub().await;
        hub.sign_up("alice", "alice@example.com", "long-password")
            .await
            .expect("sign up");
        let kind = |r: Result<String>| r.expect_err("refused").kind;
        assert_eq!(
            kind(
                hub.sign_up("ALICE", "other@example.com", "long-password")
                    .await
            ),
            ErrorKind::Conflict
        );
        assert_eq!(
            kind(
                hub.sign_up("alice2", "ALICE@example.com", "long-password")
                    .await
            ),
            ErrorKind::Conflict
        );
        for reserved in ["models", "Settings", "api", "organizations", "login"] {
            assert_eq!(
                kind(
                    hub.sign_up(reserved, "x@example.com", "long-password")
                        .await
                ),
                ErrorKind::BadRequest,
                "{reserved}"
            );
            // The command line refuses them too, for users and organizations.
            let user = crate::NewUser {
                name: reserved.into(),
                email: "r@example.com".into(),
                fullname: None,
                password: None,
                admin: false,
            };
            assert_eq!(
                hub.add_user(user).await.map(|_| ()).map_err(|e| e.kind),
                Err(ErrorKind::BadRequest),
                "{reserved}"
            );
            assert_eq!(
                hub.add_org(reserved, "alice", None)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.kind),
                Err(ErrorKind::BadRequest),
                "{reserved}"
            );
        }
        assert_eq!(
            kind(
                hub.sign_up("bad name", "x@example.com", "long-password")
                    .await
            ),
            ErrorKind::BadRequest
        );
        assert_eq!(
            kind(hub.sign_up("bob", "no-at-sign", "long-password").await),
            ErrorKind::BadRequest
        );
        assert_eq!(
            kind(hub.sign_up("bob", "bob@example.com", "short").await),
            ErrorKind::BadRequest
        );
        hub.sign_up("bob", "bob@example.com", "12345678")
            .await
            .expect("8 characters are enough");
    }

    #[tokio::test]
    async fn csrf_tokens_are_bound_to_the_session() {
        let (_dir, hub) = hub().await;
        let a = hub.csrf_token("session-a");
        assert_eq!(a.len(), 64);
        assert_eq!(a, hub.csrf_token("session-a"), "stable");
        assert!(hub.check_csrf("session-a", &a));
        assert!(!hub.check_csrf("session-b", &a));
        assert!(!hub.check_csrf("session-a", ""));
        assert!(!hub.check_csrf("session-a", "zz"));
        assert!(!hub.check_csrf("session-a", &a[..62]));
    }

    #[tokio::test]
    async fn tokens_page() {
        let (_dir, hub) = hub().await;
        let alice = user_caller(&hub, "alice").await;
        let bob = user_caller(&hub, "bob").await;
        let first = hub
            .create_token_for(&alice, Role::Read, "  laptop ")
            .await
            .expect("token");
        let second = hub
            .create_token_for(&alice, Role::Write, "")
            .await
            .expect("token");
        assert_eq!(
            (first.label.as_str(), second.label.as_str()),
            ("laptop", "alice-write")
        );
        let (first, second) = (first.value, second.value);
        assert!(first.starts_with("hf_") && second.starts_with("hf_"));
        // Characters, not bytes: 100 two-byte characters are a valid name.
        let accented = "é".repeat(100);
        let made = hub
            .create_token_for(&alice, Role::Read, &accented)
            .await
            .expect("100 characters");
        assert_eq!(made.label, accented);
        hub.revoke_token(&made.value).await.expect("revoke");
        let listed = hub.list_tokens(&alice).await.expect("list");
        let labels: Vec<&str> = listed.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["alice-write", "laptop"]);
        assert_eq!(listed[1].role, Role::Read);
        let token_caller = hub
            .authenticate(&crate::Credentials::Token(first.clone()), "test")
            .await
            .expect("token works");
        assert_eq!(token_caller.name(), Some("alice"));

        let e = hub
            .create_token_for(&alice, Role::Admin, "x")
            .await
            .expect_err("admin");
        assert_eq!(e.kind, ErrorKind::BadRequest);
        let e = hub
            .create_token_for(&alice, Role::Read, &"x".repeat(101))
            .await
            .expect_err("long label");
        assert_eq!(e.kind, ErrorKind::BadRequest);
        // A read token cannot mint or revoke tokens.
        let e = hub
            .create_token_for(&token_caller, Role::Write, "x")
            .await
            .expect_err("read scope");
        assert_eq!(e.kind, ErrorKind::Forbidden);
        let e = hub
            .list_tokens(&Caller::anonymous())
            .await
            .expect_err("anonymous");
        assert_eq!(e.kind, ErrorKind::Unauthorized);

        // Only one's own tokens can be revoked.
        let e = hub
            .revoke_token_id(&bob, listed[1].id)
            .await
            .expect_err("not bob's");
        assert_eq!(e.kind, ErrorKind::NotFound);
        hub.revoke_token_id(&alice, listed[1].id)
            .await
            .expect("revoke");
        assert!(
            hub.authenticate(&crate::Credentials::Token(first), "test")
                .await
                .is_err()
        );
        let e = hub
            .revoke_token_id(&alice, listed[1].id)
            .await
            .expect_err("gone");
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(hub.list_tokens(&alice).await.expect("list").len(), 1);
    }

    #[tokio::test]
    async fn accounts_and_members() {
        let (_dir, hub) = hub().await;
        user_caller(&hub, "alice").await;
        user_caller(&hub, "bob").await;
        hub.add_org("acme", "bob", Some("Acme Inc".into()))
            .await
            .expect("org");
        hub.set_org_member("acme", "alice", Role::Read)
            .await
            .expect("member");
        let alice = hub.account("ALICE").await.expect("account").expect("some");
        assert_eq!(alice.name, "alice");
        assert!(alice.password_hash.is_none(), "never handed out");
        assert!(hub.account("nobody").await.expect("account").is_none());
        let org = hub.account("acme").await.expect("org").expect("some");
        assert_eq!(org.kind, AccountKind::Org);
        let members = hub.org_members("ACME").await.expect("members");
        let listed: Vec<(&str, Role)> =
            members.iter().map(|(a, r)| (a.name.as_str(), *r)).collect();
        assert_eq!(listed, [("alice", Role::Read), ("bob", Role::Admin)]);
        assert!(members.iter().all(|(a, _)| a.password_hash.is_none()));
        let e = hub.org_members("alice").await.expect_err("a user");
        assert_eq!(e.kind, ErrorKind::NotFound);
    }
}
