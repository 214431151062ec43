//! `user` and `device`: accounts and their devices.

use clap::Subcommand;

use super::{cli_admin, find_user, obtain_password};
use crate::auth::password;
use crate::config::StorageConfig;
use crate::db::{self, DbConn, write_tx};
use crate::domain::users::{Devices, NewUser, Users};
use crate::error::Result;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account. Without --password-stdin a strong password is generated and printed.
    Add {
        username: String,
        #[arg(long, value_parser = ["admin", "organiser", "trainer", "trainee"])]
        role: String,
        #[arg(long)]
        display_name: Option<String>,
        /// The person a trainee account belongs to (required for trainees).
        #[arg(long)]
        person_id: Option<String>,
        /// The unit an organiser plans for, with the units below it (required for organisers).
        #[arg(long)]
        unit_id: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password; the user's devices are signed out.
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account and sign out its devices.
    Disable { username: String },
    /// Enable a disabled account.
    Enable { username: String },
    /// List accounts.
    List,
}

#[derive(Subcommand, Debug)]
pub enum DeviceCommand {
    /// List devices (of one user, or all).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Sign a device out: its tokens stop working on the next request.
    Revoke { device_id: String },
}

pub(super) fn user_command(storage: &StorageConfig, command: UserCommand) -> Result<()> {
    let pool = db::open(storage)?;
    let mut conn = pool.get()?;
    match command {
        UserCommand::Add {
            username,
            role,
            display_name,
            person_id,
            unit_id,
            password_stdin,
        } => {
            let (plain, generated) = obtain_password(password_stdin)?;
            let hash = password::hash(&plain)?;
            let user = write_tx(&mut conn, |conn| {
                Users::create_by(
                    conn,
                    &cli_admin(),
                    NewUser {
                        username,
                        display_name,
                        role,
                        person_id,
                        unit_id,
                    },
                    hash,
                )
            })?;
            println!("created {} {} ({})", user.role, user.username, user.id);
            if generated {
                println!("password: {plain}");
            }
        }
        UserCommand::Passwd {
            username,
            password_stdin,
        } => {
            let user = find_user(&mut conn, &username)?;
            let (plain, generated) = obtain_password(password_stdin)?;
            let hash = password::hash(&plain)?;
            write_tx(&mut conn, |conn| {
                Users::reset_password(conn, &cli_admin(), &user.id, &hash)
            })?;
            println!(
                "password of {} changed; its devices are signed out",
                user.username
            );
            if generated {
                println!("password: {plain}");
            }
        }
        UserCommand::Disable { username } => set_disabled(&mut conn, &username, true)?,
        UserCommand::Enable { username } => set_disabled(&mut conn, &username, false)?,
        UserCommand::List => {
            let filter = crate::domain::users::UserFilter {
                limit: Some(crate::domain::MAX_PAGE_SIZE),
                ..Default::default()
            };
            let mut offset = 0;
            loop {
                let page = Users::list(
                    &mut conn,
                    &cli_admin(),
                    &crate::domain::users::UserFilter {
                        offset: Some(offset),
                        ..filter.clone()
                    },
                )?;
                for user in &page.items {
                    let state = if user.disabled_at.is_some() {
                        "disabled"
                    } else {
                        "active"
                    };
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        user.id, user.username, user.role, state, user.display_name
                    );
                }
                offset += page.items.len() as i64;
                if page.items.is_empty() || offset >= page.total {
                    break;
                }
            }
        }
    }
    Ok(())
}

fn set_disabled(conn: &mut DbConn, username: &str, disabled: bool) -> Result<()> {
    let user = find_user(conn, username)?;
    let changes = crate::domain::users::UserChanges {
        disabled: Some(disabled),
        ..Default::default()
    };
    let user = write_tx(conn, |conn| {
        Users::change(conn, &cli_admin(), &user.id, changes)
    })?;
    println!(
        "{} is {}",
        user.username,
        if user.disabled_at.is_some() {
            "disabled"
        } else {
            "enabled"
        }
    );
    Ok(())
}

pub(super) fn device_command(storage: &StorageConfig, command: DeviceCommand) -> Result<()> {
    let pool = db::open(storage)?;
    let mut conn = pool.get()?;
    match command {
        DeviceCommand::List { user } => {
            let user_id = user
                .map(|name| find_user(&mut conn, &name).map(|u| u.id))
                .transpose()?;
            let filter = crate::domain::users::DeviceFilter {
                user_id,
                limit: Some(crate::domain::MAX_PAGE_SIZE),
                offset: None,
            };
            for device in Devices::list(&mut conn, &cli_admin(), &filter)?.items {
                let state = if device.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\t{}",
                    device.id, device.user_id, state, device.name
                );
            }
        }
        DeviceCommand::Revoke { device_id } => {
            let id = crate::domain::values::path_id(&device_id, "device")?;
            write_tx(&mut conn, |conn| Devices::revoke(conn, &cli_admin(), &id))?;
            println!("device {id} revoked");
        }
    }
    Ok(())
}
