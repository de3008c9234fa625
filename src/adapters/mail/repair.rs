//! Repairs of the MIME structure done on the raw bytes before mail-parser walks them.
//!
//! A nested multipart whose closing boundary is missing must end where an enclosing
//! multipart's boundary appears (RFC 2046 §5.1.2: an inner boundary cannot contain an
//! outer one). mail-parser instead keeps looking for the inner boundary, so the inner
//! last part swallows the rest of the mail and stays transfer-encoded. Inserting the
//! missing `--inner--` lines gives it the structure every careful client reads.

/// Open multiparts tracked at once: deeper ones are left to the parser as they are (a
/// mail nested deeper is hostile; this bounds the work per boundary line).
const MAX_OPEN_MULTIPARTS: usize = 64;

/// The mail with the missing closing delimiters inserted, or `None` when nothing is
/// missing (the common case: no copy is made).
pub(crate) fn close_nested_multiparts(raw: &[u8]) -> Option<Vec<u8>> {
    let mut stack: Vec<Vec<u8>> = Vec::new();
    // Insertions: (offset in raw, boundaries to close there, innermost first).
    let mut inserts: Vec<(usize, Vec<Vec<u8>>)> = Vec::new();
    let mut pos = 0usize;
    let mut in_headers = true;
    let mut header = Vec::<u8>::new();
    let mut crlf = false;
    while pos < raw.len() {
        // In a body only lines starting with `--` matter: jump to the next one (a 10 MB
        // base64 attachment is skipped at memchr speed, not line by line).
        if !in_headers && !raw[pos..].starts_with(b"--") {
            match memchr::memmem::find(&raw[pos..], b"\n--") {
                Some(k) => pos += k + 1,
                None => break,
            }
        }
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..end];
        let content = line
            .strip_suffix(b"\n")
            .map(|l| {
                if l.ends_with(b"\r") {
                    crlf = true;
                }
                l.strip_suffix(b"\r").unwrap_or(l)
            })
            .unwrap_or(line);
        if in_headers {
            if content.is_empty() {
                in_headers = false;
                let (multipart, boundary, message) = content_type(&header);
                header.clear();
                if multipart && let Some(b) = boundary {
                    if stack.len() < MAX_OPEN_MULTIPARTS {
                        stack.push(b);
                    }
                } else if message {
                    // An attached message: its own header block follows.
                    in_headers = true;
                }
                if stack.is_empty() && !in_headers {
                    // Top level is not multipart: nothing to repair.
                    return None;
                }
            } else {
                header.extend_from_slice(content);
                header.push(b'\n');
            }
        } else if content.starts_with(b"--")
            && let Some((i, closing)) = match_boundary(&stack, &content[2..])
        {
            let inner: Vec<Vec<u8>> = stack.drain(i + 1..).rev().collect();
            if !inner.is_empty() {
                inserts.push((pos, inner));
            }
            if closing {
                stack.pop();
            } else {
                in_headers = true;
            }
        }
        pos = end;
    }
    if inserts.is_empty() {
        return None;
    }
    let nl: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let mut out = Vec::with_capacity(raw.len() + inserts.len() * 80);
    let mut from = 0;
    for (at, bounds) in inserts {
        out.extend_from_slice(&raw[from..at]);
        for b in bounds {
            out.extend_from_slice(b"--");
            out.extend_from_slice(&b);
            out.extend_from_slice(b"--");
            out.extend_from_slice(nl);
        }
        from = at;
    }
    out.extend_from_slice(&raw[from..]);
    Some(out)
}

/// Which open boundary a `--…` line (without its leading dashes) is, innermost first,
/// and whether it is the closing one.
fn match_boundary(stack: &[Vec<u8>], rest: &[u8]) -> Option<(usize, bool)> {
    stack.iter().enumerate().rev().find_map(|(i, b)| {
        let after = rest.strip_prefix(b.as_slice())?;
        let (closing, tail) = match after.strip_prefix(b"--") {
            Some(t) => (true, t),
            None => (false, after),
        };
        tail.iter()
            .all(|c| *c == b' ' || *c == b'\t')
            .then_some((i, closing))
    })
}

/// (is multipart, boundary, is an attached message sent as is) from a header block.
fn content_type(header: &[u8]) -> (bool, Option<Vec<u8>>, bool) {
    let text = String::from_utf8_lossy(header);
    let mut value = String::new();
    let mut cte = String::new();
    let mut current: Option<&mut String> = None;
    for line in text.split('\n') {
        if line.starts_with([' ', '\t']) {
            if let Some(v) = current.as_deref_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        current = None;
        let Some((name, v)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-type") && value.is_empty() {
            value = v.trim().to_string();
            current = Some(&mut value);
        } else if name.eq_ignore_ascii_case("content-transfer-encoding") && cte.is_empty() {
            cte = v.trim().to_ascii_lowercase();
            current = Some(&mut cte);
        }
    }
    let lower = value.to_ascii_lowercase();
    let ctype = lower.split(';').next().unwrap_or("").trim();
    let multipart = ctype.starts_with("multipart/");
    let message = matches!(ctype, "message/rfc822" | "message/global")
        && !matches!(cte.as_str(), "base64" | "quoted-printable");
    let boundary = multipart
        .then(|| {
            let i = lower.find("boundary")?;
            let rest = value[i + "boundary".len()..].trim_start();
            let rest = rest.strip_prefix('=')?.trim_start();
            let b = match rest.strip_prefix('"') {
                Some(q) => q.split('"').next().unwrap_or(""),
                None => rest.split([';', ' ', '\t']).next().unwrap_or(""),
            };
            (!b.is_empty()).then(|| b.as_bytes().to_vec())
        })
        .flatten();
    (multipart, boundary, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_inner_close_is_inserted_before_the_outer_boundary() {
        let raw = b"Content-Type: multipart/mixed; boundary=\"o\"\n\n--o\n\
            Content-Type: multipart/alternative;\n boundary=i\n\n--i\nContent-Type: text/plain\n\nx\n\
            --i\nContent-Type: text/html\n\n<p>x</p>\n--o\nContent-Type: application/pdf\n\n%PDF\n--o--\n";
        let fixed = close_nested_multiparts(raw).expect("repaired");
        let text = String::from_utf8(fixed).unwrap();
        assert!(
            text.contains("<p>x</p>\n--i--\n--o\nContent-Type: application/pdf"),
            "{text}"
        );
    }

    #[test]
    fn well_formed_and_plain_mails_are_left_alone() {
        assert!(close_nested_multiparts(b"Subject: x\n\nbody\n--o\n").is_none());
        let raw = b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n\
            Content-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\nx\r\n--i--\r\n\
            --o\r\n\r\ny\r\n--o--\r\n";
        assert!(close_nested_multiparts(raw).is_none());
        assert!(close_nested_multiparts(b"").is_none());
        assert!(close_nested_multiparts(b"Content-Type: multipart/mixed\n\n--\n").is_none());
    }
}
