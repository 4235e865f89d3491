//! `wharf hook pre-receive`: run by `git receive-pack` while the pushed objects are
//! quarantined. It opens only the metadata store (never the blob store, whose start-up
//! cleans staging files a running server may be writing) and refuses the push, with a message
//! git shows the user, when a rule is broken.

use anyhow::{Context, Result};
use std::io::Read;
use std::path::Path;
use wharf_meta::SqliteStore;

pub async fn pre_receive(data: &Path) -> Result<()> {
    let repo_id: i64 = std::env::var("WHARF_REPO_ID")
        .context("WHARF_REPO_ID is not set: this hook is run by wharf's git service")?
        .parse()?;
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let meta = SqliteStore::open(&data.join("wharf.db")).await?;
    let refusals = wharf_hub::push::pre_receive(&meta, repo_id, &input).await?;
    if refusals.is_empty() {
        return Ok(());
    }
    for r in &refusals {
        eprintln!("wharf: push refused: {r}");
    }
    std::process::exit(1);
}
