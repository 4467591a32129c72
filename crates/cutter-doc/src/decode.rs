//! Bytes to text, by declaration in the order the HTML standard gives: a byte-order mark,
//! then a `<meta charset>` / `http-equiv` declaration, then an XML declaration, then —
//! when nothing is declared and the bytes are not UTF-8 — detection (`chardetng`).
//! Decoding is `encoding_rs`'s, which never fails (malformed input becomes U+FFFD, which
//! the cutter then refuses). A declaration the bytes contradict is reported, and UTF-16
//! without a byte-order mark, which cannot be recognised, is refused. Also decides between
//! HTML and plain text when the caller leaves it to us.

use encoding_rs::{Encoding, UTF_16BE, UTF_16LE, UTF_8, WINDOWS_1252};

use crate::InputFormat;

/// How many bytes are searched for a declaration. The HTML standard's prescan reads
/// 1024 bytes; published pages often declare later in a long `<head>`, so the search
/// goes on to the end of the head, at most this far.
const PRESCAN_BYTES: usize = 64 * 1024;

/// Where the encoding came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A byte-order mark.
    Bom,
    /// A `<meta charset>` or `<meta http-equiv="Content-Type">` declaration.
    Meta,
    /// An XML declaration (`<?xml … encoding="…"?>`).
    Xml,
    /// Nothing declared; the bytes are UTF-8.
    Utf8Bytes,
    /// Nothing declared (or a declaration the bytes contradict); `chardetng`'s guess.
    Detected,
}

impl Source {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Source::Bom => "byte-order mark",
            Source::Meta => "<meta> declaration",
            Source::Xml => "XML declaration",
            Source::Utf8Bytes => "no declaration; read as UTF-8",
            Source::Detected => "detected from the bytes (chardetng)",
        }
    }
}

/// A declaration found in the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Declaration {
    /// The label as written, lower-cased.
    pub label: String,
    /// Where it was found.
    pub source: Source,
    /// The encoding the label names, if it names one.
    pub encoding: Option<&'static Encoding>,
}

/// Decoded input.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub text: String,
    /// The encoding the bytes were decoded as (`encoding_rs` name, e.g. `windows-1258`).
    pub encoding: &'static str,
    /// Where the encoding came from.
    pub source: Source,
    /// The declaration found, if any (also when it was not followed).
    pub declared: Option<Declaration>,
    /// Malformed byte sequences replaced by U+FFFD.
    pub replaced: usize,
    /// Why the declaration was not followed, or why it is doubtful.
    pub contradiction: Option<String>,
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// The bytes look like UTF-16 but carry no byte-order mark.
    Utf16WithoutBom { endianness: &'static str },
}

pub(crate) fn decode(input: &[u8], format: InputFormat) -> Result<Decoded, DecodeError> {
    if let Some((enc, bom_len)) = Encoding::for_bom(input) {
        let (text, replaced) = decode_with(enc, &input[bom_len..]);
        return Ok(Decoded {
            text,
            encoding: enc.name(),
            source: Source::Bom,
            declared: None,
            replaced,
            contradiction: None,
        });
    }
    if let Some(endianness) = utf16_without_bom(input) {
        return Err(DecodeError::Utf16WithoutBom { endianness });
    }
    let declared = if format == InputFormat::Text {
        None
    } else {
        prescan(input)
    };
    let utf8 = utf8_evidence(input);
    match declared.as_ref().and_then(|d| d.encoding.map(|e| (d, e))) {
        Some((d, enc)) => {
            // The HTML standard reads a UTF-16 declaration in ASCII-compatible bytes as
            // UTF-8, and x-user-defined as windows-1252.
            let utf16_declared = enc == UTF_16LE || enc == UTF_16BE;
            let enc = if utf16_declared {
                UTF_8
            } else if enc.name() == "x-user-defined" {
                WINDOWS_1252
            } else {
                enc
            };
            if enc != UTF_8 && utf8.looks_like_utf8() {
                let (text, replaced) = decode_with(UTF_8, input);
                return Ok(Decoded {
                    text,
                    encoding: UTF_8.name(),
                    source: Source::Detected,
                    contradiction: Some(format!(
                        "the {} says {} but the bytes are UTF-8 ({} multi-byte sequence(s), {} malformed): decoded as UTF-8",
                        d.source.describe(),
                        d.label,
                        utf8.multibyte,
                        utf8.invalid
                    )),
                    declared,
                    replaced,
                });
            }
            let (text, replaced) = decode_with(enc, input);
            if replaced > 0 || has_c1(&text) {
                let guess = detect(input);
                let (alt, alt_replaced) = decode_with(guess, input);
                if guess != enc && alt_replaced == 0 && !has_c1(&alt) {
                    return Ok(Decoded {
                        text: alt,
                        encoding: guess.name(),
                        source: Source::Detected,
                        contradiction: Some(format!(
                            "the {} says {} but the bytes are not {} ({} malformed sequence(s) or C1 control(s)); they decode cleanly as {}, detected: decoded as {}",
                            d.source.describe(),
                            d.label,
                            enc.name(),
                            replaced.max(1),
                            guess.name(),
                            guess.name()
                        )),
                        declared,
                        replaced: 0,
                    });
                }
            }
            let contradiction = utf16_declared.then(|| {
                    format!(
                        "the {} says {}, which the HTML standard reads as UTF-8 in bytes without a byte-order mark",
                        d.source.describe(),
                        d.label
                    )
                });
            Ok(Decoded {
                text,
                encoding: enc.name(),
                source: d.source,
                declared,
                replaced,
                contradiction,
            })
        }
        None => {
            let unknown = declared.as_ref().map(|d| {
                format!(
                    "the {} names {:?}, which is not an encoding label: ignored",
                    d.source.describe(),
                    d.label
                )
            });
            if utf8.invalid == 0 || utf8.looks_like_utf8() {
                let (text, replaced) = decode_with(UTF_8, input);
                return Ok(Decoded {
                    text,
                    encoding: UTF_8.name(),
                    source: Source::Utf8Bytes,
                    declared,
                    replaced,
                    contradiction: unknown,
                });
            }
            let guess = detect(input);
            let (text, replaced) = decode_with(guess, input);
            Ok(Decoded {
                text,
                encoding: guess.name(),
                source: Source::Detected,
                declared,
                replaced,
                contradiction: unknown,
            })
        }
    }
}

/// Decodes without BOM sniffing; returns the text and the number of malformed sequences.
fn decode_with(enc: &'static Encoding, bytes: &[u8]) -> (String, usize) {
    let mut decoder = enc.new_decoder_without_bom_handling();
    let cap = decoder
        .max_utf8_buffer_length(bytes.len())
        .unwrap_or(bytes.len().saturating_mul(3));
    let mut out = String::with_capacity(cap);
    let mut replaced = 0;
    let mut src = bytes;
    loop {
        let (result, read) = decoder.decode_to_string_without_replacement(src, &mut out, true);
        src = &src[read..];
        match result {
            encoding_rs::DecoderResult::InputEmpty => break,
            encoding_rs::DecoderResult::OutputFull => {
                out.reserve(src.len().saturating_mul(3).max(16));
            }
            encoding_rs::DecoderResult::Malformed(_, _) => {
                out.push('\u{FFFD}');
                replaced += 1;
            }
        }
    }
    (out, replaced)
}

fn has_c1(text: &str) -> bool {
    text.chars().any(|c| ('\u{80}'..='\u{9F}').contains(&c))
}

/// `chardetng`'s guess for bytes that are not UTF-8.
fn detect(input: &[u8]) -> &'static Encoding {
    let mut d = chardetng::EncodingDetector::new();
    d.feed(input, true);
    d.guess(None, false)
}

#[derive(Debug, Clone, Copy)]
struct Utf8Evidence {
    multibyte: usize,
    invalid: usize,
}

impl Utf8Evidence {
    /// Mostly well-formed UTF-8: legacy single-byte text almost never forms valid
    /// multi-byte sequences, so many of them and few malformed ones mean damaged UTF-8,
    /// which must be decoded as UTF-8 (and its damage refused), never guessed as a
    /// legacy encoding (which would turn every letter into mojibake nobody refuses).
    fn looks_like_utf8(self) -> bool {
        self.multibyte > 0 && self.multibyte >= 4 * self.invalid
    }
}

fn utf8_evidence(input: &[u8]) -> Utf8Evidence {
    let mut e = Utf8Evidence {
        multibyte: 0,
        invalid: 0,
    };
    for chunk in input.utf8_chunks() {
        e.multibyte += chunk.valid().chars().filter(|c| !c.is_ascii()).count();
        e.invalid += usize::from(!chunk.invalid().is_empty());
    }
    e
}

/// UTF-16 without a byte-order mark: many NUL bytes, nearly all at even (big-endian) or
/// odd (little-endian) positions of the first kilobytes. Text in any ASCII-compatible
/// encoding has no NUL bytes at all.
fn utf16_without_bom(input: &[u8]) -> Option<&'static str> {
    let head = &input[..input.len().min(4096)];
    if head.len() < 4 {
        return None;
    }
    let (mut even, mut odd) = (0usize, 0usize);
    for (i, b) in head.iter().enumerate() {
        if *b == 0 {
            if i % 2 == 0 {
                even += 1;
            } else {
                odd += 1;
            }
        }
    }
    let pairs = head.len() / 2;
    if odd * 4 >= pairs && even * 8 <= odd {
        Some("little-endian")
    } else if even * 4 >= pairs && odd * 8 <= even {
        Some("big-endian")
    } else {
        None
    }
}

/// The declaration of an HTML page: `<meta charset>`, `<meta http-equiv="Content-Type"
/// content="…charset=…">` (skipping comments), else an XML declaration at the start.
fn prescan(input: &[u8]) -> Option<Declaration> {
    let head = &input[..input.len().min(PRESCAN_BYTES)];
    let lower = head.to_ascii_lowercase();
    let mut at = 0;
    while at < lower.len() {
        let rest = &lower[at..];
        if rest.starts_with(b"<!--") {
            at += find(&rest[4..], b"-->").map_or(rest.len(), |k| k + 7);
            continue;
        }
        if rest.starts_with(b"<meta") && rest.get(5).is_some_and(|b| is_space(*b) || *b == b'/') {
            let (attrs, used) = attributes(&head[at + 5..]);
            at += 5 + used;
            if let Some(label) = meta_label(&attrs) {
                return Some(declaration(label, Source::Meta));
            }
            continue;
        }
        if rest.starts_with(b"</head") || rest.starts_with(b"<body") {
            break;
        }
        at += 1;
    }
    xml_declaration(input).map(|label| declaration(label, Source::Xml))
}

fn declaration(label: String, source: Source) -> Declaration {
    let encoding = Encoding::for_label(label.as_bytes());
    Declaration {
        label,
        source,
        encoding,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// The attributes of a tag (names lower-cased, values as written) up to its `>`, and the
/// bytes used.
fn attributes(bytes: &[u8]) -> (Vec<(String, String)>, usize) {
    let mut out = Vec::new();
    let mut i = 0;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    loop {
        while i < bytes.len() && (is_space(bytes[i]) || bytes[i] == b'/') {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] == b'>' {
            return (out, (i + 1).min(bytes.len()));
        }
        let start = i;
        while i < bytes.len() && !is_space(bytes[i]) && !matches!(bytes[i], b'=' | b'>' | b'/') {
            i += 1;
        }
        let name = text(&bytes[start..i]).to_ascii_lowercase();
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        let mut value = String::new();
        if bytes.get(i) == Some(&b'=') {
            i += 1;
            while i < bytes.len() && is_space(bytes[i]) {
                i += 1;
            }
            match bytes.get(i) {
                Some(&q) if q == b'"' || q == b'\'' => {
                    let end = bytes[i + 1..]
                        .iter()
                        .position(|b| *b == q)
                        .map_or(bytes.len(), |k| i + 1 + k);
                    value = text(&bytes[i + 1..end]);
                    i = end + 1;
                }
                _ => {
                    let start = i;
                    while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'>' {
                        i += 1;
                    }
                    value = text(&bytes[start..i]);
                }
            }
        }
        if !name.is_empty() {
            out.push((name, value));
        }
    }
}

fn meta_label(attrs: &[(String, String)]) -> Option<String> {
    let get = |n: &str| attrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    if let Some(c) = get("charset") {
        let c = c.trim().to_ascii_lowercase();
        return (!c.is_empty()).then_some(c);
    }
    if !get("http-equiv").is_some_and(|v| v.trim().eq_ignore_ascii_case("content-type")) {
        return None;
    }
    let content = get("content")?.to_ascii_lowercase();
    let at = content.find("charset")?;
    let rest = content[at + "charset".len()..].trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let value = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => rest[1..].split(q).next()?,
        _ => rest.split(|c: char| c == ';' || c.is_whitespace()).next()?,
    };
    (!value.is_empty()).then(|| value.to_string())
}

/// `<?xml version="1.0" encoding="…"?>` at the very start.
fn xml_declaration(input: &[u8]) -> Option<String> {
    let rest = input.strip_prefix(b"<?xml")?;
    let end = find(&rest[..rest.len().min(1024)], b"?>")?;
    let decl = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
    let at = decl.find("encoding")?;
    let after = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?;
    let after = after.trim_start();
    let q = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = after[1..].split(q).next()?.trim();
    (!value.is_empty()).then(|| value.to_string())
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

    fn dec(bytes: &[u8]) -> Decoded {
        decode(bytes, InputFormat::Auto).expect("decodes")
    }

    #[test]
    fn a_bom_comes_first() {
        let d = dec(b"\xEF\xBB\xBFa\xFFb");
        assert_eq!(d.text, "a\u{FFFD}b");
        assert_eq!(
            (d.encoding, d.source, d.replaced),
            ("UTF-8", Source::Bom, 1)
        );
        let mut bytes = vec![0xFF, 0xFE];
        for u in "<meta charset=windows-1258>Điều 1.".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        bytes.push(0x41);
        let d = dec(&bytes);
        assert_eq!(d.text, "<meta charset=windows-1258>Điều 1.\u{FFFD}");
        assert_eq!((d.encoding, d.replaced), ("UTF-16LE", 1));
    }

    #[test]
    fn meta_then_xml_declaration() {
        let page = b"<html><head><!-- <meta charset=koi8-r> --><title>x</title>\
            <meta http-equiv='Content-Type' content='text/html; charset=\"windows-1258\"'></head><body>\xD0i\xEAu</body>";
        let d = dec(page);
        assert_eq!((d.encoding, d.source), ("windows-1258", Source::Meta));
        assert_eq!(
            d.declared.as_ref().map(|x| x.label.as_str()),
            Some("windows-1258")
        );
        assert!(d.text.ends_with("<body>Đi\u{ea}u</body>"), "{}", d.text);
        let d = dec(b"<meta charset = ISO-8859-1 ><p>\xE0 la vie");
        assert_eq!((d.encoding, d.source), ("windows-1252", Source::Meta));
        assert!(d.text.ends_with("à la vie"));
        let d =
            dec(b"<?xml version='1.0' encoding='windows-1251'?><html><p>\xcf\xf0\xe0\xe2\xee</p>");
        assert_eq!((d.encoding, d.source), ("windows-1251", Source::Xml));
        assert!(d.text.contains("Право"));
        // In plain text nothing is a declaration.
        let d = decode(b"<meta charset=koi8-r> abc", InputFormat::Text).unwrap();
        assert_eq!((d.encoding, d.source), ("UTF-8", Source::Utf8Bytes));
    }

    #[test]
    fn undeclared_bytes_are_utf8_or_detected() {
        let d = dec("<p>Điều 1. Nước</p>".as_bytes());
        assert_eq!((d.encoding, d.source), ("UTF-8", Source::Utf8Bytes));
        let (bytes, _, unmappable) = encoding_rs::WINDOWS_1251
            .encode("<p>Все люди рождаются свободными и равными в своем достоинстве и правах.</p>");
        assert!(!unmappable);
        let d = dec(&bytes);
        assert_eq!((d.encoding, d.source), ("windows-1251", Source::Detected));
        assert!(d.text.contains("Все люди"));
        // Damaged UTF-8 stays UTF-8, its damage replaced (and refused later).
        let mut bytes = "Điều 1. Nhà nước bảo đảm quyền con người"
            .as_bytes()
            .to_vec();
        bytes.push(0xFF);
        let d = dec(&bytes);
        assert_eq!((d.encoding, d.replaced), ("UTF-8", 1));
    }

    #[test]
    fn contradicting_declarations_are_reported() {
        let d = dec(
            "<meta charset=iso-8859-1><p>Tout individu a droit à la vie, à la liberté</p>"
                .as_bytes(),
        );
        assert_eq!(d.encoding, "UTF-8");
        assert!(d.text.contains("à la liberté"));
        let c = d.contradiction.expect("reported");
        assert!(c.contains("says iso-8859-1 but the bytes are UTF-8"), "{c}");
        let (bytes, _, _) = encoding_rs::WINDOWS_1251
            .encode("<meta charset=utf-8><p>Все люди рождаются свободными и равными в своем достоинстве и правах.</p>");
        let d = dec(&bytes);
        assert_eq!(d.encoding, "windows-1251");
        assert!(d
            .contradiction
            .expect("reported")
            .contains("says utf-8 but the bytes are not UTF-8"));
        let d = dec(b"<meta charset=utf-16><p>x</p>");
        assert_eq!(d.encoding, "UTF-8");
        assert!(d
            .contradiction
            .expect("reported")
            .contains("reads as UTF-8"));
    }

    #[test]
    fn utf16_without_bom_is_refused() {
        let mut le = Vec::new();
        let mut be = Vec::new();
        for u in "<p>Điều 1. Phạm vi</p>".encode_utf16() {
            le.extend_from_slice(&u.to_le_bytes());
            be.extend_from_slice(&u.to_be_bytes());
        }
        assert_eq!(
            decode(&le, InputFormat::Auto).unwrap_err(),
            DecodeError::Utf16WithoutBom {
                endianness: "little-endian"
            }
        );
        assert_eq!(
            decode(&be, InputFormat::Auto).unwrap_err(),
            DecodeError::Utf16WithoutBom {
                endianness: "big-endian"
            }
        );
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
