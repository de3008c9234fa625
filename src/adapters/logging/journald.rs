//! journald's native protocol, written by hand (a few lines) rather than with the
//! `tracing-journald` crate: that crate sends each event straight to the socket from
//! its own layer, so the redaction of secrets, the escaping of mail text, the
//! in-memory capture for the error report and the fallback to stderr (all in
//! [`super::LogSink`]) could not apply to what it sends; it also names the span
//! fields itself. One datagram per event to `/run/systemd/journal/socket`:
//! `KEY=value\n` per field, or `KEY\n` + the length as a little-endian u64 + the value +
//! `\n` for a value with a line break.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// journald's socket for native messages.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// `SYSLOG_IDENTIFIER` of every entry.
pub const IDENTIFIER: &str = "mailtoticket";

/// How long one entry may wait for room in journald's socket queue.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A message longer than this is cut when the datagram is refused as too large (the
/// socket's buffer is usually about 200 KiB; only trace-level SOAP bodies get near).
const MAX_MESSAGE: usize = 48 * 1024;

/// A connected sender.
pub struct Journald {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Journald {
    /// Connects to the socket at `path`; fails when there is no journald listening.
    pub fn connect(path: &Path) -> io::Result<Journald> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        // A journald that stops reading must not hold the mail forever: past this
        // the send fails and the log falls back to stderr.
        socket.set_write_timeout(Some(SEND_TIMEOUT))?;
        Ok(Journald {
            socket,
            path: path.to_path_buf(),
        })
    }

    /// The socket's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one entry; `fields` are `(NAME, value)` with `MESSAGE` among them. A
    /// datagram too large for the socket is sent again with the message cut.
    pub fn send(&self, fields: &[(&str, &str)]) -> io::Result<()> {
        match self.socket.send(&encode(fields)) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(90 /* EMSGSIZE */) => {
                let cut: Vec<(&str, String)> =
                    fields.iter().map(|(k, v)| (*k, shorten(v))).collect();
                let cut: Vec<(&str, &str)> = cut.iter().map(|(k, v)| (*k, v.as_str())).collect();
                self.socket.send(&encode(&cut)).map(|_| ())
            }
            Err(e) => Err(e),
        }
    }
}

fn shorten(value: &str) -> String {
    if value.len() <= MAX_MESSAGE {
        return value.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} [... {} bytes més]", &value[..end], value.len() - end)
}

/// The datagram of one entry.
pub fn encode(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.iter().map(|(k, v)| k.len() + v.len() + 10).sum());
    for (key, value) in fields {
        out.extend_from_slice(key.as_bytes());
        if value.contains('\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            out.push(b'=');
        }
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The fields of a datagram in the native protocol (for tests and the fake journald).
pub fn decode(mut data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let nl = data
            .iter()
            .position(|b| *b == b'\n')
            .ok_or("field without a line end")?;
        let line = &data[..nl];
        if let Some(eq) = line.iter().position(|b| *b == b'=') {
            let key = String::from_utf8_lossy(&line[..eq]).into_owned();
            out.push((key, line[eq + 1..].to_vec()));
            data = &data[nl + 1..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let rest = &data[nl + 1..];
            let len: [u8; 8] = rest
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or("binary field without its length")?;
            let len = usize::try_from(u64::from_le_bytes(len)).map_err(|e| e.to_string())?;
            let value = rest.get(8..8 + len).ok_or("binary field cut short")?;
            if rest.get(8 + len) != Some(&b'\n') {
                return Err("binary field not followed by a line end".into());
            }
            out.push((key, value.to_vec()));
            data = &rest[8 + len + 1..];
        }
    }
    Ok(out)
}

/// journald's `PRIORITY` (syslog levels) of a tracing level.
pub fn priority(level: tracing::Level) -> &'static str {
    match level {
        tracing::Level::ERROR => "3",
        tracing::Level::WARN => "4",
        tracing::Level::INFO => "6",
        _ => "7",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_plain_and_binary_fields_and_reads_them_back() {
        let data = encode(&[("MESSAGE", "hola"), ("X", "a\nb"), ("EMPTY", "")]);
        assert_eq!(&data[..13], b"MESSAGE=hola\n");
        assert_eq!(
            &data[13..],
            b"X\n\x03\0\0\0\0\0\0\0a\nb\nEMPTY=\n".as_slice()
        );
        let back = decode(&data).unwrap();
        assert_eq!(
            back,
            vec![
                ("MESSAGE".into(), b"hola".to_vec()),
                ("X".into(), b"a\nb".to_vec()),
                ("EMPTY".into(), Vec::new()),
            ]
        );
        assert!(decode(b"X\n\x09\0\0\0\0\0\0\0ab\n").is_err());
    }

    #[test]
    fn sends_to_a_bound_socket_and_cuts_huge_messages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let server = UnixDatagram::bind(&path).unwrap();
        let j = Journald::connect(&path).unwrap();
        j.send(&[("MESSAGE", "u"), ("PRIORITY", "6")]).unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"MESSAGE=u\nPRIORITY=6\n");
        assert!(Journald::connect(&dir.path().join("absent")).is_err());
        let long = shorten(&"é".repeat(MAX_MESSAGE));
        assert!(long.len() < MAX_MESSAGE + 40 && long.ends_with("bytes més]"));
    }
}
