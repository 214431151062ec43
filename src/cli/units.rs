//! `units`: merges and renames of units (named by code or id).

use clap::Subcommand;

use super::cli_admin;
use crate::config::StorageConfig;
use crate::db::{self, write_tx};
use crate::domain::reorganisation::{self, MergeRequest, RenameRequest};
use crate::domain::units::UnitInput;
use crate::error::Result;

#[derive(Subcommand, Debug)]
pub enum UnitsCommand {
    /// Merge units into an existing unit (--into) or a new one (--new-code and --new-name) from a
    /// date: their sub-units and people move to it; past attendance stays with the old units.
    Merge {
        /// The units that end.
        #[arg(required = true)]
        sources: Vec<String>,
        /// The existing unit that takes them in.
        #[arg(long, conflicts_with_all = ["new_code", "new_name"])]
        into: Option<String>,
        /// Code of a new unit to create for the merge.
        #[arg(long, requires = "new_name")]
        new_code: Option<String>,
        /// Name of the new unit.
        #[arg(long, requires = "new_code")]
        new_name: Option<String>,
        /// Kind of the new unit.
        #[arg(long, default_value = "commune", value_parser = crate::domain::units::KINDS)]
        kind: String,
        /// The first day of the merged unit (YYYY-MM-DD).
        #[arg(long)]
        date: String,
    },
    /// Rename a unit; the old name stays in its history.
    Rename {
        unit: String,
        name: String,
        /// The first day of the new name (default today).
        #[arg(long)]
        date: Option<String>,
    },
}

pub(super) fn units_command(storage: &StorageConfig, command: UnitsCommand) -> Result<()> {
    let pool = db::open(storage)?;
    let mut conn = pool.get()?;
    match command {
        UnitsCommand::Merge {
            sources,
            into,
            new_code,
            new_name,
            kind,
            date,
        } => {
            let effective_date = date.clone();
            let outcome = write_tx(&mut conn, |conn| {
                let source_ids = sources
                    .iter()
                    .map(|s| reorganisation::find_unit(conn, s).map(|u| u.id))
                    .collect::<Result<Vec<_>>>()?;
                let target_id = into
                    .as_deref()
                    .map(|u| reorganisation::find_unit(conn, u).map(|u| u.id))
                    .transpose()?;
                let target = match (new_code, new_name) {
                    (Some(code), Some(name)) => Some(UnitInput {
                        id: None,
                        code,
                        name,
                        kind,
                        parent_id: None,
                        valid_from: None,
                        valid_to: None,
                        merged_into_id: None,
                    }),
                    _ => None,
                };
                reorganisation::merge(
                    conn,
                    &cli_admin(),
                    MergeRequest {
                        source_ids,
                        target_id,
                        target,
                        effective_date: date,
                    },
                )
            })?;
            println!(
                "merged {} into {} ({}) from {}: {} units and {} people moved",
                outcome
                    .sources
                    .iter()
                    .map(|u| u.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                outcome.target.name,
                outcome.target.code,
                effective_date,
                outcome.units_moved,
                outcome.people_moved
            );
        }
        UnitsCommand::Rename { unit, name, date } => {
            let unit = write_tx(&mut conn, |conn| {
                let id = reorganisation::find_unit(conn, &unit)?.id;
                reorganisation::rename(
                    conn,
                    &cli_admin(),
                    &id,
                    RenameRequest {
                        name,
                        effective_date: date,
                    },
                )
            })?;
            println!("{} is now called {}", unit.code, unit.name);
        }
    }
    Ok(())
}
