//! Material files: upload (streamed to the store), content replacement, resumable download and
//! the list of what a device should hold.
//!
//! Uploads are the raw file as the request body, with the metadata in the query string and the
//! file's type in Content-Type (no multipart form): a body that is only the file streams
//! straight into the store with nothing to parse, and `curl --data-binary @file` or the CLI can
//! send it as it is.

use std::ops::Range;
use std::sync::Arc;

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::api::error::payload_error;
use crate::api::extractors::{Authenticated, IfMatch, etag, tagged};
use crate::api::state::AppState;
use crate::domain::Resource;
use crate::domain::audit::{Audit, AuditAction, AuditObject, Entry};
use crate::domain::materials::{Material, Materials, StoredContent, UploadMeta};
use crate::error::{Error, Result};
use crate::storage::{self, StoredBlob};

const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// `POST /api/v1/courses/{id}/materials?file_name=…[&title=…&kind=…&language=…&id=…]`
pub async fn upload(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    course_id: web::Path<String>,
    meta: web::Query<UploadMeta>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let meta = meta.into_inner();
    let content_type = content_type(req.headers()).unwrap_or(DEFAULT_CONTENT_TYPE.into());
    let input = Materials::upload_input(&course_id, &meta, &content_type, None);
    let check_caller = caller.clone();
    state
        .run(move |_, conn| Materials::check_upload(conn, &check_caller, input))
        .await?;
    let blob = receive(&state, req.headers(), payload).await?;
    let content = stored_content(&blob)?;
    let input = Materials::upload_input(&course_id, &meta, &content_type, Some(&content));
    let material = state
        .write(move |_, conn| {
            let material = Materials::create(conn, &caller, input)?;
            Audit::record_by(
                conn,
                &caller,
                Entry::new(AuditAction::MaterialUploaded)
                    .about(AuditObject::Material, &material.id)
                    .detail("course_id", material.course_id.clone())
                    .detail("file_name", material.file_name.clone())
                    .detail("size_bytes", material.size_bytes),
            )?;
            Ok(material)
        })
        .await?;
    tracing::info!(
        material = %material.id,
        sha256 = %content.sha256,
        size = content.size_bytes,
        deduplicated = blob.deduplicated,
        "material uploaded"
    );
    Ok(HttpResponse::Created()
        .insert_header((header::ETAG, etag(material.rev)))
        .insert_header((
            header::LOCATION,
            format!("/api/v1/materials/{}", material.id),
        ))
        .json(material))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceQuery {
    file_name: Option<String>,
}

/// `PUT /api/v1/materials/{id}/content[?file_name=…]`: new content, a new version.
pub async fn replace(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
    IfMatch(expected): IfMatch,
    query: web::Query<ReplaceQuery>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    let file_name = query.into_inner().file_name;
    let content_type = content_type(req.headers());
    let (check_caller, check_id, check_name) = (caller.clone(), id.clone(), file_name.clone());
    state
        .run(move |_, conn| {
            Materials::check_replace(
                conn,
                &check_caller,
                &check_id,
                expected,
                check_name.as_deref(),
            )
        })
        .await?;
    let blob = receive(&state, req.headers(), payload).await?;
    let content = stored_content(&blob)?;
    let material = state
        .write(move |_, conn| {
            let material = Materials::replace_content(
                conn,
                &caller,
                &id,
                expected,
                file_name,
                content_type,
                &content,
            )?;
            Audit::record_by(
                conn,
                &caller,
                Entry::new(AuditAction::MaterialContentReplaced)
                    .about(AuditObject::Material, &material.id)
                    .detail("file_name", material.file_name.clone())
                    .detail("size_bytes", material.size_bytes)
                    .detail("version", material.version),
            )?;
            Ok(material)
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::ETAG, etag(material.rev)))
        .json(material))
}

/// Streams the request body into the store. Too large (announced or actual), cut short or
/// empty: the upload is aborted and nothing is kept.
async fn receive(
    state: &AppState,
    headers: &HeaderMap,
    mut payload: web::Payload,
) -> Result<StoredBlob> {
    let limit = state.config.max_material_bytes;
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    storage::check_announced_size(announced, limit)?;
    let mut upload = state.store.begin(limit).await?;
    while let Some(chunk) = payload.next().await {
        match chunk {
            Ok(chunk) => upload.write(&chunk).await?,
            Err(e) => {
                upload.abort().await;
                return Err(payload_error(&e, "incomplete_body"));
            }
        }
    }
    if upload.size() == 0 {
        upload.abort().await;
        return Err(Error::invalid_field(
            "body",
            "empty_file",
            "the body must be the file's content",
        ));
    }
    upload.finish().await
}

fn stored_content(blob: &StoredBlob) -> Result<StoredContent> {
    Ok(StoredContent {
        sha256: blob.sha256.clone(),
        size_bytes: i64::try_from(blob.size)
            .map_err(|_| Error::Internal("file size out of range".into()))?,
    })
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// `GET` and `HEAD /api/v1/materials/{id}/content`: the file, whole or one byte range.
pub async fn download(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let material = state
        .run(move |_, conn| Materials::with_content(conn, &caller, &id))
        .await?;
    let (Some(sha256), Some(size)) = (material.sha256.clone(), material.size_bytes) else {
        return Err(Error::NotFound {
            what: "material content",
        });
    };
    let size = u64::try_from(size).unwrap_or(0);
    let tag = format!("\"{sha256}\"");
    let headers = req.headers();
    let (mut response, not_modified) = tagged(headers, &tag);
    response
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        // The ETag lets a device check its copy; no shared cache may keep a course's files.
        .insert_header((header::CACHE_CONTROL, "private, no-cache"));
    if not_modified {
        return Ok(response.finish());
    }
    // A range of an older version would corrupt the file being resumed: If-Range must name
    // the current content, otherwise the whole file is sent.
    let range_header = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .filter(|_| if_range_allows(headers, &tag));
    let range = match byte_range(range_header, size) {
        RangeRequest::Full => 0..size,
        RangeRequest::Partial(range) => {
            response
                .status(actix_web::http::StatusCode::PARTIAL_CONTENT)
                .insert_header((
                    header::CONTENT_RANGE,
                    format!("bytes {}-{}/{size}", range.start, range.end - 1),
                ));
            range
        }
        RangeRequest::Unsatisfiable => return Err(Error::RangeNotSatisfiable { size }),
    };
    let content_type = material
        .content_type
        .as_deref()
        .unwrap_or(DEFAULT_CONTENT_TYPE);
    response
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type)
                .unwrap_or(HeaderValue::from_static(DEFAULT_CONTENT_TYPE)),
        ))
        .insert_header((
            header::CONTENT_DISPOSITION,
            content_disposition(material.file_name.as_deref().unwrap_or("material")),
        ))
        // Compressing a file would change its length and break ranges; `api::app` strips this
        // marker again after the compression middleware has seen it.
        .insert_header((header::CONTENT_ENCODING, "identity"));
    let length = range.end - range.start;
    if req.method() == actix_web::http::Method::HEAD {
        return Ok(response.body(SizedStream::new(
            length,
            futures_util::stream::empty::<Result<web::Bytes, Error>>(),
        )));
    }
    let metrics = Arc::clone(&state.metrics);
    // Counted as the bytes go out: a download cut half-way counts what was sent.
    let stream = state
        .store
        .read(&sha256, size, Some(range))
        .await?
        .inspect_ok(move |chunk| metrics.material_sent(chunk.len() as u64));
    Ok(response.body(SizedStream::new(length, stream)))
}

/// One item of `GET /api/v1/me/materials`.
#[derive(Debug, Serialize)]
struct HeldMaterial {
    #[serde(flatten)]
    material: Material,
    content_url: String,
}

#[derive(Debug, Serialize)]
struct HeldMaterials {
    items: Vec<HeldMaterial>,
    count: usize,
    total_bytes: i64,
}

/// `GET /api/v1/me/materials`: every file this device should hold, with sizes and the total.
pub async fn held(
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
) -> Result<HttpResponse> {
    let rows = state
        .run(move |_, conn| Materials::held_by(conn, &caller))
        .await?;
    let total_bytes = rows.iter().filter_map(|m| m.size_bytes).sum();
    let items: Vec<HeldMaterial> = rows
        .into_iter()
        .map(|material| HeldMaterial {
            content_url: format!("/api/v1/materials/{}/content", material.id),
            material,
        })
        .collect();
    Ok(HttpResponse::Ok().json(HeldMaterials {
        count: items.len(),
        items,
        total_bytes,
    }))
}

/// What a Range header asks of a file of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RangeRequest {
    Full,
    Partial(Range<u64>),
    Unsatisfiable,
}

/// Reads a single byte range (`bytes=A-B`, `bytes=A-`, `bytes=-N`). A header we do not serve
/// (another unit, several ranges, bad syntax) is ignored and the whole file sent, as RFC 9110
/// allows; a well-formed range outside the file is unsatisfiable.
fn byte_range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.map(str::trim).and_then(|h| {
        h.get(..6)
            .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
            .map(|_| h[6..].trim())
    }) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Full;
    };
    let number = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial(size.saturating_sub(suffix)..size)
            }
        }
        // bytes=A-: from A to the end.
        (false, Some(start), None) if last.trim().is_empty() => {
            if start >= size {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial(start..size)
            }
        }
        (false, Some(start), Some(end)) if start <= end => {
            if start >= size {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial(start..end.saturating_add(1).min(size))
            }
        }
        _ => RangeRequest::Full,
    }
}

/// If-Range: only the current strong ETag lets the range through (a date or a weak tag never
/// does, so a changed file is always sent whole).
fn if_range_allows(headers: &HeaderMap, tag: &str) -> bool {
    match headers.get(header::IF_RANGE) {
        None => true,
        Some(value) => value.to_str().is_ok_and(|v| v.trim() == tag),
    }
}

/// `attachment` with an ASCII `filename` for old clients and the exact UTF-8 name in
/// `filename*` (RFC 6266, RFC 5987): "Bài giảng số 1.pdf" stays readable on every phone.
///
/// Names are checked when stored; one stored before that check is cleaned here: no characters
/// that reorder the name on screen, and no bare `.` or `..`.
fn content_disposition(file_name: &str) -> String {
    let cleaned: String = file_name
        .chars()
        .filter(|c| !crate::domain::text::is_bidi_control(*c))
        .collect();
    let file_name = if cleaned.chars().all(|c| c == '.') {
        "material"
    } else {
        cleaned.as_str()
    };
    let fallback: String = file_name
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'đ' => 'd',
            'Đ' => 'D',
            c if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::new();
    for byte in file_name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges_are_read_like_rfc_9110_says() {
        use RangeRequest::*;
        let r = |h: &str| byte_range(Some(h), 1000);
        assert_eq!(byte_range(None, 1000), Full);
        assert_eq!(r("bytes=0-0"), Partial(0..1));
        assert_eq!(r("bytes=999-999"), Partial(999..1000));
        assert_eq!(r("bytes=500-"), Partial(500..1000));
        assert_eq!(r("bytes=-1"), Partial(999..1000));
        assert_eq!(r("bytes=-5000"), Partial(0..1000));
        assert_eq!(r("bytes=990-5000"), Partial(990..1000));
        assert_eq!(
            r("Bytes = 1-2"),
            Full,
            "a space before = is not the bytes unit"
        );
        assert_eq!(r("BYTES=1-2"), Partial(1..3));
        assert_eq!(r("bytes=1000-"), Unsatisfiable);
        assert_eq!(r("bytes=1000-1001"), Unsatisfiable);
        assert_eq!(r("bytes=-0"), Unsatisfiable);
        assert_eq!(
            r("bytes=5-1"),
            Full,
            "an inverted range is invalid, so ignored"
        );
        assert_eq!(r("bytes=0-1,5-6"), Full, "several ranges are not served");
        assert_eq!(r("items=0-1"), Full);
        assert_eq!(r("bytes=a-b"), Full);
        assert_eq!(r("bytes=-"), Full);
        assert_eq!(r("bytes=+1-2"), Full);
        assert_eq!(byte_range(Some("bytes=-1"), 0), Unsatisfiable);
    }

    #[test]
    fn vietnamese_file_names_get_an_ascii_fallback_and_an_exact_utf8_name() {
        assert_eq!(
            content_disposition("Bài giảng số 1 – Đoàn.pdf"),
            "attachment; filename=\"Bai giang so 1 _ Doan.pdf\"; \
             filename*=UTF-8''B%C3%A0i%20gi%E1%BA%A3ng%20s%E1%BB%91%201%20%E2%80%93%20%C4%90o%C3%A0n.pdf"
        );
        assert_eq!(
            content_disposition("a\"b\\c.txt"),
            "attachment; filename=\"a_b_c.txt\"; filename*=UTF-8''a%22b%5Cc.txt"
        );
    }

    #[test]
    fn a_stored_name_that_reads_as_another_is_cleaned_on_the_way_out() {
        assert_eq!(
            content_disposition("hoa-don\u{202e}fdp.exe"),
            "attachment; filename=\"hoa-donfdp.exe\"; filename*=UTF-8''hoa-donfdp.exe"
        );
        assert_eq!(
            content_disposition(".."),
            "attachment; filename=\"material\"; filename*=UTF-8''material"
        );
    }

    #[test]
    fn entity_tags_compare_strongly_for_ranges_and_weakly_for_caching() {
        let mut headers = HeaderMap::new();
        assert!(if_range_allows(&headers, "\"abc\""));
        headers.insert(header::IF_RANGE, HeaderValue::from_static("\"abc\""));
        assert!(if_range_allows(&headers, "\"abc\""));
        headers.insert(header::IF_RANGE, HeaderValue::from_static("W/\"abc\""));
        assert!(!if_range_allows(&headers, "\"abc\""));
        headers.insert(
            header::IF_RANGE,
            HeaderValue::from_static("Sat, 28 Nov 2026 10:00:00 GMT"),
        );
        assert!(!if_range_allows(&headers, "\"abc\""));
    }
}
