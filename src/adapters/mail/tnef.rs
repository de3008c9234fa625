//! Outlook's winmail.dat (`application/ms-tnef`), read from the published format
//! (MS-OXTNEF): the files inside, each under its MAPI long file name. A damaged blob gives
//! the files read before the damage; nothing here can fail the mail.

use super::charset::{self, Charset};

const SIGNATURE: u32 = 0x223E_9F78;
const LVL_ATTACHMENT: u8 = 0x02;

// Attribute ids (type in the high word, id in the low word).
const ATT_ATTACH_REND_DATA: u32 = 0x0006_9002;
const ATT_ATTACH_TITLE: u32 = 0x0001_8010;
const ATT_ATTACH_DATA: u32 = 0x0006_800F;
const ATT_ATTACHMENT: u32 = 0x0006_9005;
const ATT_OEM_CODEPAGE: u32 = 0x0006_9007;

// MAPI property ids and types.
const PR_DISPLAY_NAME: u16 = 0x3001;
const PR_ATTACH_DATA: u16 = 0x3701;
const PR_ATTACH_FILENAME: u16 = 0x3704;
const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;
const PR_ATTACH_MIME_TAG: u16 = 0x370E;
const PT_STRING8: u16 = 0x001E;
const PT_UNICODE: u16 = 0x001F;
const PT_BINARY: u16 = 0x0102;
const PT_OBJECT: u16 = 0x000D;
const MV_FLAG: u16 = 0x1000;

/// One file found in a TNEF blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TnefFile {
    /// The best name found (long file name, else title, else short name); may be empty.
    pub name: String,
    pub content_type: String,
    pub data: Vec<u8>,
}

#[derive(Default)]
struct Pending {
    title: Option<String>,
    long_name: Option<String>,
    short_name: Option<String>,
    display_name: Option<String>,
    mime: Option<String>,
    data: Option<Vec<u8>>,
}

impl Pending {
    fn finish(self, out: &mut Vec<TnefFile>) {
        let Some(data) = self.data else {
            return;
        };
        let name = [
            self.long_name,
            self.title,
            self.short_name,
            self.display_name,
        ]
        .into_iter()
        .flatten()
        .map(|n| n.trim().to_string())
        .find(|n| !n.is_empty())
        .unwrap_or_default();
        let content_type = self
            .mime
            .map(|m| m.trim().to_ascii_lowercase())
            .filter(|m| m.contains('/') && !m.contains(char::is_whitespace))
            .unwrap_or_else(|| "application/octet-stream".into());
        out.push(TnefFile {
            name,
            content_type,
            data,
        });
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|s| u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }
}

/// The files inside a TNEF blob; empty when it is not one.
pub(crate) fn unpack(blob: &[u8]) -> Vec<TnefFile> {
    let mut out = Vec::new();
    let mut r = Reader { b: blob, pos: 0 };
    if r.u32() != Some(SIGNATURE) || r.u16().is_none() {
        return out;
    }
    let mut codepage: Option<Charset> = None;
    let mut cur: Option<Pending> = None;
    while !r.done() {
        let Some(attr) = read_attribute(&mut r) else {
            tracing::warn!("winmail.dat malmès: es desen els fitxers llegits fins aquí");
            break;
        };
        let (level, id, data) = attr;
        match id {
            ATT_OEM_CODEPAGE if data.len() >= 4 => {
                let cp = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
                codepage = charset::resolve(&format!("cp{cp}"));
            }
            ATT_ATTACH_REND_DATA => {
                if let Some(p) = cur.take() {
                    p.finish(&mut out);
                }
                cur = Some(Pending::default());
            }
            _ if level == LVL_ATTACHMENT => {
                let p = cur.get_or_insert_with(Pending::default);
                match id {
                    ATT_ATTACH_TITLE => p.title = Some(string8(data, codepage)),
                    ATT_ATTACH_DATA => p.data = Some(data.to_vec()),
                    ATT_ATTACHMENT => read_props(data, codepage, p),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    if let Some(p) = cur.take() {
        p.finish(&mut out);
    }
    out
}

/// (level, id, data); `None` when the blob ends inside the attribute. The checksum is
/// not enforced: a wrong one still gives the bytes, which is what a reader wants.
fn read_attribute<'a>(r: &mut Reader<'a>) -> Option<(u8, u32, &'a [u8])> {
    let level = r.u8()?;
    let id = r.u32()?;
    let len = r.u32()? as usize;
    let data = r.take(len)?;
    let _checksum = r.u16()?;
    Some((level, id, data))
}

fn string8(data: &[u8], codepage: Option<Charset>) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let bytes = &data[..end];
    match codepage {
        Some(cs) => charset::decode_declared(cs, bytes, None),
        None => charset::decode_undeclared(bytes, None),
    }
}

fn unicode(data: &[u8]) -> String {
    let units: Vec<u16> = data
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16_lossy(&units)
}

/// An attAttachment MAPI property list: reads the names, the MIME tag and binary data.
/// Stops quietly at the first property it cannot size.
fn read_props(block: &[u8], codepage: Option<Charset>, p: &mut Pending) {
    let mut r = Reader { b: block, pos: 0 };
    let Some(count) = r.u32() else {
        return;
    };
    for _ in 0..count {
        let (Some(ptype), Some(pid)) = (r.u16(), r.u16()) else {
            return;
        };
        if pid >= 0x8000 {
            // Named property: GUID, kind, then an id or a UTF-16 name.
            if r.take(16).is_none() {
                return;
            }
            match r.u32() {
                Some(0) => {
                    if r.u32().is_none() {
                        return;
                    }
                }
                Some(1) => {
                    let Some(len) = r.u32() else { return };
                    if r.take(padded(len as usize)).is_none() {
                        return;
                    }
                }
                _ => return,
            }
        }
        let multi = ptype & MV_FLAG != 0;
        let base = ptype & !MV_FLAG;
        let n = if multi || is_variable(base) {
            match r.u32() {
                Some(n) => n,
                None => return,
            }
        } else {
            1
        };
        for _ in 0..n {
            let value: &[u8] = if is_variable(base) {
                let Some(len) = r.u32() else { return };
                let Some(v) = r.take(len as usize) else {
                    return;
                };
                if r.take(padded(len as usize) - len as usize).is_none() {
                    return;
                }
                v
            } else {
                let Some(size) = fixed_size(base) else {
                    return;
                };
                let Some(v) = r.take(size) else { return };
                v
            };
            if multi {
                continue;
            }
            let text = || match base {
                PT_UNICODE => Some(unicode(value)),
                PT_STRING8 => Some(string8(value, codepage)),
                _ => None,
            };
            match pid {
                PR_ATTACH_LONG_FILENAME => p.long_name = text().or(p.long_name.take()),
                PR_ATTACH_FILENAME => p.short_name = text().or(p.short_name.take()),
                PR_DISPLAY_NAME => p.display_name = text().or(p.display_name.take()),
                PR_ATTACH_MIME_TAG => p.mime = text().or(p.mime.take()),
                PR_ATTACH_DATA if base == PT_BINARY && p.data.is_none() => {
                    p.data = Some(value.to_vec());
                }
                _ => {}
            }
        }
    }
}

fn is_variable(t: u16) -> bool {
    matches!(t, PT_STRING8 | PT_UNICODE | PT_BINARY | PT_OBJECT)
}

fn fixed_size(t: u16) -> Option<usize> {
    Some(match t {
        0x0001 | 0x0002 | 0x0003 | 0x0004 | 0x000A | 0x000B => 4,
        0x0005 | 0x0006 | 0x0007 | 0x0014 | 0x0040 => 8,
        0x0048 => 16,
        _ => return None,
    })
}

fn padded(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// Builds TNEF blobs for tests (of this module and of the corpus).
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    pub(crate) fn attribute(out: &mut Vec<u8>, level: u8, id: u32, data: &[u8]) {
        out.push(level);
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
        let sum = data.iter().fold(0u16, |s, &b| s.wrapping_add(u16::from(b)));
        out.extend_from_slice(&sum.to_le_bytes());
    }

    /// A unicode string property value (count, length, UTF-16LE with NUL, padding).
    pub(crate) fn unicode_prop(out: &mut Vec<u8>, id: u16, s: &str) {
        out.extend_from_slice(&PT_UNICODE.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
        let mut v: Vec<u8> = s
            .encode_utf16()
            .chain([0])
            .flat_map(u16::to_le_bytes)
            .collect();
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        let len = v.len();
        v.resize(padded(len), 0);
        out.extend_from_slice(&v);
    }

    /// A winmail.dat with one message attribute and the given (8.3 title, long name,
    /// mime type, data) files.
    pub(crate) fn blob(files: &[(&str, &str, &str, &[u8])]) -> Vec<u8> {
        let mut out = SIGNATURE.to_le_bytes().to_vec();
        out.extend_from_slice(&0x0001u16.to_le_bytes());
        attribute(&mut out, 1, 0x0009_8006, &[0, 1, 0, 1]); // attTnefVersion-like, ignored
        attribute(
            &mut out,
            1,
            ATT_OEM_CODEPAGE,
            &[0xE4, 0x04, 0, 0, 0, 0, 0, 0],
        );
        for (title, long, mime, data) in files {
            attribute(
                &mut out,
                2,
                ATT_ATTACH_REND_DATA,
                &[1, 0, 0xFF, 0xFF, 0xFF, 0xFF],
            );
            let mut t = encoding_rs::WINDOWS_1252.encode(title).0.into_owned();
            t.push(0);
            attribute(&mut out, 2, ATT_ATTACH_TITLE, &t);
            attribute(&mut out, 2, ATT_ATTACH_DATA, data);
            let mut props = Vec::new();
            let mut n = 1u32;
            // A fixed-size property first, to be skipped.
            props.extend_from_slice(&0x0003u16.to_le_bytes());
            props.extend_from_slice(&0x0E21u16.to_le_bytes());
            props.extend_from_slice(&7u32.to_le_bytes());
            unicode_prop(&mut props, PR_ATTACH_LONG_FILENAME, long);
            n += 1;
            if !mime.is_empty() {
                unicode_prop(&mut props, PR_ATTACH_MIME_TAG, mime);
                n += 1;
            }
            let mut block = n.to_le_bytes().to_vec();
            block.extend_from_slice(&props);
            attribute(&mut out, 2, ATT_ATTACHMENT, &block);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::build::blob;
    use super::*;

    #[test]
    fn files_under_their_long_names() {
        let b = blob(&[
            (
                "INFORM~1.PDF",
                "Informe de l'incidència 2026.pdf",
                "application/pdf",
                b"%PDF-1.4",
            ),
            ("DADES~1.XLS", "dades.xlsx", "", b"PK\x03\x04"),
        ]);
        let files = unpack(&b);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].name, "Informe de l'incidència 2026.pdf");
        assert_eq!(files[0].content_type, "application/pdf");
        assert_eq!(files[0].data, b"%PDF-1.4");
        assert_eq!(files[1].name, "dades.xlsx");
        assert_eq!(files[1].content_type, "application/octet-stream");
    }

    #[test]
    fn damaged_blob_keeps_what_was_read() {
        let b = blob(&[
            ("A.TXT", "primer.txt", "text/plain", b"one"),
            ("B.TXT", "segon.txt", "text/plain", b"two"),
        ]);
        // Cut inside the second file's property block.
        let cut = &b[..b.len() - 10];
        let files = unpack(cut);
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(files[0].name, "primer.txt");
        // The second file's data was read before the cut; its long name was not.
        assert_eq!(files[1].name, "B.TXT");
        for n in 0..b.len() {
            let _ = unpack(&b[..n]);
        }
        assert!(unpack(b"not tnef at all").is_empty());
        let mut junk = b.clone();
        for (i, byte) in junk.iter_mut().enumerate().skip(6) {
            *byte = byte.wrapping_mul(31).wrapping_add(i as u8);
        }
        let _ = unpack(&junk);
    }
}
