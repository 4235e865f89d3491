//! Creation of bare repositories.

use std::io::Write;
use std::path::Path;

use wharf_core::{Error, Result};

use crate::{durable, odb};

/// Settings for the `git` processes that serve clone, fetch and push in this repository.
/// Appended after gix's own `[core]` section; for single-valued keys git takes the last value.
const SERVER_CONFIG: &str = "\
[core]
\tlogAllRefUpdates = false
\tfsync = all
[uploadpack]
\tallowFilter = true
\tallowReachableSHA1InWant = true
[receive]
\tfsckObjects = true
[http]
\treceivepack = true
";

/// Creates the bare repository layout at `path` (parents included), HEAD on refs/heads/main.
pub(crate) fn create_bare(path: &Path) -> Result<()> {
    if is_occupied(path)? {
        return Err(Error::conflict("Repository already exists"));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let options = gix::create::Options {
        destination_must_be_empty: Some(true),
        ..Default::default()
    };
    // `create::into` uses the built-in template, whose HEAD is refs/heads/main, and reads no
    // global config, so a machine-wide init.defaultBranch cannot change it.
    if let Err(e) = gix::create::into(path, gix::create::Kind::Bare, options) {
        return Err(if path.join("HEAD").exists() {
            Error::conflict("Repository already exists")
        } else {
            odb::internal(e)
        });
    }
    append_config(&path.join("config"))?;
    durable::sync_tree(path)?;
    if let Some(parent) = path.parent() {
        durable::sync_dir(parent)?;
    }
    Ok(())
}

/// A file, or a non-empty directory, is in the way.
fn is_occupied(path: &Path) -> Result<bool> {
    match std::fs::read_dir(path) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(true),
        Err(e) => Err(e.into()),
    }
}

fn append_config(config_path: &Path) -> Result<()> {
    let mut file = std::fs::OpenOptions::new().append(true).open(config_path)?;
    file.write_all(SERVER_CONFIG.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
