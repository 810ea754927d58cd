//! Keeping text that goes into error messages safe to print: no credentials, and no control
//! characters from a server that could forge log lines or cut a C string short.

use std::borrow::Cow;
use std::fmt::Write as _;

use base64::Engine as _;
use zeroize::Zeroizing;

/// What is replaced with `<redacted>` wherever it appears in a message or error body.
pub(crate) struct Secrets {
    /// The API secret, and the Base64 forms a server could echo: of `key:secret` (the
    /// `Authorization` header) and of the secret alone.
    needles: Vec<Zeroizing<String>>,
}

impl Secrets {
    pub(crate) fn new(api_key: &str, api_secret: &str) -> Secrets {
        let b64 = |bytes: &[u8]| {
            let mut text = Zeroizing::new(String::with_capacity(bytes.len().div_ceil(3) * 4));
            base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut text);
            text
        };
        let mut credentials =
            Zeroizing::new(String::with_capacity(api_key.len() + 1 + api_secret.len()));
        credentials.push_str(api_key);
        credentials.push(':');
        credentials.push_str(api_secret);
        let mut needles = vec![
            b64(credentials.as_bytes()),
            b64(api_secret.as_bytes()),
            Zeroizing::new(api_secret.to_owned()),
        ];
        // Longest first, so that a longer form is not cut apart by a shorter one inside it.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.retain(|n| !n.is_empty());
        Secrets { needles }
    }

    /// `text` with every exact occurrence of a secret replaced, whatever its length: a short
    /// secret may also hide ordinary letters, which is the price of never showing it.
    pub(crate) fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        for needle in &self.needles {
            if text.contains(needle.as_str()) {
                text = Cow::Owned(text.replace(needle.as_str(), "<redacted>"));
            }
        }
        text
    }
}

/// `text` with control characters (C0 including NUL, CR, LF and ESC; DEL; C1) written as
/// `\xNN` / `\u{NNNN}`, so that the message is one printable line whose `strlen` is its length.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if c.is_control() && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:04x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_of_the_secret_is_redacted_whatever_its_length() {
        let secrets = Secrets::new("ak_key", "s3c");
        let header = base64::engine::general_purpose::STANDARD.encode("ak_key:s3c");
        let alone = base64::engine::general_purpose::STANDARD.encode("s3c");
        for text in [
            "echo s3c".to_owned(),
            format!("Basic {header}"),
            format!("x{alone}y"),
        ] {
            let shown = secrets.redact(&text);
            assert!(!shown.contains("s3c"), "{shown}");
            assert!(
                !shown.contains(&header) && !shown.contains(&alone),
                "{shown}"
            );
            assert!(shown.contains("<redacted>"), "{shown}");
        }
        assert!(matches!(secrets.redact("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            printable("a\0b\r\nc\u{1b}[31md\u{7f}e\u{85}"),
            "a\\x00b\\x0d\\x0ac\\x1b[31md\\x7fe\\u{0085}"
        );
        assert!(matches!(printable("caf\u{e9} ok"), Cow::Borrowed(_)));
    }
}
