//! The web apps' files: `web/` embedded in the binary at build time (read from disk in debug
//! builds) and served beside the API. `/` is the staff console (`web/console/index.html`, its
//! files under `/console/`), `/app/` the field app (`web/app`); `/shared/` holds the modules the
//! apps share and `/vendor/` the vendored browser libraries.
//!
//! Every file has a strong ETag (from its SHA-256) and is revalidated (`no-cache`), except when
//! asked for with `?v=<its hash>`: that URL names one version for ever, so it is cached for a
//! year. The service worker (`app/sw.js`) is sent with the build's id and the list of files with
//! their hashes written into it, so that any change to any file changes the worker, and the
//! browser installs the new version and fetches exactly the files that changed.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

use super::extractors::tagged;
use super::routes::method_not_allowed;
use crate::error::Error;

#[derive(RustEmbed)]
#[folder = "web/"]
struct WebFiles;

/// The folders of `web/` that are served, each under its own name.
const SERVED_AREAS: [&str; 4] = ["app", "console", "shared", "vendor"];

/// The folders the field app keeps for offline use (its service worker's list): not the
/// console, which is used online.
const OFFLINE_AREAS: [&str; 3] = ["app", "shared", "vendor"];

/// The console's start page, served at `/`.
const CONSOLE_START: &str = "console/index.html";

/// The service worker, whose text carries the build's id and file list.
const SERVICE_WORKER: &str = "app/sw.js";

/// No inline script or style, nothing from another origin; `blob:` for the materials a device
/// keeps offline (opened as object URLs) and the camera's still frames.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; media-src 'self' blob:; font-src 'self'; connect-src 'self'; \
     worker-src 'self'; manifest-src 'self'; frame-src 'self' blob:; object-src 'self' blob:; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

pub fn configure(config: &mut web::ServiceConfig) {
    let only_get = || web::to(|| async { method_not_allowed("GET, HEAD".into()) });
    config.service(
        web::resource("/")
            .route(web::get().to(console_start))
            .route(web::head().to(console_start))
            .default_service(only_get()),
    );
    config.service(
        web::resource("/app")
            .route(web::get().to(to_field_app))
            .route(web::head().to(to_field_app))
            .default_service(only_get()),
    );
    config.service(
        web::resource("/{area:app|console|shared|vendor}/{path:.*}")
            .route(web::get().to(file))
            .route(web::head().to(file))
            .default_service(only_get()),
    );
}

/// `/app`: the field app's start page.
async fn to_field_app() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/app/"))
        .finish()
}

/// `/`: the staff console's start page.
async fn console_start(req: HttpRequest) -> Result<HttpResponse, Error> {
    serve(&req, CONSOLE_START.to_owned())
}

/// A file of `web/`, or 404.
async fn file(req: HttpRequest, path: web::Path<(String, String)>) -> Result<HttpResponse, Error> {
    let (area, rest) = path.into_inner();
    let name = embedded_name(&area, &rest).ok_or(Error::NotFound { what: "file" })?;
    serve(&req, name)
}

/// The embedded file `name` with its ETag, caching and policy headers.
fn serve(req: &HttpRequest, name: String) -> Result<HttpResponse, Error> {
    let file = WebFiles::get(&name).ok_or(Error::NotFound { what: "file" })?;
    let mime = file.metadata.mimetype().to_owned();
    let (body, hash) = if name == SERVICE_WORKER {
        let files: Vec<(String, String)> = served_files().collect();
        let text = String::from_utf8_lossy(&file.data)
            .replace("__BUILD__", &build_id(&files))
            .replace("__ASSETS__", &asset_list(&files));
        let hash = short_hash(&Sha256::digest(text.as_bytes()).into());
        (text.into_bytes(), hash)
    } else {
        (
            file.data.into_owned(),
            short_hash(&file.metadata.sha256_hash()),
        )
    };
    let tag = format!("\"{hash}\"");
    let versioned = query_version(req.query_string()) == Some(hash.as_str());
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let (mut response, unchanged) = tagged(req.headers(), &tag);
    response
        .insert_header((header::CACHE_CONTROL, cache))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((
            header::HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(self), microphone=(), geolocation=()"),
        ));
    if unchanged {
        return Ok(response.finish());
    }
    let content_type = if mime.starts_with("text/") || mime.ends_with("javascript") {
        format!("{mime}; charset=utf-8")
    } else {
        mime
    };
    Ok(response.content_type(content_type).body(body))
}

/// The embedded file a request names: `app/` alone is the start page; anything that could step
/// out of its folder is nothing.
fn embedded_name(area: &str, rest: &str) -> Option<String> {
    if !SERVED_AREAS.contains(&area) {
        return None;
    }
    if area == "app" && rest.is_empty() {
        return Some("app/index.html".into());
    }
    let safe = !rest.is_empty()
        && !rest.contains('\\')
        && rest
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..");
    safe.then(|| format!("{area}/{rest}"))
}

fn query_version(query: &str) -> Option<&str> {
    query.split('&').find_map(|pair| pair.strip_prefix("v="))
}

fn short_hash(digest: &[u8; 32]) -> String {
    digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Every served file with its hash, as the service worker's list: `[["/app/x.js", "hash"], ...]`
/// (the worker itself excluded; the start page as `/app/`).
fn asset_list(files: &[(String, String)]) -> String {
    let assets: Vec<(String, &String)> = files
        .iter()
        .filter(|(name, _)| name != SERVICE_WORKER)
        .map(|(name, hash)| {
            let url = if name == "app/index.html" {
                "/app/".to_owned()
            } else {
                format!("/{name}")
            };
            (url, hash)
        })
        .collect();
    serde_json::to_string(&assets).unwrap_or_else(|_| "[]".into())
}

/// One id for the whole set of files: changes whenever any served file does.
fn build_id(files: &[(String, String)]) -> String {
    let mut hasher = Sha256::new();
    for (name, hash) in files {
        hasher.update(name.as_bytes());
        hasher.update(hash.as_bytes());
    }
    short_hash(&hasher.finalize().into())
}

/// The files the field app keeps offline (`app/`, `shared/`, `vendor/`) with their short
/// hashes, in name order.
fn served_files() -> impl Iterator<Item = (String, String)> {
    let mut names: Vec<String> = WebFiles::iter()
        .map(|name| name.into_owned())
        .filter(|name| {
            OFFLINE_AREAS
                .iter()
                .any(|area| name.starts_with(&format!("{area}/")))
        })
        .collect();
    names.sort();
    names.into_iter().filter_map(|name| {
        let file = WebFiles::get(&name)?;
        Some((name, short_hash(&file.metadata.sha256_hash())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_page_is_the_field_app_index() {
        assert_eq!(embedded_name("app", "").as_deref(), Some("app/index.html"));
        assert_eq!(
            embedded_name("app", "main.js").as_deref(),
            Some("app/main.js")
        );
        assert_eq!(
            embedded_name("shared", "api.js").as_deref(),
            Some("shared/api.js")
        );
    }

    #[test]
    fn paths_that_step_out_of_their_folder_name_nothing() {
        for rest in ["../Cargo.toml", "a/../../b", "./x", "a//b", "a\\b", "x/"] {
            assert_eq!(embedded_name("app", rest), None, "{rest}");
        }
        assert_eq!(embedded_name("tsconfig.json", "x"), None);
    }

    #[test]
    fn a_version_is_read_from_the_query() {
        assert_eq!(query_version("v=abc"), Some("abc"));
        assert_eq!(query_version("x=1&v=abc"), Some("abc"));
        assert_eq!(query_version("x=1"), None);
    }

    #[test]
    fn every_served_file_is_listed_for_the_service_worker_but_the_worker() {
        let files: Vec<(String, String)> = served_files().collect();
        let list: Vec<(String, String)> = serde_json::from_str(&asset_list(&files)).unwrap();
        assert!(list.iter().any(|(url, _)| url == "/app/"));
        assert!(list.iter().all(|(url, _)| url != "/app/sw.js"));
        assert!(list.iter().all(|(_, hash)| hash.len() == 16));
        assert!(list.iter().all(|(url, _)| !url.starts_with("/console/")));
    }
}
