//! Bytes to text: UTF-8 (or UTF-16 with a byte-order mark), decoded lossily so invalid
//! input never panics; every replaced sequence is counted for the report. Also decides
//! between HTML and plain text when the caller leaves it to us.

use crate::InputFormat;

/// Decoded input.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub text: String,
    /// `utf-8`, `utf-16le` or `utf-16be`.
    pub encoding: &'static str,
    /// Invalid byte sequences replaced by U+FFFD.
    pub replaced: usize,
}

pub(crate) fn decode(input: &[u8]) -> Decoded {
    match input {
        [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes, "utf-16le"),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes, "utf-16be"),
        _ => {
            let bytes = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
            let mut text = String::with_capacity(bytes.len());
            let mut replaced = 0;
            for chunk in bytes.utf8_chunks() {
                text.push_str(chunk.valid());
                if !chunk.invalid().is_empty() {
                    text.push('\u{FFFD}');
                    replaced += 1;
                }
            }
            Decoded {
                text,
                encoding: "utf-8",
                replaced,
            }
        }
    }
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16, encoding: &'static str) -> Decoded {
    let units = bytes.chunks(2).map(|p| match p {
        [a, b] => unit([*a, *b]),
        // A dangling odd byte cannot be a code unit; U+FFFD stands in for it.
        _ => 0xFFFD,
    });
    let mut replaced = usize::from(bytes.len() % 2 == 1);
    let text = char::decode_utf16(units)
        .map(|r| {
            r.unwrap_or_else(|_| {
                replaced += 1;
                '\u{FFFD}'
            })
        })
        .collect();
    Decoded {
        text,
        encoding,
        replaced,
    }
}

/// `Auto` means HTML when the first non-whitespace character is `<`, plain text otherwise.
pub(crate) fn resolve_format(requested: InputFormat, text: &str) -> InputFormat {
    match requested {
        InputFormat::Auto => {
            if text.trim_start().starts_with('<') {
                InputFormat::Html
            } else {
                InputFormat::Text
            }
        }
        f => f,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_replaced_and_counted() {
        let d = decode(b"\xEF\xBB\xBFa\xFFb\xC3");
        assert_eq!(d.text, "a\u{FFFD}b\u{FFFD}");
        assert_eq!(d.replaced, 2);
    }

    #[test]
    fn utf16_with_bom() {
        let mut bytes = vec![0xFF, 0xFE];
        for u in "Điều 1.".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        bytes.push(0x41);
        let d = decode(&bytes);
        assert_eq!(d.text, "Điều 1.\u{FFFD}");
        assert_eq!((d.encoding, d.replaced), ("utf-16le", 1));
    }

    #[test]
    fn format_detection() {
        assert_eq!(
            resolve_format(InputFormat::Auto, "  <p>x"),
            InputFormat::Html
        );
        assert_eq!(
            resolve_format(InputFormat::Auto, "Điều 1. <b>"),
            InputFormat::Text
        );
        assert_eq!(resolve_format(InputFormat::Text, "<p>"), InputFormat::Text);
    }
}
