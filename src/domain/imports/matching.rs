//! Matching a file's rows with what is on record: the units a row names, and the people it
//! updates, creates or repeats.

use std::collections::{HashMap, HashSet};

use super::row::Values;
use super::{Action, Problem};
use crate::db::DbConn;
use crate::domain::access::Manages;
use crate::domain::enrollments::Enrollments;
use crate::domain::people::{People, PersonOnRecord};
use crate::domain::text;
use crate::domain::units::{UnitOnRecord, Units};
use crate::error::Result;

/// What a file is checked against: the units, the people on record and, for a course, the
/// people already enrolled in it.
pub struct OnRecord {
    pub(super) units: UnitIndex,
    pub(super) people: Vec<PersonOnRecord>,
    pub(super) enrolled: HashSet<String>,
}

impl OnRecord {
    pub fn new(
        units: Vec<UnitOnRecord>,
        people: Vec<PersonOnRecord>,
        enrolled: HashSet<String>,
    ) -> Self {
        OnRecord {
            units: UnitIndex::new(units),
            people,
            enrolled,
        }
    }

    /// What an import of `manages` is checked against: an organiser's file meets only the
    /// units and people of their subtree (a row naming another unit names an unknown one).
    pub(super) fn load(
        conn: &mut DbConn,
        manages: &Manages,
        course_id: Option<&str>,
    ) -> Result<OnRecord> {
        let in_reach = manages.units();
        let units = Units::on_record(conn, in_reach.as_deref())?;
        let people = People::on_record(conn, in_reach.as_deref())?;
        let enrolled = match course_id {
            Some(course) => Enrollments::person_ids_of_course(conn, course)?
                .into_iter()
                .collect(),
            None => HashSet::new(),
        };
        Ok(OnRecord::new(units, people, enrolled))
    }
}

/// The write a checked row asks for.
#[derive(Debug, Clone)]
pub(super) enum Plan {
    Create(Values),
    Update {
        id: String,
        values: Values,
    },
    /// Unchanged, or not to be written (duplicates, errors).
    Nothing,
}

/// Units by folded name (also without the "Xã"/"Phường"… prefix) and by code. A unit merged
/// away resolves to the unit it became.
pub(super) struct UnitIndex {
    by_key: HashMap<String, Vec<String>>,
    merged_into: HashMap<String, String>,
    names: HashMap<String, String>,
    kinds: HashMap<String, String>,
}

const UNIT_PREFIXES: [&str; 6] = ["xa ", "phuong ", "thi tran ", "dac khu ", "huyen ", "tinh "];

impl UnitIndex {
    fn new(units: Vec<UnitOnRecord>) -> UnitIndex {
        let mut index = UnitIndex {
            by_key: HashMap::new(),
            merged_into: HashMap::new(),
            names: HashMap::new(),
            kinds: HashMap::new(),
        };
        for UnitOnRecord {
            id,
            code,
            name_key: key,
            merged_into_id: merged,
            kind,
        } in units
        {
            index.kinds.insert(id.clone(), kind);
            let mut keys = vec![key.clone(), code.to_lowercase()];
            if let Some(bare) = UNIT_PREFIXES.iter().find_map(|p| key.strip_prefix(p)) {
                keys.push(bare.to_owned());
            }
            for k in keys {
                let ids = index.by_key.entry(k).or_default();
                if !ids.contains(&id) {
                    ids.push(id.clone());
                }
            }
            if let Some(target) = merged {
                index.merged_into.insert(id.clone(), target);
            }
            index.names.insert(id, key);
        }
        index
    }

    /// The kind of a unit `resolve` gave.
    pub(super) fn kind(&self, id: &str) -> Option<&str> {
        self.kinds.get(id).map(String::as_str)
    }

    pub(super) fn resolve(&self, raw: &str) -> std::result::Result<String, (&'static str, String)> {
        let key = text::fold(raw);
        let bare = UNIT_PREFIXES
            .iter()
            .find_map(|p| key.strip_prefix(p))
            .unwrap_or(&key);
        let found = self
            .by_key
            .get(&key)
            .or_else(|| self.by_key.get(bare))
            .cloned()
            .unwrap_or_default();
        let mut current: Vec<String> = found
            .iter()
            .map(|id| {
                let mut id = id.clone();
                for _ in 0..16 {
                    match self.merged_into.get(&id) {
                        Some(next) => id = next.clone(),
                        None => break,
                    }
                }
                id
            })
            .collect();
        current.sort();
        current.dedup();
        match current.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(("unknown_unit", format!("no unit is called {raw:?}"))),
            many => Err((
                "ambiguous_unit",
                format!(
                    "{raw:?} could be any of {}; write the unit's full name or code",
                    many.iter()
                        .filter_map(|id| self.names.get(id))
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }
}

type Key = (String, Option<String>, Option<String>);

/// Matches rows with stored people and with earlier rows of the file.
pub(super) struct Matcher<'a> {
    existing: &'a [PersonOnRecord],
    by_phone: HashMap<&'a str, usize>,
    by_key: HashMap<Key, usize>,
    by_name: HashMap<&'a str, Vec<usize>>,
    seen_phone: HashMap<String, usize>,
    seen_key: HashMap<Key, usize>,
    /// Stored people already matched, with the row that matched them.
    matched: HashMap<usize, usize>,
}

impl<'a> Matcher<'a> {
    pub(super) fn new(existing: &'a [PersonOnRecord]) -> Self {
        let mut matcher = Matcher {
            existing,
            by_phone: HashMap::new(),
            by_key: HashMap::new(),
            by_name: HashMap::new(),
            seen_phone: HashMap::new(),
            seen_key: HashMap::new(),
            matched: HashMap::new(),
        };
        for (i, person) in existing.iter().enumerate() {
            if let Some(phone) = &person.phone {
                matcher.by_phone.insert(phone, i);
            }
            matcher.by_key.insert(
                (
                    person.name_key.clone(),
                    person.birth_date.clone(),
                    person.unit_id.clone(),
                ),
                i,
            );
            matcher.by_name.entry(&person.name_key).or_default().push(i);
        }
        matcher
    }

    pub(super) fn judge(
        &mut self,
        row: usize,
        values: Values,
        problems: &mut Vec<Problem>,
    ) -> (Action, Option<String>, Vec<&'static str>, Plan) {
        let name_key = text::fold(&values.full_name);
        let key = (
            name_key.clone(),
            values.birth_date.clone(),
            values.unit_id.clone(),
        );
        let earlier = values
            .phone
            .as_ref()
            .and_then(|p| self.seen_phone.get(p))
            .or_else(|| self.seen_key.get(&key))
            .copied();
        if let Some(earlier) = earlier {
            problems.push(Problem {
                row,
                field: "full_name",
                code: "duplicate_row",
                message: format!("the same person as row {earlier}; this row is skipped"),
            });
            return (Action::DuplicateRow, None, Vec::new(), Plan::Nothing);
        }
        if let Some(phone) = &values.phone {
            self.seen_phone.insert(phone.clone(), row);
        }
        self.seen_key.insert(key.clone(), row);

        let by_phone = values
            .phone
            .as_deref()
            .and_then(|p| self.by_phone.get(p))
            .copied();
        if let Some(i) = by_phone {
            let person = &self.existing[i];
            if person.name_key != name_key {
                problems.push(Problem {
                    row,
                    field: "phone",
                    code: "phone_in_use",
                    message: format!(
                        "{} already has this phone number ({}); correct one of them",
                        person.full_name, person.id
                    ),
                });
                return (
                    Action::Error,
                    Some(person.id.clone()),
                    Vec::new(),
                    Plan::Nothing,
                );
            }
        }
        if let Some(i) = by_phone.or_else(|| self.by_key.get(&key).copied()) {
            let person = &self.existing[i];
            // Two rows of the file naming one stored person (one by phone, one by name):
            // only the first is applied.
            if let Some(earlier) = self.matched.insert(i, row) {
                self.matched.insert(i, earlier);
                problems.push(Problem {
                    row,
                    field: "full_name",
                    code: "duplicate_row",
                    message: format!(
                        "{} was already matched by row {earlier}; this row is skipped",
                        person.full_name
                    ),
                });
                return (
                    Action::DuplicateRow,
                    Some(person.id.clone()),
                    Vec::new(),
                    Plan::Nothing,
                );
            }
            let merged = merge_values(person, values);
            let changes = changed_fields(person, &merged);
            let id = person.id.clone();
            return if changes.is_empty() {
                (Action::Unchanged, Some(id), changes, Plan::Nothing)
            } else {
                (
                    Action::Update,
                    Some(id.clone()),
                    changes,
                    Plan::Update { id, values: merged },
                )
            };
        }
        let similar = self.by_name.get(name_key.as_str()).and_then(|candidates| {
            candidates.iter().map(|&i| &self.existing[i]).find(|p| {
                match (&p.birth_date, &values.birth_date) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
            })
        });
        if let Some(person) = similar {
            problems.push(Problem {
                row,
                field: "full_name",
                code: "possible_duplicate",
                message: format!(
                    "looks like {} ({}, born {}) already on record; not created — add the phone \
                     number or the birth date to tell them apart",
                    person.full_name,
                    person.id,
                    person.birth_date.as_deref().unwrap_or("?")
                ),
            });
            return (
                Action::PossibleDuplicate,
                Some(person.id.clone()),
                Vec::new(),
                Plan::Nothing,
            );
        }
        (Action::Create, None, Vec::new(), Plan::Create(values))
    }
}

/// A matched person's new values: what the row says, with empty cells keeping the stored value,
/// and a stored name with diacritics kept when the row spells it without.
fn merge_values(person: &PersonOnRecord, row: Values) -> Values {
    let keep_name = text::fold(&row.full_name) == person.name_key
        && row.full_name.is_ascii()
        && !person.full_name.is_ascii();
    Values {
        full_name: if keep_name {
            person.full_name.clone()
        } else {
            row.full_name
        },
        birth_date: row.birth_date.or_else(|| person.birth_date.clone()),
        gender: row.gender.or_else(|| person.gender.clone()),
        phone: row.phone.or_else(|| person.phone.clone()),
        position: row.position.or_else(|| Some(person.position.clone())),
        unit_id: row.unit_id.or_else(|| person.unit_id.clone()),
        position_since: row.position_since.or_else(|| person.position_since.clone()),
    }
}

fn changed_fields(person: &PersonOnRecord, v: &Values) -> Vec<&'static str> {
    let mut changes = Vec::new();
    if person.full_name != v.full_name {
        changes.push("full_name");
    }
    if person.birth_date != v.birth_date {
        changes.push("birth_date");
    }
    if person.gender != v.gender {
        changes.push("gender");
    }
    if person.phone != v.phone {
        changes.push("phone");
    }
    if Some(&person.position) != v.position.as_ref() {
        changes.push("position");
    }
    if person.unit_id != v.unit_id {
        changes.push("unit_id");
    }
    if person.position_since != v.position_since {
        changes.push("position_since");
    }
    changes
}
