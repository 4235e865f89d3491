//! The command-line contract (scripts and acceptance checks depend on these exact forms):
//!
//! ```text
//! wharf [--data DIR] serve [--listen HOST:PORT] [--public-url URL] [--xet-convert-delay SECS]
//!       [--no-inference] [--inference-memory BYTES] [--inference-workers N]
//! wharf [--data DIR] user add NAME --email EMAIL [--fullname F] [--password P] [--admin]
//! wharf [--data DIR] token add NAME [--role read|write] [--label L] [--value hf_...]
//! wharf [--data DIR] token revoke TOKEN
//! wharf [--data DIR] org add ORG --owner NAME [--fullname F]
//! wharf [--data DIR] org member ORG NAME --role admin|write|read
//! wharf [--data DIR] storage stats [--json]
//! wharf [--data DIR] gc [--apply] [--grace DURATION] [--json]
//! wharf [--data DIR] fsck [--repair] [--json] [--grace DURATION] [--full]
//! ```

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use wharf_core::Role;
use wharf_hub::{Hub, HubConfig, NewUser};

#[derive(Parser, Debug)]
#[command(
    name = "wharf",
    version,
    about = "A self-hosted model hub, wire-compatible with the Hugging Face Hub"
)]
pub struct Cli {
    /// Data folder: SQLite database, git repositories, LFS objects.
    #[arg(
        long,
        global = true,
        env = "WHARF_DATA",
        default_value = "./wharf-data"
    )]
    pub data: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the hub.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "WHARF_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Public base URL used in URLs the API returns (default: from the request's Host).
        #[arg(long, env = "WHARF_PUBLIC_URL")]
        public_url: Option<String>,
        /// Seconds an LFS object must stay untouched before it is converted to Xet storage.
        #[arg(long, env = "WHARF_XET_CONVERT_DELAY", default_value_t = 60)]
        xet_convert_delay: u64,
        #[command(flatten)]
        inference: crate::serve::InferenceArgs,
        #[command(flatten)]
        edge: crate::serve::EdgeArgs,
    },
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Storage accounting.
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Remove Xet files, xorbs and LFS blobs no repository needs (a dry run unless --apply).
    Gc {
        /// Delete (without it, only report what would go).
        #[arg(long)]
        apply: bool,
        /// Never remove objects written more recently than this (seconds, or 90m, 1h, 2d):
        /// an upload may be between its xorbs and its shard.
        #[arg(long, default_value = "1h", value_parser = crate::maintenance::parse_duration)]
        grace: std::time::Duration,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the data folder's consistency (git, index, LFS and Xet objects, leftovers of a
    /// crash); exits non-zero when something is wrong and was not repaired.
    Fsck {
        /// Fix what can be fixed without losing anything (see the report).
        #[arg(long)]
        repair: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// While a server runs, leave leftovers younger than this alone (work in progress);
        /// without a running server everything left over is stale.
        #[arg(long, default_value = "1h", value_parser = crate::maintenance::parse_duration)]
        grace: std::time::Duration,
        /// Have git re-hash every object (without it: connectivity only).
        #[arg(long)]
        full: bool,
    },
    /// Git hooks (run by git itself during a push, not by people).
    #[command(subcommand, hide = true)]
    Hook(HookCommand),
}

#[derive(Subcommand, Debug)]
pub enum StorageCommand {
    /// Logical and physical (deduplicated) bytes per repository, and the totals.
    Stats {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum HookCommand {
    /// Checks a push before any ref moves: reads git's update lines on stdin.
    PreReceive,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user.
    Add {
        name: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        fullname: Option<String>,
        /// Password for the web interface and git over HTTP Basic.
        #[arg(long)]
        password: Option<String>,
        /// Site administrator: sees and manages every repository.
        #[arg(long)]
        admin: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TokenRole {
    Read,
    Write,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token for a user; prints the token alone on the last line.
    Add {
        name: String,
        #[arg(long, value_enum, default_value = "write")]
        role: TokenRole,
        #[arg(long)]
        label: Option<String>,
        /// Import an existing token value (e.g. when migrating from another hub).
        #[arg(long)]
        value: Option<String>,
    },
    /// Revoke a token.
    Revoke { token: String },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OrgRole {
    Admin,
    Write,
    Read,
}

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Create an organization owned (administered) by an existing user.
    Add {
        org: String,
        #[arg(long)]
        owner: String,
        #[arg(long)]
        fullname: Option<String>,
    },
    /// Add a member or change their role.
    Member {
        org: String,
        name: String,
        #[arg(long, value_enum)]
        role: OrgRole,
    },
}

async fn open_hub(data: &std::path::Path) -> Result<Hub> {
    Hub::open(&HubConfig {
        data_dir: data.to_path_buf(),
    })
    .await
    .with_context(|| format!("cannot open the data folder {}", data.display()))
}

pub async fn execute(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve {
            listen,
            public_url,
            xet_convert_delay,
            inference,
            edge,
        } => {
            let delay = std::time::Duration::from_secs(xet_convert_delay);
            crate::serve::run_server(&cli.data, &listen, public_url, delay, inference, edge).await
        }
        Command::User(UserCommand::Add {
            name,
            email,
            fullname,
            password,
            admin,
        }) => {
            let hub = open_hub(&cli.data).await?;
            let user = hub
                .add_user(NewUser {
                    name,
                    email,
                    fullname,
                    password,
                    admin,
                })
                .await?;
            println!("created user {}", user.name);
            Ok(())
        }
        Command::Token(TokenCommand::Add {
            name,
            role,
            label,
            value,
        }) => {
            let hub = open_hub(&cli.data).await?;
            let role = match role {
                TokenRole::Read => Role::Read,
                TokenRole::Write => Role::Write,
            };
            let token = hub.add_token(&name, role, label, value).await?;
            println!("token for {name} ({}):", role.as_str());
            println!("{token}");
            Ok(())
        }
        Command::Token(TokenCommand::Revoke { token }) => {
            let hub = open_hub(&cli.data).await?;
            if !hub.revoke_token(&token).await? {
                bail!("no such token");
            }
            println!("token revoked");
            Ok(())
        }
        Command::Org(OrgCommand::Add {
            org,
            owner,
            fullname,
        }) => {
            let hub = open_hub(&cli.data).await?;
            let org = hub.add_org(&org, &owner, fullname).await?;
            println!("created organization {} (owner {owner})", org.name);
            Ok(())
        }
        Command::Hook(HookCommand::PreReceive) => crate::hook::pre_receive(&cli.data).await,
        Command::Storage(StorageCommand::Stats { json }) => {
            let hub = open_hub(&cli.data).await?;
            crate::maintenance::print_stats(&hub.storage_report().await?, json);
            Ok(())
        }
        Command::Gc { apply, grace, json } => {
            let hub = open_hub(&cli.data).await?;
            let options = wharf_hub::GcOptions { grace, apply };
            let report = crate::maintenance::run_gc(&hub, &cli.data, options).await?;
            crate::maintenance::print_gc(&report, grace, json);
            Ok(())
        }
        Command::Fsck {
            repair,
            json,
            grace,
            full,
        } => {
            let hub = open_hub(&cli.data).await?;
            let options = wharf_hub::FsckOptions {
                repair,
                grace,
                full,
            };
            let report = crate::maintenance::run_fsck(&hub, &cli.data, options).await?;
            crate::maintenance::print_fsck(&report, json);
            if !report.is_clean() {
                bail!(
                    "{} inconsistencies {}",
                    report.unrepaired(),
                    if repair {
                        "could not be repaired"
                    } else {
                        "found (--repair fixes what it can)"
                    }
                );
            }
            Ok(())
        }
        Command::Org(OrgCommand::Member { org, name, role }) => {
            let hub = open_hub(&cli.data).await?;
            let role = match role {
                OrgRole::Admin => Role::Admin,
                OrgRole::Write => Role::Write,
                OrgRole::Read => Role::Read,
            };
            hub.set_org_member(&org, &name, role).await?;
            println!("{name} is now {} of {org}", role.as_str());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn contract_forms_parse() {
        let forms: &[&[&str]] = &[
            &[
                "wharf",
                "--data",
                "d",
                "serve",
                "--listen",
                "127.0.0.1:1",
                "--public-url",
                "http://x",
            ],
            &[
                "wharf",
                "serve",
                "--no-inference",
                "--inference-memory",
                "512MiB",
                "--inference-workers",
                "1",
            ],
            &[
                "wharf",
                "user",
                "add",
                "alice",
                "--email",
                "a@x",
                "--fullname",
                "A",
                "--password",
                "p",
                "--admin",
            ],
            &[
                "wharf", "token", "add", "alice", "--role", "read", "--label", "l", "--value",
                "hf_x",
            ],
            &["wharf", "token", "revoke", "hf_x"],
            &[
                "wharf",
                "org",
                "add",
                "acme",
                "--owner",
                "alice",
                "--fullname",
                "Acme",
            ],
            &["wharf", "org", "member", "acme", "bob", "--role", "write"],
            &["wharf", "storage", "stats", "--json"],
            &["wharf", "gc", "--apply", "--grace", "0", "--json"],
            &["wharf", "fsck"],
            &[
                "wharf", "fsck", "--repair", "--json", "--grace", "10m", "--full",
            ],
        ];
        for f in forms {
            assert!(Cli::try_parse_from(*f).is_ok(), "{f:?}");
        }
    }
}
