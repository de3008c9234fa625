//! The systemd service manager protocol (`sd_notify(3)`), for `imap --watch` run as a
//! `Type=notify` unit with a watchdog: `READY=1`, `STATUS=…`, `WATCHDOG=1`,
//! `STOPPING=1`, each one datagram to the `AF_UNIX` socket named by `NOTIFY_SOCKET`
//! (a path, or an abstract name when it starts with `@`).
//!
//! Hand-written rather than a crate: the protocol is one datagram of `KEY=VALUE` lines,
//! which `std::os::unix::net::UnixDatagram` sends without `unsafe` (abstract names via
//! `SocketAddrExt::from_abstract_name`); no file descriptors are passed, so nothing of
//! libsystemd's API is needed.
//!
//! Without `NOTIFY_SOCKET` (the MDA, a terminal, a `Type=oneshot` unit) every call is a
//! no-op. The watchdog is only pinged from the loop's own progress ([`watchdog`]), so a
//! loop that hangs stops pinging and systemd restarts the service.
//!
//! A SIGTERM (or SIGINT) in watch mode only sets a flag ([`stop_requested`]) that the
//! loop reads between mails: the mail being handled is finished, then the process exits 0.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Environment: the manager's socket.
pub const ENV_NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// Environment: the watchdog timeout in microseconds (`WatchdogSec=`).
pub const ENV_WATCHDOG_USEC: &str = "WATCHDOG_USEC";
/// Environment: the process the watchdog is meant for (absent: this one).
pub const ENV_WATCHDOG_PID: &str = "WATCHDOG_PID";

/// Pings closer together than this are not sent (a pass over many quick mails).
const MIN_PING_GAP: Duration = Duration::from_secs(1);

/// A connection to the service manager, read once from the environment.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    /// `WatchdogSec=` when it applies to this process.
    watchdog: Option<Duration>,
    last_ping: Mutex<Option<Instant>>,
    /// Whether `READY=1` was sent.
    ready: AtomicBool,
}

impl Notifier {
    /// From `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` (through `env`, so
    /// tests need not change the process environment). A socket that cannot be set up
    /// disables notification (logged once by the caller through [`Notifier::error`]).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> (Notifier, Option<String>) {
        let watchdog = watchdog_timeout(
            env(ENV_WATCHDOG_USEC).as_deref(),
            env(ENV_WATCHDOG_PID).as_deref(),
            std::process::id(),
        );
        let (target, error) = match env(ENV_NOTIFY_SOCKET) {
            None => (None, None),
            Some(name) if name.is_empty() => (None, None),
            Some(name) => match connect(&name) {
                Ok(t) => (Some(t), None),
                Err(e) => (None, Some(format!("{ENV_NOTIFY_SOCKET}={name}: {e}"))),
            },
        };
        let watchdog = if target.is_some() { watchdog } else { None };
        (
            Notifier {
                target,
                watchdog,
                last_ping: Mutex::new(None),
                ready: AtomicBool::new(false),
            },
            error,
        )
    }

    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
            last_ping: Mutex::new(None),
            ready: AtomicBool::new(false),
        }
    }

    /// Whether a service manager listens.
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// `WatchdogSec=` of the unit, when the watchdog is on for this process.
    pub fn watchdog_timeout(&self) -> Option<Duration> {
        self.watchdog
    }

    /// The longest the loop may block between two pings: half the watchdog timeout.
    pub fn ping_interval(&self) -> Option<Duration> {
        self.watchdog.map(|w| w / 2)
    }

    /// Sends one notification (`KEY=VALUE` lines); errors are returned, not logged.
    pub fn send(&self, state: &str) -> io::Result<()> {
        match &self.target {
            Some((socket, addr)) => socket.send_to_addr(state.as_bytes(), addr).map(|_| ()),
            None => Ok(()),
        }
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) {
        let _ = self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// `READY=1` with this status line the first time, `STATUS=…` afterwards.
    pub fn up(&self, status: &str) {
        if self.ready.swap(true, Ordering::SeqCst) {
            self.status(status);
        } else {
            self.ready(status);
        }
    }

    /// `STATUS=…` (shown by `systemctl status`).
    pub fn status(&self, status: &str) {
        let _ = self.send(&format!("STATUS={}", one_line(status)));
    }

    /// `STOPPING=1` with a status line.
    pub fn stopping(&self, status: &str) {
        let _ = self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
    }

    /// `WATCHDOG=1`, at most once per second; call it from the loop's own progress.
    pub fn watchdog(&self) {
        if self.watchdog.is_none() {
            return;
        }
        let now = Instant::now();
        let mut last = self.last_ping.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| now.duration_since(t) < MIN_PING_GAP) {
            return;
        }
        if self.send("WATCHDOG=1").is_ok() {
            *last = Some(now);
        }
    }
}

/// `WATCHDOG_USEC` when it is meant for `pid` (no `WATCHDOG_PID`, or that pid).
fn watchdog_timeout(usec: Option<&str>, pid: Option<&str>, own: u32) -> Option<Duration> {
    if let Some(p) = pid
        && p.trim().parse::<u32>().ok() != Some(own)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// A datagram socket and the manager's address (`@name`: an abstract name).
fn connect(name: &str) -> io::Result<(UnixDatagram, SocketAddr)> {
    let addr = if let Some(abstract_name) = name.strip_prefix('@') {
        abstract_addr(abstract_name.as_bytes())?
    } else if name.starts_with('/') {
        SocketAddr::from_pathname(name)?
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "neither a path nor an abstract name",
        ));
    };
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    Ok((socket, addr))
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract socket names need Linux",
    ))
}

/// A status text on one line (a newline would start another assignment).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

static NOTIFIER: OnceLock<Notifier> = OnceLock::new();
static STOP: AtomicBool = AtomicBool::new(false);
static STOP_WAKER: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// The process's notifier, read from the environment on first use; the second value
/// is a problem with `NOTIFY_SOCKET` to log (only on the first call).
pub fn notifier() -> (&'static Notifier, Option<String>) {
    let mut problem = None;
    let n = NOTIFIER.get_or_init(|| {
        let (n, e) = Notifier::from_env(|k| std::env::var(k).ok());
        problem = e;
        n
    });
    (n, problem)
}

/// `WATCHDOG=1` through the process's notifier (a no-op outside systemd or before
/// [`notifier`] was first called).
pub fn watchdog() {
    if let Some(n) = NOTIFIER.get() {
        n.watchdog();
    }
}

/// Whether a SIGTERM or SIGINT asked the watch loop to stop.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Sets the stop flag and wakes [`stopped`] (the signal task; tests).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
    STOP_WAKER.notify_waiters();
}

/// Returns once a stop was requested (at once when it already was).
pub async fn stopped() {
    loop {
        let woken = STOP_WAKER.notified();
        let mut woken = std::pin::pin!(woken);
        woken.as_mut().enable();
        if stop_requested() {
            return;
        }
        woken.await;
    }
}

/// Waits for SIGTERM or SIGINT, then sets the stop flag; must run inside the tokio
/// runtime. An error means the signals could not be hooked (the default action stays).
pub async fn stop_signal() -> io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    request_stop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_applies_to_this_pid_only() {
        assert_eq!(
            watchdog_timeout(Some("300000000"), None, 7),
            Some(Duration::from_secs(300))
        );
        assert_eq!(
            watchdog_timeout(Some("300000000"), Some("7"), 7),
            Some(Duration::from_secs(300))
        );
        assert_eq!(watchdog_timeout(Some("300000000"), Some("8"), 7), None);
        assert_eq!(watchdog_timeout(Some("0"), None, 7), None);
        assert_eq!(watchdog_timeout(Some("x"), None, 7), None);
        assert_eq!(watchdog_timeout(None, None, 7), None);
    }

    #[test]
    fn status_lines_cannot_inject_assignments() {
        assert_eq!(one_line("a\nREADY=1\r"), "a READY=1 ");
    }

    fn bound() -> (tempfile::TempDir, UnixDatagram, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (dir, sock, path.to_string_lossy().into_owned())
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn notifications_reach_a_path_socket() {
        let (_dir, sock, path) = bound();
        let (n, problem) = Notifier::from_env(|k| match k {
            ENV_NOTIFY_SOCKET => Some(path.clone()),
            ENV_WATCHDOG_USEC => Some("4000000".into()),
            _ => None,
        });
        assert!(problem.is_none());
        assert_eq!(n.ping_interval(), Some(Duration::from_secs(2)));
        n.up("connectat");
        assert_eq!(recv(&sock), "READY=1\nSTATUS=connectat");
        n.up("desconnectat");
        assert_eq!(recv(&sock), "STATUS=desconnectat");
        n.watchdog();
        assert_eq!(recv(&sock), "WATCHDOG=1");
        // A second ping within the gap is not sent: the next datagram is the status.
        n.watchdog();
        n.stopping("aturant");
        assert_eq!(recv(&sock), "STOPPING=1\nSTATUS=aturant");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn notifications_reach_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("mailtoticket-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (n, problem) =
            Notifier::from_env(|k| (k == ENV_NOTIFY_SOCKET).then(|| format!("@{name}")));
        assert!(problem.is_none());
        // No WATCHDOG_USEC: no pings, but status lines are sent.
        n.watchdog();
        n.status("hola");
        assert_eq!(recv(&sock), "STATUS=hola");
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_a_bad_name_is_reported() {
        let (n, problem) = Notifier::from_env(|_| None);
        assert!(!n.is_enabled() && problem.is_none());
        assert_eq!(n.watchdog_timeout(), None);
        let (n, problem) =
            Notifier::from_env(|k| (k == ENV_NOTIFY_SOCKET).then(|| "relative".to_string()));
        assert!(!n.is_enabled());
        assert!(problem.unwrap().contains("relative"));
        assert!(!Notifier::disabled().is_enabled());
    }
}
