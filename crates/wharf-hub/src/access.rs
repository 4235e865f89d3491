//! Who is calling, and what they may do: the one access decision every route takes, API, git,
//! LFS, Xet, web and inference alike ([`Hub::repo`] / [`Hub::authorize`]). Reading a private
//! repository one may not see fails exactly like reading a missing one (`RepoNotFound`), so
//! existence never leaks; the contents of a gated repository need an accepted request (or a
//! role in its namespace); writing needs a role and a credential that may write.

use crate::{Hub, RepoAddress, RepoHandle};
use sha2::{Digest, Sha256};
use wharf_core::{Error, ErrorKind, Result, Role};
use wharf_meta::{Account, AccountKind, Repo};

/// What a request presented.
#[derive(Debug, Clone)]
pub enum Credentials {
    None,
    /// A bearer token, or the password of HTTP Basic when it looks like a token.
    Token(String),
    /// HTTP Basic with an account password.
    Password {
        user: String,
        password: String,
    },
}

/// An authenticated (or anonymous) caller.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub user: Option<Account>,
    /// The scope of the credential: a token's role, or `Write` for a password.
    pub scope: Option<Role>,
    pub token_label: Option<String>,
    /// The hub token the request presented: what a credential minted from this request (a
    /// signed LFS URL, a Xet token) is bound to, so revoking the token stops it too.
    pub token_id: Option<i64>,
    /// Organizations the user belongs to, with the user's role.
    pub orgs: Vec<(Account, Role)>,
}

/// What an operation needs from a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// See that the repository exists and read its metadata: card, file list, history, refs.
    Read,
    /// Read file contents (resolve, LFS and Xet downloads, git fetch, inference): `Read` plus
    /// the gate of a gated repository.
    Download,
    Write,
    /// Delete, move, change settings.
    Admin,
}

pub(crate) fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Caller {
    pub fn anonymous() -> Caller {
        Caller::default()
    }

    pub fn name(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.name.as_str())
    }

    fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.is_admin)
    }

    /// The caller's role over a namespace: their own name is Admin, an organization gives its role.
    pub fn role_in_namespace(&self, namespace: &str) -> Option<Role> {
        let user = self.user.as_ref()?;
        if user.is_admin || user.name.eq_ignore_ascii_case(namespace) {
            return Some(Role::Admin);
        }
        self.orgs
            .iter()
            .find(|(org, _)| org.name.eq_ignore_ascii_case(namespace))
            .map(|(_, role)| *role)
    }

    /// Namespaces whose private repos this caller may see.
    pub fn visible_namespaces(&self) -> Vec<String> {
        let mut names: Vec<String> = self.orgs.iter().map(|(o, _)| o.name.clone()).collect();
        if let Some(u) = &self.user {
            names.push(u.name.clone());
        }
        names
    }

    pub fn sees_everything(&self) -> bool {
        self.is_admin()
    }

    pub fn can_read(&self, repo: &Repo) -> bool {
        !repo.private || self.role_in_namespace(&repo.namespace).is_some()
    }

    /// Whether the credential itself allows writing (a read token never does).
    pub fn may_write(&self) -> bool {
        matches!(self.scope, Some(Role::Write | Role::Admin))
    }

    /// Checks `need` on a namespace (for creating repos in it).
    pub fn check_namespace(&self, namespace: &str, need: Need) -> Result<()> {
        if self.user.is_none() {
            return Err(Error::unauthorized("You must be authenticated to do this"));
        }
        if !self.may_write() {
            return Err(Error::forbidden(
                "This token has read access only; a write token is needed",
            ));
        }
        let required = if need == Need::Admin {
            Role::Admin
        } else {
            Role::Write
        };
        match self.role_in_namespace(namespace) {
            Some(role) if role >= required => Ok(()),
            _ => Err(Error::forbidden(format!(
                "You don't have the rights to write in the namespace '{namespace}'"
            ))),
        }
    }

    /// The role part of the decision on an existing repo (visibility, role, credential scope):
    /// unreadable repos look missing. Routes go through [`Hub::authorize`], which adds the gate;
    /// pages use this alone to decide which buttons to show.
    pub fn check_repo(&self, repo: &Repo, need: Need) -> Result<()> {
        if !self.can_read(repo) {
            return Err(Error::repo_not_found());
        }
        match need {
            Need::Read | Need::Download => Ok(()),
            Need::Write | Need::Admin => self.check_namespace(&repo.namespace, need),
        }
    }

    /// Whether the gate of `repo` lets this caller read its files without asking: it is not
    /// gated, or the caller has a role in its namespace.
    fn passes_gate_by_role(&self, repo: &Repo) -> bool {
        repo.gated.is_none() || self.role_in_namespace(&repo.namespace).is_some()
    }
}

/// The Hub's answer to someone outside a gated repository.
fn gated_error(repo: &Repo) -> Error {
    let message = format!(
        "Access to {} {}/{} is restricted and you are not in the authorized list.",
        repo.repo_type.as_str(),
        repo.namespace,
        repo.name
    );
    Error::new(ErrorKind::GatedRepo, message)
}

impl Hub {
    /// Turns credentials into a caller; `origin` is the client's address. Bad credentials are
    /// an error (`Unauthorized`), never a silent downgrade to anonymous. Failures count against
    /// the address (and the account for passwords); past the limit, credentials from there are
    /// refused (`TooManyRequests`) before they are looked at.
    pub async fn authenticate(&self, creds: &Credentials, origin: &str) -> Result<Caller> {
        let account = match creds {
            Credentials::None => return Ok(Caller::anonymous()),
            Credentials::Token(_) => None,
            Credentials::Password { user, .. } => Some(user.as_str()),
        };
        self.rate_limiter.check_sign_in(origin, account)?;
        match self.check_credentials(creds).await {
            Err(e) if e.kind == ErrorKind::Unauthorized => {
                self.rate_limiter.sign_in_failed(origin, account);
                Err(e)
            }
            other => other,
        }
    }

    async fn check_credentials(&self, creds: &Credentials) -> Result<Caller> {
        let (user, scope, token) = match creds {
            Credentials::None => return Ok(Caller::anonymous()),
            Credentials::Token(token) => match self.meta.token_by_hash(&hash_token(token)).await? {
                Some((tok, user)) => (user, tok.role, Some(tok)),
                None => return Err(invalid_credentials()),
            },
            Credentials::Password { user, password } => {
                match self.check_password(user, password).await {
                    Ok(account) => (account, Role::Write, None),
                    // git users often paste a token as the password under their user name.
                    Err(e) => match self.meta.token_by_hash(&hash_token(password)).await? {
                        Some((tok, account)) => (account, tok.role, Some(tok)),
                        None => return Err(e),
                    },
                }
            }
        };
        let orgs = self.meta.orgs_of_user(user.id).await?;
        Ok(Caller {
            user: Some(user),
            scope: Some(scope),
            token_label: token.as_ref().map(|t| t.label.clone()),
            token_id: token.map(|t| t.id),
            orgs,
        })
    }

    /// The account behind a name and password. Unknown names cost the same as wrong passwords.
    async fn check_password(&self, name: &str, password: &str) -> Result<Account> {
        let account = self
            .meta
            .account_by_name(name)
            .await?
            .filter(|a| a.kind == AccountKind::User);
        let hash = account.as_ref().and_then(|a| a.password_hash.clone());
        let ok = self.password_matches(hash, password).await?;
        match account {
            Some(account) if ok => Ok(account),
            _ => Err(invalid_credentials()),
        }
    }

    /// Finds a repository by its current or former name and takes the access decision.
    pub async fn repo(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        need: Need,
    ) -> Result<RepoHandle> {
        let repo = self
            .find_repo_row(addr)
            .await?
            .ok_or_else(Error::repo_not_found)?;
        self.authorize(caller, &repo, need).await?;
        let git = self.git_for(&repo.storage_id).await?;
        Ok(RepoHandle { repo, git })
    }

    /// The access decision: may `caller` do what `need` says to `repo`? Private repos the caller
    /// may not see are `RepoNotFound`; the contents of gated ones are `GatedRepo`; writing needs
    /// a role in the namespace and a credential that may write.
    pub async fn authorize(&self, caller: &Caller, repo: &Repo, need: Need) -> Result<()> {
        caller.check_repo(repo, need)?;
        if need == Need::Download && !caller.passes_gate_by_role(repo) {
            return Err(gated_error(repo));
        }
        Ok(())
    }

    pub(crate) async fn find_repo_row(&self, addr: &RepoAddress) -> Result<Option<Repo>> {
        if wharf_core::validate_namespace(&addr.namespace).is_err()
            || wharf_core::validate_repo_name(&addr.name).is_err()
        {
            return Ok(None);
        }
        self.meta
            .repo_by_current_or_old_name(addr.repo_type, &addr.namespace, &addr.name)
            .await
    }
}

fn invalid_credentials() -> Error {
    Error::new(
        ErrorKind::Unauthorized,
        "Invalid credentials in Authorization header",
    )
}
