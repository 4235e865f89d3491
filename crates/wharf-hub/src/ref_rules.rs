//! How many refs a repository may hold: every ref is listed to anyone who may read the
//! repository (`refs`, git's ref advertisement on every fetch), so a writer creating a million
//! branches would make every reader pay for them. One rule for API branch and tag creation,
//! pull requests and git pushes.

use wharf_core::{Error, Result};

/// Most refs (branches, tags, pull requests) in one repository.
pub const MAX_REFS: usize = 10_000;

/// Refuses adding `adding` refs to a repository that holds `existing`.
pub(crate) fn check_room(existing: usize, adding: usize) -> Result<()> {
    if adding > 0 && existing.saturating_add(adding) > MAX_REFS {
        return Err(Error::bad_request(format!(
            "A repository holds at most {MAX_REFS} branches, tags and pull requests; \
             delete some first"
        )));
    }
    Ok(())
}

/// How many refs a repository holds.
pub(crate) fn count(refs: &wharf_git::Refs) -> usize {
    refs.branches.len() + refs.tags.len() + refs.pull_requests.len() + refs.converts.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_counted() {
        assert!(check_room(MAX_REFS - 1, 1).is_ok());
        assert!(check_room(MAX_REFS, 1).is_err());
        assert!(
            check_room(MAX_REFS + 5, 0).is_ok(),
            "updates and deletions always pass"
        );
        assert!(check_room(0, MAX_REFS + 1).is_err());
    }
}
