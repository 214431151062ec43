//! The data set, written straight through the library before the server starts, and the raw
//! write limit of the same database (rows into `attendance`, no server in between).

use std::time::{Duration, Instant};

use diemdanh::auth::password;
use diemdanh::db::schema::attendance;
use diemdanh::db::{DbConn, Pool, write_tx};
use diemdanh::domain::access::Manages;
use diemdanh::domain::attendance::Attendance;
use diemdanh::domain::courses::{CourseInput, Courses};
use diemdanh::domain::enrollments::EnrollmentInput;
use diemdanh::domain::people::{People, PersonInput};
use diemdanh::domain::sessions::{SessionInput, Sessions};
use diemdanh::domain::trainers::{CourseTrainerInput, CourseTrainers};
use diemdanh::domain::units::{UnitInput, Units};
use diemdanh::domain::users::{Devices, NewUser, User, Users};
use diemdanh::domain::{Caller, Resource, Role};
use diemdanh::error::Result;
use diemdanh::sync::clock::ServerClock;
use diemdanh::sync::records::{AttendanceInsert, ROWS_PER_STATEMENT};
use diemdanh::sync::writer;
use diesel::RunQueryDsl;

/// Every trainer account's password (one argon2 hash serves them all).
pub const TRAINER_PASSWORD: &str = "bench-trainer-password-1";
/// The trainer assigned to every course: the scope pulled by fresh devices.
pub const PULL_TRAINER: &str = "trainer.all";
/// The administrator the data set is loaded as (same password as the trainers).
pub const ADMIN: &str = "bench.admin";

/// How big the data set is.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub units: usize,
    pub people: usize,
    pub sessions: usize,
    pub sessions_per_course: usize,
    pub trainees_per_session: usize,
}

impl Sizes {
    pub fn courses(&self) -> usize {
        self.sessions.div_ceil(self.sessions_per_course)
    }
}

pub struct Course {
    /// The course's own trainer (lead), who records its attendance.
    pub trainer: String,
}

/// One (session, person) attendance slot of an enrolled trainee, with the record id its first
/// device gives it.
pub struct Pair {
    pub course: usize,
    pub record_id: String,
    pub session_id: String,
    pub person_id: String,
}

pub struct DataSet {
    pub courses: Vec<Course>,
    pub pairs: Vec<Pair>,
    /// Records in the pull trainer's scope before any attendance exists.
    pub scope_without_attendance: usize,
}

const FAMILY: [&str; 16] = [
    "Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ",
    "Hồ", "Ngô", "Dương", "Lý",
];
const MIDDLE: [&str; 10] = [
    "Văn", "Thị", "Đức", "Minh", "Ngọc", "Thanh", "Hữu", "Quang", "Thu", "Hoài",
];
const GIVEN: [&str; 24] = [
    "An", "Bình", "Châu", "Dũng", "Giang", "Hà", "Hải", "Hạnh", "Hiếu", "Hoa", "Hùng", "Hương",
    "Khánh", "Lan", "Linh", "Long", "Mai", "Nam", "Ngân", "Phong", "Quân", "Quỳnh", "Thảo", "Tuấn",
];
const POSITIONS: [&str; 4] = [
    "secretary",
    "deputy_secretary",
    "committee_member",
    "member",
];

/// Rows per write transaction while seeding.
const SEED_CHUNK: usize = 500;

/// Creates the record of each index with `create`, `SEED_CHUNK` to a write transaction, and
/// returns their ids in order.
fn create_in_chunks(
    conn: &mut DbConn,
    indexes: std::ops::Range<usize>,
    mut create: impl FnMut(&mut DbConn, usize) -> Result<String>,
) -> Result<Vec<String>> {
    let indexes: Vec<usize> = indexes.collect();
    let mut ids = Vec::with_capacity(indexes.len());
    for chunk in indexes.chunks(SEED_CHUNK) {
        let created = write_tx(conn, |conn| {
            chunk
                .iter()
                .map(|&i| create(conn, i))
                .collect::<Result<Vec<_>>>()
        })?;
        ids.extend(created);
    }
    Ok(ids)
}

/// An account of no person and no unit (the loader's administrator, a trainer) whose password
/// has the argon2 `hash`.
fn account(
    conn: &mut DbConn,
    username: &str,
    display_name: &str,
    role: Role,
    hash: &str,
) -> Result<User> {
    Users::create(
        conn,
        NewUser {
            username: username.into(),
            display_name: Some(display_name.into()),
            role: role.as_str().into(),
            person_id: None,
            unit_id: None,
        },
        hash.to_owned(),
    )
}

fn admin_caller(pool: &Pool, hash: &str) -> Result<Caller> {
    let mut conn = pool.get()?;
    write_tx(&mut conn, |conn| {
        let admin = account(conn, ADMIN, "Benchmark loader", Role::Admin, hash)?;
        let device = Devices::register(conn, &admin.id, "benchmark loader")?;
        Ok(Caller {
            user_id: admin.id,
            device_id: device.id,
            role: Role::Admin,
            person_id: None,
            address: None,
            unit_id: None,
            manages: Manages::Everything,
        })
    })
}

fn person_input(index: usize, unit_id: Option<String>) -> PersonInput {
    let name = format!(
        "{} {} {}",
        FAMILY[index % FAMILY.len()],
        MIDDLE[(index / FAMILY.len()) % MIDDLE.len()],
        GIVEN[(index / 7) % GIVEN.len()]
    );
    PersonInput {
        id: None,
        full_name: name,
        birth_date: Some(format!(
            "{}-{:02}-{:02}",
            1988 + index % 12,
            1 + index % 12,
            1 + index % 28
        )),
        gender: Some(
            if index.is_multiple_of(2) {
                "female"
            } else {
                "male"
            }
            .into(),
        ),
        phone: Some(format!("09{:08}", index % 100_000_000)),
        position: POSITIONS[index % POSITIONS.len()].into(),
        unit_id,
        term: Some("2022-2027".into()),
        position_since: None,
    }
}

/// Seeds units, people, trainers, courses with their sessions and enrollments through the domain
/// methods (as the demo loader does). No attendance: the devices push it.
pub fn seed(pool: &Pool, sizes: &Sizes) -> Result<DataSet> {
    // Hash once, outside any transaction: argon2 is deliberately slow.
    let hash = password::hash(TRAINER_PASSWORD)?;
    let caller = admin_caller(pool, &hash)?;
    let mut conn = pool.get()?;

    // Units: one province and its communes and wards.
    let mut unit_ids = Vec::with_capacity(sizes.units);
    let province = write_tx(&mut conn, |conn| {
        Units::create(
            conn,
            &caller,
            UnitInput {
                id: None,
                code: "10".into(),
                name: "Tỉnh Benchmark".into(),
                kind: "province".into(),
                parent_id: None,
                valid_from: Some("2025-07-01".into()),
                valid_to: None,
                merged_into_id: None,
            },
        )
    })?;
    unit_ids.push(province.id.clone());
    let communes = create_in_chunks(&mut conn, 1..sizes.units, |conn, i| {
        Units::create(
            conn,
            &caller,
            UnitInput {
                id: None,
                code: format!("10{i:05}"),
                name: format!(
                    "{} Benchmark {i}",
                    if i.is_multiple_of(3) {
                        "Phường"
                    } else {
                        "Xã"
                    }
                ),
                kind: if i.is_multiple_of(3) {
                    "ward"
                } else {
                    "commune"
                }
                .into(),
                parent_id: Some(province.id.clone()),
                valid_from: Some("2025-07-01".into()),
                valid_to: None,
                merged_into_id: None,
            },
        )
        .map(|u| u.id)
    })?;
    unit_ids.extend(communes);

    // People, spread over the units.
    let people = create_in_chunks(&mut conn, 0..sizes.people, |conn, i| {
        let unit = unit_ids[1 + i % (unit_ids.len() - 1).max(1)].clone();
        People::create(conn, &caller, person_input(i, Some(unit))).map(|p| p.id)
    })?;

    // Trainers: one per course, plus one assigned to every course.
    let course_count = sizes.courses();
    let courses_seeded = write_tx(&mut conn, |conn| {
        let mut trainer_users = Vec::with_capacity(course_count);
        for c in 0..course_count {
            let username = format!("trainer.{c:03}");
            let user = account(
                conn,
                &username,
                &format!("Giảng viên {c}"),
                Role::Trainer,
                &hash,
            )?;
            trainer_users.push((username, user.id));
        }
        let all = account(
            conn,
            PULL_TRAINER,
            "Giảng viên Tỉnh đoàn",
            Role::Trainer,
            &hash,
        )?;

        let base = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
        let mut courses = Vec::with_capacity(course_count);
        for (c, (username, user_id)) in trainer_users.into_iter().enumerate() {
            let first = c * sizes.sessions_per_course;
            let sessions = sizes.sessions_per_course.min(sizes.sessions - first);
            let days = sessions.div_ceil(2) as u64;
            let start = base + chrono::Days::new(7 * c as u64);
            let end = start + chrono::Days::new(days.saturating_sub(1));
            let course = Courses::create(
                conn,
                &caller,
                CourseInput {
                    id: None,
                    code: Some(format!("BENCH-{c:03}")),
                    title: format!("Lớp bồi dưỡng cán bộ Đoàn cơ sở số {}", c + 1),
                    description: Some("Bí thư, Phó Bí thư Đoàn xã, phường".into()),
                    organizing_unit_id: Some(province.id.clone()),
                    management_level: "province".into(),
                    start_date: start.to_string(),
                    end_date: end.to_string(),
                    place: Some("Hội trường Tỉnh đoàn".into()),
                },
            )?;
            for (user, role) in [(&user_id, "lead"), (&all.id, "assistant")] {
                CourseTrainers::create(
                    conn,
                    &caller,
                    CourseTrainerInput {
                        id: None,
                        course_id: course.id.clone(),
                        user_id: user.clone(),
                        role: Some(role.into()),
                    },
                )?;
            }
            let mut session_ids = Vec::with_capacity(sessions);
            for s in 0..sessions {
                let day = start + chrono::Days::new((s / 2) as u64);
                let (from, to) = if s.is_multiple_of(2) {
                    ("08:00", "11:00")
                } else {
                    ("13:30", "16:30")
                };
                let session = Sessions::create(
                    conn,
                    &caller,
                    SessionInput {
                        id: None,
                        course_id: course.id.clone(),
                        topic: format!("Chuyên đề {}", s + 1),
                        starts_at: format!("{day}T{from}:00+07:00"),
                        ends_at: format!("{day}T{to}:00+07:00"),
                        place: Some("Hội trường Tỉnh đoàn".into()),
                        trainer_id: Some(user_id.clone()),
                    },
                )?;
                session_ids.push(session.id);
            }
            courses.push((username, course.id, session_ids));
        }
        Ok(courses)
    })?;

    // Enrollments: each course its own trainees (they overlap only when people run out), through
    // the one writer like a roster import's.
    let clock = ServerClock::new("bench-seed", 600_000);
    let mut enrolled = Vec::with_capacity(course_count);
    for (c, (_, course_id, _)) in courses_seeded.iter().enumerate() {
        let persons: Vec<String> = (0..sizes.trainees_per_session)
            .map(|i| people[(c * sizes.trainees_per_session + i) % people.len()].clone())
            .collect();
        let inputs = persons
            .iter()
            .map(|person| EnrollmentInput {
                id: None,
                course_id: course_id.clone(),
                person_id: person.clone(),
                status: None,
            })
            .collect();
        write_tx(&mut conn, |conn| {
            writer::enroll(conn, &caller, &clock, inputs)
        })?;
        enrolled.push(persons);
    }

    let distinct_enrolled = sizes.people.min(course_count * sizes.trainees_per_session);
    let scope_without_attendance = sizes.units
        + distinct_enrolled
        + course_count // courses
        + 2 * course_count // course_trainers: the lead and the pull trainer
        + sizes.sessions
        + course_count * sizes.trainees_per_session; // enrollments

    let mut pairs = Vec::with_capacity(sizes.sessions * sizes.trainees_per_session);
    let mut courses = Vec::with_capacity(course_count);
    for (c, ((trainer, _, sessions), persons)) in
        courses_seeded.into_iter().zip(enrolled).enumerate()
    {
        for session in &sessions {
            for person in &persons {
                pairs.push(Pair {
                    course: c,
                    record_id: uuid::Uuid::new_v4().to_string(),
                    session_id: session.clone(),
                    person_id: person.clone(),
                });
            }
        }
        courses.push(Course { trainer });
    }
    Ok(DataSet {
        courses,
        pairs,
        scope_without_attendance,
    })
}

/// How the raw limit writes a transaction's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawInsert {
    /// One INSERT per row, as the server wrote before it had one writer.
    RowAtATime,
    /// One multi-row INSERT per transaction (in statements of `records::ROWS_PER_STATEMENT`),
    /// as the one writer writes.
    MultiRow,
}

impl RawInsert {
    pub fn name(self) -> &'static str {
        match self {
            RawInsert::RowAtATime => "row at a time",
            RawInsert::MultiRow => "multi-row INSERT",
        }
    }
}

/// The write limit of this database with these PRAGMAs: `rows` attendance rows, shaped as a push
/// stores them (with their field stamps), written straight through diesel, `batch` rows per
/// write transaction, at the server's durability. Returns the time the inserts took.
pub fn raw_insert_limit(
    pool: &Pool,
    rows: usize,
    batch: usize,
    how: RawInsert,
) -> Result<Duration> {
    let hash = password::hash(TRAINER_PASSWORD)?;
    let caller = admin_caller(pool, &hash)?;
    let mut conn = pool.get()?;
    // Parents the rows must reference: sessions and people of one course.
    const PEOPLE: usize = 100;
    let sessions_needed = rows.div_ceil(PEOPLE).max(1);
    let (sessions, people) = write_tx(&mut conn, |conn| {
        let course = Courses::create(
            conn,
            &caller,
            CourseInput {
                id: None,
                code: Some("RAW".into()),
                title: "Raw insert limit".into(),
                description: None,
                organizing_unit_id: None,
                management_level: "province".into(),
                start_date: "2026-01-05".into(),
                end_date: "2026-12-31".into(),
                place: None,
            },
        )?;
        let people = (0..PEOPLE)
            .map(|i| People::create(conn, &caller, person_input(i, None)).map(|p| p.id))
            .collect::<Result<Vec<_>>>()?;
        let sessions = (0..sessions_needed)
            .map(|s| {
                Sessions::create(
                    conn,
                    &caller,
                    SessionInput {
                        id: None,
                        course_id: course.id.clone(),
                        topic: format!("Raw {s}"),
                        starts_at: "2026-03-02T08:00:00+07:00".into(),
                        ends_at: "2026-03-02T11:00:00+07:00".into(),
                        place: None,
                        trainer_id: None,
                    },
                )
                .map(|s| s.id)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((sessions, people))
    })?;

    let now = diemdanh::db::now_ms();
    // Stamps in their stored form: one slot per stamped field, the first naming the stamp
    // (millis, counter, node number), the others the same stamp again ('=').
    let stamps = format!("{now:013}00001,=,=,=,,=");
    let all: Vec<AttendanceInsert> = (0..rows)
        .map(|i| AttendanceInsert {
            row: Attendance {
                id: uuid::Uuid::new_v4().to_string(),
                session_id: sessions[i / PEOPLE].clone(),
                person_id: people[i % PEOPLE].clone(),
                status: "present".into(),
                checked_in_at: Some(now),
                note: None,
                recorded_by: caller.user_id.clone(),
                recorded_device: Some(caller.device_id.clone()),
                rev: 1_000_000 + i as i64,
                created_at: now,
                updated_at: now,
                deleted_at: None,
            },
            stamps: stamps.clone(),
        })
        .collect();
    let started = Instant::now();
    for chunk in all.chunks(batch.max(1)) {
        write_tx(&mut conn, |conn| {
            match (how, conn) {
                (RawInsert::RowAtATime, conn) => {
                    for row in chunk {
                        diesel::insert_into(attendance::table)
                            .values(row)
                            .execute(conn)?;
                    }
                }
                (RawInsert::MultiRow, DbConn::Sqlite(conn)) => {
                    for rows in chunk.chunks(ROWS_PER_STATEMENT) {
                        diesel::insert_into(attendance::table)
                            .values(rows)
                            .execute(conn)?;
                    }
                }
                (RawInsert::MultiRow, DbConn::Postgres(conn)) => {
                    for rows in chunk.chunks(ROWS_PER_STATEMENT) {
                        diesel::insert_into(attendance::table)
                            .values(rows)
                            .execute(conn)?;
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok(started.elapsed())
}
