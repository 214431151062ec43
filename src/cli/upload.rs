//! `materials`: upload course materials into the configured store, with progress.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Subcommand;

use super::cli_admin;
use crate::config::StorageConfig;
use crate::db::{self, write_tx};
use crate::domain::Resource;
use crate::domain::materials::{self, Materials, StoredContent, UploadMeta};
use crate::error::{Error, Result};
use crate::storage::BlobStore;

#[derive(Subcommand, Debug)]
pub enum MaterialsCommand {
    /// Upload files to a course, each as a new material (identical content is stored once).
    Add {
        /// The course's id.
        #[arg(long)]
        course: String,
        /// Title (one file only; default: the file name without its extension).
        #[arg(long)]
        title: Option<String>,
        /// pdf, slides, video, audio, document or other (default: from the file's type).
        #[arg(long)]
        kind: Option<String>,
        /// Language tag (default: vi).
        #[arg(long)]
        language: Option<String>,
        /// Largest file accepted, in bytes (as the server's upload limit).
        #[arg(long, env = "DIEMDANH_MAX_MATERIAL_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
        max_material_bytes: u64,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Delete stored files that no material uses any more (replaced or deleted), and temporary
    /// files left by a crash.
    Gc {
        /// Keep files written less than this many hours ago (an upload in progress may be
        /// about to use them).
        #[arg(long, default_value_t = 24)]
        min_age_hours: u64,
        /// Only report what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

pub(super) fn materials_command(storage: &StorageConfig, command: MaterialsCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the I/O runtime: {e}")))?;
    match command {
        MaterialsCommand::Add {
            course,
            title,
            kind,
            language,
            max_material_bytes,
            files,
        } => add_materials(
            storage,
            &runtime,
            AddMaterials {
                course,
                title,
                kind,
                language,
                limit: max_material_bytes,
            },
            &files,
        ),
        MaterialsCommand::Gc {
            min_age_hours,
            dry_run,
        } => {
            let pool = db::open(storage)?;
            let store = BlobStore::open(storage)?;
            let referenced = Materials::referenced_hashes(&mut *pool.get()?)?;
            let min_age = Duration::from_secs(min_age_hours.saturating_mul(3600));
            let collected =
                runtime.block_on(store.collect_garbage(&referenced, min_age, dry_run))?;
            println!(
                "{} {} unused files ({} bytes) from {}; kept {} in use and {} newer than \
                 {min_age_hours} h",
                if dry_run { "would delete" } else { "deleted" },
                collected.deleted,
                collected.deleted_bytes,
                store.location(),
                collected.kept,
                collected.too_young
            );
            Ok(())
        }
    }
}

/// What `materials add` applies to every file.
struct AddMaterials {
    course: String,
    title: Option<String>,
    kind: Option<String>,
    language: Option<String>,
    limit: u64,
}

fn add_materials(
    storage: &StorageConfig,
    runtime: &tokio::runtime::Runtime,
    options: AddMaterials,
    files: &[PathBuf],
) -> Result<()> {
    let AddMaterials {
        course,
        title,
        kind,
        language,
        limit,
    } = options;
    if title.is_some() && files.len() > 1 {
        return Err(Error::bad_request(
            "title_needs_one_file",
            "--title names one file; without it each file's name becomes its title",
        ));
    }
    let pool = db::open(storage)?;
    let store = BlobStore::open(storage)?;
    let mut conn = pool.get()?;
    for path in files {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                Error::bad_request("not_a_file", format!("{} is not a file", path.display()))
            })?;
        let meta = UploadMeta {
            id: None,
            title: title.clone(),
            kind: kind.clone(),
            language: language.clone(),
            file_name: file_name.clone(),
        };
        let content_type = materials::content_type_for(&file_name);
        Materials::check_upload(
            &mut conn,
            &cli_admin(),
            Materials::upload_input(&course, &meta, content_type, None),
        )?;
        let blob = runtime.block_on(upload_file(&store, path, limit))?;
        let content = StoredContent {
            sha256: blob.sha256.clone(),
            size_bytes: i64::try_from(blob.size)
                .map_err(|_| Error::Internal("file size out of range".into()))?,
        };
        let input = Materials::upload_input(&course, &meta, content_type, Some(&content));
        let material = write_tx(&mut conn, |conn| {
            Materials::create(conn, &cli_admin(), input)
        })?;
        println!(
            "added {} \"{}\" ({} bytes, sha256 {}{})",
            material.id,
            material.title,
            blob.size,
            blob.sha256,
            if blob.deduplicated {
                ", content already stored"
            } else {
                ""
            }
        );
    }
    Ok(())
}

/// Streams one file into the store, with a progress line on stderr.
async fn upload_file(
    store: &BlobStore,
    path: &Path,
    limit: u64,
) -> Result<crate::storage::StoredBlob> {
    let cannot_read = |e: std::io::Error| {
        Error::bad_request(
            "unreadable_file",
            format!("cannot read {}: {e}", path.display()),
        )
    };
    let mut file = std::fs::File::open(path).map_err(cannot_read)?;
    let total = file.metadata().map_err(cannot_read)?.len();
    crate::storage::check_announced_size(Some(total), limit)?;
    let mut progress = Progress::new(&path.display().to_string(), total);
    let mut upload = store.begin(limit).await?;
    let mut buffer = vec![0u8; 1024 * 1024];
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) => {
                upload.abort().await;
                return Err(cannot_read(e));
            }
        };
        upload.write(&buffer[..read]).await?;
        progress.update(upload.size());
    }
    if upload.size() == 0 {
        upload.abort().await;
        return Err(Error::bad_request(
            "empty_file",
            format!("{} is empty", path.display()),
        ));
    }
    let blob = upload.finish().await?;
    progress.done(blob.size);
    Ok(blob)
}

/// A progress line for large files: redrawn in place on a terminal, a line per tenth otherwise
/// (logs stay readable).
struct Progress {
    name: String,
    total: u64,
    started: Instant,
    last_drawn: Option<Instant>,
    last_tenth: u64,
    terminal: bool,
}

impl Progress {
    /// Files smaller than this finish too fast for a progress line to help.
    const MIN_BYTES: u64 = 8 * 1024 * 1024;

    fn new(name: &str, total: u64) -> Progress {
        Progress {
            name: name.to_owned(),
            total,
            started: Instant::now(),
            last_drawn: None,
            last_tenth: 0,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn line(&self, done: u64) -> String {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        format!(
            "{}: {:.1} / {:.1} MiB ({:.0}%), {:.1} MiB/s",
            self.name,
            mib(done),
            mib(self.total),
            100.0 * done as f64 / self.total.max(1) as f64,
            mib(done) / secs
        )
    }

    fn update(&mut self, done: u64) {
        if self.total < Self::MIN_BYTES {
            return;
        }
        let mut stderr = std::io::stderr();
        if self.terminal {
            if self
                .last_drawn
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
            {
                return;
            }
            self.last_drawn = Some(Instant::now());
            let _ = write!(stderr, "\r{}\x1b[K", self.line(done));
        } else {
            let tenth = done * 10 / self.total.max(1);
            if tenth > self.last_tenth {
                self.last_tenth = tenth;
                let _ = writeln!(stderr, "{}", self.line(done));
            }
        }
    }

    fn done(&mut self, done: u64) {
        if self.total >= Self::MIN_BYTES && self.terminal {
            let _ = writeln!(std::io::stderr(), "\r{}\x1b[K", self.line(done));
        }
    }
}
