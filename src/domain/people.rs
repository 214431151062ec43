//! People: the cadres being trained (and anyone else on a roster). Names are stored in NFC with a
//! folded key for search and a given-name-first key for roster order.

use std::collections::{HashMap, HashSet};

use diesel::dsl::not;
use diesel::helper_types::Asc;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::access::{Manages, PersonalRecords, ensure_may_take_roll, visible_courses};
use super::attendance::AttendanceRecords;
use super::courses::Courses;
use super::enrollments::Enrollments;
use super::units::Units;
use super::users::Users;
use super::values::{Checker, MAX_NAME_CHARS, new_id, path_id, resolve_id, serialize_ms};
use super::{
    Caller, PageRequest, Paged, Resource, Role, SortRequest, find_live, inserted, ordered_page,
    personal, replaced, sorted_page, text, tombstone,
};
use crate::db::schema::{enrollments, people, person_unit_history};
use crate::db::{Backend, DbConn, next_revision, now_ms};
use crate::error::{Error, Result};

/// Positions in the Youth Union. A branch's (chi đoàn's) Secretary and Deputy are positions of
/// their own, not `secretary` in a branch: every level plans the training of its own cadres, and
/// a province training commune Secretaries must not find the branches' secretaries in its
/// target group.
pub const POSITIONS: [&str; 6] = [
    "secretary",
    "deputy_secretary",
    "committee_member",
    "member",
    "branch_secretary",
    "branch_deputy_secretary",
];
/// The positions of a branch: their holders belong to a branch (`position_fits_unit`).
pub const BRANCH_POSITIONS: [&str; 2] = ["branch_secretary", "branch_deputy_secretary"];
pub const GENDERS: [&str; 3] = ["male", "female", "other"];

/// Whether a person holding `position` may belong to a unit of `unit_kind` (None: no unit): a
/// branch's Secretary and Deputy belong to a branch (chi đoàn), or a commune's plan for its
/// branch secretaries would count someone it cannot place; every other position fits any unit.
pub fn position_fits_unit(position: &str, unit_kind: Option<&str>) -> bool {
    !BRANCH_POSITIONS.contains(&position) || unit_kind == Some(super::units::BRANCH)
}

/// The problem of a branch position outside a branch, as a stable code and a message.
pub const POSITION_NEEDS_BRANCH: (&str, &str) = (
    "position_needs_branch",
    "a branch Secretary or Deputy Secretary (Bí thư, Phó Bí thư chi đoàn) belongs to a branch: \
     choose a branch as the unit",
);
const SORTS: [&str; 4] = ["name", "birth_date", "created_at", "updated_at"];

/// The order of a roster: by given name first, as Vietnamese rosters read (`sort_key`), then by
/// full name, then by id so that namesakes keep one order from page to page.
pub type RosterOrder = (
    Asc<people::sort_key>,
    Asc<people::full_name>,
    Asc<people::id>,
);

pub fn roster_order() -> RosterOrder {
    (
        people::sort_key.asc(),
        people::full_name.asc(),
        people::id.asc(),
    )
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, Serialize)]
#[diesel(table_name = people, treat_none_as_null = true)]
pub struct Person {
    pub id: String,
    pub full_name: String,
    #[serde(skip)]
    pub name_key: String,
    #[serde(skip)]
    pub sort_key: String,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
    pub phone: Option<String>,
    pub position: String,
    pub unit_id: Option<String>,
    pub term: Option<String>,
    /// The day the person took their current position (their election), when known.
    pub position_since: Option<String>,
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
pub struct PersonInput {
    pub id: Option<String>,
    pub full_name: String,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
    pub phone: Option<String>,
    pub position: String,
    pub unit_id: Option<String>,
    pub term: Option<String>,
    pub position_since: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonFilter {
    /// Matches the name (ignoring case, diacritics and Unicode form) or the phone number.
    pub q: Option<String>,
    pub unit_id: Option<String>,
    pub position: Option<String>,
    /// Only people enrolled in this course.
    pub course_id: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A person as stored, for matching a roster's rows (`imports::OnRecord`).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = people)]
pub struct PersonOnRecord {
    pub id: String,
    pub full_name: String,
    /// The folded name (`text::fold`).
    pub name_key: String,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
    pub phone: Option<String>,
    pub position: String,
    pub unit_id: Option<String>,
    pub position_since: Option<String>,
}

/// A person and the unit they belong to.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = people)]
pub struct UnitMember {
    pub id: String,
    pub unit_id: Option<String>,
}

/// One person of a course's roster, as a trainer sees them before they are enrolled: who they
/// are and where they serve, without their contact details or birth date.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = people)]
pub struct RosterEntry {
    pub id: String,
    pub full_name: String,
    pub position: String,
    pub unit_id: Option<String>,
}

/// Whom a course's roster holds: the people of its organising unit and the units below it, or
/// everyone when the course names no organising unit. `roster_for_course` lists it (less those
/// enrolled); the one writer lets a course's trainers enroll only the people it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roster {
    Everyone,
    Units(HashSet<String>),
}

impl Roster {
    /// Whether the roster holds a (living) person who serves in `unit`.
    pub fn holds(&self, unit: Option<&str>) -> bool {
        match self {
            Roster::Everyone => true,
            Roster::Units(units) => unit.is_some_and(|unit| units.contains(unit)),
        }
    }
}

/// The rosters of courses, each given with its organising unit, from one read of the unit tree.
pub fn rosters(
    conn: &mut DbConn,
    courses: &[(String, Option<String>)],
) -> Result<HashMap<String, Roster>> {
    let roots: Vec<String> = courses
        .iter()
        .filter_map(|(_, unit)| unit.clone())
        .collect();
    let subtrees = Units::subtrees(conn, &roots)?;
    Ok(courses
        .iter()
        .map(|(course, unit)| {
            let roster = match unit {
                Some(unit) => Roster::Units(subtrees.get(unit).cloned().unwrap_or_default()),
                None => Roster::Everyone,
            };
            (course.clone(), roster)
        })
        .collect())
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterFilter {
    /// Matches the name, ignoring case, diacritics and Unicode form.
    pub q: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Vietnamese phone numbers in one form: `0` followed by nine digits (`+84`/`84` prefixes and
/// separators accepted on input).
pub fn normalize_phone(raw: &str) -> Option<String> {
    let digits: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect();
    let national = if let Some(rest) = digits.strip_prefix("+84") {
        format!("0{rest}")
    } else if digits.len() == 11 && digits.starts_with("84") {
        format!("0{}", &digits[2..])
    } else {
        digits
    };
    (national.len() == 10
        && national.starts_with('0')
        && national.chars().all(|c| c.is_ascii_digit()))
    .then_some(national)
}

pub struct People;

impl People {
    pub fn find(conn: &mut DbConn, id: &str) -> Result<Person> {
        find_live!(conn, people, Person, id, Self::WHAT)
    }

    /// The living people of the units (`None`: of every unit and of none), as a roster import
    /// matches its rows with them.
    pub fn on_record(conn: &mut DbConn, units: Option<&[String]>) -> Result<Vec<PersonOnRecord>> {
        let mut living = people::table
            .filter(people::deleted_at.is_null())
            .into_boxed::<Backend>();
        if let Some(units) = units {
            living = living.filter(people::unit_id.eq_any(units));
        }
        Ok(living.select(PersonOnRecord::as_select()).load(conn)?)
    }

    /// The people of the units (living or not), as a subquery of a query naming people (one
    /// statement).
    #[diesel::dsl::auto_type(no_type_alias)]
    pub fn ids_in_units_subquery(unit_ids: Vec<String>) -> _ {
        people::table
            .filter(people::unit_id.eq_any(unit_ids))
            .select(people::id.nullable())
    }

    /// The living people of the units, each with their unit (a merge moves them).
    pub fn members_of_units(conn: &mut DbConn, unit_ids: &[String]) -> Result<Vec<UnitMember>> {
        Ok(people::table
            .filter(people::unit_id.eq_any(unit_ids))
            .filter(people::deleted_at.is_null())
            .select(UnitMember::as_select())
            .load(conn)?)
    }

    /// How many living people belong to a unit (a unit in use is not deleted).
    pub fn count_in_unit(conn: &mut DbConn, unit_id: &str) -> Result<i64> {
        Ok(people::table
            .filter(people::unit_id.eq(unit_id))
            .filter(people::deleted_at.is_null())
            .count()
            .get_result(conn)?)
    }

    /// The people a course's trainer may add to it (a cadre who came without being enrolled):
    /// the living people of the organising unit and the units below it (everyone when the course
    /// names no organising unit), less those already enrolled (a withdrawn person may come back).
    /// Ordered as rosters are, given name first.
    pub fn roster_for_course(
        conn: &mut DbConn,
        caller: &Caller,
        course_id: &str,
        filter: &RosterFilter,
    ) -> Result<Paged<RosterEntry>> {
        let course_id = path_id(course_id, "course")?;
        let page = PageRequest::new(filter.limit, filter.offset)?;
        ensure_may_take_roll(conn, caller, &course_id)?;
        let course = Courses::find(conn, &course_id)?;
        let units = match rosters(conn, &[(course.id, course.organizing_unit_id)])?
            .into_values()
            .next()
        {
            Some(Roster::Units(units)) => Some(units.into_iter().collect::<Vec<_>>()),
            Some(Roster::Everyone) | None => None,
        };
        let query = || {
            let mut query = people::table
                .filter(people::deleted_at.is_null())
                // `NOT (id = ANY (…))`, not `id <> ALL (…)`: PostgreSQL hashes the first and
                // scans the whole subquery for every person with the second.
                .filter(not(people::id.eq_any(
                    Enrollments::people_following_subquery(course_id.clone()),
                )))
                .into_boxed::<Backend>();
            if let Some(units) = &units {
                query = query.filter(people::unit_id.eq_any(units.clone()));
            }
            if let Some(q) = &filter.q {
                query = query.filter(
                    people::name_key
                        .like(text::contains_pattern(q))
                        .escape('\\'),
                );
            }
            query
        };
        Ok(ordered_page!(
            conn,
            query,
            page,
            roster_order(),
            RosterEntry
        ))
    }

    /// Checks input and builds the stored row; an organiser keeps people within their subtree
    /// (422 `outside_your_unit`).
    fn build(
        conn: &mut DbConn,
        manages: &Manages,
        input: PersonInput,
        existing: Option<&Person>,
    ) -> Result<Person> {
        let mut check = Checker::new();
        let full_name = check.text("full_name", &input.full_name, MAX_NAME_CHARS);
        let birth_date = check.opt_date("birth_date", input.birth_date.as_deref());
        let gender = check.opt_one_of("gender", input.gender.as_deref(), &GENDERS);
        let phone = input
            .phone
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|raw| {
                normalize_phone(raw).unwrap_or_else(|| {
                    check.fail(
                        "phone",
                        "invalid_phone",
                        "must be a Vietnamese phone number (10 digits starting with 0)",
                    );
                    raw.to_owned()
                })
            });
        let position = check.one_of("position", &input.position, &POSITIONS);
        let unit_id = check.opt_id("unit_id", input.unit_id.as_deref());
        let term = check.opt_text("term", input.term.as_deref(), 20);
        let position_since = check.opt_date("position_since", input.position_since.as_deref());
        let id = resolve_id(
            &mut check,
            existing.map(|p| p.id.as_str()),
            input.id.as_deref(),
        );
        check.finish()?;
        let unit_kind = match &unit_id {
            Some(unit) => Some(
                Units::find(conn, unit)
                    .map_err(|_| Error::invalid_field("unit_id", "unknown_unit", "no such unit"))?
                    .kind,
            ),
            None => None,
        };
        if !position_fits_unit(&position, unit_kind.as_deref()) {
            let (code, message) = POSITION_NEEDS_BRANCH;
            return Err(Error::invalid_field("position", code, message));
        }
        manages.require_unit("unit_id", unit_id.as_deref())?;
        let now = now_ms();
        Ok(Person {
            name_key: text::fold(&full_name),
            sort_key: text::person_sort_key(&full_name),
            id,
            full_name,
            birth_date,
            gender,
            phone,
            position,
            unit_id,
            term,
            position_since,
            rev: next_revision(conn)?,
            created_at: existing.map_or(now, |p| p.created_at),
            updated_at: now,
            deleted_at: None,
        })
    }
}

impl Resource for People {
    const WHAT: &'static str = "person";
    const COLLECTION: Option<super::collections::Collection> =
        Some(super::collections::Collection::People);
    const AUDIT: super::audit::AuditObject = super::audit::AuditObject::Person;
    type Record = Person;
    type Input = PersonInput;
    type Filter = PersonFilter;

    fn list(conn: &mut DbConn, caller: &Caller, filter: &PersonFilter) -> Result<Paged<Person>> {
        let page = PageRequest::new(filter.limit, filter.offset)?;
        let sort = SortRequest::parse(filter.sort.as_deref(), "name", &SORTS)?;
        let mut filter_check = Checker::new();
        let unit_id = filter_check.opt_id("unit_id", filter.unit_id.as_deref());
        let position = filter_check.opt_one_of("position", filter.position.as_deref(), &POSITIONS);
        let course_id = filter_check.opt_id("course_id", filter.course_id.as_deref());
        filter_check.finish()?;
        let courses = visible_courses(conn, caller)?;
        let units = caller.manages.units().unwrap_or_default();
        let query = || {
            let mut query = people::table
                .filter(people::deleted_at.is_null())
                .into_boxed::<Backend>();
            match caller.role {
                Role::Admin => {}
                Role::Trainee => {
                    query = query.filter(people::id.nullable().eq(caller.person_id.clone()));
                }
                Role::Organiser => {
                    query = query.filter(people::unit_id.eq_any(units.clone()).or(
                        people::id.eq_any(Enrollments::people_of_courses_subquery(
                            courses.clone().unwrap_or_default(),
                        )),
                    ));
                }
                Role::Trainer => {
                    query =
                        query.filter(people::id.eq_any(Enrollments::people_of_courses_subquery(
                            courses.clone().unwrap_or_default(),
                        )));
                }
            }
            if let Some(q) = &filter.q {
                let digits: String = q.chars().filter(char::is_ascii_digit).collect();
                let by_name = people::name_key
                    .like(text::contains_pattern(q))
                    .escape('\\');
                query = if digits.len() >= 3 && digits.len() == q.trim().len() {
                    query.filter(by_name.or(people::phone.like(format!("%{digits}%"))))
                } else {
                    query.filter(by_name)
                };
            }
            if let Some(unit) = &unit_id {
                query = query.filter(people::unit_id.eq(unit.clone()));
            }
            if let Some(position) = &position {
                query = query.filter(people::position.eq(position.clone()));
            }
            if let Some(course) = &course_id {
                query = query.filter(people::id.eq_any(Enrollments::people_of_courses_subquery(
                    vec![course.clone()],
                )));
            }
            query
        };
        Ok(sorted_page!(conn, query, page, sort, people::id, Person, {
            "name" => [people::sort_key, people::full_name],
            "birth_date" => [people::birth_date],
            "created_at" => [people::created_at],
            "updated_at" => [people::updated_at],
        }))
    }

    fn find_visible(conn: &mut DbConn, caller: &Caller, id: &str) -> Result<Person> {
        let person = Self::find(conn, id)?;
        let visible = match caller.role {
            Role::Admin => true,
            Role::Trainee => caller.person_id.as_deref() == Some(person.id.as_str()),
            // The people of the subtree, and whoever is enrolled in one of its courses.
            Role::Organiser if caller.manages.covers(person.unit_id.as_deref()) => true,
            Role::Organiser | Role::Trainer => {
                let courses = visible_courses(conn, caller)?.unwrap_or_default();
                Enrollments::is_enrolled_in_any(conn, &person.id, &courses)?
            }
        };
        if visible {
            Ok(person)
        } else {
            Err(Error::NotFound { what: "person" })
        }
    }

    /// An organiser changes the people of their subtree only (a person they see through a
    /// course may belong to another unit).
    fn may_change(caller: &Caller, person: &Person) -> Result<()> {
        caller
            .manages
            .require_unit("unit_id", person.unit_id.as_deref())
    }

    fn create(conn: &mut DbConn, caller: &Caller, input: PersonInput) -> Result<Person> {
        let manages = &caller.manages;
        manages.require_some()?;
        inserted!(conn, people, Self::build(conn, manages, input, None)?)
    }

    fn update_found(
        conn: &mut DbConn,
        caller: &Caller,
        existing: Person,
        input: PersonInput,
    ) -> Result<Person> {
        let row = Self::build(conn, &caller.manages, input, Some(&existing))?;
        if let Some(old) = existing.unit_id.as_deref()
            && row.unit_id.as_deref() != Some(old)
        {
            // What the person attended until today stays attributed to the unit they leave.
            let today = chrono::Utc::now()
                .date_naive()
                .format("%Y-%m-%d")
                .to_string();
            record_unit_change(
                conn,
                &row.id,
                old,
                &today,
                UnitChangeReason::Edit,
                row.updated_at,
            )?;
        }
        replaced!(conn, people, row)
    }

    fn delete_found(conn: &mut DbConn, _caller: &Caller, existing: Person) -> Result<()> {
        let enrolled = Enrollments::count_of_person(conn, &existing.id)?;
        let recorded = AttendanceRecords::count_of_person(conn, &existing.id)?;
        let accounts = Users::count_of_person(conn, &existing.id)?;
        if enrolled + recorded + accounts > 0 {
            return Err(Error::conflict(
                "person_in_use",
                format!(
                    "the person has {enrolled} enrollments, {recorded} attendance records and \
                     {accounts} accounts"
                ),
            ));
        }
        let now = now_ms();
        tombstone!(conn, people, &existing.id, now)?;
        Ok(())
    }
}

// Reads for the sync feed

impl People {
    /// Of the people `ids`, the live ones whose record is at revision `after` or before and who
    /// had no live enrollment in `courses` at revision `after` or before: a device that pulled
    /// those courses' feed up to `after` never received them.
    pub fn not_received_with_courses(
        conn: &mut DbConn,
        ids: &[String],
        courses: &[String],
        after: i64,
    ) -> Result<Vec<Person>> {
        Ok(people::table
            .filter(people::id.eq_any(ids))
            .filter(people::rev.le(after))
            .filter(people::deleted_at.is_null())
            // Hashed by PostgreSQL, unlike `<> ALL`, which scanned the enrollments once per
            // person: 60 ms for a page of 800 people.
            .filter(not(people::id.eq_any(
                Enrollments::people_of_courses_upto_subquery(courses.to_vec(), after),
            )))
            .select(Person::as_select())
            .load(conn)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roster_holds_the_people_of_its_units_or_everyone() {
        let units = Roster::Units(HashSet::from(["commune".to_owned(), "village".to_owned()]));
        assert!(units.holds(Some("village")));
        assert!(!units.holds(Some("elsewhere")));
        assert!(
            !units.holds(None),
            "a person of no unit is on no unit's roster"
        );
        assert!(Roster::Everyone.holds(Some("elsewhere")));
        assert!(Roster::Everyone.holds(None));
    }

    #[test]
    fn phone_numbers_are_normalised() {
        assert_eq!(
            normalize_phone("0912 345 678").as_deref(),
            Some("0912345678")
        );
        assert_eq!(
            normalize_phone("+84 912.345.678").as_deref(),
            Some("0912345678")
        );
        assert_eq!(
            normalize_phone("84912345678").as_deref(),
            Some("0912345678")
        );
        assert_eq!(normalize_phone("12345"), None);
        assert_eq!(normalize_phone("09123456789"), None);
    }
}

/// Why a person left a unit, as `person_unit_history.reason` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitChangeReason {
    /// Their unit was merged into another.
    Merge,
    /// An administrator or organiser edited the person.
    Edit,
    /// A roster import moved them.
    Import,
}

impl UnitChangeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitChangeReason::Merge => "merge",
            UnitChangeReason::Edit => "edit",
            UnitChangeReason::Import => "import",
        }
    }
}

/// Remembers that a person belonged to `unit_id` until `left_on`, so that what they attended
/// before stays attributed to that unit.
pub fn record_unit_change(
    conn: &mut DbConn,
    person_id: &str,
    unit_id: &str,
    left_on: &str,
    reason: UnitChangeReason,
    now: i64,
) -> Result<()> {
    diesel::insert_into(person_unit_history::table)
        .values((
            person_unit_history::id.eq(new_id()),
            person_unit_history::person_id.eq(person_id),
            person_unit_history::unit_id.eq(unit_id),
            person_unit_history::left_on.eq(left_on),
            person_unit_history::reason.eq(reason.as_str()),
            person_unit_history::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

// Reads for reports

/// A person as the reports list them.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = people)]
pub struct Cadre {
    pub id: String,
    pub full_name: String,
    pub position: String,
    /// The day they took their position, when recorded.
    pub position_since: Option<String>,
    pub phone: Option<String>,
    pub unit_id: Option<String>,
}

/// A unit a person left.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = person_unit_history)]
pub struct UnitLeft {
    pub person_id: String,
    pub unit_id: String,
}

/// A unit a person left, when and why, and where the person is today.
#[derive(Debug, Clone, Queryable)]
pub struct UnitMove {
    pub person_id: String,
    pub full_name: String,
    /// The unit left.
    pub unit_id: String,
    pub left_on: String,
    pub reason: String,
    /// Where the person is today.
    pub current_unit_id: Option<String>,
}

impl People {
    /// The living people with a live enrollment (whatever its status) in a course, those of
    /// them `scope` covers, in roster order. Joins `enrollments`: the query lists people.
    pub fn enrolled_in(
        conn: &mut DbConn,
        course_id: &str,
        scope: &PersonalRecords,
    ) -> Result<Vec<Cadre>> {
        let enrolled = enrollments::table
            .inner_join(people::table)
            .filter(enrollments::course_id.eq(course_id))
            .filter(enrollments::deleted_at.is_null())
            .filter(people::deleted_at.is_null())
            .into_boxed::<Backend>();
        Ok(
            personal!(enrolled, scope, people::id, enrollments::course_id)
                .order(roster_order())
                .select(Cadre::as_select())
                .load(conn)?,
        )
    }

    /// The living people of a unit holding one of `positions` (and, with `since`, who took it
    /// on that day or later), in roster order.
    pub fn cadres_holding(
        conn: &mut DbConn,
        positions: &[String],
        since: Option<&str>,
    ) -> Result<Vec<Cadre>> {
        let mut cadres = people::table
            .filter(people::deleted_at.is_null())
            .filter(people::position.eq_any(positions))
            .filter(people::unit_id.is_not_null())
            .into_boxed::<Backend>();
        if let Some(since) = since {
            cadres = cadres.filter(people::position_since.ge(since.to_owned()));
        }
        Ok(cadres
            .order(roster_order())
            .select(Cadre::as_select())
            .load(conn)?)
    }

    /// The units the people left after `day`, oldest first.
    pub fn units_left_after(
        conn: &mut DbConn,
        person_ids: &[&String],
        day: &str,
    ) -> Result<Vec<UnitLeft>> {
        Ok(person_unit_history::table
            .filter(person_unit_history::person_id.eq_any(person_ids))
            .filter(person_unit_history::left_on.gt(day))
            .order(person_unit_history::left_on.asc())
            .select(UnitLeft::as_select())
            .load(conn)?)
    }

    /// Every unit change of the living people holding one of `positions`, person by person
    /// (roster order), each person's oldest first. Joins `people` for their position, name and
    /// unit today: the query is about the unit history.
    pub fn unit_moves_of_positions(
        conn: &mut DbConn,
        positions: &[String],
    ) -> Result<Vec<UnitMove>> {
        Ok(person_unit_history::table
            .inner_join(people::table)
            .filter(people::position.eq_any(positions))
            .filter(people::deleted_at.is_null())
            .order((
                people::sort_key.asc(),
                people::id.asc(),
                person_unit_history::left_on.asc(),
                person_unit_history::created_at.asc(),
            ))
            .select((
                people::id,
                people::full_name,
                person_unit_history::unit_id,
                person_unit_history::left_on,
                person_unit_history::reason,
                people::unit_id,
            ))
            .load(conn)?)
    }
}

// Reads for the one writer

impl People {
    /// Those of the people `ids` who are live, with their units.
    pub fn live_units_of(conn: &mut DbConn, ids: &[String]) -> Result<Vec<UnitMember>> {
        Ok(people::table
            .filter(people::id.eq_any(ids))
            .filter(people::deleted_at.is_null())
            .select(UnitMember::as_select())
            .load(conn)?)
    }
}
