//! Roster import over HTTP. The file is the request body, either raw (`Content-Type: text/csv`,
//! the XLSX media type or `application/octet-stream`) or as the `file` part of a
//! `multipart/form-data` upload (what a browser form sends). The format is decided by the bytes.

use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::api::error::payload_error;
use crate::api::extractors::Authenticated;
use crate::api::state::AppState;
use crate::domain::imports;
use crate::error::{Error, Result};
use crate::sync::writer;

/// The largest roster accepted: a province's 10,000-row sheet is about 1 MB as CSV.
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Defaults to true: a dry run reports and writes nothing.
    pub dry_run: Option<bool>,
    pub course_id: Option<String>,
}

pub async fn people(
    req: HttpRequest,
    state: web::Data<AppState>,
    Authenticated(caller): Authenticated,
    query: web::Query<ImportQuery>,
    payload: web::Payload,
) -> Result<HttpResponse> {
    caller.require_manager()?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !matches!(
        essence.as_str(),
        "text/csv" | "application/octet-stream" | "multipart/form-data"
    ) && essence != imports::XLSX_MEDIA_TYPE
    {
        return Err(Error::UnsupportedMediaType {
            message: format!(
                "send the roster as text/csv, {}, application/octet-stream or \
                 multipart/form-data (part \"file\")",
                imports::XLSX_MEDIA_TYPE
            ),
        });
    }
    let body = payload
        .to_bytes_limited(MAX_IMPORT_BYTES)
        .await
        .map_err(|_| Error::PayloadTooLarge {
            message: format!("the file is larger than {MAX_IMPORT_BYTES} bytes"),
        })?
        .map_err(|e| match e.as_error::<PayloadError>() {
            Some(e) => payload_error(e, "unreadable_body"),
            None => Error::bad_request(
                "unreadable_body",
                format!("the body could not be read: {e}"),
            ),
        })?;
    let file = if essence == "multipart/form-data" {
        multipart_file(&body, &content_type)?
    } else {
        body.to_vec()
    };
    let ImportQuery { dry_run, course_id } = query.into_inner();
    let dry_run = dry_run.unwrap_or(true);
    // A dry run only reads, so it does not hold SQLite's write lock while it checks the rows.
    let report = if dry_run {
        state
            .run(move |_, conn| {
                imports::check(conn, &caller, &file, course_id.as_deref(), &mut |_, _| {})
                    .map(|checked| checked.report)
            })
            .await?
    } else {
        state
            .write(move |state, conn| {
                let checked =
                    imports::check(conn, &caller, &file, course_id.as_deref(), &mut |_, _| {})?;
                let (report, enrollments) = imports::apply(conn, checked)?;
                writer::enroll(conn, &caller, &state.clock, enrollments)?;
                imports::record_applied(conn, &caller, &report)?;
                Ok(report)
            })
            .await?
    };
    Ok(HttpResponse::Ok().json(report))
}

/// The `file` part (or else the first part with a file name) of a multipart/form-data body.
fn multipart_file(body: &[u8], content_type: &str) -> Result<Vec<u8>> {
    let malformed = |why: &str| Error::bad_request("malformed_multipart", why.to_owned());
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| malformed("the multipart Content-Type has no boundary"))?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(start) = find(rest, &delimiter) {
        rest = &rest[start + delimiter.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let Some(end) = find(rest, &delimiter) else {
            return Err(malformed("the multipart body is not terminated"));
        };
        let part = rest[..end].strip_prefix(b"\r\n").unwrap_or(&rest[..end]);
        let part = part.strip_suffix(b"\r\n").unwrap_or(part);
        let Some(split) = find(part, b"\r\n\r\n") else {
            return Err(malformed("a multipart part has no header"));
        };
        let headers = String::from_utf8_lossy(&part[..split]).to_ascii_lowercase();
        parts.push((headers, &part[split + 4..]));
    }
    let chosen = parts
        .iter()
        .find(|(headers, _)| headers.contains("name=\"file\""))
        .or_else(|| {
            parts
                .iter()
                .find(|(headers, _)| headers.contains("filename="))
        })
        .ok_or_else(|| malformed("no part named \"file\" in the upload"))?;
    Ok(chosen.1.to_vec())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_part_of_a_multipart_upload_is_taken() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\
Content-Type: text/csv\r\n\r\nSTT,H\xe1\xbb\x8d\r\n1,x\r\n--XyZ--\r\n";
        let file = multipart_file(body, "multipart/form-data; boundary=XyZ").unwrap();
        assert_eq!(file, "STT,Họ\r\n1,x".as_bytes());
        assert!(multipart_file(body, "multipart/form-data").is_err());
        assert!(multipart_file(b"--XyZ\r\nno end", "multipart/form-data; boundary=XyZ").is_err());
    }
}
