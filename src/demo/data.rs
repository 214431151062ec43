//! Built-in demo data set for `diemdanh`: the Gia Lai provincial Youth Union (Tỉnh đoàn Gia
//! Lai), which trains its commune Secretaries and Deputy Secretaries.
//!
//! Lets a fresh install, a training demo, or an integration test run against
//! data that looks real — Kinh, Jrai and Bahnar names with correct diacritics,
//! real communes and wards from after the July 2025 two-tier reform with the
//! units they were merged from, a three-day training class on the topics the
//! province teaches — without touching anyone's personal data. Everything here
//! is pure data plus a small seeded generator with no dependencies, so every
//! call returns the same output on every run.
//!
//! Units. Since 1 July 2025 Gia Lai includes the former Bình Định and has 135
//! commune-level units, 110 communes and 25 wards (Resolution 1664/NQ-UBTVQH15
//! of 16 June 2025), its seat at Quy Nhơn. The names and codes below are the
//! official ones of the General Statistics Office's list (Decision
//! 19/2025/QĐ-TTg, "Bảng danh mục và mã số các đơn vị hành chính Việt Nam"),
//! taken from two public copies of it, since the office's own site could not be
//! reached from where this was written:
//! - the current units and their codes, and Gia Lai's province code 52 (Bình
//!   Định's old code; the former Gia Lai was 64): repository
//!   thanglequoc/vietnamese-provinces-database, files
//!   `dataset-generation-scripts/resources/manual_decree_seeds/wards/52_GiaLai.sql`
//!   (commit 2283a3dec2c87d1f37ce18e9e6d70de35c2410c7) and
//!   `dataset-generation-scripts/resources/manual_decree_seeds/provinces_seed.sql`
//!   (commit 0aa7772602512ee84784dfd5be4f25cb982806c9);
//! - which pre-2025 units each current unit was formed from, with their old codes
//!   and districts: the office's conversion table ("Bảng chuyển đổi đơn vị hành
//!   chính mới - cũ"), repository sunshine-tech/VietnamProvinces, file
//!   `dev/seed-data/2025-07/BangChuyendoiĐVHCmoi_cu_khong_merge.csv` (commit
//!   6d9e4fecde4eea99d353e53e7a241b8e183a13a7), rows "Tỉnh Gia Lai (52)".
//!
//! The conversion table gives every new unit the code of one of the units it
//! was formed from (Phường Pleiku keeps Phường Tây Sơn's 23575), so that unit
//! is not a separate record here: the loader creates it under its old name and
//! district, merges the others into it, renames it and moves it under the
//! province, through the same functions as the reorganisation API.
//!
//! All people are fictional. Phone numbers are random numbers in a valid
//! format: never call or text them. Trainer passwords are for demos only and
//! must never be used in production.

use std::collections::HashSet;

/// Code of the single demo province (Tỉnh Gia Lai since 1 July 2025).
pub const PROVINCE_CODE: &str = "52";

/// An administrative unit (province, or commune/ward/... under it), as it stands today.
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

/// What a current unit was before 1 July 2025, when it continues a pre-reform
/// unit under that unit's code: its name, kind and district then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoFormer {
    /// The code it kept (the current unit's code).
    pub code: &'static str,
    pub name: &'static str,
    pub kind: &'static str,
    pub district_code: &'static str,
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
    /// "secretary" | "deputy_secretary" | "committee_member" | "member" | "branch_secretary" |
    /// "branch_deputy_secretary"
    pub position: &'static str,
    /// Code of a current (post-2025) unit, or of a branch.
    pub unit_code: &'static str,
    pub term: &'static str,
    /// The day they took their position (their election), when recorded.
    pub position_since: Option<String>,
}

/// A Youth Union branch (chi đoàn) of a ward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoBranch {
    pub code: &'static str,
    pub name: &'static str,
    /// Code of the current ward it belongs to.
    pub parent_code: &'static str,
}

/// A trainer account (provincial Youth Union staff).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoTrainer {
    pub username: &'static str,
    pub full_name: &'static str,
    pub password: &'static str,
}

/// An organiser account: plans the training of one unit and the units below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOrganiser {
    pub username: &'static str,
    pub full_name: &'static str,
    pub password: &'static str,
    pub unit_code: &'static str,
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
    /// Code of the unit that organises it.
    pub organizing_unit_code: &'static str,
    /// Attendance already taken: (full name of an enrolled person, a status per session, or
    /// None when nothing was recorded).
    pub attendance: Vec<(&'static str, Vec<Option<&'static str>>)>,
}

// ---------------------------------------------------------------------------
// Units
// ---------------------------------------------------------------------------

/// Which naming tradition dominates a unit's population.
#[derive(Clone, Copy)]
enum Ethnic {
    Kinh,
    /// Jrai: family name first (Siu, Ksor, Rơ Châm…), "H'" before women's given names.
    Jrai,
    /// Bahnar: mostly "Đinh", or "A" (men) and "Y" (women) before the given name.
    Bahnar,
}

/// Current units, 11 of the 25 wards and 11 of the 110 communes, from Pleiku to
/// Quy Nhơn: (code, name, kind, number of deputy secretaries, ethnicity).
const CURRENT: [(&str, &str, &str, usize, Ethnic); 22] = [
    ("23575", "Phường Pleiku", "ward", 5, Ethnic::Kinh),
    ("23584", "Phường Thống Nhất", "ward", 5, Ethnic::Kinh),
    ("23563", "Phường Diên Hồng", "ward", 4, Ethnic::Kinh),
    ("23586", "Phường Hội Phú", "ward", 5, Ethnic::Kinh),
    ("23602", "Phường An Phú", "ward", 3, Ethnic::Jrai),
    ("21592", "Phường Quy Nhơn Nam", "ward", 4, Ethnic::Kinh),
    ("21583", "Phường Quy Nhơn", "ward", 5, Ethnic::Kinh),
    ("21910", "Phường An Nhơn", "ward", 2, Ethnic::Kinh),
    ("23617", "Phường An Khê", "ward", 4, Ethnic::Kinh),
    ("24044", "Phường Ayun Pa", "ward", 5, Ethnic::Jrai),
    ("23590", "Xã Biển Hồ", "commune", 4, Ethnic::Jrai),
    ("23611", "Xã Gào", "commune", 5, Ethnic::Jrai),
    ("23722", "Xã Chư Păh", "commune", 5, Ethnic::Jrai),
    ("23764", "Xã Ia Grai", "commune", 5, Ethnic::Jrai),
    ("23677", "Xã Đak Đoa", "commune", 4, Ethnic::Bahnar),
    ("23857", "Xã Đức Cơ", "commune", 5, Ethnic::Jrai),
    ("23941", "Xã Chư Sê", "commune", 4, Ethnic::Jrai),
    ("23638", "Xã Kbang", "commune", 5, Ethnic::Bahnar),
    ("23824", "Xã Kông Chro", "commune", 4, Ethnic::Bahnar),
    ("21609", "Xã An Lão", "commune", 5, Ethnic::Bahnar),
    ("21808", "Xã Tây Sơn", "commune", 5, Ethnic::Kinh),
    ("21994", "Xã Vân Canh", "commune", 5, Ethnic::Bahnar),
];

/// Pre-reform districts (abolished on 1 July 2025) that the merged units below belonged to:
/// (code, name). Pleiku, Đăk Đoa, Chư Păh and Chư Sê were in the former Gia Lai (64), Quy Nhơn
/// in the former Bình Định (52).
const DISTRICTS: [(&str, &str); 5] = [
    ("622", "Thành phố Pleiku"),
    ("626", "Huyện Đăk Đoa"),
    ("627", "Huyện Chư Păh"),
    ("633", "Huyện Chư Sê"),
    ("540", "Thành phố Quy Nhơn"),
];

/// Current units that continue a pre-reform unit under its code:
/// (code, name before the reform, kind then, district).
const FORMER: [(&str, &str, &str, &str); 8] = [
    ("23575", "Phường Tây Sơn", "ward", "622"),
    ("23584", "Phường Yên Thế", "ward", "622"),
    ("23563", "Phường Ia Kring", "ward", "622"),
    ("23586", "Phường Chi Lăng", "ward", "622"),
    ("23602", "Xã An Phú", "commune", "622"),
    ("23590", "Xã Biển Hồ", "commune", "622"),
    ("21592", "Phường Nguyễn Văn Cừ", "ward", "540"),
    ("23941", "Thị trấn Chư Sê", "town", "633"),
];

/// Pre-reform units merged into a current one on 1 July 2025:
/// (code, name, kind, district, merged into).
const MERGED: [(&str, &str, &str, &str, &str); 23] = [
    // Phường Pleiku
    ("23566", "Phường Hội Thương", "ward", "622", "23575"),
    ("23570", "Phường Phù Đổng", "ward", "622", "23575"),
    ("23572", "Phường Hoa Lư", "ward", "622", "23575"),
    ("23596", "Xã Trà Đa", "commune", "622", "23575"),
    // Phường Thống Nhất
    ("23578", "Phường Thống Nhất", "ward", "622", "23584"),
    ("23579", "Phường Đống Đa", "ward", "622", "23584"),
    // Phường Diên Hồng
    ("23557", "Phường Yên Đỗ", "ward", "622", "23563"),
    ("23560", "Phường Diên Hồng", "ward", "622", "23563"),
    ("23605", "Xã Diên Phú", "commune", "622", "23563"),
    // Phường Hội Phú
    ("23569", "Phường Hội Phú", "ward", "622", "23586"),
    ("23581", "Phường Trà Bá", "ward", "622", "23586"),
    // Phường An Phú
    ("23582", "Phường Thắng Lợi", "ward", "622", "23602"),
    ("23599", "Xã Chư Á", "commune", "622", "23602"),
    // Xã Biển Hồ
    ("23692", "Xã Hà Bầu", "commune", "626", "23590"),
    ("23746", "Xã Chư Đang Ya", "commune", "627", "23590"),
    ("23761", "Xã Nghĩa Hưng", "commune", "627", "23590"),
    // Phường Quy Nhơn Nam
    ("21565", "Phường Quang Trung", "ward", "540", "21592"),
    ("21577", "Phường Ngô Mây", "ward", "540", "21592"),
    ("21595", "Phường Ghềnh Ráng", "ward", "540", "21592"),
    // Xã Chư Sê
    ("23950", "Xã Ia Glai", "commune", "633", "23941"),
    ("23962", "Xã Ia Blang", "commune", "633", "23941"),
    ("23965", "Xã Dun", "commune", "633", "23941"),
    ("23966", "Xã Ia Pal", "commune", "633", "23941"),
];

/// Date the two-tier administrative structure took effect.
pub const REFORM_DATE: &str = "2025-07-01";
const LAST_OLD_DATE: &str = "2025-06-30";

/// The province, its 22 current communes/wards, and the history of eight of them: 5
/// abolished districts and 23 communes/wards merged into them. Current units that continue a
/// pre-reform unit (see [`former_units`]) have no `valid_from`; the others begin on the
/// reform date.
pub fn units() -> Vec<DemoUnit> {
    let continued: HashSet<&str> = FORMER.iter().map(|f| f.0).collect();
    let mut out = vec![DemoUnit {
        code: PROVINCE_CODE,
        name: "Tỉnh Gia Lai",
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
        valid_from: (!continued.contains(code)).then_some(REFORM_DATE),
        valid_to: None,
        merged_into_code: None,
    }));
    out.extend(DISTRICTS.iter().map(|&(code, name)| DemoUnit {
        code,
        name,
        kind: "district",
        parent_code: Some(PROVINCE_CODE),
        valid_from: None,
        valid_to: Some(LAST_OLD_DATE),
        merged_into_code: None,
    }));
    out.extend(
        MERGED
            .iter()
            .map(|&(code, name, kind, district, into)| DemoUnit {
                code,
                name,
                kind,
                parent_code: Some(district),
                valid_from: None,
                valid_to: Some(LAST_OLD_DATE),
                merged_into_code: Some(into),
            }),
    );
    out
}

/// The current units that continue a pre-reform unit, as they were before the reform.
pub fn former_units() -> Vec<DemoFormer> {
    FORMER
        .iter()
        .map(|&(code, name, kind, district_code)| DemoFormer {
            code,
            name,
            kind,
            district_code,
        })
        .collect()
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

/// Kinh family names, weighted roughly by frequency in the central provinces.
const KINH_FAMILY: [(&str, u32); 16] = [
    ("Nguyễn", 36),
    ("Trần", 10),
    ("Lê", 9),
    ("Phạm", 6),
    ("Võ", 5),
    ("Huỳnh", 4),
    ("Phan", 4),
    ("Hoàng", 3),
    ("Đặng", 3),
    ("Bùi", 3),
    ("Đỗ", 3),
    ("Ngô", 2),
    ("Dương", 2),
    ("Hồ", 2),
    ("Trương", 2),
    ("Đinh", 1),
];
const MALE_MIDDLE: [&str; 12] = [
    "Văn", "Văn", "Văn", "Đức", "Minh", "Quang", "Hữu", "Công", "Thành", "Xuân", "Tiến", "Ngọc",
];
const FEMALE_MIDDLE: [&str; 11] = [
    "Thị", "Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Thùy", "Hồng", "Kim", "Phương",
];
/// Optional second middle name after "Thị" (e.g. "Nguyễn Thị Thu Hà").
const FEMALE_SECOND_MIDDLE: [&str; 6] = ["Thu", "Thanh", "Ngọc", "Hồng", "Kim", "Minh"];
const MALE_GIVEN: [&str; 36] = [
    "Anh", "Bình", "Cường", "Dũng", "Đạt", "Đức", "Hải", "Hiếu", "Hùng", "Huy", "Khánh", "Kiên",
    "Long", "Lộc", "Nam", "Phong", "Quân", "Sơn", "Tài", "Thắng", "Thành", "Tiến", "Toàn", "Trung",
    "Tuấn", "Tùng", "Việt", "Vinh", "Hoàng", "Duy", "Khoa", "Lâm", "Nghĩa", "Phúc", "Quang",
    "Thịnh",
];
const FEMALE_GIVEN: [&str; 30] = [
    "Anh", "Chi", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hiền", "Hoa", "Hương", "Huyền", "Lan",
    "Liên", "Linh", "Loan", "Mai", "Ngân", "Nga", "Nhung", "Oanh", "Phương", "Quỳnh", "Thảo",
    "Trang", "Thủy", "Trâm", "Uyên", "Vân", "Yến", "Hồng",
];
/// Jrai family names (the mother's: the Jrai are matrilineal).
const JRAI_FAMILY: [&str; 11] = [
    "Rơ Châm",
    "Siu",
    "Ksor",
    "Kpă",
    "Rmah",
    "Nay",
    "Puih",
    "Rơ Lan",
    "Rơ Mah",
    "Rcom",
    "Ksor",
];
const JRAI_MALE_GIVEN: [&str; 16] = [
    "Blin", "Dam", "Hyun", "Nao", "Thuyên", "Tuân", "Đức", "Long", "Hoan", "Nhã", "Phin", "Sung",
    "Lốp", "Kheo", "Djuh", "Yin",
];
/// Written after "H'" (e.g. "Siu H'Bla").
const JRAI_FEMALE_GIVEN: [&str; 12] = [
    "Bla", "Lan", "Mai", "Yuan", "Linh", "Nhi", "Prăk", "Ngơm", "Hen", "Yên", "Ly", "Djuê",
];
const BAHNAR_MALE_GIVEN: [&str; 16] = [
    "Hmưn", "Hyuh", "Blơm", "Nhen", "Thơm", "Byơ", "Kim", "Bình", "Sáng", "Tuk", "Đoan", "Pơk",
    "Hlăk", "Ngăn", "Jơn", "Uônh",
];
const BAHNAR_FEMALE_GIVEN: [&str; 12] = [
    "Hlen", "Blik", "Hiên", "Thu", "Nhơn", "Hmơr", "Ngọc", "Lan", "Djin", "Kia", "Pưr", "Hoa",
];

/// Mobile prefixes; Viettel weighted higher, as it dominates in the highlands.
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
    // and a few in Kinh-majority wards carry Jrai names.
    let ethnic = match ethnic {
        Ethnic::Kinh if rng.chance(8) => Ethnic::Jrai,
        Ethnic::Kinh => Ethnic::Kinh,
        other if rng.chance(65) => other,
        _ => Ethnic::Kinh,
    };
    match (ethnic, male) {
        (Ethnic::Kinh, true) => {
            let (family, middle, given) = (
                rng.weighted(&KINH_FAMILY),
                rng.pick(&MALE_MIDDLE),
                rng.pick(&MALE_GIVEN),
            );
            format!("{family} {middle} {given}")
        }
        (Ethnic::Kinh, false) => {
            let (family, middle, given) = (
                rng.weighted(&KINH_FAMILY),
                rng.pick(&FEMALE_MIDDLE),
                rng.pick(&FEMALE_GIVEN),
            );
            match (middle == "Thị" && rng.chance(25)).then(|| rng.pick(&FEMALE_SECOND_MIDDLE)) {
                Some(second) if second != given => format!("{family} {middle} {second} {given}"),
                _ => format!("{family} {middle} {given}"),
            }
        }
        (Ethnic::Jrai, true) => {
            let family = rng.pick(&JRAI_FAMILY);
            // Many Jrai men carry a Vietnamese given name.
            if rng.chance(30) {
                format!("{family} {}", rng.pick(&MALE_GIVEN))
            } else {
                format!("{family} {}", rng.pick(&JRAI_MALE_GIVEN))
            }
        }
        (Ethnic::Jrai, false) => {
            let family = rng.pick(&JRAI_FAMILY);
            if rng.chance(30) {
                format!("{family} Thị {}", rng.pick(&FEMALE_GIVEN))
            } else {
                format!("{family} H'{}", rng.pick(&JRAI_FEMALE_GIVEN))
            }
        }
        (Ethnic::Bahnar, true) => {
            let given = rng.pick(&BAHNAR_MALE_GIVEN);
            match rng.below(4) {
                0 | 1 => format!("Đinh Văn {given}"),
                2 => format!("Đinh {given}"),
                _ => format!("A {given}"),
            }
        }
        (Ethnic::Bahnar, false) => {
            let given = rng.pick(&BAHNAR_FEMALE_GIVEN);
            match rng.below(4) {
                0 | 1 => format!("Đinh Thị {given}"),
                _ => format!("Y {given}"),
            }
        }
    }
}

/// Lower-cases and strips Vietnamese diacritics, so "Rơ Châm H'Ngơm" and
/// "Ro Cham H'Ngom" compare equal; used to keep demo people clearly distinct.
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
            position_since: None,
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

/// Organisers of two neighbouring wards of Pleiku (siblings under the province) and of the
/// province itself (a provincial staff member who plans without administering).
pub fn organisers() -> Vec<DemoOrganiser> {
    vec![
        DemoOrganiser {
            username: "doan.pleiku",
            full_name: "Rơ Mah H'Linh",
            password: "demo-organiser-1",
            unit_code: "23575",
        },
        DemoOrganiser {
            username: "doan.thongnhat",
            full_name: "Trần Quốc Bảo",
            password: "demo-organiser-2",
            unit_code: "23584",
        },
        DemoOrganiser {
            username: "tinhdoan.daotao",
            full_name: "Phạm Thị Mai",
            password: "demo-organiser-3",
            unit_code: PROVINCE_CODE,
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

/// Course 1: three-day provincial class for all secretaries and deputies, on
/// the topics the province teaches them.
/// Course 2: one-day skills class for the four communes around Pleiku.
pub fn courses() -> Vec<DemoCourse> {
    const SCHOOL: &str = "Trường Chính trị tỉnh Gia Lai";
    const HALL: &str = "Hội trường A, Trường Chính trị tỉnh Gia Lai";
    const LAB: &str = "Phòng máy tính, Trường Chính trị tỉnh Gia Lai";
    const YARD: &str = "Sân trường, Trường Chính trị tỉnh Gia Lai";
    const COMMUNE_HALL: &str = "Hội trường Ủy ban nhân dân xã Biển Hồ";
    const LAKE_SHORE: &str = "Khu dã ngoại ven Biển Hồ, xã Biển Hồ";
    const AM: (&str, &str) = ("07:30", "11:00");
    const PM: (&str, &str) = ("13:30", "16:30");

    let course1 = DemoCourse {
        code: "BD-BTPBT-2026",
        title: "Lớp bồi dưỡng nghiệp vụ công tác Đoàn cho Bí thư, Phó Bí thư Đoàn xã, phường năm 2026",
        description: "Bồi dưỡng kiến thức, kỹ năng nghiệp vụ công tác Đoàn và phong trào thanh thiếu nhi \
                      cho Bí thư, Phó Bí thư Đoàn các xã, phường tỉnh Gia Lai sau sắp xếp đơn vị hành \
                      chính hai cấp.",
        management_level: "province",
        start_date: "2026-12-08",
        end_date: "2026-12-10",
        place: SCHOOL,
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
                "Bảo vệ nền tảng tư tưởng của Đảng trên không gian mạng",
                "Defending the Party's ideological foundation in cyberspace",
                0,
                HALL,
            ),
            session(
                0,
                PM,
                "Vai trò của Bí thư Đoàn xã trong công tác phụ trách Đội Thiếu niên Tiền phong Hồ Chí Minh",
                "The commune Youth Union Secretary's role for the Young Pioneer units",
                1,
                HALL,
            ),
            session(
                1,
                AM,
                "Công tác kiểm tra, giám sát và thi hành kỷ luật của Đoàn",
                "Youth Union inspection, supervision and discipline",
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
                "Tín dụng chính sách và hoạt động nhận ủy thác cho vay vốn của Ngân hàng Chính sách xã hội",
                "Policy credit and the loans the Youth Union administers for the Vietnam Bank for \
                 Social Policies",
                0,
                HALL,
            ),
            session(
                2,
                ("13:30", "15:45"),
                "Kỹ năng tổ chức câu lạc bộ, đội, nhóm; kỹ năng cắm trại, dã ngoại",
                "Club, team and group skills; camping and outdoor skills",
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
                "Bài 1 - Bảo vệ nền tảng tư tưởng của Đảng trên không gian mạng",
                "pdf",
                "Bài 1 - Bảo vệ nền tảng tư tưởng của Đảng trên không gian mạng.pdf",
                PDF,
                2_457_318,
            ),
            material(
                "Bài 2 - Vai trò của Bí thư Đoàn xã trong công tác Đội",
                "pdf",
                "Bài 2 - Vai trò của Bí thư Đoàn xã trong công tác Đội.pdf",
                PDF,
                1_873_204,
            ),
            material(
                "Bài 3 - Công tác kiểm tra, giám sát và thi hành kỷ luật của Đoàn",
                "slides",
                "Bài 3 - Kiểm tra, giám sát và thi hành kỷ luật của Đoàn.pptx",
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
                "Tài liệu tín dụng chính sách và ủy thác cho vay qua Ngân hàng Chính sách xã hội",
                "pdf",
                "Tài liệu tín dụng chính sách - ủy thác cho vay.pdf",
                PDF,
                1_206_557,
            ),
            material(
                "Kỹ năng tổ chức câu lạc bộ, đội, nhóm và cắm trại",
                "document",
                "Kỹ năng câu lạc bộ, đội, nhóm và cắm trại.docx",
                DOCX,
                384_112,
            ),
        ],
        enroll: EnrollRule::AllSecretariesAndDeputies,
        organizing_unit_code: PROVINCE_CODE,
        attendance: Vec::new(),
    };

    let course2 = DemoCourse {
        code: "TH-KN-2026-BH",
        title: "Lớp tập huấn kỹ năng sinh hoạt câu lạc bộ, đội, nhóm và cắm trại, dã ngoại năm 2026",
        description: "Tập huấn kỹ năng tổ chức câu lạc bộ, đội, nhóm và kỹ năng cắm trại, dã ngoại \
                      cho cán bộ Đoàn cụm xã Biển Hồ, Gào, Chư Păh, Ia Grai.",
        management_level: "commune",
        start_date: "2026-12-15",
        end_date: "2026-12-15",
        place: COMMUNE_HALL,
        trainer_indexes: vec![0],
        sessions: vec![
            session(
                0,
                ("07:30", "09:30"),
                "Thành lập và duy trì câu lạc bộ, đội, nhóm thanh niên",
                "Founding and running youth clubs, teams and groups",
                0,
                COMMUNE_HALL,
            ),
            session(
                0,
                ("09:45", "11:00"),
                "Kỹ năng tổ chức trò chơi lớn và sinh hoạt tập thể",
                "Running large games and group activities",
                0,
                COMMUNE_HALL,
            ),
            session(
                0,
                ("13:30", "16:00"),
                "Thực hành dựng trại, thắt nút dây và hành quân dã ngoại",
                "Hands-on: pitching camp, knots and an outdoor march",
                0,
                LAKE_SHORE,
            ),
        ],
        materials: vec![
            material(
                "Sổ tay sinh hoạt câu lạc bộ, đội, nhóm",
                "pdf",
                "Sổ tay sinh hoạt câu lạc bộ, đội, nhóm.pdf",
                PDF,
                948_330,
            ),
            material(
                "Kỹ năng cắm trại và dã ngoại",
                "slides",
                "Kỹ năng cắm trại và dã ngoại.pptx",
                PPTX,
                4_512_006,
            ),
        ],
        enroll: EnrollRule::UnitCodes(vec!["23590", "23611", "23722", "23764"]),
        organizing_unit_code: PROVINCE_CODE,
        attendance: Vec::new(),
    };

    vec![course1, course2, branch_class()]
}

/// Phường Thống Nhất's one-day class for its branch secretaries and deputies (organised and
/// held by the ward in November 2026), with the roll already taken: three of the five
/// completed it.
fn branch_class() -> DemoCourse {
    const WARD_HALL: &str = "Hội trường Đảng ủy phường Thống Nhất";
    DemoCourse {
        code: "BD-CD-TN-2026",
        title: "Lớp bồi dưỡng Bí thư, Phó Bí thư chi đoàn phường Thống Nhất năm 2026",
        description: "Bồi dưỡng nghiệp vụ công tác Đoàn ở chi đoàn, tổ chức sinh hoạt chi đoàn \
                      và quản lý đoàn viên cho Bí thư, Phó Bí thư các chi đoàn phường Thống Nhất.",
        management_level: "commune",
        start_date: "2026-11-21",
        end_date: "2026-11-21",
        place: WARD_HALL,
        trainer_indexes: Vec::new(),
        sessions: vec![
            session(
                0,
                ("07:30", "11:00"),
                "Nghiệp vụ công tác Đoàn ở chi đoàn",
                "Youth Union work in a branch",
                1,
                WARD_HALL,
            ),
            session(
                0,
                ("13:30", "16:30"),
                "Tổ chức sinh hoạt chi đoàn và quản lý đoàn viên",
                "Running branch meetings and managing members",
                1,
                WARD_HALL,
            ),
        ],
        materials: Vec::new(),
        enroll: EnrollRule::UnitCodes(branches_of("23584")),
        organizing_unit_code: "23584",
        attendance: vec![
            ("Ksor H'Nhung", vec![Some("present"), Some("present")]),
            ("Nguyễn Đức Thịnh", vec![Some("present"), Some("late")]),
            ("Rah Lan Siu", vec![Some("present"), Some("absent")]),
            ("Lê Thị Kim Oanh", vec![Some("present"), Some("present")]),
        ],
    }
}

/// The branches (chi đoàn) of two neighbouring wards of Pleiku: each ward trains its branches'
/// secretaries. Both wards have a "Tổ dân phố 1" branch: a name is unique only within a ward.
pub fn branches() -> Vec<DemoBranch> {
    let branch = |code, name, parent_code| DemoBranch {
        code,
        name,
        parent_code,
    };
    vec![
        branch("23575-CD01", "Chi đoàn Tổ dân phố 1", "23575"),
        branch("23575-CD02", "Chi đoàn Tổ dân phố 2", "23575"),
        branch("23584-CD01", "Chi đoàn Tổ dân phố 1", "23584"),
        branch("23584-CD02", "Chi đoàn Tổ dân phố 2", "23584"),
        branch("23584-CD03", "Chi đoàn Làng Ia Lang", "23584"),
    ]
}

fn branches_of(ward: &str) -> Vec<&'static str> {
    branches()
        .into_iter()
        .filter(|b| b.parent_code == ward)
        .map(|b| b.code)
        .collect()
}

/// The branch secretaries and deputies: those elected at the branches' congresses of
/// September 2025 are newly elected this term; the others have served since 2022 or 2023.
pub fn branch_people() -> Vec<DemoPerson> {
    let person = |full_name: &str,
                  birth_date: &str,
                  gender,
                  phone: &str,
                  position,
                  unit_code,
                  since: &str| DemoPerson {
        full_name: full_name.into(),
        birth_date: birth_date.into(),
        gender,
        phone: phone.into(),
        position,
        unit_code,
        term: BRANCH_TERM,
        position_since: Some(since.into()),
    };
    vec![
        person(
            "Siu Thị Hồng",
            "1998-04-12",
            "female",
            "0935218407",
            "branch_secretary",
            "23575-CD01",
            "2025-09-14",
        ),
        person(
            "Đinh Văn Lực",
            "1995-10-03",
            "male",
            "0976402815",
            "branch_secretary",
            "23575-CD02",
            "2022-10-02",
        ),
        person(
            "Ksor H'Nhung",
            "1999-06-21",
            "female",
            "0388174260",
            "branch_secretary",
            "23584-CD01",
            "2025-09-14",
        ),
        person(
            "Nguyễn Đức Thịnh",
            "1996-01-30",
            "male",
            "0915830642",
            "branch_deputy_secretary",
            "23584-CD01",
            "2023-09-10",
        ),
        person(
            "Rah Lan Siu",
            "1994-08-08",
            "male",
            "0867352019",
            "branch_secretary",
            "23584-CD02",
            "2023-09-10",
        ),
        person(
            "Lê Thị Kim Oanh",
            "2000-02-17",
            "female",
            "0947126583",
            "branch_deputy_secretary",
            "23584-CD02",
            "2025-09-21",
        ),
        person(
            "Puih Văn Thuận",
            "1997-12-05",
            "male",
            "0398615724",
            "branch_secretary",
            "23584-CD03",
            "2025-09-21",
        ),
    ]
}

/// The branches' term (their congresses of 2025).
const BRANCH_TERM: &str = "2025-2027";

/// What counts as trained under a demo plan.
pub enum DemoPlanRule {
    /// Completed a planned course, attending at least this percent of its sessions.
    CourseCompletion(i64),
    /// Attended at least this many sessions on one of the topics.
    SessionsOnTopics(i64, Vec<&'static str>),
}

/// A yearly training plan of the demo.
pub struct DemoPlan {
    pub unit_code: &'static str,
    pub year: i64,
    pub title: &'static str,
    pub target_positions: Vec<&'static str>,
    pub target_percent: i64,
    pub rule: DemoPlanRule,
    /// (course code, planned start, planned end).
    pub courses: Vec<(&'static str, &'static str, &'static str)>,
}

/// The province plans to train every commune and ward Secretary and Deputy Secretary this
/// year through the three-day class; Phường Pleiku plans for its Executive Committee
/// (Secretary, Deputies and committee member) at least two sessions on cyberspace and on the
/// member-management software, which the same class teaches.
pub fn plans() -> Vec<DemoPlan> {
    vec![
        DemoPlan {
            unit_code: PROVINCE_CODE,
            year: 2026,
            title: "Kế hoạch bồi dưỡng Bí thư, Phó Bí thư Đoàn xã, phường năm 2026",
            target_positions: vec!["secretary", "deputy_secretary"],
            target_percent: 100,
            rule: DemoPlanRule::CourseCompletion(80),
            courses: vec![("BD-BTPBT-2026", "2026-12-08", "2026-12-10")],
        },
        DemoPlan {
            unit_code: "23575",
            year: 2026,
            title: "Kế hoạch bồi dưỡng Ban Chấp hành Đoàn phường Pleiku năm 2026",
            target_positions: vec!["secretary", "deputy_secretary", "committee_member"],
            target_percent: 80,
            rule: DemoPlanRule::SessionsOnTopics(
                2,
                vec!["không gian mạng", "phần mềm quản lý đoàn viên"],
            ),
            courses: vec![("BD-BTPBT-2026", "2026-12-08", "2026-12-10")],
        },
        DemoPlan {
            unit_code: "23584",
            year: 2026,
            title: "Kế hoạch bồi dưỡng Bí thư, Phó Bí thư chi đoàn phường Thống Nhất năm 2026",
            target_positions: vec!["branch_secretary", "branch_deputy_secretary"],
            target_percent: 100,
            rule: DemoPlanRule::CourseCompletion(80),
            courses: vec![("BD-CD-TN-2026", "2026-11-21", "2026-11-21")],
        },
    ]
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
        let formers = former_units();
        let continued: HashSet<_> = formers.iter().map(|f| f.code).collect();
        for u in &us {
            if let Some(p) = u.parent_code {
                assert!(codes.contains(p), "{} parent {p}", u.code);
            }
            if u.kind == "commune" || u.kind == "ward" {
                assert!(u.parent_code.is_some());
            }
            if u.valid_to.is_none() && u.kind != "province" {
                assert_eq!(u.parent_code, Some(PROVINCE_CODE));
                // A unit that continues a pre-reform one began before the reform.
                let from = (!continued.contains(u.code)).then_some(REFORM_DATE);
                assert_eq!(u.valid_from, from, "{}", u.code);
            }
            for d in [u.valid_from, u.valid_to].into_iter().flatten() {
                assert!(valid_date(d).is_some(), "{d}");
            }
            if let Some(m) = u.merged_into_code {
                assert_eq!(u.valid_to, Some(LAST_OLD_DATE));
                assert!(current.contains(m), "{} merged into {m}", u.code);
                assert!(continued.contains(m), "{m} has no former record");
            }
        }
        for f in &formers {
            assert!(current.contains(f.code), "{}", f.code);
            let district = us.iter().find(|u| u.code == f.district_code).unwrap();
            assert_eq!(district.kind, "district");
            assert_eq!(district.valid_to, Some(LAST_OLD_DATE));
            assert!(["commune", "ward", "town"].contains(&f.kind));
            assert!(
                us.iter().any(|u| u.merged_into_code == Some(f.code)),
                "{} continues alone",
                f.code
            );
        }
        // At least one current unit is the merger of two or more old ones.
        assert!(
            current
                .iter()
                .any(|c| { us.iter().filter(|u| u.merged_into_code == Some(c)).count() >= 2 })
        );
    }

    #[test]
    fn the_pleiku_wards_carry_their_merge_history() {
        let us = units();
        let name = |code: &str| us.iter().find(|u| u.code == code).unwrap().name;
        for ward in [
            "Phường Pleiku",
            "Phường Thống Nhất",
            "Phường Diên Hồng",
            "Phường Hội Phú",
            "Phường An Phú",
        ] {
            let code = us
                .iter()
                .find(|u| u.name == ward && u.valid_to.is_none())
                .unwrap()
                .code;
            let former = former_units().into_iter().find(|f| f.code == code).unwrap();
            assert_eq!(name(former.district_code), "Thành phố Pleiku");
            assert!(
                us.iter().any(|u| u.merged_into_code == Some(code)),
                "{ward}"
            );
        }
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
    fn gendered_names_are_consistent() {
        let mut traditions = HashSet::new();
        for p in people() {
            let parts: Vec<_> = p.full_name.split(' ').collect();
            assert!(parts.len() >= 2, "{}", p.full_name);
            // "Thị", "H'…" and a leading "Y" mark women; "Văn" and a leading "A" mark men.
            let female = parts.contains(&"Thị")
                || parts.iter().any(|w| w.starts_with("H'"))
                || parts[0] == "Y";
            let male = parts.contains(&"Văn") || parts[0] == "A";
            assert!(!(female && male), "{}", p.full_name);
            if p.gender == "male" {
                assert!(!female, "{}", p.full_name);
            } else {
                assert!(!male, "{}", p.full_name);
            }
            let starts = |family: &str| p.full_name.starts_with(&format!("{family} "));
            if JRAI_FAMILY.iter().any(|f| starts(f)) {
                traditions.insert("Jrai");
            } else if ["A", "Y", "Đinh Văn", "Đinh Thị"].iter().any(|f| starts(f)) {
                traditions.insert("Bahnar");
            } else if KINH_FAMILY.iter().any(|(f, _)| starts(f)) {
                traditions.insert("Kinh");
            }
        }
        assert_eq!(traditions.len(), 3, "{traditions:?}");
    }

    #[test]
    fn all_strings_are_nfc() {
        let mut all: Vec<String> = Vec::new();
        for u in units() {
            all.push(u.name.into());
        }
        for f in former_units() {
            all.push(f.name.into());
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
        assert_eq!(former_units(), former_units());
        assert_eq!(courses(), courses());
    }

    #[test]
    fn organisers_are_of_units_in_force_and_named_apart() {
        let current: HashSet<&str> = units()
            .iter()
            .filter(|u| u.valid_to.is_none())
            .map(|u| u.code)
            .collect();
        let organisers = organisers();
        for organiser in &organisers {
            assert!(
                current.contains(organiser.unit_code),
                "{}",
                organiser.unit_code
            );
        }
        let names: HashSet<&str> = organisers
            .iter()
            .map(|o| o.username)
            .chain(trainers().iter().map(|t| t.username))
            .collect();
        assert_eq!(names.len(), organisers.len() + trainers().len());
    }

    #[test]
    fn branches_sit_under_current_wards_and_their_cadres_in_them() {
        let current = current_codes();
        let bs = branches();
        assert!(bs.iter().all(|b| current.contains(b.parent_code)));
        let codes: HashSet<&str> = bs.iter().map(|b| b.code).collect();
        assert_eq!(codes.len(), bs.len());
        let names: HashSet<String> = people().iter().map(|p| fold(&p.full_name)).collect();
        for p in branch_people() {
            assert!(codes.contains(p.unit_code), "{}", p.full_name);
            assert!(matches!(
                p.position,
                "branch_secretary" | "branch_deputy_secretary"
            ));
            assert!(valid_date(p.position_since.as_deref().unwrap()).is_some());
            assert!(is_nfc_safe(&p.full_name));
            assert!(!names.contains(&fold(&p.full_name)), "{}", p.full_name);
        }
    }

    #[test]
    fn courses_are_consistent() {
        let ts = trainers();
        assert_eq!(ts.len(), 2);
        let current = current_codes();
        let cs = courses();
        assert_eq!(cs.len(), 3);
        let branch_codes: HashSet<&str> = branches().iter().map(|b| b.code).collect();
        for c in &cs {
            let (_, _, d0) = valid_date(c.start_date).unwrap();
            let (_, _, d1) = valid_date(c.end_date).unwrap();
            for s in &c.sessions {
                // A class without trainers (a ward's) names none for its sessions.
                assert!(
                    c.trainer_indexes.is_empty() || c.trainer_indexes.contains(&s.trainer_index)
                );
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
                assert!(
                    codes.iter().all(|c| current.contains(c))
                        || codes.iter().all(|c| branch_codes.contains(c))
                );
            }
            let enrolled: Vec<DemoPerson> = people()
                .into_iter()
                .chain(branch_people())
                .filter(|p| match &c.enroll {
                    EnrollRule::AllSecretariesAndDeputies => {
                        matches!(p.position, "secretary" | "deputy_secretary")
                    }
                    EnrollRule::UnitCodes(codes) => codes.contains(&p.unit_code),
                })
                .collect();
            for (name, statuses) in &c.attendance {
                assert!(enrolled.iter().any(|p| p.full_name == *name), "{name}");
                assert_eq!(statuses.len(), c.sessions.len());
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
