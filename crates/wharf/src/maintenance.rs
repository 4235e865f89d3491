//! `wharf storage stats`, `wharf gc` and `wharf fsck`: what the data folder holds, removing
//! what no repository needs, and checking (and repairing) its consistency. All open the data
//! folder directly and are safe while `serve` runs.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::time::Duration;
use wharf_hub::{FsckOptions, FsckReport, GcOptions, GcReport, Hub, StorageReport};

/// Parses a grace period: seconds, or a number with `s`, `m`, `h` or `d`.
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a duration such as 3600, 90m, 1h or 2d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("unknown unit '{other}' (use s, m, h or d)")),
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{text}' is too long"))
}

/// 1536 → "1.5 KiB".
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn print_stats(report: &StorageReport, json: bool) {
    if json {
        println!("{}", report.to_json());
        return;
    }
    println!(
        "{:<40} {:>11} {:>11} {:>10} {:>6} {:>6}",
        "REPOSITORY", "LOGICAL", "PHYSICAL", "GIT", "FILES", "XORBS"
    );
    for r in &report.repos {
        println!(
            "{:<40} {:>11} {:>11} {:>10} {:>6} {:>6}",
            r.repo,
            human(r.logical_bytes),
            human(r.physical_bytes),
            human(r.git_bytes),
            r.lfs_objects,
            r.xorbs
        );
    }
    println!(
        "total: logical {}, physical on disk {} (git {}, {} LFS blobs {}, {} xorbs {}), \
         dedup ratio {:.2}",
        human(report.total_logical_bytes),
        human(report.total_physical_bytes),
        human(report.git_bytes),
        report.lfs_blobs,
        human(report.lfs_blob_bytes),
        report.xorbs,
        human(report.xorb_bytes),
        report.dedup_ratio
    );
}

pub fn print_gc(report: &GcReport, grace: Duration, json: bool) {
    if json {
        println!("{}", report.to_json());
        return;
    }
    if report.applied {
        println!("garbage collection (grace {}s):", grace.as_secs());
    } else {
        println!(
            "dry run, nothing deleted (grace {}s; --apply deletes):",
            grace.as_secs()
        );
    }
    let verb = if report.applied {
        "removed"
    } else {
        "to remove"
    };
    for (what, count, logical) in [
        (
            "Xet files no repository links:",
            report.xet_files,
            "logical ",
        ),
        ("xorbs no retained file uses:  ", report.xorbs, ""),
        ("xorb files never recorded:    ", report.stray_xorbs, ""),
        ("LFS blobs no repository links:", report.lfs_blobs, ""),
    ] {
        println!(
            "  {what} {} {verb} ({logical}{})",
            count.count,
            human(count.bytes)
        );
    }
    if report.kept_in_race + report.restored + report.purged > 0 {
        println!(
            "  needed again during the sweep: {}; left by an interrupted run: {} put back, {} deleted",
            report.kept_in_race, report.restored, report.purged
        );
    }
    let freed = if report.applied {
        "freed"
    } else {
        "would free"
    };
    println!("  {freed} {}", human(report.freed_bytes()));
}

/// Takes `{data}/gc.lock`: one `wharf gc` or `wharf fsck` at a time (fsck must not see objects
/// a collection has just moved aside as lost).
fn lock_maintenance(data: &Path) -> Result<std::fs::File> {
    let path = data.join("gc.lock");
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    if let Err(e) = lock.try_lock() {
        match e {
            std::fs::TryLockError::WouldBlock => {
                bail!("another wharf gc or wharf fsck is running")
            }
            std::fs::TryLockError::Error(e) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
    }
    Ok(lock)
}

/// Runs one collection while holding `{data}/gc.lock`, so two never sweep at once.
pub async fn run_gc(hub: &Hub, data: &Path, options: GcOptions) -> Result<GcReport> {
    let lock = lock_maintenance(data)?;
    let report = hub.collect_garbage(options).await?;
    drop(lock);
    Ok(report)
}

/// Runs the checks while holding `{data}/gc.lock`.
pub async fn run_fsck(hub: &Hub, data: &Path, options: FsckOptions) -> Result<FsckReport> {
    let lock = lock_maintenance(data)?;
    let report = hub.fsck(options).await?;
    drop(lock);
    Ok(report)
}

/// One line per check, then one per finding under it, then the verdict.
pub fn print_fsck(report: &FsckReport, json: bool) {
    if json {
        println!("{}", report.to_json());
        return;
    }
    let server = if report.server_running {
        "a server is running: recent leftovers were left alone"
    } else {
        "no server running"
    };
    let mode = if report.repair {
        "check and repair"
    } else {
        "check only"
    };
    println!(
        "wharf fsck: {} repositories, {mode}, {server}",
        report.repos
    );
    for c in &report.checks {
        let repaired = c.findings.iter().filter(|f| f.repaired).count();
        let status = match (c.findings.len(), repaired) {
            (0, _) => "ok",
            (n, r) if n == r => "fixed",
            _ => "FAIL",
        };
        println!(
            "  {status:<5} {:<15} {} ({} examined)",
            c.check.name(),
            c.title,
            c.examined
        );
        for f in &c.findings {
            let mark = if f.repaired { " [repaired]" } else { "" };
            println!("          {}: {}{mark}", f.subject, f.problem);
        }
    }
    let (found, left) = (report.problems(), report.unrepaired());
    if found == 0 {
        println!("clean");
    } else {
        println!("{found} found, {} repaired, {left} left", found - left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration(&format!("{}d", u64::MAX)).is_err());
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }
}
