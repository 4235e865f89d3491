//! Tests of [`SqliteStore`] on a temporary database file.

use serde_json::json;
use tempfile::TempDir;
use wharf_core::ErrorKind;

use super::*;
use crate::{XetJobState, XetSource, XetTerm, XetVisibility};

type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

async fn store() -> std::result::Result<(TempDir, SqliteStore), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(&dir.path().join("db").join("meta.sqlite")).await?;
    Ok((dir, store))
}

fn account(name: &str, kind: AccountKind) -> NewAccount {
    NewAccount {
        name: name.to_owned(),
        kind,
        fullname: format!("{name} full"),
        email: None,
        password_hash: None,
        is_admin: false,
        created_at: 1_000,
    }
}

fn repo(repo_type: RepoType, namespace: &str, name: &str, private: bool) -> NewRepo {
    NewRepo {
        storage_id: format!("{}-{namespace}-{name}", repo_type.as_str()).to_lowercase(),
        repo_type,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        private,
        created_at: 1_000,
    }
}

fn main_state(sha: &str, tags: &[&str]) -> MainState {
    MainState {
        sha: sha.to_owned(),
        card_data: None,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        pipeline_tag: None,
        library_name: None,
    }
}

fn query(repo_type: RepoType) -> RepoQuery {
    RepoQuery {
        repo_type,
        search: None,
        author: None,
        tags: Vec::new(),
        pipeline_tag: None,
        visible_namespaces: Vec::new(),
        see_all: false,
        sort: RepoSort::Id,
        descending: false,
        offset: 0,
        limit: 100,
    }
}

fn names(repos: &[Repo]) -> Vec<String> {
    repos
        .iter()
        .map(|r| format!("{}/{}", r.namespace, r.name))
        .collect()
}

async fn count(
    store: &SqliteStore,
    sql: &'static str,
    id: i64,
) -> std::result::Result<i64, sqlx::Error> {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&store.pool)
        .await
}

#[tokio::test]
async fn accounts_are_unique_case_insensitively() -> TestResult {
    let (_dir, store) = store().await?;
    let mut new = account("Alice", AccountKind::User);
    new.email = Some("alice@example.com".into());
    new.password_hash = Some("$argon2id$v=19$...".into());
    new.is_admin = true;
    let alice = store.create_account(new).await?;
    assert_eq!(alice.name, "Alice");

    // Users and organizations share the namespace.
    let err = store
        .create_account(account("alice", AccountKind::Org))
        .await
        .err();
    assert_eq!(err.map(|e| e.kind), Some(ErrorKind::Conflict));
    let err = store
        .create_account(account("ALICE", AccountKind::User))
        .await
        .err();
    assert_eq!(err.map(|e| e.kind), Some(ErrorKind::Conflict));

    let found = store
        .account_by_name("aLiCe")
        .await?
        .ok_or("alice missing")?;
    assert_eq!(found.id, alice.id);
    assert_eq!(found.name, "Alice");
    assert_eq!(found.kind, AccountKind::User);
    assert_eq!(found.fullname, "Alice full");
    assert_eq!(found.email.as_deref(), Some("alice@example.com"));
    assert_eq!(found.password_hash.as_deref(), Some("$argon2id$v=19$..."));
    assert!(found.is_admin);
    assert_eq!(found.created_at, 1_000);

    let by_id = store
        .account_by_id(alice.id)
        .await?
        .ok_or("alice missing")?;
    assert_eq!(by_id.name, "Alice");
    assert!(store.account_by_name("bob").await?.is_none());
    assert!(store.account_by_id(alice.id + 100).await?.is_none());

    let org = store
        .create_account(account("HuggingFace", AccountKind::Org))
        .await?;
    let org = store.account_by_id(org.id).await?.ok_or("org missing")?;
    assert_eq!(org.kind, AccountKind::Org);
    assert!(!org.is_admin);
    assert!(org.email.is_none());
    Ok(())
}

#[tokio::test]
async fn memberships_upsert_and_list() -> TestResult {
    let (_dir, store) = store().await?;
    let user = store
        .create_account(account("alice", AccountKind::User))
        .await?;
    let other = store
        .create_account(account("bob", AccountKind::User))
        .await?;
    let zeta = store
        .create_account(account("zeta", AccountKind::Org))
        .await?;
    let beta = store
        .create_account(account("Beta", AccountKind::Org))
        .await?;
    let alpha = store
        .create_account(account("alpha", AccountKind::Org))
        .await?;

    assert_eq!(store.role_in_org(zeta.id, user.id).await?, None);
    store.set_membership(zeta.id, user.id, Role::Read).await?;
    assert_eq!(store.role_in_org(zeta.id, user.id).await?, Some(Role::Read));
    store.set_membership(zeta.id, user.id, Role::Admin).await?;
    assert_eq!(
        store.role_in_org(zeta.id, user.id).await?,
        Some(Role::Admin)
    );
    store.set_membership(beta.id, user.id, Role::Write).await?;
    store.set_membership(alpha.id, user.id, Role::Read).await?;
    store
        .set_membership(alpha.id, other.id, Role::Admin)
        .await?;

    let orgs = store.orgs_of_user(user.id).await?;
    let listed: Vec<(&str, Role)> = orgs.iter().map(|(a, r)| (a.name.as_str(), *r)).collect();
    assert_eq!(
        listed,
        vec![
            ("alpha", Role::Read),
            ("Beta", Role::Write),
            ("zeta", Role::Admin)
        ]
    );
    assert!(orgs.iter().all(|(a, _)| a.kind == AccountKind::Org));

    let orgs = store.orgs_of_user(other.id).await?;
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0].1, Role::Admin);
    assert!(store.orgs_of_user(zeta.id).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn tokens_create_lookup_revoke() -> TestResult {
    let (_dir, store) = store().await?;
    let user = store
        .create_account(account("alice", AccountKind::User))
        .await?;
    let new = NewToken {
        user_id: user.id,
        token_hash: "ab".repeat(32),
        role: Role::Write,
        label: "laptop".into(),
        created_at: 5_000,
    };
    let token = store.create_token(new.clone()).await?;
    assert_eq!(token.user_id, user.id);
    assert_eq!(token.role, Role::Write);

    let err = store.create_token(new.clone()).await.err();
    assert_eq!(err.map(|e| e.kind), Some(ErrorKind::Conflict));

    let (found, owner) = store
        .token_by_hash(&new.token_hash)
        .await?
        .ok_or("token missing")?;
    assert_eq!(found.id, token.id);
    assert_eq!(found.role, Role::Write);
    assert_eq!(found.label, "laptop");
    assert_eq!(found.created_at, 5_000);
    assert_eq!(owner.id, user.id);
    assert_eq!(owner.name, "alice");
    assert!(store.token_by_hash(&"cd".repeat(32)).await?.is_none());

    assert!(store.revoke_token(&new.token_hash).await?);
    assert!(store.token_by_hash(&new.token_hash).await?.is_none());
    assert!(!store.revoke_token(&new.token_hash).await?);
    assert!(!store.revoke_token("unknown").await?);
    Ok(())
}

#[tokio::test]
async fn repos_create_conflict_and_lookup() -> TestResult {
    let (_dir, store) = store().await?;
    let created = store
        .create_repo(repo(RepoType::Model, "Alice", "My-Model", true))
        .await?;
    assert_eq!(created.last_modified, 1_000);
    assert!(created.tags.is_empty());

    let err = store
        .create_repo(repo(RepoType::Model, "alice", "my-model", false))
        .await
        .err();
    let err = err.ok_or("expected a conflict")?;
    assert_eq!(err.kind, ErrorKind::Conflict);
    assert!(err.message.contains("model"), "{}", err.message);

    // Same name, other type: fine.
    store
        .create_repo(repo(RepoType::Dataset, "alice", "my-model", false))
        .await?;
    // Same storage id: conflict too.
    let mut dup = repo(RepoType::Space, "alice", "other", false);
    dup.storage_id = created.storage_id.clone();
    let err = store.create_repo(dup).await.err();
    assert_eq!(err.map(|e| e.kind), Some(ErrorKind::Conflict));

    let found = store
        .repo_by_name(RepoType::Model, "ALICE", "my-MODEL")
        .await?
        .ok_or("repo missing")?;
    assert_eq!(found.id, created.id);
    assert_eq!(
        (found.namespace.as_str(), found.name.as_str()),
        ("Alice", "My-Model")
    );
    assert!(found.private);
    assert_eq!(found.gated, None);
    assert_eq!(found.sha, None);
    assert_eq!(found.storage_id, created.storage_id);
    assert!(
        store
            .repo_by_name(RepoType::Space, "alice", "my-model")
            .await?
            .is_none()
    );

    let by_id = store.repo_by_id(created.id).await?.ok_or("repo missing")?;
    assert_eq!(by_id.name, "My-Model");
    assert!(store.repo_by_id(created.id + 100).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn repo_flags_and_counters() -> TestResult {
    let (_dir, store) = store().await?;
    let r = store
        .create_repo(repo(RepoType::Model, "alice", "m", false))
        .await?;
    store.set_private(r.id, true).await?;
    store.set_gated(r.id, Some("manual")).await?;
    store.add_downloads(r.id, 3).await?;
    store.add_downloads(r.id, 4).await?;
    let got = store.repo_by_id(r.id).await?.ok_or("missing")?;
    assert!(got.private);
    assert_eq!(got.gated.as_deref(), Some("manual"));
    assert_eq!(got.downloads, 7);

    store.set_gated(r.id, None).await?;
    store.set_private(r.id, false).await?;
    let got = store.repo_by_id(r.id).await?.ok_or("missing")?;
    assert!(!got.private);
    assert_eq!(got.gated, None);

    let err = store.set_gated(r.id, Some("maybe")).await.err();
    assert_eq!(err.map(|e| e.kind), Some(ErrorKind::BadRequest));
    let err = store.set_private(r.id + 1, true).await.err();
    assert_eq!(err.map(|e| e.kind), Some(ErrorKind::RepoNotFound));
    let err = store.record_commit(r.id + 1, 5, None).await.err();
    assert_eq!(err.map(|e| e.kind), Some(ErrorKind::RepoNotFound));
    let err = store.move_repo(r.id + 1, "a", "b").await.err();
    assert_eq!(err.map(|e| e.kind), Some(ErrorKind::RepoNotFound));
    Ok(())
}

#[tokio::test]
async fn move_repo_redirects() -> TestResult {
    let (_dir, store) = store().await?;
    let r = store
        .create_repo(repo(RepoType::Model, "alice", "a", false))
        .await?;
    let other = store
        .create_repo(repo(RepoType::Model, "alice", "taken", false))
        .await?;

    store.move_repo(r.id, "alice", "b").await?;
    store.move_repo(r.id, "Org", "C").await?;
    let now = store
        .repo_by_name(RepoType::Model, "org", "c")
        .await?
        .ok_or("missing")?;
    assert_eq!(
        (now.id, now.namespace.as_str(), now.name.as_str()),
        (r.id, "Org", "C")
    );
    assert!(
        store
            .repo_by_name(RepoType::Model, "alice", "a")
            .await?
            .is_none()
    );
    for old in ["a", "B"] {
        let via = store
            .repo_by_old_name(RepoType::Model, "ALICE", old)
            .await?
            .ok_or("no redirect")?;
        assert_eq!(via.id, r.id);
    }
    // Redirects are per type.
    assert!(
        store
            .repo_by_old_name(RepoType::Dataset, "alice", "a")
            .await?
            .is_none()
    );

    // Onto an existing repo: conflict, nothing changes.
    let err = store.move_repo(r.id, "ALICE", "TAKEN").await.err();
    assert_eq!(err.map(|e| e.kind), Some(ErrorKind::Conflict));
    let still = store.repo_by_id(r.id).await?.ok_or("missing")?;
    assert_eq!(still.name, "C");
    assert!(
        store
            .repo_by_old_name(RepoType::Model, "org", "c")
            .await?
            .is_none()
    );
    assert_eq!(
        store.repo_by_id(other.id).await?.ok_or("missing")?.name,
        "taken"
    );

    // Back onto an old name: that redirect goes, the others stay, and C now redirects.
    store.move_repo(r.id, "alice", "A").await?;
    assert!(
        store
            .repo_by_old_name(RepoType::Model, "alice", "a")
            .await?
            .is_none()
    );
    let via_b = store
        .repo_by_old_name(RepoType::Model, "alice", "b")
        .await?
        .ok_or("no b")?;
    assert_eq!(via_b.id, r.id);
    let via_c = store
        .repo_by_old_name(RepoType::Model, "org", "c")
        .await?
        .ok_or("no c")?;
    assert_eq!(via_c.name, "A");

    // A case-only rename leaves no redirect behind.
    store.move_repo(r.id, "alice", "a").await?;
    assert!(
        store
            .repo_by_old_name(RepoType::Model, "alice", "a")
            .await?
            .is_none()
    );
    assert_eq!(store.repo_by_id(r.id).await?.ok_or("missing")?.name, "a");

    // A new repo taking an old name removes its redirect.
    let fresh = store
        .create_repo(repo(RepoType::Model, "alice", "B", false))
        .await?;
    assert!(
        store
            .repo_by_old_name(RepoType::Model, "alice", "b")
            .await?
            .is_none()
    );
    assert_eq!(
        store
            .repo_by_name(RepoType::Model, "alice", "b")
            .await?
            .ok_or("missing")?
            .id,
        fresh.id
    );

    // Moving a repo onto a name that redirects to another repo takes that name over.
    store.move_repo(other.id, "org", "c").await?;
    assert!(
        store
            .repo_by_old_name(RepoType::Model, "org", "c")
            .await?
            .is_none()
    );
    let via_taken = store
        .repo_by_old_name(RepoType::Model, "alice", "taken")
        .await?
        .ok_or("none")?;
    assert_eq!(via_taken.id, other.id);
    Ok(())
}

#[tokio::test]
async fn delete_repo_cascades() -> TestResult {
    let (_dir, store) = store().await?;
    let r = store
        .create_repo(repo(RepoType::Model, "alice", "a", false))
        .await?;
    let keep = store
        .create_repo(repo(RepoType::Model, "alice", "keep", false))
        .await?;
    store
        .record_commit(r.id, 2_000, Some(main_state("abc", &["x", "y"])))
        .await?;
    store
        .record_commit(keep.id, 2_000, Some(main_state("def", &["x"])))
        .await?;
    store.link_lfs_object(r.id, "oid1", 10).await?;
    store.link_lfs_object(keep.id, "oid1", 10).await?;
    store.move_repo(r.id, "alice", "b").await?;
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM repo_tags WHERE repo_id = ?",
            r.id
        )
        .await?,
        2
    );

    store.delete_repo(r.id).await?;
    assert!(store.repo_by_id(r.id).await?.is_none());
    assert!(
        store
            .repo_by_old_name(RepoType::Model, "alice", "a")
            .await?
            .is_none()
    );
    assert_eq!(store.repo_lfs_object(r.id, "oid1").await?, None);
    for sql in [
        "SELECT count(*) FROM repo_tags WHERE repo_id = ?",
        "SELECT count(*) FROM repo_redirects WHERE repo_id = ?",
        "SELECT count(*) FROM repo_lfs_objects WHERE repo_id = ?",
    ] {
        assert_eq!(count(&store, sql, r.id).await?, 0, "{sql}");
    }
    // The other repo is untouched.
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM repo_tags WHERE repo_id = ?",
            keep.id
        )
        .await?,
        1
    );
    assert_eq!(store.repo_lfs_object(keep.id, "oid1").await?, Some(10));

    let err = store.delete_repo(r.id).await.err();
    assert_eq!(err.map(|e| e.kind), Some(ErrorKind::RepoNotFound));
    // The name is free again.
    store
        .create_repo(repo(RepoType::Model, "alice", "B", false))
        .await?;
    Ok(())
}

#[tokio::test]
async fn record_commit_replaces_card_fields_and_tags() -> TestResult {
    let (_dir, store) = store().await?;
    let r = store
        .create_repo(repo(RepoType::Model, "alice", "a", false))
        .await?;

    store.record_commit(r.id, 2_000, None).await?;
    let got = store.repo_by_id(r.id).await?.ok_or("missing")?;
    assert_eq!(got.last_modified, 2_000);
    assert_eq!(got.sha, None);

    let mut main = main_state("sha1", &["pytorch", "en", "pytorch"]);
    main.card_data = Some(json!({"license": "mit", "tags": ["pytorch"], "nested": {"a": [1, 2]}}));
    main.pipeline_tag = Some("text-classification".into());
    main.library_name = Some("transformers".into());
    store.record_commit(r.id, 3_000, Some(main)).await?;
    let got = store.repo_by_id(r.id).await?.ok_or("missing")?;
    assert_eq!(got.last_modified, 3_000);
    assert_eq!(got.sha.as_deref(), Some("sha1"));
    assert_eq!(
        got.card_data,
        Some(json!({"license": "mit", "tags": ["pytorch"], "nested": {"a": [1, 2]}}))
    );
    assert_eq!(got.tags, vec!["pytorch", "en", "pytorch"]);
    assert_eq!(got.pipeline_tag.as_deref(), Some("text-classification"));
    assert_eq!(got.library_name.as_deref(), Some("transformers"));
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM repo_tags WHERE repo_id = ?",
            r.id
        )
        .await?,
        2
    );

    store
        .record_commit(r.id, 4_000, Some(main_state("sha2", &["jax"])))
        .await?;
    let got = store.repo_by_id(r.id).await?.ok_or("missing")?;
    assert_eq!(got.sha.as_deref(), Some("sha2"));
    assert_eq!(got.card_data, None);
    assert_eq!(got.tags, vec!["jax"]);
    assert_eq!(got.pipeline_tag, None);
    assert_eq!(got.library_name, None);
    let mut q = query(RepoType::Model);
    q.tags = vec!["pytorch".into()];
    assert!(store.list_repos(&q).await?.is_empty());
    q.tags = vec!["jax".into()];
    assert_eq!(store.list_repos(&q).await?.len(), 1);

    // Without `main`, only the time moves.
    store.record_commit(r.id, 5_000, None).await?;
    let got = store.repo_by_id(r.id).await?.ok_or("missing")?;
    assert_eq!(
        (got.last_modified, got.sha.as_deref()),
        (5_000, Some("sha2"))
    );
    assert_eq!(got.tags, vec!["jax"]);
    Ok(())
}

#[tokio::test]
async fn lfs_links_are_idempotent() -> TestResult {
    let (_dir, store) = store().await?;
    let a = store
        .create_repo(repo(RepoType::Model, "alice", "a", false))
        .await?;
    let b = store
        .create_repo(repo(RepoType::Model, "alice", "b", false))
        .await?;
    let oid = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    store.link_lfs_object(a.id, oid, 42).await?;
    store.link_lfs_object(a.id, oid, 42).await?;
    assert_eq!(store.repo_lfs_object(a.id, oid).await?, Some(42));
    assert_eq!(store.repo_lfs_object(b.id, oid).await?, None);
    assert_eq!(store.repo_lfs_object(a.id, "other").await?, None);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM repo_lfs_objects WHERE repo_id = ?",
            a.id
        )
        .await?,
        1
    );
    Ok(())
}

/// Repos for the listing tests, in id order:
/// 1 alice/bert-base (public, tags pytorch+en, text-classification, 10 downloads, 1 like)
/// 2 alice/secret (private, tag pytorch)
/// 3 Org/GPT_small (public, tags pytorch+jax, text-generation, 30 downloads, 0 likes)
/// 4 org/private-bert (private, tag en)
/// 5 bob/100%_data (public, no tags, 20 downloads, 5 likes)
/// plus alice/bert-base as a dataset.
async fn listing_fixture(
    store: &SqliteStore,
) -> std::result::Result<Vec<i64>, Box<dyn std::error::Error>> {
    type Spec<'a> = (
        &'a str,
        &'a str,
        bool,
        &'a [&'a str],
        Option<&'a str>,
        i64,
        i64,
        i64,
    );
    let specs: [Spec<'_>; 5] = [
        (
            "alice",
            "bert-base",
            false,
            &["pytorch", "en"],
            Some("text-classification"),
            10,
            1,
            300,
        ),
        ("alice", "secret", true, &["pytorch"], None, 0, 0, 100),
        (
            "Org",
            "GPT_small",
            false,
            &["pytorch", "jax"],
            Some("text-generation"),
            30,
            0,
            500,
        ),
        ("org", "private-bert", true, &["en"], None, 0, 2, 200),
        ("bob", "100%_data", false, &[], None, 20, 5, 400),
    ];
    let mut ids = Vec::new();
    for (i, (ns, name, private, tags, pipeline, downloads, likes, modified)) in
        specs.into_iter().enumerate()
    {
        let mut new = repo(RepoType::Model, ns, name, private);
        // Creation order differs from id order for the created_at sort.
        new.created_at = [5, 3, 1, 4, 2][i];
        let r = store.create_repo(new).await?;
        let mut main = main_state("sha", tags);
        main.pipeline_tag = pipeline.map(str::to_owned);
        store.record_commit(r.id, modified, Some(main)).await?;
        store.add_downloads(r.id, downloads).await?;
        sqlx::query("UPDATE repos SET likes = ? WHERE id = ?")
            .bind(likes)
            .bind(r.id)
            .execute(&store.pool)
            .await?;
        ids.push(r.id);
    }
    store
        .create_repo(repo(RepoType::Dataset, "alice", "bert-base", false))
        .await?;
    Ok(ids)
}

#[tokio::test]
async fn list_repos_filters() -> TestResult {
    let (_dir, store) = store().await?;
    listing_fixture(&store).await?;
    let all_public = ["alice/bert-base", "Org/GPT_small", "bob/100%_data"];

    let q = query(RepoType::Model);
    assert_eq!(names(&store.list_repos(&q).await?), all_public);
    let datasets = store.list_repos(&query(RepoType::Dataset)).await?;
    assert_eq!(names(&datasets), ["alice/bert-base"]);
    assert!(store.list_repos(&query(RepoType::Space)).await?.is_empty());

    let mut q = query(RepoType::Model);
    q.author = Some("ORG".into());
    assert_eq!(names(&store.list_repos(&q).await?), ["Org/GPT_small"]);
    q.see_all = true;
    assert_eq!(
        names(&store.list_repos(&q).await?),
        ["Org/GPT_small", "org/private-bert"]
    );

    let mut q = query(RepoType::Model);
    q.search = Some("BERT".into());
    assert_eq!(names(&store.list_repos(&q).await?), ["alice/bert-base"]);
    q.search = Some("e/bert".into()); // across the slash
    assert_eq!(names(&store.list_repos(&q).await?), ["alice/bert-base"]);
    q.search = Some("%".into()); // literal, not a wildcard
    assert_eq!(names(&store.list_repos(&q).await?), ["bob/100%_data"]);
    q.search = Some("_".into());
    assert_eq!(
        names(&store.list_repos(&q).await?),
        ["Org/GPT_small", "bob/100%_data"]
    );
    q.search = Some(String::new());
    assert_eq!(store.list_repos(&q).await?.len(), 3);

    let mut q = query(RepoType::Model);
    q.tags = vec!["pytorch".into()];
    assert_eq!(
        names(&store.list_repos(&q).await?),
        ["alice/bert-base", "Org/GPT_small"]
    );
    q.tags = vec!["pytorch".into(), "en".into()];
    assert_eq!(names(&store.list_repos(&q).await?), ["alice/bert-base"]);
    q.tags = vec!["pytorch".into(), "pytorch".into()];
    assert_eq!(store.list_repos(&q).await?.len(), 2);
    q.tags = vec!["en".into(), "jax".into()];
    assert!(store.list_repos(&q).await?.is_empty());
    q.tags = vec!["PyTorch".into()]; // tags match exactly
    assert!(store.list_repos(&q).await?.is_empty());

    let mut q = query(RepoType::Model);
    q.pipeline_tag = Some("text-generation".into());
    assert_eq!(names(&store.list_repos(&q).await?), ["Org/GPT_small"]);

    // Filters combine.
    let mut q = query(RepoType::Model);
    q.search = Some("bert".into());
    q.tags = vec!["en".into()];
    q.see_all = true;
    assert_eq!(
        names(&store.list_repos(&q).await?),
        ["alice/bert-base", "org/private-bert"]
    );
    q.author = Some("alice".into());
    assert_eq!(names(&store.list_repos(&q).await?), ["alice/bert-base"]);
    Ok(())
}

#[tokio::test]
async fn list_repos_private_visibility() -> TestResult {
    let (_dir, store) = store().await?;
    listing_fixture(&store).await?;

    let mut q = query(RepoType::Model);
    q.visible_namespaces = vec!["ALICE".into()];
    assert_eq!(
        names(&store.list_repos(&q).await?),
        [
            "alice/bert-base",
            "alice/secret",
            "Org/GPT_small",
            "bob/100%_data"
        ]
    );
    q.visible_namespaces = vec!["alice".into(), "ORG".into()];
    assert_eq!(store.list_repos(&q).await?.len(), 5);
    q.visible_namespaces = vec!["bob".into()];
    assert_eq!(store.list_repos(&q).await?.len(), 3);
    q.visible_namespaces = Vec::new();
    q.see_all = true;
    assert_eq!(store.list_repos(&q).await?.len(), 5);
    // A private repo of a visible namespace still obeys the other filters.
    let mut q = query(RepoType::Model);
    q.visible_namespaces = vec!["alice".into()];
    q.tags = vec!["pytorch".into()];
    q.author = Some("alice".into());
    assert_eq!(
        names(&store.list_repos(&q).await?),
        ["alice/bert-base", "alice/secret"]
    );
    Ok(())
}

#[tokio::test]
async fn list_repos_sorting_and_paging() -> TestResult {
    let (_dir, store) = store().await?;
    let ids = listing_fixture(&store).await?;
    let mut q = query(RepoType::Model);
    q.see_all = true;

    let list_ids = |repos: Vec<Repo>| repos.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let by = |order: &[usize]| order.iter().map(|&i| ids[i]).collect::<Vec<_>>();

    assert_eq!(list_ids(store.list_repos(&q).await?), by(&[0, 1, 2, 3, 4]));
    q.descending = true;
    assert_eq!(list_ids(store.list_repos(&q).await?), by(&[4, 3, 2, 1, 0]));

    q.sort = RepoSort::LastModified; // 300, 100, 500, 200, 400
    assert_eq!(list_ids(store.list_repos(&q).await?), by(&[2, 4, 0, 3, 1]));
    q.descending = false;
    assert_eq!(list_ids(store.list_repos(&q).await?), by(&[1, 3, 0, 4, 2]));

    q.sort = RepoSort::CreatedAt; // 5, 3, 1, 4, 2
    assert_eq!(list_ids(store.list_repos(&q).await?), by(&[2, 4, 1, 3, 0]));
    q.descending = true;
    assert_eq!(list_ids(store.list_repos(&q).await?), by(&[0, 3, 1, 4, 2]));

    // Downloads 10, 0, 30, 0, 20: the tie between 1 and 3 goes by id, in the same direction.
    q.sort = RepoSort::Downloads;
    assert_eq!(list_ids(store.list_repos(&q).await?), by(&[2, 4, 0, 3, 1]));
    q.descending = false;
    assert_eq!(list_ids(store.list_repos(&q).await?), by(&[1, 3, 0, 4, 2]));

    q.sort = RepoSort::Likes; // 1, 0, 0, 2, 5
    assert_eq!(list_ids(store.list_repos(&q).await?), by(&[1, 2, 0, 3, 4]));
    q.descending = true;
    assert_eq!(list_ids(store.list_repos(&q).await?), by(&[4, 3, 0, 2, 1]));

    // Paging walks the same order.
    q.limit = 2;
    assert_eq!(list_ids(store.list_repos(&q).await?), by(&[4, 3]));
    q.offset = 2;
    assert_eq!(list_ids(store.list_repos(&q).await?), by(&[0, 2]));
    q.offset = 4;
    assert_eq!(list_ids(store.list_repos(&q).await?), by(&[1]));
    q.offset = 10;
    assert!(store.list_repos(&q).await?.is_empty());
    q.offset = 0;
    q.limit = 0;
    assert!(store.list_repos(&q).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn reopen_keeps_data_and_in_memory_works() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("meta.sqlite");
    let store = SqliteStore::open(&path).await?;
    store
        .create_account(account("alice", AccountKind::User))
        .await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&store.pool)
        .await?;
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&store.pool)
        .await?;
    assert_eq!(fk, 1);
    store.close().await;

    let store = SqliteStore::open(&path).await?;
    assert!(store.account_by_name("ALICE").await?.is_some());

    let mem = SqliteStore::open_in_memory().await?;
    let user = mem
        .create_account(account("bob", AccountKind::User))
        .await?;
    let r = mem
        .create_repo(repo(RepoType::Model, "bob", "m", false))
        .await?;
    mem.record_commit(r.id, 9, Some(main_state("s", &["t"])))
        .await?;
    assert_eq!(
        mem.account_by_id(user.id).await?.map(|a| a.name),
        Some("bob".to_owned())
    );
    assert_eq!(
        mem.repo_by_id(r.id).await?.map(|r| r.tags),
        Some(vec!["t".to_owned()])
    );
    Ok(())
}

#[tokio::test]
async fn concurrent_writes_wait_for_the_lock() -> TestResult {
    let (_dir, store) = store().await?;
    let r = store
        .create_repo(repo(RepoType::Model, "alice", "a", false))
        .await?;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .record_commit(r.id, i, Some(main_state("s", &["a", "b"])))
                .await?;
            store.add_downloads(r.id, 1).await
        }));
    }
    for task in tasks {
        task.await??;
    }
    let got = store.repo_by_id(r.id).await?.ok_or("missing")?;
    assert_eq!(got.downloads, 16);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM repo_tags WHERE repo_id = ?",
            r.id
        )
        .await?,
        2
    );
    Ok(())
}

#[tokio::test]
async fn count_and_tag_counts_follow_the_listing_filters() -> TestResult {
    let (_dir, store) = store().await?;
    listing_fixture(&store).await?;
    let counts = |v: Vec<(String, i64)>| {
        v.into_iter()
            .map(|(t, n)| format!("{t}={n}"))
            .collect::<Vec<_>>()
    };

    // Anonymous: the three public models.
    let mut q = query(RepoType::Model);
    q.limit = 1;
    q.offset = 1; // paging is ignored
    assert_eq!(store.count_repos(&q).await?, 3);
    assert_eq!(
        counts(store.tag_counts(&q).await?),
        ["pytorch=2", "en=1", "jax=1"]
    );

    // Private repos count only for those who may see them.
    q.visible_namespaces = vec!["alice".into()];
    assert_eq!(store.count_repos(&q).await?, 4);
    assert_eq!(
        counts(store.tag_counts(&q).await?),
        ["pytorch=3", "en=1", "jax=1"]
    );
    q.see_all = true;
    assert_eq!(store.count_repos(&q).await?, 5);
    assert_eq!(
        counts(store.tag_counts(&q).await?),
        ["pytorch=3", "en=2", "jax=1"]
    );

    // Filters apply to both.
    let mut q = query(RepoType::Model);
    q.tags = vec!["pytorch".into()];
    assert_eq!(store.count_repos(&q).await?, 2);
    assert_eq!(
        counts(store.tag_counts(&q).await?),
        ["pytorch=2", "en=1", "jax=1"]
    );
    q.search = Some("gpt".into());
    assert_eq!(store.count_repos(&q).await?, 1);
    assert_eq!(counts(store.tag_counts(&q).await?), ["jax=1", "pytorch=1"]);
    q.author = Some("nobody".into());
    assert_eq!(store.count_repos(&q).await?, 0);
    assert!(store.tag_counts(&q).await?.is_empty());

    let mut q = query(RepoType::Model);
    q.pipeline_tag = Some("text-classification".into());
    assert_eq!(store.count_repos(&q).await?, 1);
    assert_eq!(store.count_repos(&query(RepoType::Dataset)).await?, 1);
    assert!(
        store
            .tag_counts(&query(RepoType::Dataset))
            .await?
            .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn users_by_email_and_org_members() -> TestResult {
    let (_dir, store) = store().await?;
    let mut new = account("alice", AccountKind::User);
    new.email = Some("Alice@Example.com".into());
    let alice = store.create_account(new).await?;
    let mut new = account("alice2", AccountKind::User);
    new.email = Some("alice@example.com".into());
    store.create_account(new).await?;
    let mut new = account("bob", AccountKind::User);
    new.email = Some("bob@example.com".into());
    let bob = store.create_account(new).await?;
    let mut new = account("acme", AccountKind::Org);
    new.email = Some("org@example.com".into());
    let acme = store.create_account(new).await?;

    let found = store
        .user_by_email("ALICE@example.COM")
        .await?
        .ok_or("alice missing")?;
    assert_eq!(found.id, alice.id, "the oldest account wins");
    assert!(store.user_by_email("org@example.com").await?.is_none());
    assert!(store.user_by_email("nobody@example.com").await?.is_none());

    store.set_membership(acme.id, bob.id, Role::Write).await?;
    store.set_membership(acme.id, alice.id, Role::Admin).await?;
    let members = store.org_members(acme.id).await?;
    let listed: Vec<(&str, Role)> = members.iter().map(|(a, r)| (a.name.as_str(), *r)).collect();
    assert_eq!(listed, vec![("alice", Role::Admin), ("bob", Role::Write)]);
    assert!(store.org_members(bob.id).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn tokens_listed_and_revoked_per_user() -> TestResult {
    let (_dir, store) = store().await?;
    let alice = store
        .create_account(account("alice", AccountKind::User))
        .await?;
    let bob = store
        .create_account(account("bob", AccountKind::User))
        .await?;
    let mut ids = Vec::new();
    for (i, (user, label)) in [(alice.id, "old"), (alice.id, "new"), (bob.id, "bobs")]
        .into_iter()
        .enumerate()
    {
        let t = store
            .create_token(NewToken {
                user_id: user,
                token_hash: format!("{i:064}"),
                role: Role::Read,
                label: label.into(),
                created_at: 1_000 + i as i64,
            })
            .await?;
        ids.push(t.id);
    }
    let labels = |v: Vec<Token>| v.into_iter().map(|t| t.label).collect::<Vec<_>>();
    assert_eq!(
        labels(store.tokens_of_user(alice.id).await?),
        ["new", "old"]
    );

    // Someone else's token cannot be revoked through one's own account.
    assert!(!store.revoke_token_of_user(alice.id, ids[2]).await?);
    assert_eq!(labels(store.tokens_of_user(bob.id).await?), ["bobs"]);

    assert!(store.revoke_token_of_user(alice.id, ids[0]).await?);
    assert!(!store.revoke_token_of_user(alice.id, ids[0]).await?, "once");
    assert_eq!(labels(store.tokens_of_user(alice.id).await?), ["new"]);
    assert!(store.token_by_hash(&format!("{:064}", 0)).await?.is_none());
    assert!(store.token_by_hash(&format!("{:064}", 1)).await?.is_some());
    Ok(())
}

#[tokio::test]
async fn sessions_expire_and_end() -> TestResult {
    let (_dir, store) = store().await?;
    let alice = store
        .create_account(account("alice", AccountKind::User))
        .await?;
    let new = |hash: &str, expires_at: i64| NewSession {
        user_id: alice.id,
        session_hash: hash.into(),
        created_at: 1_000,
        expires_at,
    };
    let s = store.create_session(new("live", 10_000)).await?;
    assert_eq!(s.user_id, alice.id);
    store.create_session(new("old", 2_000)).await?;
    let err = store.create_session(new("live", 20_000)).await.err();
    assert_eq!(err.map(|e| e.kind), Some(ErrorKind::Conflict));

    let (found, user) = store
        .session_by_hash("live", 5_000)
        .await?
        .ok_or("live session missing")?;
    assert_eq!((found.id, found.expires_at), (s.id, 10_000));
    assert_eq!(user.name, "alice");
    assert!(
        store.session_by_hash("live", 10_000).await?.is_none(),
        "expired"
    );
    assert!(store.session_by_hash("old", 5_000).await?.is_none());
    assert!(store.session_by_hash("nope", 5_000).await?.is_none());

    assert_eq!(store.delete_expired_sessions(5_000).await?, 1);
    assert!(
        store.session_by_hash("old", 1_500).await?.is_none(),
        "purged"
    );
    assert!(store.delete_session("live").await?);
    assert!(!store.delete_session("live").await?);
    assert!(store.session_by_hash("live", 5_000).await?.is_none());

    // Sessions go with their user.
    store.create_session(new("again", 10_000)).await?;
    sqlx::query("DELETE FROM accounts WHERE id = ?")
        .bind(alice.id)
        .execute(&store.pool)
        .await?;
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM sessions WHERE user_id = ?",
            alice.id
        )
        .await?,
        0
    );
    Ok(())
}

// --- Xet storage ----------------------------------------------------------------------------------

fn xhash(n: u8) -> String {
    format!("{:02x}", n).repeat(32)
}

fn xorb_row(n: u8) -> XetXorb {
    XetXorb {
        hash: xhash(n),
        num_chunks: 2,
        raw_size: 300,
        data_size: 216,
        stored_size: 400,
        chunk_ends: vec![108, 0, 0, 0, 100, 0, 0, 0, 216, 0, 0, 0, 44, 1, 0, 0],
        created_at: 1_000,
    }
}

fn new_file(n: u8, sha: &str, xorbs: &[u8]) -> NewXetFile {
    NewXetFile {
        file_hash: xhash(n),
        sha256: sha.to_owned(),
        size: 300 * xorbs.len() as i64,
        source: XetSource::Xet,
        terms: xorbs
            .iter()
            .map(|x| XetTerm {
                xorb_hash: xhash(*x),
                chunk_start: 0,
                chunk_end: 2,
                raw_size: 300,
            })
            .collect(),
        created_at: 2_000 + i64::from(n),
    }
}

#[tokio::test]
async fn xet_xorbs_are_recorded_once() -> TestResult {
    let (_dir, store) = store().await?;
    let dedup = vec![XetChunkRef {
        chunk_hash: xhash(0xc0),
        xorb_hash: xhash(1),
        chunk_index: 0,
    }];
    assert!(store.insert_xet_xorb(&xorb_row(1), &dedup).await?);
    let mut changed = xorb_row(1);
    changed.stored_size = 1;
    assert!(
        !store.insert_xet_xorb(&changed, &dedup).await?,
        "idempotent"
    );
    assert_eq!(store.xet_xorb(&xhash(1)).await?, Some(xorb_row(1)));
    assert_eq!(store.xet_xorb(&xhash(2)).await?, None);
    store.insert_xet_xorb(&xorb_row(2), &[]).await?;
    let mut got = store
        .xet_xorbs(&[xhash(2), xhash(9), xhash(1)])
        .await?
        .into_iter()
        .map(|x| x.hash)
        .collect::<Vec<_>>();
    got.sort();
    assert_eq!(got, vec![xhash(1), xhash(2)]);
    // More hashes than one IN batch.
    let many: Vec<String> = (0..1200).map(|i| format!("{i:064x}")).collect();
    assert!(store.xet_xorbs(&many).await?.is_empty());
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM xet_chunks")
        .fetch_one(&store.pool)
        .await?;
    assert_eq!(rows, 1);
    Ok(())
}

#[tokio::test]
async fn xet_files_register_link_and_stay_idempotent() -> TestResult {
    let (_dir, store) = store().await?;
    let a = store
        .create_repo(repo(RepoType::Model, "alice", "a", true))
        .await?;
    let b = store
        .create_repo(repo(RepoType::Model, "bob", "b", false))
        .await?;
    store.insert_xet_xorb(&xorb_row(1), &[]).await?;
    store.insert_xet_xorb(&xorb_row(2), &[]).await?;
    let sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let file = new_file(10, sha, &[1, 2, 1]);

    let first = store
        .register_xet_files(Some(a.id), std::slice::from_ref(&file), &[])
        .await?;
    assert_eq!(
        first,
        XetRegistration {
            files_added: 1,
            links_added: 1
        }
    );
    assert_eq!(store.repo_lfs_object(a.id, sha).await?, Some(900));
    // Registering again changes nothing.
    let again = store
        .register_xet_files(Some(a.id), std::slice::from_ref(&file), &[])
        .await?;
    assert_eq!(again, XetRegistration::default());
    // Another repo registering the same file only gains the link.
    let other = store
        .register_xet_files(Some(b.id), std::slice::from_ref(&file), &[])
        .await?;
    assert_eq!(
        other,
        XetRegistration {
            files_added: 0,
            links_added: 1
        }
    );

    let got = store.xet_file(&xhash(10)).await?.ok_or("file")?;
    assert_eq!(got.sha256, sha);
    assert_eq!(got.size, 900);
    assert_eq!(
        got.terms
            .iter()
            .map(|t| t.xorb_hash.clone())
            .collect::<Vec<_>>(),
        vec![xhash(1), xhash(2), xhash(1)],
        "terms keep their order"
    );
    assert_eq!(store.xet_file(&xhash(11)).await?, None);

    assert!(store.repo_has_xet_file(a.id, &xhash(10)).await?);
    assert!(store.repo_has_xet_file(b.id, &xhash(10)).await?);
    let c = store
        .create_repo(repo(RepoType::Model, "carol", "c", false))
        .await?;
    assert!(!store.repo_has_xet_file(c.id, &xhash(10)).await?);
    assert!(!store.repo_has_xet_file(a.id, &xhash(11)).await?);

    // The same file hash with another sha256 is refused, and nothing of that call remains.
    let sha2 = "a".repeat(64);
    let lying = NewXetFile {
        sha256: sha2.clone(),
        ..file.clone()
    };
    let fresh = new_file(12, &"b".repeat(64), &[2]);
    let e = store
        .register_xet_files(Some(c.id), &[fresh.clone(), lying], &[])
        .await
        .expect_err("lying");
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert_eq!(store.xet_file(&xhash(12)).await?, None, "rolled back");
    assert_eq!(store.repo_lfs_object(c.id, &"b".repeat(64)).await?, None);

    // A term naming a xorb that is not recorded is refused, nothing is kept.
    let dangling = new_file(13, &"c".repeat(64), &[1, 7]);
    let e = store
        .register_xet_files(Some(c.id), &[dangling], &[])
        .await
        .expect_err("dangling");
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert_eq!(store.xet_file(&xhash(13)).await?, None);
    assert_eq!(store.repo_lfs_object(c.id, &"c".repeat(64)).await?, None);

    // A missing repository.
    let e = store
        .register_xet_files(Some(9_999), &[fresh], &[])
        .await
        .expect_err("no repo");
    assert_eq!(e.kind, ErrorKind::RepoNotFound);
    Ok(())
}

#[tokio::test]
async fn xet_hashes_by_sha256_pick_the_oldest_file() -> TestResult {
    let (_dir, store) = store().await?;
    let a = store
        .create_repo(repo(RepoType::Model, "alice", "a", false))
        .await?;
    store.insert_xet_xorb(&xorb_row(1), &[]).await?;
    let sha = "d".repeat(64);
    // Two files (different chunkings) of the same content; 21 is older than 20.
    let mut newer = new_file(20, &sha, &[1]);
    newer.created_at = 5_000;
    let mut older = new_file(21, &sha, &[1]);
    older.created_at = 4_000;
    let other = new_file(22, &"e".repeat(64), &[1]);
    store
        .register_xet_files(Some(a.id), &[newer, older, other], &[])
        .await?;
    let got = store
        .xet_hashes_for_sha256s(&[sha.clone(), "e".repeat(64), "f".repeat(64)])
        .await?;
    assert_eq!(got.len(), 2);
    assert_eq!(got.get(&sha), Some(&xhash(21)));
    assert_eq!(got.get(&"e".repeat(64)), Some(&xhash(22)));
    assert!(store.xet_hashes_for_sha256s(&[]).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn deleting_a_repo_drops_its_xet_links_only() -> TestResult {
    let (_dir, store) = store().await?;
    let a = store
        .create_repo(repo(RepoType::Model, "alice", "a", false))
        .await?;
    store.insert_xet_xorb(&xorb_row(1), &[]).await?;
    let sha = "d".repeat(64);
    store
        .register_xet_files(Some(a.id), &[new_file(30, &sha, &[1])], &[])
        .await?;
    store.delete_repo(a.id).await?;
    assert!(!store.repo_has_xet_file(a.id, &xhash(30)).await?);
    assert!(store.xet_file(&xhash(30)).await?.is_some(), "GC's job");
    Ok(())
}

#[tokio::test]
async fn xet_dedup_lookup_follows_visibility() -> TestResult {
    let (_dir, store) = store().await?;
    store
        .create_account(account("acme", AccountKind::Org))
        .await?;
    let private = store
        .create_repo(repo(RepoType::Model, "alice", "p", true))
        .await?;
    let org = store
        .create_repo(repo(RepoType::Model, "acme", "o", true))
        .await?;
    let chunk = xhash(0xcc);
    let idx = |x: u8| XetChunkRef {
        chunk_hash: chunk.clone(),
        xorb_hash: xhash(x),
        chunk_index: 0,
    };
    // Xorb 1 is used by a file of alice's private repo, xorb 2 by one of acme's, xorb 3 by no
    // file at all (uploaded, shard never came).
    store.insert_xet_xorb(&xorb_row(1), &[idx(1)]).await?;
    store.insert_xet_xorb(&xorb_row(2), &[idx(2)]).await?;
    store.insert_xet_xorb(&xorb_row(3), &[idx(3)]).await?;
    store
        .register_xet_files(
            Some(private.id),
            &[new_file(40, &"a".repeat(64), &[1])],
            &[],
        )
        .await?;
    store
        .register_xet_files(Some(org.id), &[new_file(41, &"b".repeat(64), &[2])], &[])
        .await?;

    let vis = |namespaces: &[&str], see_all: bool| XetVisibility {
        namespaces: namespaces.iter().map(|n| (*n).to_owned()).collect(),
        see_all,
    };
    let look = |v: XetVisibility| {
        let store = &store;
        let chunk = chunk.clone();
        async move { store.xet_dedup_lookup(&chunk, &v, 10).await }
    };
    assert!(
        look(vis(&[], false)).await?.is_empty(),
        "anonymous sees none"
    );
    assert!(
        look(vis(&["bob"], false)).await?.is_empty(),
        "bob sees none"
    );
    assert_eq!(look(vis(&["ALICE"], false)).await?, vec![xhash(1)]);
    assert_eq!(
        look(vis(&["alice", "acme"], false)).await?,
        vec![xhash(1), xhash(2)]
    );
    assert_eq!(
        look(vis(&[], true)).await?,
        vec![xhash(1), xhash(2)],
        "admin"
    );
    assert!(
        store
            .xet_dedup_lookup(&xhash(0xdd), &vis(&[], true), 10)
            .await?
            .is_empty()
    );
    assert_eq!(
        store
            .xet_dedup_lookup(&chunk, &vis(&[], true), 1)
            .await?
            .len(),
        1
    );
    // Visibility is evaluated at query time: a repo made public becomes visible to all.
    store.set_private(private.id, false).await?;
    assert_eq!(look(vis(&["bob"], false)).await?, vec![xhash(1)]);
    Ok(())
}

#[tokio::test]
async fn xet_jobs_queue_retry_and_backfill() -> TestResult {
    let (_dir, store) = store().await?;
    let a = store
        .create_repo(repo(RepoType::Model, "alice", "a", false))
        .await?;
    let (o1, o2, o3) = ("1".repeat(64), "2".repeat(64), "3".repeat(64));
    for o in [&o1, &o2, &o3] {
        store.link_lfs_object(a.id, o, 10).await?;
    }
    assert_eq!(
        store.lfs_oids_without_xet(10).await?,
        vec![o1.clone(), o2.clone(), o3.clone()]
    );

    store.enqueue_xet_job(&o2, 100).await?;
    store.enqueue_xet_job(&o1, 200).await?;
    store.enqueue_xet_job(&o2, 50).await?; // never brought forward
    assert_eq!(store.lfs_oids_without_xet(10).await?, vec![o3.clone()]);
    assert_eq!(store.next_xet_job(99).await?, None, "nothing due yet");
    assert_eq!(store.next_xet_due().await?, Some(100));
    assert_eq!(
        store.next_xet_job(1_000).await?,
        Some(o2.clone()),
        "oldest first"
    );
    // Queuing a queued job again postpones it (the object was just touched again).
    store.enqueue_xet_job(&o2, 300).await?;
    assert_eq!(store.next_xet_job(250).await?, Some(o1.clone()));
    store.enqueue_xet_job(&o2, 100).await?;

    // A failure with a retry time: queued again, not before then.
    let st = store
        .finish_xet_job(&o2, Some("boom"), Some(5_000), 1_000)
        .await?;
    assert_eq!(st, XetJobState::Queued);
    assert_eq!(store.xet_job_attempts(&o2).await?, 1);
    assert_eq!(store.next_xet_job(1_000).await?, Some(o1.clone()));
    assert_eq!(
        store.finish_xet_job(&o1, None, None, 1_000).await?,
        XetJobState::Done
    );
    assert_eq!(store.next_xet_job(1_000).await?, None);
    assert_eq!(store.next_xet_job(5_000).await?, Some(o2.clone()));
    // Without a retry time the job fails for good.
    assert_eq!(
        store.finish_xet_job(&o2, Some("boom"), None, 6_000).await?,
        XetJobState::Failed
    );
    assert_eq!(store.xet_job_attempts(&o2).await?, 2);
    assert_eq!(store.next_xet_job(i64::MAX).await?, None);
    // Done and failed jobs are never queued again by enqueue or backfill.
    store.enqueue_xet_job(&o1, 7_000).await?;
    assert_eq!(store.next_xet_job(i64::MAX).await?, None);
    assert_eq!(store.lfs_oids_without_xet(10).await?, vec![o3.clone()]);
    assert_eq!(store.xet_job_attempts(&o3).await?, 0);

    // An object that got a Xet file some other way needs no backfill.
    store.insert_xet_xorb(&xorb_row(1), &[]).await?;
    let reg = store
        .register_xet_files(None, &[new_file(50, &o3, &[1])], &[])
        .await?;
    assert_eq!(reg.links_added, 0, "a conversion links nothing");
    assert_eq!(reg.files_added, 1);
    assert!(store.lfs_oids_without_xet(10).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn one_lookup_finds_current_and_former_names() -> TestResult {
    let (_dir, store) = store().await?;
    let r = store
        .create_repo(repo(RepoType::Model, "alice", "a", true))
        .await?;
    store.move_repo(r.id, "alice", "b").await?;
    for (ns, name) in [
        ("alice", "b"),
        ("ALICE", "B"),
        ("alice", "a"),
        ("Alice", "A"),
    ] {
        let found = store
            .repo_by_current_or_old_name(RepoType::Model, ns, name)
            .await?
            .ok_or("missing")?;
        assert_eq!((found.id, found.name.as_str()), (r.id, "b"), "{ns}/{name}");
    }
    assert!(
        store
            .repo_by_current_or_old_name(RepoType::Model, "alice", "never")
            .await?
            .is_none()
    );
    assert!(
        store
            .repo_by_current_or_old_name(RepoType::Dataset, "alice", "b")
            .await?
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn live_tokens_and_owned_objects() -> TestResult {
    let (_dir, store) = store().await?;
    let user = store
        .create_account(account("alice", AccountKind::User))
        .await?
        .id;
    let t = store
        .create_token(NewToken {
            user_id: user,
            token_hash: "a".repeat(64),
            role: Role::Write,
            label: "ci".into(),
            created_at: 1,
        })
        .await?;
    assert_eq!(
        store.live_token(t.id).await?.map(|t| t.role),
        Some(Role::Write)
    );
    assert!(store.revoke_token(&"a".repeat(64)).await?);
    assert!(store.live_token(t.id).await?.is_none(), "revoked");
    assert!(store.live_token(t.id + 100).await?.is_none(), "unknown");

    let r = store
        .create_repo(repo(RepoType::Model, "alice", "m", false))
        .await?;
    let other = store
        .create_repo(repo(RepoType::Model, "alice", "n", false))
        .await?;
    store.link_lfs_object(r.id, &"1".repeat(64), 10).await?;
    store.link_lfs_object(other.id, &"2".repeat(64), 20).await?;
    let asked: Vec<String> = (0..1200)
        .map(|i| format!("{i:064}"))
        .chain(["1".repeat(64), "2".repeat(64)])
        .collect();
    let owned = store.repo_lfs_objects(r.id, &asked).await?;
    assert_eq!(owned.len(), 1);
    assert_eq!(owned.get(&"1".repeat(64)), Some(&10));
    Ok(())
}
