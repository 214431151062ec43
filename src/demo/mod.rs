//! Loads the demo data set (a province, its communes and wards, the branches of two wards with
//! their secretaries, three classes (one a ward's, its roll taken), trainers, organisers of two
//! wards and of the province, a trainee account, material records and three training plans)
//! through the same domain methods the API uses.

pub mod data;

use std::collections::HashMap;

use crate::auth::password;
use crate::db::{DbConn, write_tx};
use crate::domain::access::Manages;
use crate::domain::courses::{CourseInput, Courses};
use crate::domain::enrollments::EnrollmentInput;
use crate::domain::materials::{MaterialInput, Materials};
use crate::domain::people::{People, PersonInput};
use crate::domain::plans::{PlanRuleInput, PlannedCourseInput, TrainingPlanInput, TrainingPlans};
use crate::domain::reorganisation::{self, MergeRequest, RenameRequest};
use crate::domain::sessions::{SessionInput, Sessions};
use crate::domain::trainers::{CourseTrainerInput, CourseTrainers};
use crate::domain::units::{UnitInput, Units};
use crate::domain::users::{Devices, NewUser, Users};
use crate::domain::values::new_id;
use crate::domain::{Caller, Resource, Role};
use crate::error::{Error, Result};
use crate::sync::clock::ServerClock;
use crate::sync::merge::{DELETED_FIELD, Fields};
use crate::sync::records::Collection;
use crate::sync::writer::{self, Expect, ServerChange};
use serde_json::Value;

pub const ADMIN_USERNAME: &str = "admin";
pub const ADMIN_PASSWORD: &str = "diemdanh-admin";
pub const TRAINEE_USERNAME: &str = "hocvien.demo";
pub const TRAINEE_PASSWORD: &str = "demo-trainee-1";

/// A demo account and its password, for printing.
pub struct DemoLogin {
    pub username: String,
    pub password: String,
    pub role: Role,
}

/// The demo accounts, whether or not they were created just now.
pub fn logins() -> Vec<DemoLogin> {
    let mut logins = vec![DemoLogin {
        username: ADMIN_USERNAME.into(),
        password: ADMIN_PASSWORD.into(),
        role: Role::Admin,
    }];
    logins.extend(data::trainers().into_iter().map(|t| DemoLogin {
        username: t.username.into(),
        password: t.password.into(),
        role: Role::Trainer,
    }));
    logins.extend(data::organisers().into_iter().map(|o| DemoLogin {
        username: o.username.into(),
        password: o.password.into(),
        role: Role::Organiser,
    }));
    logins.push(DemoLogin {
        username: TRAINEE_USERNAME.into(),
        password: TRAINEE_PASSWORD.into(),
        role: Role::Trainee,
    });
    logins
}

/// Loads the demo data unless it is already there. Returns whether anything was loaded.
pub fn load(conn: &mut DbConn) -> Result<bool> {
    // A database may hold an earlier version's demo data set (another province, the same
    // accounts): that is the demo too, and loading over it would collide with its accounts.
    let trainer = data::trainers()[0].username;
    if Units::find_by_code(conn, data::PROVINCE_CODE)?.is_some()
        || Users::find_by_username(conn, trainer)?.is_some()
    {
        return Ok(false);
    }
    // Hash outside the transaction: argon2 is deliberately slow.
    let mut hashes = HashMap::new();
    for login in logins() {
        hashes.insert(login.username.clone(), password::hash(&login.password)?);
    }
    write_tx(conn, |conn| load_in_transaction(conn, &hashes))?;
    Ok(true)
}

fn load_in_transaction(conn: &mut DbConn, hashes: &HashMap<String, String>) -> Result<()> {
    let hash = |name: &str| {
        hashes
            .get(name)
            .cloned()
            .ok_or_else(|| Error::Internal(format!("no hash for {name}")))
    };
    let admin = match Users::find_by_username(conn, ADMIN_USERNAME)? {
        Some(user) => user,
        None => Users::create(
            conn,
            NewUser {
                username: ADMIN_USERNAME.into(),
                display_name: Some("Quản trị viên Tỉnh đoàn".into()),
                role: "admin".into(),
                person_id: None,
                unit_id: None,
            },
            hash(ADMIN_USERNAME)?,
        )?,
    };
    let device = Devices::register(conn, &admin.id, "demo loader")?;
    let caller = Caller {
        user_id: admin.id.clone(),
        device_id: device.id.clone(),
        role: Role::Admin,
        person_id: None,
        address: None,
        unit_id: None,
        manages: Manages::Everything,
    };
    // Enrollments are synced records: the one writer stamps them with this clock.
    let clock = ServerClock::for_own_writes(format!("demo-{}", &new_id()[24..]));

    let mut unit_ids = load_units(conn, &caller)?;
    for branch in data::branches() {
        let created = Units::create(
            conn,
            &caller,
            UnitInput {
                id: None,
                code: branch.code.into(),
                name: branch.name.into(),
                kind: crate::domain::units::BRANCH.into(),
                parent_id: unit_ids.get(branch.parent_code).cloned(),
                valid_from: None,
                valid_to: None,
                merged_into_id: None,
            },
        )?;
        unit_ids.insert(branch.code, created.id);
    }
    let mut people = Vec::new();
    for person in data::people().into_iter().chain(data::branch_people()) {
        let unit_id = unit_ids.get(person.unit_code).cloned();
        let created = People::create(
            conn,
            &caller,
            PersonInput {
                id: None,
                full_name: person.full_name.clone(),
                birth_date: Some(person.birth_date.clone()),
                gender: Some(person.gender.into()),
                phone: Some(person.phone.clone()),
                position: person.position.into(),
                unit_id,
                term: Some(person.term.into()),
                position_since: person.position_since.clone(),
            },
        )?;
        people.push((person, created));
    }

    let mut trainer_ids = Vec::new();
    for trainer in data::trainers() {
        let user = Users::create(
            conn,
            NewUser {
                username: trainer.username.into(),
                display_name: Some(trainer.full_name.into()),
                role: "trainer".into(),
                person_id: None,
                unit_id: None,
            },
            hash(trainer.username)?,
        )?;
        trainer_ids.push(user.id);
    }
    for organiser in data::organisers() {
        Users::create(
            conn,
            NewUser {
                username: organiser.username.into(),
                display_name: Some(organiser.full_name.into()),
                role: Role::Organiser.as_str().into(),
                person_id: None,
                unit_id: unit_ids.get(organiser.unit_code).cloned(),
            },
            hash(organiser.username)?,
        )?;
    }

    let mut course_ids: HashMap<&'static str, String> = HashMap::new();
    for (index, course) in data::courses().into_iter().enumerate() {
        let created = Courses::create(
            conn,
            &caller,
            CourseInput {
                id: None,
                code: Some(course.code.into()),
                title: course.title.into(),
                description: Some(course.description.into()),
                organizing_unit_id: unit_ids.get(course.organizing_unit_code).cloned(),
                management_level: course.management_level.into(),
                start_date: course.start_date.into(),
                end_date: course.end_date.into(),
                place: Some(course.place.into()),
            },
        )?;
        course_ids.insert(course.code, created.id.clone());
        for &trainer in &course.trainer_indexes {
            CourseTrainers::create(
                conn,
                &caller,
                CourseTrainerInput {
                    id: None,
                    course_id: created.id.clone(),
                    user_id: trainer_ids[trainer].clone(),
                    role: Some(
                        if trainer == course.trainer_indexes[0] {
                            "lead"
                        } else {
                            "assistant"
                        }
                        .into(),
                    ),
                },
            )?;
        }
        let start = chrono::NaiveDate::parse_from_str(course.start_date, "%Y-%m-%d")
            .map_err(|e| Error::Internal(format!("demo course date: {e}")))?;
        let mut session_ids = Vec::new();
        for session in &course.sessions {
            let day = start + chrono::Days::new(u64::from(session.day));
            let created_session = Sessions::create(
                conn,
                &caller,
                SessionInput {
                    id: None,
                    course_id: created.id.clone(),
                    topic: session.topic.into(),
                    // Course times are local to Vietnam (UTC+7).
                    starts_at: format!("{day}T{}:00+07:00", session.start),
                    ends_at: format!("{day}T{}:00+07:00", session.end),
                    place: Some(session.place.into()),
                    // A class without trainers (a ward's, taught by its own cadres) names none.
                    trainer_id: (!course.trainer_indexes.is_empty())
                        .then(|| trainer_ids[session.trainer_index].clone()),
                },
            )?;
            session_ids.push(created_session.id);
        }
        for material in &course.materials {
            Materials::create(
                conn,
                &caller,
                MaterialInput {
                    id: None,
                    course_id: created.id.clone(),
                    title: material.title.into(),
                    kind: material.kind.into(),
                    language: Some(material.language.into()),
                    file_name: Some(material.file_name.into()),
                    content_type: Some(material.content_type.into()),
                    size_bytes: Some(material.size_bytes),
                    sha256: None,
                },
            )?;
        }
        let to_enroll = people
            .iter()
            .filter(|(person, _)| match &course.enroll {
                data::EnrollRule::AllSecretariesAndDeputies => {
                    matches!(person.position, "secretary" | "deputy_secretary")
                }
                data::EnrollRule::UnitCodes(codes) => codes.contains(&person.unit_code),
            })
            .map(|(_, record)| EnrollmentInput {
                id: None,
                course_id: created.id.clone(),
                person_id: record.id.clone(),
                status: None,
            })
            .collect();
        writer::enroll(conn, &caller, &clock, to_enroll)?;
        let mut roll = Vec::new();
        for (name, statuses) in &course.attendance {
            let (_, record) = people
                .iter()
                .find(|(p, _)| p.full_name == *name)
                .ok_or_else(|| Error::Internal(format!("demo attendance of {name}")))?;
            for (session, status) in session_ids.iter().zip(statuses) {
                let Some(status) = status else { continue };
                let mut fields = Fields::new();
                fields.insert("session_id".into(), Value::String(session.clone()));
                fields.insert("person_id".into(), Value::String(record.id.clone()));
                fields.insert("status".into(), Value::String((*status).into()));
                fields.insert(DELETED_FIELD.into(), Value::Bool(false));
                roll.push(ServerChange {
                    what: "attendance record",
                    collection: Collection::Attendance,
                    record_id: new_id(),
                    fields,
                    expect: Expect::Anything,
                });
            }
        }
        writer::write_server_changes(conn, &caller, &clock, roll)?;
        // The first class's first trainee gets an account, to show what a trainee sees.
        if index == 0
            && let Some((_, record)) = people.iter().find(|(p, _)| p.position == "secretary")
        {
            Users::create(
                conn,
                NewUser {
                    username: TRAINEE_USERNAME.into(),
                    display_name: Some(record.full_name.clone()),
                    role: "trainee".into(),
                    person_id: Some(record.id.clone()),
                    unit_id: None,
                },
                hash(TRAINEE_USERNAME)?,
            )?;
        }
    }
    for plan in data::plans() {
        let unit_id = unit_ids
            .get(plan.unit_code)
            .cloned()
            .ok_or_else(|| Error::Internal(format!("demo plan of unit {}", plan.unit_code)))?;
        let courses = plan
            .courses
            .iter()
            .map(|(code, start, end)| {
                Ok(PlannedCourseInput {
                    course_id: course_ids
                        .get(code)
                        .cloned()
                        .ok_or_else(|| Error::Internal(format!("demo plan course {code}")))?,
                    planned_start: (*start).into(),
                    planned_end: (*end).into(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rule = match plan.rule {
            data::DemoPlanRule::CourseCompletion(min_rate) => PlanRuleInput {
                kind: "course_completion".into(),
                min_rate: Some(min_rate),
                min_sessions: None,
                topics: None,
            },
            data::DemoPlanRule::SessionsOnTopics(min_sessions, topics) => PlanRuleInput {
                kind: "sessions_on_topics".into(),
                min_rate: None,
                min_sessions: Some(min_sessions),
                topics: Some(topics.into_iter().map(String::from).collect()),
            },
        };
        TrainingPlans::create(
            conn,
            &caller,
            TrainingPlanInput {
                id: None,
                unit_id,
                year: plan.year,
                title: plan.title.into(),
                target_positions: plan
                    .target_positions
                    .into_iter()
                    .map(String::from)
                    .collect(),
                elected_since: None,
                target_percent: Some(plan.target_percent),
                rule: Some(rule),
                courses: Some(courses),
            },
        )?;
    }
    Devices::revoke_unchecked(conn, &device.id)?;
    Ok(())
}

/// Records the units as they stood before the reform, then the reform itself through the
/// reorganisation functions the API uses: each current unit that continues a pre-reform unit
/// is created under its old name and district, renamed, given the units merged into it, and
/// moved under the province. Returns the ids by code.
fn load_units(conn: &mut DbConn, caller: &Caller) -> Result<HashMap<&'static str, String>> {
    let formers: HashMap<&str, data::DemoFormer> = data::former_units()
        .into_iter()
        .map(|former| (former.code, former))
        .collect();
    let input = |unit: &data::DemoUnit, ids: &HashMap<&str, String>| {
        let id = |code: Option<&str>| code.and_then(|c| ids.get(c).cloned());
        match formers.get(unit.code) {
            Some(former) => UnitInput {
                id: None,
                code: unit.code.into(),
                name: former.name.into(),
                kind: former.kind.into(),
                parent_id: id(Some(former.district_code)),
                valid_from: None,
                valid_to: None,
                merged_into_id: None,
            },
            // Merged units are still in force until the merge below ends them.
            None => UnitInput {
                id: None,
                code: unit.code.into(),
                name: unit.name.into(),
                kind: unit.kind.into(),
                parent_id: id(unit.parent_code),
                valid_from: unit.valid_from.map(Into::into),
                valid_to: unit
                    .merged_into_code
                    .is_none()
                    .then(|| unit.valid_to.map(Into::into))
                    .flatten(),
                merged_into_id: None,
            },
        }
    };

    // Parents first.
    let mut ids: HashMap<&'static str, String> = HashMap::new();
    let mut pending = data::units();
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = Vec::new();
        for unit in pending {
            let parent = match formers.get(unit.code) {
                Some(former) => Some(former.district_code),
                None => unit.parent_code,
            };
            if parent.is_some_and(|c| !ids.contains_key(c)) {
                waiting.push(unit);
                continue;
            }
            let created = Units::create(conn, caller, input(&unit, &ids))?;
            ids.insert(unit.code, created.id);
        }
        if waiting.len() == before {
            return Err(Error::Internal("demo units reference unknown codes".into()));
        }
        pending = waiting;
    }

    // Every unit was created above, or the loop returned.
    let id_of = |code: &str| {
        ids.get(code)
            .cloned()
            .ok_or_else(|| Error::Internal(format!("demo unit {code} was not created")))
    };
    let units = data::units();
    for unit in units.iter().filter(|u| formers.contains_key(u.code)) {
        let id = id_of(unit.code)?;
        reorganisation::rename(
            conn,
            caller,
            &id,
            RenameRequest {
                name: unit.name.into(),
                effective_date: Some(data::REFORM_DATE.into()),
            },
        )?;
        reorganisation::merge(
            conn,
            caller,
            MergeRequest {
                source_ids: units
                    .iter()
                    .filter(|u| u.merged_into_code == Some(unit.code))
                    .map(|u| id_of(u.code))
                    .collect::<Result<_>>()?,
                target_id: Some(id.clone()),
                target: None,
                effective_date: data::REFORM_DATE.into(),
            },
        )?;
        Units::update(
            conn,
            caller,
            &id,
            None,
            UnitInput {
                id: None,
                code: unit.code.into(),
                name: unit.name.into(),
                kind: unit.kind.into(),
                parent_id: unit.parent_code.map(id_of).transpose()?,
                valid_from: None,
                valid_to: None,
                merged_into_id: None,
            },
        )?;
    }
    Ok(ids)
}

/// The column headings of a roster as an office writes it, its row number (`STT`) first: the
/// demo roster's, and those of the rosters the tests import.
pub const ROSTER_HEADINGS: [&str; 7] = [
    "STT",
    "Họ và tên",
    "Ngày sinh",
    "Giới tính",
    "Chức vụ",
    "Đơn vị",
    "Số điện thoại",
];

/// The demo cadres as a provincial office's workbook (title row, the seven usual columns, dates
/// as text, Vietnamese positions), for trying the roster import:
/// `diemdanh demo-roster roster.xlsx`, then `diemdanh import people roster.xlsx`.
pub fn roster_xlsx() -> Result<Vec<u8>> {
    use rust_xlsxwriter::{Format, Workbook};
    let failed = |e: rust_xlsxwriter::XlsxError| Error::Internal(format!("xlsx: {e}"));
    let names: HashMap<&str, &str> = data::units().iter().map(|u| (u.code, u.name)).collect();
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let bold = Format::new().set_bold();
    sheet
        .merge_range(0, 0, 0, 6, "DANH SÁCH CÁN BỘ ĐOÀN CƠ SỞ", &bold)
        .map_err(failed)?;
    for (col, header) in ROSTER_HEADINGS.iter().enumerate() {
        sheet
            .write_string_with_format(1, col as u16, *header, &bold)
            .map_err(failed)?;
    }
    for (i, person) in data::people().iter().enumerate() {
        let row = i as u32 + 2;
        let birth = chrono::NaiveDate::parse_from_str(&person.birth_date, "%Y-%m-%d")
            .map(|d| d.format("%d/%m/%Y").to_string())
            .unwrap_or_else(|_| person.birth_date.clone());
        let position = match person.position {
            "secretary" => "Bí thư",
            "deputy_secretary" => "Phó Bí thư",
            "committee_member" => "Ủy viên BCH",
            _ => "Đoàn viên",
        };
        let gender = if person.gender == "female" {
            "Nữ"
        } else {
            "Nam"
        };
        let cells = [
            (i + 1).to_string(),
            person.full_name.clone(),
            birth,
            gender.to_owned(),
            position.to_owned(),
            names
                .get(person.unit_code)
                .copied()
                .unwrap_or(person.unit_code)
                .to_owned(),
            person.phone.clone(),
        ];
        for (col, cell) in cells.iter().enumerate() {
            sheet.write_string(row, col as u16, cell).map_err(failed)?;
        }
    }
    book.save_to_buffer().map_err(failed)
}
