//! Text helpers: paragraph normalization (NFC, collapsed whitespace), case folding for
//! matching, ASCII slugs and numerals. Everything works on `char`s, never on byte
//! offsets chosen by hand, so no input can make it slice inside a character.

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// Normalizes one paragraph: NFC, every run of Unicode whitespace (non-breaking spaces
/// included) becomes one space, leading and trailing whitespace goes, U+FEFF goes, NUL
/// becomes U+FFFD. Other control characters stay, so that the cut refuses them (or
/// records them when told to accept them) instead of silently changing the text.
pub(crate) fn normalize_paragraph(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    for c in raw.nfc() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        let c = match c {
            '\u{FEFF}' => continue,
            '\0' => '\u{FFFD}',
            c => c,
        };
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// Lower-cases for keyword matching and maps the look-alike Latin eth (`Ð`/`ð`, used for
/// `Đ` by some legacy Vietnamese encodings) to `đ`.
pub(crate) fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'ð' { 'đ' } else { c })
        .collect()
}

/// True if `s` has at least one letter and no lower-case letter (a heading in capitals).
pub(crate) fn is_upper_title(s: &str) -> bool {
    s.chars().any(char::is_alphabetic) && !s.chars().any(char::is_lowercase)
}

/// Lower-case ASCII slug: accents dropped, `đ` → `d`, every other run of non-alphanumerics
/// becomes one `-`.
pub(crate) fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut dash = false;
    for c in s.nfd() {
        if is_combining_mark(c) {
            continue;
        }
        let c = match c {
            'đ' | 'Đ' | 'ð' | 'Ð' => 'd',
            c => c.to_ascii_lowercase(),
        };
        if c.is_ascii_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c);
        } else {
            dash = true;
        }
    }
    out
}

/// The value of a canonical upper-case Roman numeral (`I` … `MMMCMXCIX`).
pub(crate) fn roman(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 15 {
        return None;
    }
    let digit = |c: char| match c {
        'I' => Some(1),
        'V' => Some(5),
        'X' => Some(10),
        'L' => Some(50),
        'C' => Some(100),
        'D' => Some(500),
        'M' => Some(1000),
        _ => None,
    };
    let vals: Option<Vec<u32>> = s.chars().map(digit).collect();
    let vals = vals?;
    let mut total = 0i64;
    for (i, v) in vals.iter().enumerate() {
        match vals.get(i + 1) {
            Some(next) if next > v => total -= i64::from(*v),
            _ => total += i64::from(*v),
        }
    }
    let total = u32::try_from(total).ok()?;
    // Only canonical spellings count, so `IIII` or `IC` are not numerals.
    (total > 0 && to_roman(total) == s).then_some(total)
}

fn to_roman(mut n: u32) -> String {
    const TABLE: [(u32, &str); 13] = [
        (1000, "M"),
        (900, "CM"),
        (500, "D"),
        (400, "CD"),
        (100, "C"),
        (90, "XC"),
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
    ];
    let mut out = String::new();
    for (v, r) in TABLE {
        while n >= v {
            out.push_str(r);
            n -= v;
        }
    }
    out
}

/// The value of a decimal digit in ASCII, full-width, Arabic-Indic, extended
/// Arabic-Indic or Devanagari form.
pub(crate) fn digit_value(c: char) -> Option<u32> {
    let zero = match c {
        '0'..='9' => '0',
        '\u{FF10}'..='\u{FF19}' => '\u{FF10}',
        '\u{0660}'..='\u{0669}' => '\u{0660}',
        '\u{06F0}'..='\u{06F9}' => '\u{06F0}',
        '\u{0966}'..='\u{096F}' => '\u{0966}',
        _ => return None,
    };
    Some(c as u32 - zero as u32)
}

/// The first run of decimal digits in `s` (any script of [`digit_value`]), if it fits
/// in four digits.
pub(crate) fn first_number(s: &str) -> Option<u32> {
    let mut value = None::<u32>;
    let mut len = 0;
    for c in s.chars() {
        match digit_value(c) {
            Some(d) => {
                len += 1;
                if len > 4 {
                    return None;
                }
                value = Some(value.unwrap_or(0) * 10 + d);
            }
            None if value.is_some() => break,
            None => {}
        }
    }
    value
}

/// At most `max` characters of `s`, with `…` when cut.
pub(crate) fn excerpt(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == max {
            out.push('…');
            return out;
        }
        out.push(c);
    }
    out
}

/// Makes `s` acceptable as a plan title: control and bidirectional formatting characters
/// removed, at most 1000 characters.
pub(crate) fn title_safe(s: &str) -> String {
    let clean: String = s
        .chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .collect();
    excerpt(clean.trim(), 1000)
}

pub(crate) use cutter_core::plan::is_bidi_control;

/// Number of characters, the unit every count in the report uses.
pub(crate) fn chars(s: &str) -> usize {
    s.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_are_nfc_with_single_spaces() {
        let decomposed = "  \u{a0}Đie\u{302}\u{300}u\u{a0}\u{a0}64.\t\n x\u{1}y\u{feff} ";
        assert_eq!(normalize_paragraph(decomposed), "Điều 64. x\u{1}y");
        assert_eq!(normalize_paragraph("a\0b"), "a\u{FFFD}b");
    }

    #[test]
    fn slugs_are_ascii() {
        assert_eq!(slug("Điều 5a"), "dieu-5a");
        assert_eq!(slug(" Lời nói đầu! "), "loi-noi-dau");
        assert_eq!(slug("ÐIỀU"), "dieu");
    }

    #[test]
    fn roman_numerals_must_be_canonical() {
        assert_eq!(roman("XI"), Some(11));
        assert_eq!(roman("XIV"), Some(14));
        assert_eq!(roman("IV"), Some(4));
        assert_eq!(roman("IX"), Some(9));
        assert_eq!(roman("XL"), Some(40));
        assert_eq!(roman("MCMXCIX"), Some(1999));
        assert_eq!(roman("IIII"), None);
        assert_eq!(roman("IC"), None);
        assert_eq!(roman("x"), None);
        assert_eq!(roman(""), None);
    }

    #[test]
    fn numbers_in_any_script() {
        assert_eq!(first_number("Article 16"), Some(16));
        assert_eq!(first_number("第１２条"), Some(12));
        assert_eq!(first_number("المادة ١٦"), Some(16));
        assert_eq!(first_number("第十六条"), None);
        assert_eq!(first_number("12345"), None);
    }

    #[test]
    fn titles_lose_controls_and_bidi() {
        assert_eq!(title_safe("a\u{202E}b\tc"), "abc");
    }
}
