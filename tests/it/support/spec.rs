//! Contract checks against `api-spec/openapi.yaml`.
//!
//! The spec is the public contract: tests use this module to prove that the
//! app's routes and the spec's operations are the same set, and that every
//! response body a test receives matches the schema the spec documents for it.
//!
//! OpenAPI 3.1 schemas are JSON Schema 2020-12, so `jsonschema` validates them
//! directly. Response objects (and their `$ref`s to `#/components/responses/…`)
//! are OpenAPI, not JSON Schema, so they are resolved here.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use jsonschema::{Draft, Validator};
use serde_json::{Map, Value, json};

/// The keys of a path item that are operations; everything else
/// (`parameters`, `summary`, `servers`, …) is not a route.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Bounds `$ref` chains so a cycle in the spec fails instead of hanging.
const MAX_REF_HOPS: usize = 32;

/// How much of an invalid body to echo back in an error message.
const BODY_PREVIEW_CHARS: usize = 2000;

/// The parsed spec plus one compiled validator per documented response.
pub struct Spec {
    doc: Value,
    /// Keyed by the JSON pointer of the resolved response object, so responses
    /// shared through `#/components/responses/…` compile once.
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

impl Spec {
    /// Loads `api-spec/openapi.yaml` once per test binary and shares it.
    pub fn get() -> &'static Self {
        static SPEC: OnceLock<Spec> = OnceLock::new();
        SPEC.get_or_init(|| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("api-spec/openapi.yaml");
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let doc: Value = serde_norway::from_str(&text)
                .unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()));
            // 3.0 uses a different schema dialect (`nullable`, no type arrays)
            // that would validate silently wrong as 2020-12.
            let version = doc["openapi"].as_str().unwrap_or_default();
            assert!(
                version.starts_with("3.1."),
                "{}: expected `openapi: 3.1.x`, found {:?}",
                path.display(),
                doc["openapi"],
            );
            assert!(
                doc["paths"].is_object(),
                "{}: missing `paths` object",
                path.display(),
            );
            Self {
                doc,
                validators: Mutex::default(),
            }
        })
    }

    /// Every `(METHOD, path template)` the spec documents, sorted.
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut operations: Vec<_> = self
            .paths()
            .iter()
            .flat_map(|(template, item)| {
                METHODS
                    .iter()
                    .filter(|method| item.get(**method).is_some())
                    .map(|method| (method.to_ascii_uppercase(), template.clone()))
            })
            .collect();
        operations.sort();
        operations
    }

    /// Every `(METHOD, path template)` whose request body the spec documents as
    /// `application/json` only, sorted.
    pub fn json_body_operations(&self) -> Vec<(String, String)> {
        let mut operations: Vec<_> = self
            .operations()
            .into_iter()
            .filter(|(method, template)| {
                let content =
                    &self.paths()[template][method.to_ascii_lowercase()]["requestBody"]["content"];
                content
                    .as_object()
                    .is_some_and(|types| types.keys().eq(["application/json"]))
            })
            .collect();
        operations.sort();
        operations
    }

    /// Finds the documented operation serving a concrete request path.
    ///
    /// The query string is ignored and `{param}` matches one non-empty segment.
    /// When several templates match, the one with a literal segment at the
    /// first position where they differ wins (`/units/mine` over `/units/{id}`).
    pub fn match_operation(&self, method: &str, path: &str) -> Option<(String, String)> {
        let method = method.to_ascii_lowercase();
        if !METHODS.contains(&method.as_str()) {
            return None;
        }
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let segments: Vec<&str> = path.split('/').collect();
        self.paths()
            .iter()
            .filter(|(_, item)| item.get(&method).is_some())
            .filter_map(|(template, _)| Some((param_positions(template, &segments)?, template)))
            // `false` (literal) sorts before `true` (parameter), so `min` picks
            // the most literal match; the template breaks ties deterministically.
            .min()
            .map(|(_, template)| (method.to_ascii_uppercase(), template.clone()))
    }

    /// Validates a JSON body against the `application/json` schema documented
    /// for `(method, path, status)`, falling back to `NXX` then `default`.
    pub fn validate_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), String> {
        let response = self.response(method, path, status)?;
        let validator = self
            .validator(&response.pointer)
            .map_err(|e| format!("{response}: {e}"))?;
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|error| {
                let at = error.instance_path().to_string();
                let at = if at.is_empty() { "(root)" } else { &at };
                format!("  - at {at}: {error}")
            })
            .collect();
        if errors.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{response}: body does not match the spec:\n{}\nbody: {}",
            errors.join("\n"),
            preview(body),
        ))
    }

    /// Checks only that `status` is documented (directly, as `NXX` or as
    /// `default`), for responses that carry no JSON body such as 204 or 304.
    pub fn check_status_documented(
        &self,
        method: &str,
        path: &str,
        status: u16,
    ) -> Result<(), String> {
        self.response(method, path, status).map(drop)
    }

    fn paths(&self) -> &Map<String, Value> {
        self.doc["paths"]
            .as_object()
            .expect("checked to be an object when loaded")
    }

    /// Locates the response object documented for a concrete request,
    /// following `$ref`s, using OpenAPI's precedence: exact code, range, default.
    fn response(&self, method: &str, path: &str, status: u16) -> Result<Response, String> {
        let (method, template) = self.match_operation(method, path).ok_or_else(|| {
            format!(
                "{} {path}: no operation in the spec matches this request",
                method.to_ascii_uppercase(),
            )
        })?;
        let lower = method.to_ascii_lowercase();
        let responses = &self.paths()[&template][&lower]["responses"];
        let code = status.to_string();
        let range = format!("{}XX", status / 100);
        let Some(key) = [code.as_str(), range.as_str(), "default"]
            .into_iter()
            .find(|key| responses.get(key).is_some())
        else {
            let documented: Vec<&str> = responses
                .as_object()
                .map(|map| map.keys().map(String::as_str).collect())
                .unwrap_or_default();
            return Err(format!(
                "{method} {path} (spec {method} {template}): status {status} is not documented \
                 (documented: {documented:?})",
            ));
        };
        let start = format!(
            "/paths/{}/{lower}/responses/{}",
            escape_pointer(&template),
            escape_pointer(key),
        );
        let pointer = self.resolve(&start).map_err(|e| {
            format!("{method} {path} (spec {method} {template}) status {status}: {e}")
        })?;
        Ok(Response {
            method,
            path: path.to_owned(),
            template,
            status,
            pointer,
        })
    }

    /// Follows local `$ref`s from the object at `pointer` to the one they name.
    fn resolve(&self, pointer: &str) -> Result<String, String> {
        let mut pointer = pointer.to_owned();
        for _ in 0..MAX_REF_HOPS {
            let value = self
                .doc
                .pointer(&pointer)
                .ok_or_else(|| format!("#{pointer} does not exist in the spec"))?;
            let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
                return Ok(pointer);
            };
            pointer = reference
                .strip_prefix('#')
                .ok_or_else(|| format!("only local $refs are supported, found {reference:?}"))?
                .to_owned();
        }
        Err(format!(
            "$ref chain is longer than {MAX_REF_HOPS} hops, last at #{pointer} (a cycle?)"
        ))
    }

    /// Compiles (once) the `application/json` schema of the response at `pointer`.
    fn validator(&self, pointer: &str) -> Result<Arc<Validator>, String> {
        // A test that panicked elsewhere must not poison every later check.
        let mut cache = self
            .validators
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(validator) = cache.get(pointer) {
            return Ok(Arc::clone(validator));
        }
        let schema = self
            .doc
            .pointer(pointer)
            .and_then(|response| {
                response
                    .get("content")?
                    .get("application/json")?
                    .get("schema")
            })
            .ok_or_else(|| {
                "a JSON body was received but the response documents no application/json schema"
                    .to_owned()
            })?;
        // Embedding the schema next to the spec's `components` lets jsonschema
        // resolve `#/components/schemas/…` refs exactly as written in the spec.
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": "#/$defs/response",
            "$defs": { "response": schema },
            "components": self.doc["components"],
        });
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            // 2020-12 treats `format` as an annotation by default; we want it
            // asserted, and an unknown (e.g. misspelled) format to be an error
            // rather than silently accepting everything.
            .should_validate_formats(true)
            .should_ignore_unknown_formats(false)
            // OpenAPI's own numeric formats: jsonschema only applies format
            // checks to strings, so these are accepted but cannot be enforced.
            .with_format("int32", |_| true)
            .with_format("int64", |_| true)
            .with_format("float", |_| true)
            .with_format("double", |_| true)
            .build(&root)
            .map_err(|e| format!("cannot compile the response schema: {e}"))?;
        let validator = Arc::new(validator);
        cache.insert(pointer.to_owned(), Arc::clone(&validator));
        Ok(validator)
    }
}

/// Where a response was found, for error messages and the validator cache.
struct Response {
    method: String,
    path: String,
    template: String,
    status: u16,
    pointer: String,
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} -> {} (spec {} {}, #{})",
            self.method, self.path, self.status, self.method, self.template, self.pointer,
        )
    }
}

/// For each segment, whether `template` used a parameter there; `None` when
/// the template does not match the concrete `segments`.
fn param_positions(template: &str, segments: &[&str]) -> Option<Vec<bool>> {
    let parts: Vec<&str> = template.split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    parts
        .iter()
        .zip(segments)
        .map(|(part, segment)| {
            if part.starts_with('{') && part.ends_with('}') {
                (!segment.is_empty()).then_some(true)
            } else {
                (part == segment).then_some(false)
            }
        })
        .collect()
}

/// Escapes one JSON pointer reference token (RFC 6901).
fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The body as compact JSON, cut short so a huge list does not drown the errors.
fn preview(body: &Value) -> String {
    let text = body.to_string();
    match text.char_indices().nth(BODY_PREVIEW_CHARS) {
        Some((cut, _)) => format!("{}… ({} bytes in total)", &text[..cut], text.len()),
        None => text,
    }
}
