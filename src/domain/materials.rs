//! Course materials (lecture PDFs, slide decks, videos): the catalogue records. A change of
//! content (hash or size) makes a new version so that devices know to fetch it again.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::access::{ensure_course_visible, ensure_named_course_visible, visible_courses};
use super::courses::Courses;
use super::text;
use super::values::{Checker, MAX_NAME_CHARS, path_id, resolve_id, serialize_ms};
use super::{
    Caller, PageRequest, Paged, Resource, SortRequest, find_live, inserted, live_of_courses,
    replaced, sorted_page, tombstone,
};
use crate::db::schema::materials;
use crate::db::{Backend, DbConn, next_revision, now_ms};
use crate::error::{Error, Result};

pub const KINDS: [&str; 6] = ["pdf", "slides", "video", "audio", "document", "other"];
const SORTS: [&str; 3] = ["title", "created_at", "updated_at"];

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = materials, treat_none_as_null = true)]
pub struct Material {
    pub id: String,
    pub course_id: String,
    pub title: String,
    pub kind: String,
    pub language: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    pub version: i32,
    pub rev: i64,
    #[serde(serialize_with = "serialize_ms")]
    pub created_at: i64,
    #[serde(serialize_with = "serialize_ms")]
    pub updated_at: i64,
    #[serde(skip)]
    pub deleted_at: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaterialInput {
    pub id: Option<String>,
    pub course_id: String,
    pub title: String,
    pub kind: String,
    pub language: Option<String>,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaterialFilter {
    pub course_id: Option<String>,
    pub kind: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

pub struct Materials;

impl Materials {
    /// Tombstones every live material of a course (the course is being deleted).
    pub fn tombstone_of_course(conn: &mut DbConn, course_id: &str, now: i64) -> Result<()> {
        super::tombstone_of_course!(conn, materials, course_id, now)
    }

    /// Checks an input and makes the record it describes, without taking a revision (`rev` is
    /// the existing one, or 0 for a new record). Content fields (`file_name`, `content_type`,
    /// `size_bytes`, `sha256`) left out keep their current values, so that editing a title
    /// does not detach the stored file.
    fn validate(
        conn: &mut DbConn,
        input: MaterialInput,
        existing: Option<&Material>,
    ) -> Result<Material> {
        let mut check = Checker::new();
        let course_id = check.id("course_id", &input.course_id);
        if let Some(existing) = existing
            && existing.course_id != course_id
        {
            check.fail(
                "course_id",
                "immutable",
                "a material cannot move to another course",
            );
        }
        let title = check.text("title", &input.title, MAX_NAME_CHARS);
        if title.chars().any(text::is_bidi_control) {
            check.fail("title", "invalid_characters", BIDI_REFUSED);
        }
        let kind = check.one_of("kind", &input.kind, &KINDS);
        // An omitted language keeps the current one (Vietnamese for a new material).
        let current_language = existing.map_or("vi", |m| m.language.as_str());
        let language = check.text(
            "language",
            input.language.as_deref().unwrap_or(current_language),
            10,
        );
        if !language
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '-')
        {
            check.fail(
                "language",
                "invalid_language",
                "must be a language tag such as vi or en",
            );
        }
        let kept = |field: Option<String>, current: fn(&Material) -> Option<String>| {
            field.or_else(|| existing.and_then(current))
        };
        let file_name = kept(input.file_name, |m| m.file_name.clone());
        let file_name = check.opt_text("file_name", file_name.as_deref(), 255);
        if let Some(problem) = file_name.as_deref().and_then(file_name_problem) {
            check.fail("file_name", "invalid_file_name", problem);
        }
        let content_type = kept(input.content_type, |m| m.content_type.clone());
        let content_type = check.opt_text("content_type", content_type.as_deref(), 100);
        let size_bytes = input
            .size_bytes
            .or_else(|| existing.and_then(|m| m.size_bytes));
        if let Some(size) = size_bytes
            && size < 0
        {
            check.fail("size_bytes", "out_of_range", "must not be negative");
        }
        let sha256 =
            kept(input.sha256, |m| m.sha256.clone()).map(|h| h.trim().to_ascii_lowercase());
        if sha256
            .as_deref()
            .is_some_and(|h| h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()))
        {
            check.fail("sha256", "invalid_hash", "must be 64 hexadecimal digits");
        }
        let id = resolve_id(
            &mut check,
            existing.map(|m| m.id.as_str()),
            input.id.as_deref(),
        );
        check.finish()?;
        Courses::find(conn, &course_id)
            .map_err(|_| Error::invalid_field("course_id", "unknown_course", "no such course"))?;
        let version = match existing {
            None => 1,
            Some(old) if old.sha256 != sha256 || old.size_bytes != size_bytes => old.version + 1,
            Some(old) => old.version,
        };
        let now = now_ms();
        Ok(Material {
            id,
            course_id,
            title,
            kind,
            language,
            file_name,
            content_type,
            size_bytes,
            sha256,
            version,
            rev: existing.map_or(0, |m| m.rev),
            created_at: existing.map_or(now, |m| m.created_at),
            updated_at: now,
            deleted_at: None,
        })
    }

    fn build(
        conn: &mut DbConn,
        input: MaterialInput,
        existing: Option<&Material>,
    ) -> Result<Material> {
        let mut row = Self::validate(conn, input, existing)?;
        row.rev = next_revision(conn)?;
        Ok(row)
    }

    /// The input of a material uploaded to a course: the query's metadata and the stored
    /// content. Title and kind default to what the file name and type suggest.
    pub fn upload_input(
        course_id: &str,
        meta: &UploadMeta,
        content_type: &str,
        content: Option<&StoredContent>,
    ) -> MaterialInput {
        MaterialInput {
            id: meta.id.clone(),
            course_id: course_id.to_owned(),
            title: meta
                .title
                .clone()
                .unwrap_or_else(|| title_from_file_name(&meta.file_name)),
            kind: meta
                .kind
                .clone()
                .unwrap_or_else(|| infer_kind(&meta.file_name, content_type).to_owned()),
            language: meta.language.clone(),
            file_name: Some(meta.file_name.clone()),
            content_type: Some(content_type.to_owned()),
            // Placeholders before the upload: they only have to pass validation.
            size_bytes: Some(content.map_or(1, |c| c.size_bytes)),
            sha256: Some(content.map_or_else(|| "0".repeat(64), |c| c.sha256.clone())),
        }
    }

    /// Refuses an upload before its body is read: only admins and the course's organisers, only
    /// to a course that exists (and that they see),
    /// only with valid metadata and a fresh id.
    pub fn check_upload(conn: &mut DbConn, caller: &Caller, input: MaterialInput) -> Result<()> {
        caller.manages.require_some()?;
        Courses::find_visible(conn, caller, &path_id(&input.course_id, "course")?)?;
        if let Some(id) = &input.id
            && materials::table.find(id).count().get_result::<i64>(conn)? > 0
        {
            return Err(Error::conflict(
                "already_exists",
                "a material with this id already exists",
            ));
        }
        Self::validate(conn, input, None).map(drop)
    }

    /// Refuses a content replacement before its body is read.
    pub fn check_replace(
        conn: &mut DbConn,
        caller: &Caller,
        id: &str,
        expected_rev: Option<i64>,
        file_name: Option<&str>,
    ) -> Result<()> {
        let existing = Self::find_to_change(conn, caller, id, expected_rev)?;
        let mut input = Self::input_of(&existing);
        input.file_name = file_name.map(str::to_owned);
        Self::validate(conn, input, Some(&existing)).map(drop)
    }

    /// Points a material at newly stored content: a new version when the content differs.
    pub fn replace_content(
        conn: &mut DbConn,
        caller: &Caller,
        id: &str,
        expected_rev: Option<i64>,
        file_name: Option<String>,
        content_type: Option<String>,
        content: &StoredContent,
    ) -> Result<Material> {
        let existing = Self::find_to_change(conn, caller, id, expected_rev)?;
        let mut input = Self::input_of(&existing);
        input.file_name = file_name;
        input.content_type = content_type;
        input.size_bytes = Some(content.size_bytes);
        input.sha256 = Some(content.sha256.clone());
        replaced!(conn, materials, Self::build(conn, input, Some(&existing))?)
    }

    fn input_of(existing: &Material) -> MaterialInput {
        MaterialInput {
            id: None,
            course_id: existing.course_id.clone(),
            title: existing.title.clone(),
            kind: existing.kind.clone(),
            language: None,
            file_name: None,
            content_type: None,
            size_bytes: None,
            sha256: None,
        }
    }

    /// A material whose content the caller may download.
    pub fn with_content(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<Material> {
        let row = Self::find_visible(conn, caller, &path_id(id, Self::WHAT)?)?;
        match (&row.sha256, row.size_bytes) {
            (Some(_), Some(size)) if size >= 0 => Ok(row),
            _ => Err(Error::NotFound {
                what: "material content",
            }),
        }
    }

    /// The content hashes that live records use (what garbage collection must keep).
    pub fn referenced_hashes(conn: &mut DbConn) -> Result<std::collections::HashSet<String>> {
        Ok(materials::table
            .filter(materials::deleted_at.is_null())
            .filter(materials::sha256.is_not_null())
            .select(materials::sha256.assume_not_null())
            .distinct()
            .load::<String>(conn)?
            .into_iter()
            .collect())
    }

    /// Every material with content that the caller's device should hold, by course and title.
    pub fn held_by(conn: &mut DbConn, caller: &Caller) -> Result<Vec<Material>> {
        let mut query = materials::table
            .filter(materials::deleted_at.is_null())
            .filter(materials::sha256.is_not_null())
            .filter(materials::size_bytes.is_not_null())
            .into_boxed::<Backend>();
        if let Some(ids) = visible_courses(conn, caller)? {
            query = query.filter(materials::course_id.eq_any(ids));
        }
        Ok(query
            .order((
                materials::course_id.asc(),
                materials::title.asc(),
                materials::id.asc(),
            ))
            .select(Material::as_select())
            .load(conn)?)
    }
}

/// The metadata of an upload, from the query string.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadMeta {
    pub id: Option<String>,
    pub title: Option<String>,
    pub kind: Option<String>,
    pub language: Option<String>,
    pub file_name: String,
}

/// Content that has just been stored.
#[derive(Debug, Clone)]
pub struct StoredContent {
    pub sha256: String,
    pub size_bytes: i64,
}

/// The file name without its extension, as a default title.
pub fn title_from_file_name(file_name: &str) -> String {
    let stem = match file_name.rsplit_once('.') {
        Some((stem, _)) if !stem.trim().is_empty() => stem,
        _ => file_name,
    };
    // A file name may be longer than a title: the title is cut to fit, with an ellipsis. What
    // the file name may not contain is the file name's problem, not the derived title's.
    let stem: String = stem
        .chars()
        .filter(|c| !text::is_bidi_control(*c))
        .collect();
    let stem = text::clean(&stem);
    if stem.chars().count() <= MAX_NAME_CHARS {
        return stem;
    }
    let mut title: String = stem.chars().take(MAX_NAME_CHARS - 1).collect();
    title.truncate(title.trim_end().len());
    title.push('…');
    title
}

const BIDI_REFUSED: &str =
    "must not contain bidirectional control characters: they make a name read as another";

/// Why a name cannot be a material's file name (it is sent back in Content-Disposition and
/// saved under it on phones), if it cannot.
fn file_name_problem(name: &str) -> Option<&'static str> {
    if name.contains(['/', '\\']) || name.chars().any(char::is_control) {
        Some("must be a file name, not a path")
    } else if name.chars().all(|c| c == '.') {
        Some("must name a file, not a directory such as . or ..")
    } else if name.chars().any(text::is_bidi_control) {
        Some(BIDI_REFUSED)
    } else {
        None
    }
}

/// The material kind a file's type or extension suggests.
pub fn infer_kind(file_name: &str, content_type: &str) -> &'static str {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    let content_type = content_type.to_ascii_lowercase();
    match extension.as_str() {
        "pdf" => return "pdf",
        "ppt" | "pptx" | "odp" | "key" => return "slides",
        "doc" | "docx" | "odt" | "rtf" | "txt" => return "document",
        _ => {}
    }
    if content_type.starts_with("application/pdf") {
        "pdf"
    } else if content_type.starts_with("video/") {
        "video"
    } else if content_type.starts_with("audio/") {
        "audio"
    } else {
        match extension.as_str() {
            "mp4" | "mkv" | "webm" | "mov" | "avi" => "video",
            "mp3" | "m4a" | "ogg" | "wav" | "aac" => "audio",
            _ => "other",
        }
    }
}

/// The content type a file name suggests, for uploads that do not say (the CLI).
pub fn content_type_for(file_name: &str) -> &'static str {
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "pdf" => "application/pdf",
        "ppt" => "application/vnd.ms-powerpoint",
        "pptx" => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "doc" => "application/msword",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "odp" => "application/vnd.oasis.opendocument.presentation",
        "odt" => "application/vnd.oasis.opendocument.text",
        "txt" => "text/plain; charset=utf-8",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mkv" => "video/x-matroska",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

impl Resource for Materials {
    const WHAT: &'static str = "material";
    const COLLECTION: Option<super::collections::Collection> =
        Some(super::collections::Collection::Materials);
    const AUDIT: super::audit::AuditObject = super::audit::AuditObject::Material;
    type Record = Material;
    type Input = MaterialInput;
    type Filter = MaterialFilter;

    fn list(
        conn: &mut DbConn,
        caller: &Caller,
        filter: &MaterialFilter,
    ) -> Result<Paged<Material>> {
        let page = PageRequest::new(filter.limit, filter.offset)?;
        let sort = SortRequest::parse(filter.sort.as_deref(), "title", &SORTS)?;
        let mut filter_check = Checker::new();
        let course_id = filter_check.opt_id("course_id", filter.course_id.as_deref());
        let kind = filter_check.opt_one_of("kind", filter.kind.as_deref(), &KINDS);
        filter_check.finish()?;
        let visible = visible_courses(conn, caller)?;
        let query = || {
            let mut query = live_of_courses!(materials, &visible, &course_id);
            if let Some(kind) = &kind {
                query = query.filter(materials::kind.eq(kind.clone()));
            }
            query
        };
        Ok(
            sorted_page!(conn, query, page, sort, materials::id, Material, {
                "title" => [materials::title],
                "created_at" => [materials::created_at],
                "updated_at" => [materials::updated_at],
            }),
        )
    }

    fn find_visible(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<Material> {
        let material = find_live!(conn, materials, Material, id, Self::WHAT)?;
        ensure_course_visible(conn, caller, &material.course_id, Self::WHAT)?;
        Ok(material)
    }

    fn create(conn: &mut DbConn, caller: &Caller, input: MaterialInput) -> Result<Material> {
        caller.manages.require_some()?;
        ensure_named_course_visible(conn, caller, &input.course_id)?;
        inserted!(conn, materials, Self::build(conn, input, None)?)
    }

    fn update_found(
        conn: &mut DbConn,
        _caller: &Caller,
        existing: Material,
        input: MaterialInput,
    ) -> Result<Material> {
        replaced!(conn, materials, Self::build(conn, input, Some(&existing))?)
    }

    fn delete_found(conn: &mut DbConn, _caller: &Caller, existing: Material) -> Result<()> {
        let now = now_ms();
        tombstone!(conn, materials, &existing.id, now)?;
        Ok(())
    }
}

// Reads for the sync feed

impl Materials {
    /// The materials of the courses, removed ones included.
    pub fn ids_of_courses(conn: &mut DbConn, courses: &[String]) -> Result<Vec<String>> {
        Ok(materials::table
            .filter(materials::course_id.eq_any(courses))
            .select(materials::id)
            .load(conn)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_titles_follow_the_file() {
        assert_eq!(
            infer_kind("Bài giảng.PDF", "application/octet-stream"),
            "pdf"
        );
        assert_eq!(
            infer_kind("slide.pptx", "application/octet-stream"),
            "slides"
        );
        assert_eq!(infer_kind("clip", "video/mp4"), "video");
        assert_eq!(infer_kind("clip.mp4", "application/octet-stream"), "video");
        assert_eq!(infer_kind("ghi-am.m4a", "audio/mp4"), "audio");
        assert_eq!(infer_kind("data.bin", "application/octet-stream"), "other");
        assert_eq!(title_from_file_name("Bài giảng số 1.pdf"), "Bài giảng số 1");
        assert_eq!(title_from_file_name(".profile"), ".profile");
        assert_eq!(title_from_file_name("README"), "README");
        let long = format!("{}.pdf", "Bài giảng số một ".repeat(14));
        let title = title_from_file_name(&long);
        assert_eq!(title.chars().count(), MAX_NAME_CHARS);
        assert!(title.ends_with('…'), "{title}");
        assert!(long.starts_with(title.trim_end_matches('…')));
        assert_eq!(content_type_for("Video.MP4"), "video/mp4");
        assert_eq!(content_type_for("x"), "application/octet-stream");
    }
}
