//! Built-in demo data set for `diemdanh`.
//!
//! Lets a fresh install, a training demo, or an integration test run against
//! data that looks real — Vietnamese names with correct diacritics, units from
//! after the July 2025 two-tier reform with their merged predecessors, a
//! realistic three-day training class — without touching anyone's personal
//! data. Everything here is pure data plus a small seeded generator with no
//! dependencies, so every call returns the same output on every run.
//!
//! All people are fictional. Phone numbers are random numbers in a valid
//! format: never call or text them. Unit codes follow the official format but
//! are for illustration only, not a copy of the national register. Trainer
//! passwords are for demos only and must never be used in production.

use std::collections::HashSet;

/// Code of the single demo province.
pub const PROVINCE_CODE: &str = "10";

/// An administrative unit (province, or commune/ward/... under it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoUnit {
    pub code: &'static str,
    pub name: &'static str,
    /// "province" | "district" | "commune" | "ward" | "town" | "special_zone"
    pub kind: &'static str,
    pub parent_code: Option<&'static str>,
    /// "YYYY-MM-DD"
    pub valid_from: Option<&'static str>,
    pub valid_to: Option<&'static str>,
    pub merged_into_code: Option<&'static str>,
}

/// A Youth Union officer or member of a current commune/ward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoPerson {
    pub full_name: String,
    /// "YYYY-MM-DD"
    pub birth_date: String,
    /// "male" | "female"
    pub gender: &'static str,
    pub phone: String,
    /// "secretary" | "deputy_secretary" | "committee_member" | "member"
    pub position: &'static str,
    /// Code of a current (post-2025) unit.
    pub unit_code: &'static str,
    pub term: &'static str,
}

/// A trainer account (provincial Youth Union staff).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoTrainer {
    pub username: &'static str,
    pub full_name: &'static str,
    pub password: &'static str,
}

/// One session of a course; times are local (Asia/Ho_Chi_Minh).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoSession {
    /// 0-based day offset from the course start date.
    pub day: u32,
    pub start: &'static str,
    pub end: &'static str,
    pub topic: &'static str,
    pub topic_en: &'static str,
    /// Index into [`trainers()`].
    pub trainer_index: usize,
    pub place: &'static str,
}

/// A course material (file metadata only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoMaterial {
    pub title: &'static str,
    /// "pdf" | "slides" | "video" | "document"
    pub kind: &'static str,
    pub file_name: &'static str,
    pub content_type: &'static str,
    pub size_bytes: i64,
    pub language: &'static str,
}

/// Who gets enrolled in a course.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollRule {
    /// Every secretary and deputy secretary of every current unit.
    AllSecretariesAndDeputies,
    /// Every person belonging to one of these current units.
    UnitCodes(Vec<&'static str>),
}

/// A training course with its sessions and materials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCourse {
    pub code: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// "province" | "commune"
    pub management_level: &'static str,
    pub start_date: &'static str,
    pub end_date: &'static str,
    pub place: &'static str,
    pub trainer_indexes: Vec<usize>,
    pub sessions: Vec<DemoSession>,
    pub materials: Vec<DemoMaterial>,
    pub enroll: EnrollRule,
}

// ---------------------------------------------------------------------------
// Units
// ---------------------------------------------------------------------------

/// Which naming tradition dominates a unit's population.
#[derive(Clone, Copy)]
enum Ethnic {
    Kinh,
    Hmong,
    /// Tày / Giáy / Nùng / Thái: Kinh-style given names, own family names.
    Tay,
    Dao,
}

/// Current units: (code, name, kind, number of deputy secretaries, ethnicity).
const CURRENT: [(&str, &str, &str, usize, Ethnic); 22] = [
    ("02635", "Phường Lào Cai", "ward", 5, Ethnic::Kinh),
    ("02680", "Phường Cam Đường", "ward", 5, Ethnic::Kinh),
    ("02725", "Phường Sa Pa", "ward", 4, Ethnic::Kinh),
    ("02749", "Xã Bát Xát", "commune", 5, Ethnic::Tay),
    ("02767", "Xã Y Tý", "commune", 3, Ethnic::Hmong),
    ("02788", "Xã Mường Hum", "commune", 4, Ethnic::Dao),
    ("02812", "Xã Mường Khương", "commune", 5, Ethnic::Tay),
    ("02830", "Xã Pha Long", "commune", 2, Ethnic::Hmong),
    ("02848", "Xã Si Ma Cai", "commune", 4, Ethnic::Hmong),
    ("02866", "Xã Bắc Hà", "commune", 5, Ethnic::Hmong),
    ("02884", "Xã Bảo Nhai", "commune", 4, Ethnic::Tay),
    ("02902", "Xã Bảo Thắng", "commune", 5, Ethnic::Kinh),
    ("02920", "Xã Phong Hải", "commune", 5, Ethnic::Kinh),
    ("02938", "Xã Bảo Yên", "commune", 5, Ethnic::Tay),
    ("02956", "Xã Phúc Khánh", "commune", 4, Ethnic::Tay),
    ("02974", "Xã Văn Bàn", "commune", 5, Ethnic::Tay),
    ("02992", "Xã Dương Quỳ", "commune", 4, Ethnic::Dao),
    ("03010", "Xã Tả Van", "commune", 5, Ethnic::Hmong),
    ("03028", "Xã Tả Phìn", "commune", 4, Ethnic::Dao),
    ("03046", "Xã Gia Phú", "commune", 5, Ethnic::Kinh),
    ("03064", "Xã Cốc San", "commune", 5, Ethnic::Dao),
    ("03082", "Xã Hợp Thành", "commune", 5, Ethnic::Kinh),
];

/// Pre-reform units: (code, name, kind, parent, merged_into).
const OLD: [(&str, &str, &str, &str, Option<&str>); 8] = [
    ("080", "Thành phố Lào Cai", "district", PROVINCE_CODE, None),
    ("02683", "Phường Pom Hán", "ward", "080", Some("02680")),
    ("02686", "Phường Bắc Lệnh", "ward", "080", Some("02680")),
    ("02689", "Xã Cam Đường", "commune", "080", Some("02680")),
    ("082", "Huyện Bát Xát", "district", PROVINCE_CODE, None),
    ("02752", "Thị trấn Bát Xát", "town", "082", Some("02749")),
    ("02755", "Xã Quang Kim", "commune", "082", Some("02749")),
    ("02758", "Xã Bản Qua", "commune", "082", Some("02749")),
];

/// Date the two-tier administrative structure took effect.
const REFORM_DATE: &str = "2025-07-01";
const LAST_OLD_DATE: &str = "2025-06-30";

/// The province, its 22 current communes/wards, and 8 pre-reform units
/// (two districts and six communes/wards merged into two current units).
pub fn units() -> Vec<DemoUnit> {
    let mut out = vec![DemoUnit {
        code: PROVINCE_CODE,
        name: "Tỉnh Lào Cai",
        kind: "province",
        parent_code: None,
        valid_from: None,
        valid_to: None,
        merged_into_code: None,
    }];
    out.extend(CURRENT.iter().map(|&(code, name, kind, _, _)| DemoUnit {
        code,
        name,
        kind,
        parent_code: Some(PROVINCE_CODE),
        valid_from: Some(REFORM_DATE),
        valid_to: None,
        merged_into_code: None,
    }));
    out.extend(
        OLD.iter()
            .map(|&(code, name, kind, parent, merged)| DemoUnit {
                code,
                name,
                kind,
                parent_code: Some(parent),
                valid_from: None,
                valid_to: Some(LAST_OLD_DATE),
                merged_into_code: merged,
            }),
    );
    out
}

// ---------------------------------------------------------------------------
// People
// ---------------------------------------------------------------------------

/// SplitMix64: tiny, fixed-seed, good enough for demo data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u32, hi_incl: u32) -> u32 {
        lo + self.below(u64::from(hi_incl - lo + 1)) as u32
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
    fn weighted<T: Copy>(&mut self, items: &[(T, u32)]) -> T {
        let total: u64 = items.iter().map(|&(_, w)| u64::from(w)).sum();
        let mut r = self.below(total);
        for &(item, w) in items {
            if r < u64::from(w) {
                return item;
            }
            r -= u64::from(w);
        }
        unreachable!()
    }
}

const SEED: u64 = 0x0D0A_2026_1208_0001;

/// Kinh family names, weighted roughly by national frequency (northern mix).
const KINH_FAMILY: [(&str, u32); 16] = [
    ("Nguyễn", 38),
    ("Trần", 11),
    ("Lê", 9),
    ("Phạm", 7),
    ("Hoàng", 5),
    ("Phan", 4),
    ("Vũ", 4),
    ("Đặng", 3),
    ("Bùi", 3),
    ("Đỗ", 3),
    ("Ngô", 2),
    ("Dương", 2),
    ("Hồ", 2),
    ("Võ", 2),
    ("Huỳnh", 1),
    ("Lý", 1),
];
const MALE_MIDDLE: [&str; 12] = [
    "Văn", "Văn", "Văn", "Đức", "Minh", "Quang", "Hữu", "Công", "Thành", "Xuân", "Tiến", "Mạnh",
];
const FEMALE_MIDDLE: [&str; 11] = [
    "Thị", "Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Thùy", "Hồng", "Kim", "Phương",
];
/// Optional second middle name after "Thị" (e.g. "Nguyễn Thị Thu Hà").
const FEMALE_SECOND_MIDDLE: [&str; 6] = ["Thu", "Thanh", "Ngọc", "Hồng", "Kim", "Minh"];
const MALE_GIVEN: [&str; 36] = [
    "Anh", "Bình", "Cường", "Dũng", "Đạt", "Đức", "Hải", "Hiếu", "Hùng", "Huy", "Khánh", "Kiên",
    "Long", "Mạnh", "Nam", "Phong", "Quân", "Sơn", "Tài", "Thắng", "Thành", "Tiến", "Toàn",
    "Trung", "Tuấn", "Tùng", "Việt", "Vinh", "Hoàng", "Duy", "Khoa", "Lâm", "Nghĩa", "Phúc",
    "Quang", "Thịnh",
];
const FEMALE_GIVEN: [&str; 30] = [
    "Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hiền", "Hoa", "Hương", "Huyền", "Lan",
    "Liên", "Linh", "Loan", "Mai", "Ngân", "Nga", "Nhung", "Oanh", "Phương", "Quỳnh", "Thảo",
    "Trang", "Thủy", "Trâm", "Uyên", "Vân", "Yến", "Hồng",
];
const TAY_FAMILY: [&str; 9] = [
    "Lò", "Lường", "Nông", "Hoàng", "Hà", "Lù", "Vương", "Lục", "Đèo",
];
const HMONG_FAMILY: [&str; 8] = ["Giàng", "Vàng", "Sùng", "Thào", "Lý", "Hầu", "Mùa", "Hạng"];
const HMONG_MALE_MIDDLE: [&str; 3] = ["A", "A", "Seo"];
const HMONG_MALE_GIVEN: [&str; 16] = [
    "Páo", "Sử", "Chứ", "Dình", "Lử", "Sính", "Pháy", "Tủa", "Chính", "Sàng", "Vần", "Dế", "Chu",
    "Phử", "Lồng", "Sình",
];
const HMONG_FEMALE_GIVEN: [&str; 12] = [
    "Mỷ", "Súa", "Dợ", "Say", "Máy", "Pàng", "Mẩy", "Sểnh", "Chở", "Mai", "Dung", "Của",
];
const DAO_FAMILY: [&str; 6] = ["Tẩn", "Chảo", "Triệu", "Lý", "Bàn", "Phàn"];
const DAO_MALE_MIDDLE: [&str; 2] = ["Láo", "Văn"];
const DAO_FEMALE_MIDDLE: [&str; 3] = ["Láy", "Tả", "Thị"];
const DAO_MALE_GIVEN: [&str; 10] = [
    "Lở", "Chàn", "Phù", "Quẩy", "Dào", "Chản", "Phẩu", "Vần", "Lìn", "Xuân",
];
const DAO_FEMALE_GIVEN: [&str; 9] = [
    "Mẩy", "Sử", "Chòi", "Phin", "Kiều", "Sinh", "Mai", "Dung", "Lìu",
];

/// Mobile prefixes; Viettel weighted higher, as it dominates in the uplands.
const PHONE_PREFIXES: [(&str, u32); 31] = [
    ("032", 3),
    ("033", 3),
    ("034", 3),
    ("035", 3),
    ("036", 3),
    ("037", 3),
    ("038", 3),
    ("039", 3),
    ("086", 3),
    ("096", 3),
    ("097", 3),
    ("098", 3),
    ("081", 1),
    ("082", 1),
    ("083", 1),
    ("084", 1),
    ("085", 1),
    ("088", 1),
    ("091", 1),
    ("094", 1),
    ("070", 1),
    ("076", 1),
    ("077", 1),
    ("078", 1),
    ("079", 1),
    ("089", 1),
    ("090", 1),
    ("093", 1),
    ("056", 1),
    ("058", 1),
    ("059", 1),
];

const TERM: &str = "2022-2027";

fn name_for(rng: &mut Rng, ethnic: Ethnic, male: bool) -> String {
    // Mixed populations: a share of people in every unit carry Kinh names,
    // and a few in Kinh-majority wards carry Tày names.
    let ethnic = match ethnic {
        Ethnic::Kinh if rng.chance(10) => Ethnic::Tay,
        Ethnic::Kinh => Ethnic::Kinh,
        other if rng.chance(65) => other,
        _ => Ethnic::Kinh,
    };
    let (family, middle, given) = match (ethnic, male) {
        (Ethnic::Kinh, true) => (
            rng.weighted(&KINH_FAMILY),
            rng.pick(&MALE_MIDDLE),
            rng.pick(&MALE_GIVEN),
        ),
        (Ethnic::Kinh, false) => (
            rng.weighted(&KINH_FAMILY),
            rng.pick(&FEMALE_MIDDLE),
            rng.pick(&FEMALE_GIVEN),
        ),
        (Ethnic::Tay, true) => (rng.pick(&TAY_FAMILY), "Văn", rng.pick(&MALE_GIVEN)),
        (Ethnic::Tay, false) => (rng.pick(&TAY_FAMILY), "Thị", rng.pick(&FEMALE_GIVEN)),
        (Ethnic::Hmong, true) => (
            rng.pick(&HMONG_FAMILY),
            rng.pick(&HMONG_MALE_MIDDLE),
            rng.pick(&HMONG_MALE_GIVEN),
        ),
        (Ethnic::Hmong, false) => (
            rng.pick(&HMONG_FAMILY),
            "Thị",
            rng.pick(&HMONG_FEMALE_GIVEN),
        ),
        (Ethnic::Dao, true) => (
            rng.pick(&DAO_FAMILY),
            rng.pick(&DAO_MALE_MIDDLE),
            rng.pick(&DAO_MALE_GIVEN),
        ),
        (Ethnic::Dao, false) => (
            rng.pick(&DAO_FAMILY),
            rng.pick(&DAO_FEMALE_MIDDLE),
            rng.pick(&DAO_FEMALE_GIVEN),
        ),
    };
    let second = if matches!(ethnic, Ethnic::Kinh) && middle == "Thị" && rng.chance(25) {
        Some(rng.pick(&FEMALE_SECOND_MIDDLE))
    } else {
        None
    };
    match second {
        Some(s) if s != given => format!("{family} {middle} {s} {given}"),
        _ => format!("{family} {middle} {given}"),
    }
}

/// Lower-cases and strips Vietnamese diacritics, so "Lý Thị Mẩy" and
/// "Ly Thi May" compare equal; used to keep demo people clearly distinct.
fn fold(s: &str) -> String {
    const GROUPS: [(char, &str); 7] = [
        ('a', "àáảãạăằắẳẵặâầấẩẫậ"),
        ('e', "èéẻẽẹêềếểễệ"),
        ('i', "ìíỉĩị"),
        ('o', "òóỏõọôồốổỗộơờớởỡợ"),
        ('u', "ùúủũụưừứửữự"),
        ('y', "ỳýỷỹỵ"),
        ('d', "đ"),
    ];
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            GROUPS
                .iter()
                .find(|(_, g)| g.contains(c))
                .map_or(c, |&(base, _)| base)
        })
        .collect()
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// About 135 fictional people: for each current unit one secretary and 2–5
/// deputy secretaries (120 in all), then 10 committee members and 5 members.
pub fn people() -> Vec<DemoPerson> {
    // (unit index into CURRENT, position)
    let mut slots: Vec<(usize, &'static str)> = Vec::new();
    for (i, &(_, _, _, deputies, _)) in CURRENT.iter().enumerate() {
        slots.push((i, "secretary"));
        slots.extend(std::iter::repeat_n((i, "deputy_secretary"), deputies));
    }
    for i in [0, 1, 3, 4, 6, 9, 11, 13, 17, 20] {
        slots.push((i, "committee_member"));
    }
    for i in [0, 2, 5, 12, 15] {
        slots.push((i, "member"));
    }

    let mut rng = Rng(SEED);
    let mut names = HashSet::new();
    let mut phones = HashSet::new();
    let mut out = Vec::with_capacity(slots.len());
    for (unit, position) in slots {
        let (unit_code, _, _, _, ethnic) = CURRENT[unit];
        let male = rng.chance(if position == "secretary" { 65 } else { 50 });
        let full_name = loop {
            let n = name_for(&mut rng, ethnic, male);
            if !n
                .split(' ')
                .collect::<Vec<_>>()
                .windows(2)
                .any(|w| w[0] == w[1])
                && names.insert(fold(&n))
            {
                break n;
            }
        };
        // Ages 23–37 at the end of 2026; secretaries tend to be older.
        let (lo, hi) = match position {
            "secretary" => (1989, 1997),
            "deputy_secretary" => (1990, 2002),
            _ => (1992, 2003),
        };
        let year = rng.range(lo, hi);
        let month = rng.range(1, 12);
        let day = rng.range(1, days_in_month(year, month));
        let phone = loop {
            let p = format!(
                "{}{:07}",
                rng.weighted(&PHONE_PREFIXES),
                rng.below(10_000_000)
            );
            if phones.insert(p.clone()) {
                break p;
            }
        };
        out.push(DemoPerson {
            full_name,
            birth_date: format!("{year:04}-{month:02}-{day:02}"),
            gender: if male { "male" } else { "female" },
            phone,
            position,
            unit_code,
            term: TERM,
        });
    }
    out
}

// ---------------------------------------------------------------------------
// Trainers and courses
// ---------------------------------------------------------------------------

/// Two provincial Youth Union trainers. Demo passwords only.
pub fn trainers() -> Vec<DemoTrainer> {
    vec![
        DemoTrainer {
            username: "hoa.nguyen",
            full_name: "Nguyễn Thị Thanh Hoa",
            password: "demo-trainer-1",
        },
        DemoTrainer {
            username: "tuan.le",
            full_name: "Lê Anh Tuấn",
            password: "demo-trainer-2",
        },
    ]
}

const PDF: &str = "application/pdf";
const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const MP4: &str = "video/mp4";

fn session(
    day: u32,
    (start, end): (&'static str, &'static str),
    topic: &'static str,
    topic_en: &'static str,
    trainer_index: usize,
    place: &'static str,
) -> DemoSession {
    DemoSession {
        day,
        start,
        end,
        topic,
        topic_en,
        trainer_index,
        place,
    }
}

fn material(
    title: &'static str,
    kind: &'static str,
    file_name: &'static str,
    content_type: &'static str,
    size_bytes: i64,
) -> DemoMaterial {
    DemoMaterial {
        title,
        kind,
        file_name,
        content_type,
        size_bytes,
        language: "vi",
    }
}

/// Course 1: three-day provincial class for all secretaries and deputies.
/// Course 2: one-day commune-level refresher for four communes.
pub fn courses() -> Vec<DemoCourse> {
    const HALL: &str = "Hội trường A, Trường Chính trị tỉnh Lào Cai";
    const LAB: &str = "Phòng máy tính, Trường Chính trị tỉnh Lào Cai";
    const YARD: &str = "Sân trường, Trường Chính trị tỉnh Lào Cai";
    const COMMUNE_HALL: &str = "Hội trường Ủy ban nhân dân xã Bát Xát";
    const AM: (&str, &str) = ("07:30", "11:00");
    const PM: (&str, &str) = ("13:30", "16:30");

    let course1 = DemoCourse {
        code: "BD-BTPBT-2026",
        title: "Lớp bồi dưỡng nghiệp vụ công tác Đoàn cho Bí thư, Phó Bí thư Đoàn xã, phường năm 2026",
        description: "Bồi dưỡng kiến thức, kỹ năng nghiệp vụ công tác Đoàn và phong trào thanh thiếu nhi \
                      cho Bí thư, Phó Bí thư Đoàn các xã, phường sau sắp xếp đơn vị hành chính hai cấp.",
        management_level: "province",
        start_date: "2026-12-08",
        end_date: "2026-12-10",
        place: "Trường Chính trị tỉnh Lào Cai",
        trainer_indexes: vec![0, 1],
        sessions: vec![
            session(
                0,
                ("07:30", "08:15"),
                "Khai giảng lớp học",
                "Opening ceremony",
                0,
                HALL,
            ),
            session(
                0,
                ("08:30", "11:00"),
                "Công tác tư tưởng trên không gian mạng",
                "Ideological work in cyberspace",
                0,
                HALL,
            ),
            session(
                0,
                PM,
                "Công tác Đội và phong trào thiếu nhi",
                "Young Pioneer work and the children's movement",
                1,
                HALL,
            ),
            session(
                1,
                AM,
                "Công tác kiểm tra, giám sát của Đoàn",
                "Youth Union inspection and supervision",
                1,
                HALL,
            ),
            session(
                1,
                PM,
                "Hướng dẫn sử dụng phần mềm quản lý đoàn viên",
                "Using the member-management software",
                0,
                LAB,
            ),
            session(
                2,
                AM,
                "Tín dụng chính sách: vốn vay ưu đãi qua Ngân hàng Chính sách xã hội",
                "Policy credit: preferential loans through the Vietnam Bank for Social Policies",
                0,
                HALL,
            ),
            session(
                2,
                ("13:30", "15:45"),
                "Kỹ năng tổ chức câu lạc bộ, đội, nhóm, sinh hoạt trại",
                "Skills for running clubs, teams, groups and camps",
                1,
                YARD,
            ),
            session(
                2,
                ("16:00", "16:45"),
                "Tổng kết, bế giảng lớp học",
                "Review and closing ceremony",
                0,
                HALL,
            ),
        ],
        materials: vec![
            material(
                "Bài 1 - Công tác tư tưởng trên không gian mạng",
                "pdf",
                "Bài 1 - Công tác tư tưởng trên không gian mạng.pdf",
                PDF,
                2_457_318,
            ),
            material(
                "Bài 2 - Công tác Đội và phong trào thiếu nhi",
                "pdf",
                "Bài 2 - Công tác Đội và phong trào thiếu nhi.pdf",
                PDF,
                1_873_204,
            ),
            material(
                "Bài 3 - Công tác kiểm tra, giám sát của Đoàn",
                "slides",
                "Bài 3 - Công tác kiểm tra, giám sát của Đoàn.pptx",
                PPTX,
                6_204_981,
            ),
            material(
                "Video hướng dẫn sử dụng phần mềm quản lý đoàn viên",
                "video",
                "Hướng dẫn sử dụng phần mềm quản lý đoàn viên.mp4",
                MP4,
                86_512_740,
            ),
            material(
                "Tài liệu tín dụng chính sách qua Ngân hàng Chính sách xã hội",
                "pdf",
                "Tài liệu tín dụng chính sách - Ngân hàng Chính sách xã hội.pdf",
                PDF,
                1_206_557,
            ),
            material(
                "Kỹ năng tổ chức sinh hoạt trại",
                "document",
                "Kỹ năng tổ chức sinh hoạt trại.docx",
                DOCX,
                384_112,
            ),
        ],
        enroll: EnrollRule::AllSecretariesAndDeputies,
    };

    let course2 = DemoCourse {
        code: "TH-CDS-2026-BX",
        title: "Lớp tập huấn phần mềm quản lý đoàn viên và chuyển đổi số trong công tác Đoàn năm 2026",
        description: "Tập huấn nhắc lại về cập nhật dữ liệu đoàn viên và ứng dụng chuyển đổi số \
                      cho cán bộ Đoàn cụm xã Bát Xát, Y Tý, Mường Hum, Cốc San.",
        management_level: "commune",
        start_date: "2026-12-15",
        end_date: "2026-12-15",
        place: COMMUNE_HALL,
        trainer_indexes: vec![0],
        sessions: vec![
            session(
                0,
                ("07:30", "09:30"),
                "Chuyển đổi số trong công tác Đoàn",
                "Digital transformation in Youth Union work",
                0,
                COMMUNE_HALL,
            ),
            session(
                0,
                ("09:45", "11:00"),
                "Thực hành cập nhật dữ liệu đoàn viên trên phần mềm",
                "Hands-on: updating member records in the software",
                0,
                COMMUNE_HALL,
            ),
            session(
                0,
                ("13:30", "16:00"),
                "Thực hành quản lý sổ đoàn viên điện tử",
                "Hands-on: managing electronic member books",
                0,
                COMMUNE_HALL,
            ),
        ],
        materials: vec![
            material(
                "Hướng dẫn cập nhật dữ liệu đoàn viên",
                "pdf",
                "Hướng dẫn cập nhật dữ liệu đoàn viên.pdf",
                PDF,
                948_330,
            ),
            material(
                "Chuyển đổi số trong công tác Đoàn",
                "slides",
                "Chuyển đổi số trong công tác Đoàn.pptx",
                PPTX,
                4_512_006,
            ),
        ],
        enroll: EnrollRule::UnitCodes(vec!["02749", "02767", "02788", "03064"]),
    };

    vec![course1, course2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current_codes() -> HashSet<&'static str> {
        units()
            .into_iter()
            .filter(|u| u.kind != "province" && u.valid_to.is_none())
            .map(|u| u.code)
            .collect()
    }

    fn is_nfc_safe(s: &str) -> bool {
        !s.chars().any(|c| ('\u{0300}'..='\u{036F}').contains(&c))
    }

    fn valid_date(s: &str) -> Option<(u32, u32, u32)> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let y: u32 = s[0..4].parse().ok()?;
        let m: u32 = s[5..7].parse().ok()?;
        let d: u32 = s[8..10].parse().ok()?;
        ((1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&d)).then_some((y, m, d))
    }

    #[test]
    fn unit_codes_unique_and_references_exist() {
        let us = units();
        let codes: HashSet<_> = us.iter().map(|u| u.code).collect();
        assert_eq!(codes.len(), us.len());
        assert!(codes.contains(PROVINCE_CODE));
        let current = current_codes();
        assert!((18..=24).contains(&current.len()));
        for u in &us {
            if let Some(p) = u.parent_code {
                assert!(codes.contains(p), "{} parent {p}", u.code);
            }
            if u.kind == "commune" || u.kind == "ward" {
                assert!(u.parent_code.is_some());
            }
            if u.valid_to.is_none() && u.kind != "province" {
                assert_eq!(u.parent_code, Some(PROVINCE_CODE));
                assert_eq!(u.valid_from, Some(REFORM_DATE));
            }
            for d in [u.valid_from, u.valid_to].into_iter().flatten() {
                assert!(valid_date(d).is_some(), "{d}");
            }
            if let Some(m) = u.merged_into_code {
                assert_eq!(u.valid_to, Some(LAST_OLD_DATE));
                assert!(current.contains(m), "{} merged into {m}", u.code);
            }
        }
        // At least one current unit is the merger of two or more old ones.
        assert!(
            current
                .iter()
                .any(|c| { us.iter().filter(|u| u.merged_into_code == Some(c)).count() >= 2 })
        );
    }

    #[test]
    fn people_are_unique_and_well_formed() {
        let ps = people();
        let current = current_codes();
        let names: HashSet<_> = ps.iter().map(|p| &p.full_name).collect();
        let folded: HashSet<_> = ps.iter().map(|p| fold(&p.full_name)).collect();
        assert_eq!(
            folded.len(),
            ps.len(),
            "names must differ beyond diacritics"
        );
        let phones: HashSet<_> = ps.iter().map(|p| &p.phone).collect();
        assert_eq!(names.len(), ps.len());
        assert_eq!(phones.len(), ps.len());
        for p in &ps {
            assert!(current.contains(p.unit_code), "{}", p.unit_code);
            assert!(["male", "female"].contains(&p.gender));
            assert!(
                [
                    "secretary",
                    "deputy_secretary",
                    "committee_member",
                    "member"
                ]
                .contains(&p.position)
            );
            assert_eq!(p.phone.len(), 10);
            assert!(p.phone.bytes().all(|b| b.is_ascii_digit()));
            assert!(["03", "05", "07", "08", "09"].contains(&&p.phone[..2]));
            let (y, m, d) = valid_date(&p.birth_date).expect("valid birth date");
            // Age on the first course day, 2026-12-08.
            let age = 2026 - y - u32::from((m, d) > (12, 8));
            assert!((22..=38).contains(&age), "{} age {age}", p.full_name);
        }
        for code in &current {
            let sec = ps
                .iter()
                .filter(|p| p.unit_code == *code && p.position == "secretary")
                .count();
            let dep = ps
                .iter()
                .filter(|p| p.unit_code == *code && p.position == "deputy_secretary")
                .count();
            assert_eq!(sec, 1, "{code}");
            assert!((2..=5).contains(&dep), "{code}");
        }
        let leaders = ps
            .iter()
            .filter(|p| p.position == "secretary" || p.position == "deputy_secretary")
            .count();
        assert!((110..=130).contains(&leaders), "{leaders}");
        assert!((125..=145).contains(&ps.len()));
    }

    #[test]
    fn gendered_middle_names_are_consistent() {
        for p in people() {
            let parts: Vec<_> = p.full_name.split(' ').collect();
            assert!(parts.len() >= 3, "{}", p.full_name);
            if p.gender == "male" {
                assert!(!parts.contains(&"Thị"), "{}", p.full_name);
            } else {
                assert!(
                    !parts.contains(&"Văn") && parts[1] != "A",
                    "{}",
                    p.full_name
                );
            }
        }
    }

    #[test]
    fn all_strings_are_nfc() {
        let mut all: Vec<String> = Vec::new();
        for u in units() {
            all.push(u.name.into());
        }
        for p in people() {
            all.push(p.full_name);
        }
        for t in trainers() {
            all.push(t.full_name.into());
        }
        for c in courses() {
            all.extend([c.title, c.description, c.place].map(String::from));
            for s in c.sessions {
                all.extend([s.topic, s.place].map(String::from));
            }
            for m in c.materials {
                all.extend([m.title, m.file_name].map(String::from));
            }
        }
        for s in &all {
            assert!(is_nfc_safe(s), "combining mark in {s:?}");
        }
    }

    #[test]
    fn deterministic() {
        assert_eq!(people(), people());
        assert_eq!(units(), units());
        assert_eq!(courses(), courses());
    }

    #[test]
    fn courses_are_consistent() {
        let ts = trainers();
        assert_eq!(ts.len(), 2);
        let current = current_codes();
        let cs = courses();
        assert_eq!(cs.len(), 2);
        for c in &cs {
            let (_, _, d0) = valid_date(c.start_date).unwrap();
            let (_, _, d1) = valid_date(c.end_date).unwrap();
            for s in &c.sessions {
                assert!(c.trainer_indexes.contains(&s.trainer_index));
                assert!(s.trainer_index < ts.len());
                assert!(d0 + s.day <= d1);
                assert!(s.start < s.end);
            }
            for m in &c.materials {
                assert!(["pdf", "slides", "video", "document"].contains(&m.kind));
                assert!(m.size_bytes > 0);
            }
            if let EnrollRule::UnitCodes(codes) = &c.enroll {
                assert!((3..=4).contains(&codes.len()));
                assert!(codes.iter().all(|c| current.contains(c)));
            }
        }
        let c1 = &cs[0];
        assert!((6..=9).contains(&c1.sessions.len()));
        assert!((4..=6).contains(&c1.materials.len()));
        for t in 0..ts.len() {
            assert!(c1.sessions.iter().any(|s| s.trainer_index == t));
        }
    }
}
