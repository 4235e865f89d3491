//! The LFS batch API. Transfer hrefs are signed URLs bound to one repository, object, size and
//! principal (who asked for them); every use takes the access decision again for that
//! principal (`delegation.rs`), so a repository turned private or deleted, or a revoked token,
//! stops them at once. The PUT behind an upload URL hashes the stream, stores the object only
//! when it matches, and links it to that repository. A commit may only reference objects linked
//! to its own repository, so knowing a hash never grants access to someone else's content.

use crate::access::Need;
use crate::delegation::Principal;
use crate::{Caller, Hub, RepoAddress};
use std::collections::BTreeMap;
use wharf_blob::{ByteRange, ByteStream};
use wharf_core::{Error, ErrorKind, Result, lfs_pointer::is_sha256_hex};
use wharf_lfs::batch::{Action, BatchObject, BatchRequest, BatchResponse};
use wharf_lfs::{Grant, TransferKind};

/// How long a transfer URL stays valid.
const URL_LIFETIME_SECS: i64 = 3600;

/// The parameters carried by a signed transfer URL.
#[derive(Debug, Clone)]
pub struct UploadTicket {
    pub repo_id: i64,
    pub oid: String,
    pub size: u64,
    pub expires: i64,
    /// Who the URL was issued to, as [`Principal::encode`] writes it.
    pub principal: String,
    pub signature: String,
}

pub type LfsBatchOutcome = BatchResponse;

fn now_secs() -> i64 {
    wharf_core::time::now_ms() / 1000
}

impl Hub {
    /// Answers a batch request. `base_url` is the origin the client used (for hrefs).
    pub async fn lfs_batch(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        request: BatchRequest,
        base_url: &str,
    ) -> Result<BatchResponse> {
        let upload = match request.operation.as_str() {
            "upload" => true,
            "download" => false,
            other => {
                return Err(Error::bad_request(format!(
                    "Unknown LFS operation '{other}'"
                )));
            }
        };
        let handle = self
            .repo(
                caller,
                addr,
                if upload { Need::Write } else { Need::Download },
            )
            .await?;
        let repo_id = handle.repo.id;
        let expires = now_secs() + URL_LIFETIME_SECS;
        let principal = caller.principal().encode();
        let git_url = format!(
            "{base_url}/{}{}/{}.git",
            addr.repo_type.url_prefix(),
            addr.namespace,
            addr.name
        );
        let mut objects = Vec::with_capacity(request.objects.len());
        for obj in request.objects {
            if !is_sha256_hex(&obj.oid) || obj.size < 0 {
                objects.push(BatchObject::with_error(
                    obj.oid,
                    obj.size,
                    422,
                    "Invalid object id or size",
                ));
                continue;
            }
            let linked = self.meta.repo_lfs_object(repo_id, &obj.oid).await?;
            let size = obj.size as u64;
            let mut actions = BTreeMap::new();
            if upload {
                if linked != Some(obj.size) {
                    let sig = self.signer.sign(&Grant {
                        kind: TransferKind::Upload,
                        repo_id,
                        oid: &obj.oid,
                        size,
                        expires,
                        principal: &principal,
                    });
                    let href = format!(
                        "{base_url}/api/lfs/upload/{repo_id}/{}/{size}?expires={expires}&p={principal}&sig={sig}",
                        obj.oid
                    );
                    actions.insert(
                        "upload",
                        Action {
                            href,
                            header: BTreeMap::new(),
                            expires_in: URL_LIFETIME_SECS as u64,
                        },
                    );
                    let verify = format!("{git_url}/info/lfs/objects/verify");
                    actions.insert(
                        "verify",
                        Action {
                            href: verify,
                            header: BTreeMap::new(),
                            expires_in: URL_LIFETIME_SECS as u64,
                        },
                    );
                }
            } else {
                match linked {
                    Some(stored) => {
                        let stored = stored as u64;
                        let sig = self.signer.sign(&Grant {
                            kind: TransferKind::Download,
                            repo_id,
                            oid: &obj.oid,
                            size: stored,
                            expires,
                            principal: &principal,
                        });
                        let href = format!(
                            "{base_url}/api/lfs/download/{repo_id}/{}/{stored}?expires={expires}&p={principal}&sig={sig}",
                            obj.oid
                        );
                        actions.insert(
                            "download",
                            Action {
                                href,
                                header: BTreeMap::new(),
                                expires_in: URL_LIFETIME_SECS as u64,
                            },
                        );
                    }
                    None => {
                        objects.push(BatchObject::with_error(
                            obj.oid,
                            obj.size,
                            404,
                            "Object does not exist",
                        ));
                        continue;
                    }
                }
            }
            objects.push(BatchObject {
                oid: obj.oid,
                size: obj.size,
                authenticated: Some(true),
                actions,
                error: None,
            });
        }
        Ok(BatchResponse {
            transfer: "basic",
            objects,
            hash_algo: "sha256",
        })
    }

    /// Checks a transfer URL's signature, then takes the access decision again for the
    /// principal it was issued to: it must still be allowed `need` on the repository now.
    async fn check_ticket(&self, kind: TransferKind, t: &UploadTicket) -> Result<Principal> {
        let refused = || Error::new(ErrorKind::Forbidden, "Invalid or expired transfer URL");
        let grant = Grant {
            kind,
            repo_id: t.repo_id,
            oid: &t.oid,
            size: t.size,
            expires: t.expires,
            principal: &t.principal,
        };
        if !self.signer.verify(&grant, now_secs(), &t.signature) {
            return Err(refused());
        }
        let principal = Principal::decode(&t.principal).ok_or_else(refused)?;
        let need = match kind {
            TransferKind::Upload => Need::Write,
            TransferKind::Download => Need::Download,
        };
        match self.recheck_delegation(principal, t.repo_id, need).await? {
            Some(_) => Ok(principal),
            None => Err(refused()),
        }
    }

    /// The PUT behind a signed upload URL: store (verified) and link to the repository. The
    /// body must keep a minimal pace, and counts as one of its user's running uploads.
    pub async fn lfs_upload(&self, ticket: &UploadTicket, body: ByteStream) -> Result<()> {
        let principal = self.check_ticket(TransferKind::Upload, ticket).await?;
        // Uploads need write access, so the principal is a user.
        let _slot = self.upload_slot(principal.user_id.unwrap_or(0))?;
        self.blobs
            .put_verified(&ticket.oid, ticket.size, crate::uploads::paced(body))
            .await?;
        self.meta
            .link_lfs_object(ticket.repo_id, &ticket.oid, ticket.size as i64)
            .await?;
        self.queue_xet_conversion(&ticket.oid).await;
        Ok(())
    }

    /// The GET behind a signed download URL.
    pub async fn lfs_download(
        &self,
        ticket: &UploadTicket,
        range: Option<ByteRange>,
    ) -> Result<ByteStream> {
        self.check_ticket(TransferKind::Download, ticket).await?;
        let owned = self
            .meta
            .repo_lfs_object(ticket.repo_id, &ticket.oid)
            .await?;
        if owned.and_then(|s| u64::try_from(s).ok()) != Some(ticket.size) {
            return Err(Error::new(ErrorKind::NotFound, "Object does not exist"));
        }
        self.read_lfs_object(&ticket.oid, range).await
    }

    /// Size of an LFS object: its blob, else its Xet file. None when it is stored in neither.
    /// Callers name objects the repository being read owns (a vetted pointer, a checked ticket).
    pub(crate) async fn lfs_object_size(&self, oid: &str) -> Result<Option<u64>> {
        if let Some(size) = self.blobs.size(oid).await? {
            return Ok(Some(size));
        }
        let Some(file_hash) = self.xet_hash_of(oid).await? else {
            return Ok(None);
        };
        Ok(self.meta.xet_file(&file_hash).await?.map(|f| f.size as u64))
    }

    /// Reads (a range of) an LFS object: its blob when it exists, else reconstructed from its
    /// Xet file. `EntryNotFound` when it is stored in neither.
    pub(crate) async fn read_lfs_object(
        &self,
        oid: &str,
        range: Option<ByteRange>,
    ) -> Result<ByteStream> {
        match self.blobs.read(oid, range).await {
            Err(e) if e.kind == ErrorKind::EntryNotFound => match self.xet_hash_of(oid).await? {
                Some(file_hash) => self.read_xet_file(&file_hash, range).await,
                None => Err(e),
            },
            other => other,
        }
    }

    /// `verify`: succeeds when the object is stored with this size and linked to the repo.
    pub async fn lfs_verify(
        &self,
        caller: &Caller,
        addr: &RepoAddress,
        oid: &str,
        size: i64,
    ) -> Result<()> {
        // git-lfs sends no credentials with verify unless the action says so: what the batch
        // answered is checked again here, with read access (nothing is revealed that the
        // repository's own pointers do not already show).
        let handle = self.repo(caller, addr, Need::Read).await?;
        match self.meta.repo_lfs_object(handle.repo.id, oid).await? {
            Some(stored) if stored == size => Ok(()),
            Some(stored) => Err(Error::bad_request(format!(
                "Object {oid} has size {stored}, not {size}"
            ))),
            None => Err(Error::new(
                ErrorKind::NotFound,
                format!("Object {oid} was not uploaded"),
            )),
        }
    }
}
