//! Course materials (lecture PDFs, slide decks, videos): the catalogue records. A change of
//! content (hash or size) makes a new version so that devices know to fetch it again.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::access::visible_courses;
use super::courses::Courses;
use super::people::resolve_id;
use super::values::{Checker, MAX_NAME_CHARS, path_id, serialize_ms};
use super::{Caller, PageRequest, Paged, Resource, SortRequest, check_revision, sorted, tombstone};
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
    fn find_visible(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<Material> {
        let row = materials::table
            .find(id)
            .filter(materials::deleted_at.is_null())
            .select(Material::as_select())
            .first(conn)
            .optional()?
            .ok_or(Error::NotFound { what: "material" })?;
        match visible_courses(conn, caller)? {
            Some(ids) if !ids.contains(&row.course_id) => Err(Error::NotFound { what: "material" }),
            _ => Ok(row),
        }
    }

    fn build(
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
        let file_name = check.opt_text("file_name", input.file_name.as_deref(), 255);
        if file_name
            .as_deref()
            .is_some_and(|f| f.contains('/') || f.contains('\\'))
        {
            check.fail(
                "file_name",
                "invalid_file_name",
                "must be a file name, not a path",
            );
        }
        let content_type = check.opt_text("content_type", input.content_type.as_deref(), 100);
        if let Some(size) = input.size_bytes
            && size < 0
        {
            check.fail("size_bytes", "out_of_range", "must not be negative");
        }
        let sha256 = input
            .sha256
            .as_deref()
            .map(|h| h.trim().to_ascii_lowercase());
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
            Some(old) if old.sha256 != sha256 || old.size_bytes != input.size_bytes => {
                old.version + 1
            }
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
            size_bytes: input.size_bytes,
            sha256,
            version,
            rev: next_revision(conn)?,
            created_at: existing.map_or(now, |m| m.created_at),
            updated_at: now,
            deleted_at: None,
        })
    }
}

impl Resource for Materials {
    const WHAT: &'static str = "material";
    const COLLECTION: &'static str = "materials";
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
            let mut query = materials::table
                .filter(materials::deleted_at.is_null())
                .into_boxed::<Backend>();
            if let Some(ids) = &visible {
                query = query.filter(materials::course_id.eq_any(ids.clone()));
            }
            if let Some(course) = &course_id {
                query = query.filter(materials::course_id.eq(course.clone()));
            }
            if let Some(kind) = &kind {
                query = query.filter(materials::kind.eq(kind.clone()));
            }
            query
        };
        let total = query().count().get_result(conn)?;
        let items = sorted!(query(), sort, materials::id, {
            "title" => [materials::title],
            "created_at" => [materials::created_at],
            "updated_at" => [materials::updated_at],
        })
        .select(Material::as_select())
        .limit(page.limit)
        .offset(page.offset)
        .load(conn)?;
        Ok(Paged {
            items,
            total,
            limit: page.limit,
            offset: page.offset,
        })
    }

    fn get(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<Material> {
        Self::find_visible(conn, caller, &path_id(id, Self::WHAT)?)
    }

    fn create(conn: &mut DbConn, caller: &Caller, input: MaterialInput) -> Result<Material> {
        caller.require_admin()?;
        let row = Self::build(conn, input, None)?;
        diesel::insert_into(materials::table)
            .values(&row)
            .execute(conn)?;
        Ok(row)
    }

    fn update(
        conn: &mut DbConn,
        caller: &Caller,
        id: &str,
        expected_rev: Option<i64>,
        input: MaterialInput,
    ) -> Result<Material> {
        let existing = Self::find_visible(conn, caller, &path_id(id, Self::WHAT)?)?;
        caller.require_admin()?;
        check_revision(Self::WHAT, existing.rev, expected_rev)?;
        let row = Self::build(conn, input, Some(&existing))?;
        diesel::update(materials::table.find(&row.id))
            .set(&row)
            .execute(conn)?;
        Ok(row)
    }

    fn delete(
        conn: &mut DbConn,
        caller: &Caller,
        id: &str,
        expected_rev: Option<i64>,
    ) -> Result<()> {
        let existing = Self::find_visible(conn, caller, &path_id(id, Self::WHAT)?)?;
        caller.require_admin()?;
        check_revision(Self::WHAT, existing.rev, expected_rev)?;
        let now = now_ms();
        tombstone!(conn, materials, &existing.id, now)?;
        Ok(())
    }

    fn revision(record: &Material) -> i64 {
        record.rev
    }

    fn id(record: &Material) -> &str {
        &record.id
    }
}
