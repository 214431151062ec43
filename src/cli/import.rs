//! `import`: roster imports from CSV or XLSX files, dry run first.

use clap::Subcommand;

use super::cli_admin;
use crate::config::StorageConfig;
use crate::db::{self, write_tx};
use crate::domain::imports;
use crate::domain::values::new_id;
use crate::error::{Error, Result};
use crate::sync::clock::ServerClock;
use crate::sync::writer;

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Import people (STT, Họ và tên, Ngày sinh, Giới tính, Chức vụ, Đơn vị, Số điện thoại).
    /// Without --apply this is a dry run: it prints the per-row report and writes nothing.
    People {
        /// The .csv or .xlsx file.
        file: std::path::PathBuf,
        /// Also enroll every imported person in this course.
        #[arg(long = "course")]
        course_id: Option<String>,
        /// Write the changes (in one transaction; refused when any row has an error).
        #[arg(long)]
        apply: bool,
    },
}

pub(super) fn import_command(storage: &StorageConfig, command: ImportCommand) -> Result<()> {
    let ImportCommand::People {
        file,
        course_id,
        apply,
    } = command;
    let bytes = std::fs::read(&file)
        .map_err(|e| Error::bad_request("unreadable_file", format!("{}: {e}", file.display())))?;
    let pool = db::open(storage)?;
    let mut conn = pool.get()?;
    // Progress on stderr, rewritten in place, so that large files show they are moving.
    let mut progress = |done: usize, total: usize| {
        if total >= 1000 {
            eprint!("\rchecking rows: {done}/{total}");
            if done == total {
                eprintln!();
            }
        }
    };
    let report = write_tx(&mut conn, |conn| {
        let checked = imports::check(
            conn,
            &cli_admin(),
            &bytes,
            course_id.as_deref(),
            &mut progress,
        )?;
        if !apply {
            return Ok(checked.report);
        }
        print_problems(&checked.report);
        let (report, enrollments) = imports::apply(conn, checked)?;
        let clock = ServerClock::for_own_writes(format!("cli-{}", &new_id()[24..]));
        writer::enroll(conn, &cli_admin(), &clock, enrollments)?;
        imports::record_applied(conn, &cli_admin(), &report)?;
        Ok(report)
    })?;
    if !apply {
        print_problems(&report);
    }
    let s = &report.summary;
    println!(
        "{} rows: {} new, {} updated, {} unchanged, {} duplicate rows, {} possible duplicates, \
         {} with errors, {} enrollments",
        s.rows,
        s.created,
        s.updated,
        s.unchanged,
        s.duplicate_rows,
        s.possible_duplicates,
        s.errors,
        s.enrolled
    );
    if report.dry_run {
        println!("dry run: nothing was written; run again with --apply to import");
    } else {
        println!("imported");
    }
    Ok(())
}

fn print_problems(report: &imports::ImportReport) {
    for problem in &report.problems {
        println!(
            "row {}\t{}\t{}\t{}",
            problem.row, problem.field, problem.code, problem.message
        );
    }
}
