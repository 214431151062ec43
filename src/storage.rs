//! Content-addressed storage of material files through `object_store`: a directory under the
//! data dir by default, or an S3-compatible bucket shared by several server instances.
//!
//! A file is written to a temporary object (`tmp/<uuid>`) while its SHA-256 is computed, then
//! moved to `sha256/<h0h1>/<h2h3>/<hash>`. Identical content therefore lands on one key and is
//! stored once; a move onto an existing key is skipped. An upload that fails, is refused as too
//! large, or is dropped mid-way (the client went away) is aborted, so no partial object stays.
//! Knows no HTTP and no database.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::Path as FsPath;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, WriteMultipart,
};
use sha2::{Digest, Sha256};

use crate::config::{StorageConfig, StoreConfig};
use crate::error::{Error, Result};

/// Parts of a multipart upload (S3's minimum part size is 5 MiB). At most
/// `MAX_PARTS_IN_FLIGHT` parts are buffered or being sent, which bounds the memory of one upload.
const PART_BYTES: usize = 5 * 1024 * 1024;
const MAX_PARTS_IN_FLIGHT: usize = 2;

/// Pieces read from a local file per blocking call. object_store's own local stream reads 8 KiB
/// per call: measured on loopback, that took over four times the server CPU per byte sent.
const LOCAL_READ_BYTES: usize = 256 * 1024;

/// rustls needs one process-wide crypto provider; reqwest is built without one so that ring
/// (already used by object_store's request signing) serves both. Idempotent.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The store of material files.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    location: String,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobStore({})", self.location)
    }
}

/// A finished upload: where its content is and whether that content was already stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    pub sha256: String,
    pub size: u64,
    pub deduplicated: bool,
}

impl BlobStore {
    /// Opens the configured store: S3 for `s3://bucket[/prefix]`, otherwise a local directory
    /// (created if missing), by default `<data-dir>/materials`.
    pub fn open(storage: &StorageConfig) -> Result<BlobStore> {
        let config = &storage.store;
        match config.store_url.as_deref().map(str::trim) {
            Some(url) if url.starts_with("s3://") => Self::open_s3(url, config),
            Some(url) if !url.is_empty() => {
                Self::open_local(FsPath::new(url.trim_start_matches("file://")))
            }
            _ => Self::open_local(&storage.data_dir.join("materials")),
        }
    }

    fn open_local(dir: &FsPath) -> Result<BlobStore> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Unavailable(format!(
                "cannot create the material directory {}: {e}",
                dir.display()
            ))
        })?;
        let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| {
            Error::Unavailable(format!(
                "cannot open the material directory {}: {e}",
                dir.display()
            ))
        })?;
        Ok(BlobStore {
            store: Arc::new(store),
            location: dir.display().to_string(),
        })
    }

    fn open_s3(url: &str, config: &StoreConfig) -> Result<BlobStore> {
        install_tls_provider();
        let rest = url.trim_start_matches("s3://");
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::Unavailable(format!(
                "the store URL {url} names no bucket (s3://bucket[/prefix])"
            )));
        }
        // The usual AWS_* variables first, then our own settings over them.
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(&config.s3_region)
            .with_allow_http(config.s3_allow_http);
        if let Some(endpoint) = &config.s3_endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(key) = &config.s3_access_key_id {
            builder = builder.with_access_key_id(key);
        }
        if let Some(secret) = &config.s3_secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let s3 = builder
            .build()
            .map_err(|e| Error::Unavailable(format!("cannot configure S3 storage: {e}")))?;
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        };
        Ok(BlobStore {
            store,
            location: url.to_owned(),
        })
    }

    /// Where the store is, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The key of a content hash (lower-case hex, checked by the caller).
    pub fn key(sha256: &str) -> Path {
        Path::from(format!(
            "sha256/{}/{}/{sha256}",
            &sha256[..2],
            &sha256[2..4]
        ))
    }

    /// Starts an upload of at most `limit` bytes.
    pub async fn begin(&self, limit: u64) -> Result<Upload> {
        let temp = Path::from(format!("tmp/{}", uuid::Uuid::new_v4()));
        let upload = self
            .store
            .put_multipart(&temp)
            .await
            .map_err(|e| storage_error("start an upload", e))?;
        Ok(Upload {
            store: Arc::clone(&self.store),
            temp,
            writer: Some(WriteMultipart::new_with_chunk_size(upload, PART_BYTES)),
            hasher: Sha256::new(),
            size: 0,
            limit,
        })
    }

    /// Whether content with this hash is stored.
    pub async fn contains(&self, sha256: &str) -> Result<bool> {
        match self.store.head(&Self::key(sha256)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(storage_error("look up content", e)),
        }
    }

    /// Streams `range` (or all) of the content with this hash, read piece by piece from the
    /// store. `expected_size` is the size on record: content of another size is reported as
    /// missing rather than sent with a wrong Content-Length.
    pub async fn read(
        &self,
        sha256: &str,
        expected_size: u64,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, object_store::Result<bytes::Bytes>>> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = match self.store.get_opts(&Self::key(sha256), options).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::NotFound {
                    what: "material content",
                });
            }
            Err(e) => return Err(storage_error("read content", e)),
        };
        if result.meta.size != expected_size {
            tracing::warn!(
                sha256,
                stored = result.meta.size,
                expected_size,
                "stored content does not have the recorded size"
            );
            return Err(Error::NotFound {
                what: "material content",
            });
        }
        let range = result.range.clone();
        Ok(match result.payload {
            GetResultPayload::File(file, _) => read_file(file, range),
            GetResultPayload::Stream(stream) => stream,
        })
    }

    /// The keys of every object under a prefix (`sha256`, `tmp`).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self
            .list_meta(prefix)
            .await?
            .into_iter()
            .map(|meta| meta.location.to_string())
            .collect())
    }

    async fn list_meta(&self, prefix: &str) -> Result<Vec<object_store::ObjectMeta>> {
        let prefix = Path::from(prefix);
        let mut stream = self.store.list(Some(&prefix));
        let mut found = Vec::new();
        while let Some(meta) = stream.next().await {
            found.push(meta.map_err(|e| storage_error("list content", e))?);
        }
        Ok(found)
    }

    /// Deletes content no record uses (`referenced` holds the hashes in use) and temporary
    /// objects left by a crash, when last written more than `min_age` ago. The age protects an
    /// upload between storing its content and committing its record: `Upload::finish` rewrites
    /// even content that was already there, so its age starts again.
    pub async fn collect_garbage(
        &self,
        referenced: &HashSet<String>,
        min_age: std::time::Duration,
        dry_run: bool,
    ) -> Result<Collected> {
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(min_age).unwrap_or(chrono::Duration::MAX);
        let mut collected = Collected::default();
        for meta in self.list_meta("sha256").await? {
            let hash = meta.location.filename().unwrap_or_default();
            if referenced.contains(hash) {
                collected.kept += 1;
                continue;
            }
            if meta.last_modified > cutoff {
                collected.too_young += 1;
                continue;
            }
            if !dry_run {
                self.delete(&meta.location).await?;
            }
            collected.deleted += 1;
            collected.deleted_bytes += meta.size;
        }
        for meta in self.list_meta("tmp").await? {
            if meta.last_modified <= cutoff {
                if !dry_run {
                    self.delete(&meta.location).await?;
                }
                collected.deleted += 1;
                collected.deleted_bytes += meta.size;
            }
        }
        Ok(collected)
    }

    async fn delete(&self, location: &Path) -> Result<()> {
        match self.store.delete(location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error("delete content", e)),
        }
    }
}

/// What a garbage collection found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    /// Content in use.
    pub kept: u64,
    /// Unused content written too recently to be sure it is unused.
    pub too_young: u64,
    pub deleted: u64,
    pub deleted_bytes: u64,
}

/// One file being written. Dropped before `finish`, it aborts itself in the background.
pub struct Upload {
    store: Arc<dyn ObjectStore>,
    temp: Path,
    writer: Option<WriteMultipart>,
    hasher: Sha256,
    size: u64,
    limit: u64,
}

impl Upload {
    /// Appends a piece. Passing the limit aborts the upload and fails with `payload_too_large`.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.size += chunk.len() as u64;
        if self.size > self.limit {
            self.abort_now().await;
            return Err(too_large(self.limit));
        }
        self.hasher.update(chunk);
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| Error::Internal("write after the upload ended".into()))?;
        // Waiting here makes a fast client wait for the store instead of filling memory.
        if let Err(e) = writer.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await {
            self.abort_now().await;
            return Err(storage_error("write content", e));
        }
        writer.write(chunk);
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Completes the upload and moves it to its content address (unless that content is
    /// already stored, in which case the temporary object is deleted).
    pub async fn finish(mut self) -> Result<StoredBlob> {
        let writer = self
            .writer
            .take()
            .ok_or_else(|| Error::Internal("upload finished twice".into()))?;
        if let Err(e) = writer.finish().await {
            let _ = self.store.delete(&self.temp).await;
            return Err(storage_error("complete an upload", e));
        }
        let sha256 = hex(&std::mem::take(&mut self.hasher).finalize());
        let key = BlobStore::key(&sha256);
        let deduplicated = match self.store.head(&key).await {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => {
                let _ = self.store.delete(&self.temp).await;
                return Err(storage_error("look up content", e));
            }
        };
        // The move happens even when the content is there already: the bytes are identical,
        // and the fresh write time keeps garbage collection from deleting content that an
        // unused record left behind just as a new record starts using it. Two uploads of the
        // same content racing here write the same bytes, so either order is fine.
        if let Err(e) = self.store.rename(&self.temp, &key).await {
            let _ = self.store.delete(&self.temp).await;
            return Err(storage_error("store content", e));
        }
        Ok(StoredBlob {
            sha256,
            size: self.size,
            deduplicated,
        })
    }

    /// Gives up: nothing of this upload stays in the store.
    pub async fn abort(mut self) {
        self.abort_now().await;
    }

    async fn abort_now(&mut self) {
        if let Some(writer) = self.writer.take() {
            if let Err(e) = writer.abort().await {
                tracing::warn!(error = %e, temp = %self.temp, "could not abort an upload");
            }
            // A local upload was complete only after `finish`; S3 never shows an aborted
            // multipart upload. Deleting anyway covers a store that wrote the object early.
            let _ = self.store.delete(&self.temp).await;
        }
    }
}

impl Drop for Upload {
    /// The request went away mid-body (its future is dropped, nothing awaits any more): clean
    /// up on the runtime instead.
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            let store = Arc::clone(&self.store);
            let temp = self.temp.clone();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = writer.abort().await;
                    let _ = store.delete(&temp).await;
                });
            }
        }
    }
}

/// Streams `range` of a local file in `LOCAL_READ_BYTES` pieces, each read on the blocking pool.
fn read_file(
    file: std::fs::File,
    range: Range<u64>,
) -> BoxStream<'static, object_store::Result<bytes::Bytes>> {
    use std::io::{Read, Seek, SeekFrom};
    let failed = |e: std::io::Error| object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(e),
    };
    let state = (Some(file), range.start, range.end);
    futures_util::stream::try_unfold(state, move |(file, position, end)| async move {
        let Some(mut file) = file.filter(|_| position < end) else {
            return Ok(None);
        };
        let want = usize::try_from((end - position).min(LOCAL_READ_BYTES as u64))
            .unwrap_or(LOCAL_READ_BYTES);
        let (file, piece) = tokio::task::spawn_blocking(move || {
            file.seek(SeekFrom::Start(position))?;
            let mut piece = vec![0u8; want];
            file.read_exact(&mut piece)?;
            Ok::<_, std::io::Error>((file, piece))
        })
        .await
        .map_err(|e| failed(std::io::Error::other(e)))?
        .map_err(failed)?;
        let next = position + piece.len() as u64;
        Ok(Some((bytes::Bytes::from(piece), (Some(file), next, end))))
    })
    .boxed()
}

fn too_large(limit: u64) -> Error {
    Error::PayloadTooLarge {
        message: format!("the file is larger than the limit of {limit} bytes"),
    }
}

/// An upload announced (Content-Length) as larger than the limit, refused before reading it.
pub fn check_announced_size(announced: Option<u64>, limit: u64) -> Result<()> {
    match announced {
        Some(size) if size > limit => Err(too_large(limit)),
        _ => Ok(()),
    }
}

/// The store failed or cannot be reached: the client may retry.
/// A full disk (or quota) is 507: retrying soon will not help until an operator makes room.
/// Anything else from the store is taken as passing trouble (503).
fn storage_error(doing: &str, err: object_store::Error) -> Error {
    let message = format!("the material store could not {doing}: {err}");
    if is_out_of_space(&err) {
        Error::InsufficientStorage { message }
    } else {
        Error::Unavailable(message)
    }
}

/// Whether an I/O error somewhere in the error's chain says the disk or the quota is full.
fn is_out_of_space(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && (io.kind() == std::io::ErrorKind::StorageFull
                || io.kind() == std::io::ErrorKind::QuotaExceeded)
        {
            return true;
        }
        cause = err.source();
    }
    false
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fan_out_by_the_first_hash_digits() {
        let hash = "ab".repeat(32);
        assert_eq!(
            BlobStore::key(&hash).to_string(),
            format!("sha256/ab/ab/{hash}")
        );
    }

    #[test]
    fn announced_sizes_over_the_limit_are_refused() {
        assert!(check_announced_size(None, 10).is_ok());
        assert!(check_announced_size(Some(10), 10).is_ok());
        assert_eq!(
            check_announced_size(Some(11), 10).unwrap_err().code(),
            "payload_too_large"
        );
    }

    #[test]
    fn an_upload_is_stored_once_by_content_and_refused_past_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open_local(dir.path()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let put = |content: &'static [u8]| {
                let store = store.clone();
                async move {
                    let mut upload = store.begin(100).await?;
                    for piece in content.chunks(7) {
                        upload.write(piece).await?;
                    }
                    upload.finish().await
                }
            };
            let first = put(b"bai giang so 1").await.unwrap();
            assert!(!first.deduplicated);
            assert_eq!(first.size, 14);
            let second = put(b"bai giang so 1").await.unwrap();
            assert!(second.deduplicated);
            assert_eq!(second.sha256, first.sha256);
            assert_eq!(store.list("sha256").await.unwrap().len(), 1);

            let mut upload = store.begin(10).await.unwrap();
            let err = upload.write(b"more than ten bytes").await.unwrap_err();
            assert_eq!(err.code(), "payload_too_large");
            drop(upload);
            assert!(store.list("tmp").await.unwrap().is_empty());

            let mut stream = store.read(&first.sha256, 14, Some(4..9)).await.unwrap();
            let mut read = Vec::new();
            while let Some(piece) = stream.next().await {
                read.extend_from_slice(&piece.unwrap());
            }
            assert_eq!(read, b"giang");
            let missing = store.read(&"0".repeat(64), 1, None).await.err().unwrap();
            assert_eq!(missing.code(), "not_found");
        });
    }
}
