//! Vietnamese text: stored in NFC, compared and searched through a folded key that ignores case,
//! diacritics and Unicode form ("nguyen van a" finds "Nguyễn Văn A").

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

#[diesel::declare_sql_function]
extern "SQL" {
    /// SQL's `lower()`: codes are searched ignoring case on both backends (SQLite's LIKE ignores
    /// ASCII case, PostgreSQL's does not).
    fn lower<T: diesel::sql_types::SqlType + diesel::sql_types::SingleValue>(text: T) -> T;
}

/// NFC, trimmed, with runs of white space collapsed to one space.
pub fn clean(input: &str) -> String {
    input
        .nfc()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The invisible characters that reorder text on screen (embeddings, overrides, isolates and
/// marks): with U+202E, "hoa-don\u{202e}fdp.exe" shows as "hoa-donexe.pdf".
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// The search and comparison key: lower case, no diacritics (đ → d), single spaces.
pub fn fold(input: &str) -> String {
    input
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'đ' | 'Đ' => 'd',
            other => other,
        })
        .collect::<String>()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sort key for a Vietnamese personal name: rosters are ordered by given name (the last word),
/// then by the whole name.
pub fn person_sort_key(full_name: &str) -> String {
    let folded = fold(full_name);
    let given = folded.rsplit(' ').next().unwrap_or_default();
    format!("{given} {folded}")
}

/// A LIKE pattern that matches the folded `needle` anywhere in a folded key.
pub fn contains_pattern(needle: &str) -> String {
    escaped_contains(&fold(needle))
}

/// A LIKE pattern that matches `needle` as typed anywhere, with LIKE's wildcards escaped by `\`.
pub fn escaped_contains(needle: &str) -> String {
    let mut pattern = String::from("%");
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_stores_nfc_and_collapses_spaces() {
        let decomposed = "Nguye\u{302}\u{303}n  Va\u{306}n   A ";
        let cleaned = clean(decomposed);
        assert_eq!(cleaned, "Nguyễn Văn A");
        assert!(cleaned.chars().all(|c| !is_combining_mark(c)));
    }

    #[test]
    fn fold_ignores_case_diacritics_and_form() {
        assert_eq!(fold("Nguyễn Văn A"), "nguyen van a");
        assert_eq!(fold("ĐẶNG THỊ THU"), "dang thi thu");
        assert_eq!(fold("Nguye\u{302}\u{303}n"), fold("Nguyễn"));
    }

    #[test]
    fn people_sort_by_given_name_first() {
        let mut names = vec!["Trần Văn Bình", "Nguyễn Thị An", "Lê Đức Anh"];
        names.sort_by_key(|n| person_sort_key(n));
        assert_eq!(names, vec!["Nguyễn Thị An", "Lê Đức Anh", "Trần Văn Bình"]);
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(contains_pattern("50%_x"), "%50\\%\\_x%");
    }
}
