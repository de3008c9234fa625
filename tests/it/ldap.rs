//! The LDAP directory against a real OpenLDAP `slapd` started by the test on a
//! loopback port, with its own configuration and database in a temporary folder,
//! seeded with a few people under two ou's. Skipped (with a message) only when slapd
//! is not installed; `.ci/run` installs it.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mailtoticket::adapters::http::tls_client_config;
use mailtoticket::adapters::ldap::{LdapDirectory, LdapSettings};
use mailtoticket::app::Settings;
use mailtoticket::app::identity::{Directories, Found, NoDirectory, UserLookup};
use mailtoticket::config::Config;
use mailtoticket::ports::{IdentityDirectory, MailDirectory, PortError};

pub const SUFFIX: &str = "dc=upc,dc=edu";
pub const ADMIN_DN: &str = "cn=admin,dc=upc,dc=edu";
pub const ADMIN_PW: &str = "Ldap-Pw-51c0de";

const SEED: &str = "\
dn: dc=upc,dc=edu
objectClass: dcObject
objectClass: organization
o: UPC
dc: upc

dn: ou=eetac,dc=upc,dc=edu
objectClass: organizationalUnit
ou: eetac

dn: ou=etseib,dc=upc,dc=edu
objectClass: organizationalUnit
ou: etseib

dn: cn=joan.puig,ou=eetac,dc=upc,dc=edu
objectClass: inetOrgPerson
cn: joan.puig
sn: Puig
mail: joan.puig@gmail.com

dn: cn=anna.vidal,ou=etseib,dc=upc,dc=edu
objectClass: inetOrgPerson
cn: anna.vidal
sn: Vidal
mail: compartit@example.org

dn: cn=pere.mas,ou=eetac,dc=upc,dc=edu
objectClass: inetOrgPerson
cn: pere.mas
sn: Mas
mail: compartit@example.org
";

fn slapd_binary() -> Option<PathBuf> {
    [
        "/usr/sbin/slapd",
        "/usr/local/sbin/slapd",
        "/usr/local/libexec/slapd",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

fn module_dir() -> Option<&'static str> {
    [
        "/usr/lib/ldap",
        "/usr/lib/openldap",
        "/usr/local/lib/openldap",
    ]
    .into_iter()
    .find(|d| Path::new(d).join("back_mdb.so").exists())
}

/// A running slapd; stopped (its own process, by handle) when dropped.
pub struct Slapd {
    child: Option<Child>,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Slapd {
    /// Starts slapd with a fresh seeded database, or `None` (and a message) when slapd
    /// is not installed here.
    pub fn start() -> Option<Slapd> {
        let Some(slapd) = slapd_binary() else {
            eprintln!(
                "SKIPPED: slapd is not installed (apt-get install slapd ldap-utils); .ci/run installs it"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir_all(&db).unwrap();
        let modules = match module_dir() {
            Some(m) => format!("modulepath {m}\nmoduleload back_mdb\n"),
            None => String::new(),
        };
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             {modules}\
             pidfile {pid}\n\
             database mdb\n\
             maxsize 10485760\n\
             suffix \"{SUFFIX}\"\n\
             rootdn \"{ADMIN_DN}\"\n\
             rootpw {ADMIN_PW}\n\
             directory {db}\n",
            pid = dir.path().join("slapd.pid").display(),
            db = db.display(),
        );
        let conf_file = dir.path().join("slapd.conf");
        std::fs::write(&conf_file, conf).unwrap();
        let seed = dir.path().join("seed.ldif");
        std::fs::write(&seed, SEED).unwrap();
        let slapadd = slapd.with_file_name("slapadd");
        let out = Command::new(&slapadd)
            .arg("-f")
            .arg(&conf_file)
            .arg("-l")
            .arg(&seed)
            .output()
            .expect("slapadd runs");
        assert!(
            out.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        // `-d 0`: stay in the foreground (the test owns the process), log nothing.
        let child = Command::new(&slapd)
            .arg("-f")
            .arg(&conf_file)
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/"))
            .arg("-d")
            .arg("0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("slapd starts");
        let mut s = Slapd {
            child: Some(child),
            port,
            _dir: dir,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = s.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("slapd exited at start: {status}");
            }
            assert!(Instant::now() < until, "slapd did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(s)
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Stops the server (the "directory went away" case).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn settings(url: &str, password: &str, starttls: bool) -> LdapSettings {
    LdapSettings {
        url: url.into(),
        bind_dn: Some(ADMIN_DN.into()),
        password: Some(password.into()),
        base: SUFFIX.into(),
        starttls,
        connect_timeout: Duration::from_secs(2),
        operation_timeout: Duration::from_secs(5),
        tls: Arc::new(tls_client_config(None).unwrap()),
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A Persones directory that knows nobody (the LDAP step comes after it).
struct Nobody;

impl IdentityDirectory for Nobody {
    async fn person(
        &self,
        _cn: &str,
    ) -> Result<Option<mailtoticket::domain::identity::Person>, PortError> {
        Ok(None)
    }
    async fn persons_by_email(&self, _email: &str) -> Result<Vec<String>, PortError> {
        Ok(Vec::new())
    }
}

fn chain_config(url: &str, extra: &str) -> Config {
    let text = format!(
        "bus = \"sandbox\"\nequip_resolutor_nous = \"1\"\n{extra}\n\
         directoris = [\"mails_addicionals\", \"persones\", \"ldap\", \"patrons\"]\n\
         LDAP_SERVER_URL = \"{url}\"\nLDAP_BASE_SEARCH = \"{SUFFIX}\"\n\
         [patrons_mail_addicionals]\n\"^.*@example\\\\.net$\" = \"patro\"\n"
    );
    Config::from_toml(&text, Path::new("t.toml")).unwrap()
}

fn chain_settings(url: &str) -> Settings {
    mailtoticket::config::Settings::build(&chain_config(url, ""))
        .unwrap()
        .app
}

fn chain_lookup(
    ldap: &LdapDirectory,
    s: &Settings,
    address: &str,
) -> Result<Option<(String, Found)>, PortError> {
    let chain: Directories<'_, Nobody, NoDirectory, LdapDirectory> =
        Directories::new(&Nobody, None, Some(ldap));
    let canonical = s.identity.canonical(address);
    block_on(chain.lookup(&canonical, s))
}

#[test]
fn slapd_finds_people_and_keeps_not_found_apart_from_failure() {
    let Some(mut server) = Slapd::start() else {
        return;
    };
    let ldap = LdapDirectory::new(settings(&server.url(), ADMIN_PW, false));
    let s = chain_settings(&server.url());

    // found: cn + "@" + the ou of the DN; the address is canonicalised first
    assert_eq!(
        chain_lookup(&ldap, &s, " Joan.Puig@GMAIL.com ").unwrap(),
        Some(("joan.puig@eetac".to_string(), Found::Ldap))
    );
    // not found: the chain goes on to the patterns, then nobody
    assert_eq!(chain_lookup(&ldap, &s, "ningu@example.org").unwrap(), None);
    assert_eq!(
        chain_lookup(&ldap, &s, "x@example.net").unwrap().unwrap().1,
        Found::Pattern
    );

    // two entries: the first the directory gives
    let entries = block_on(ldap.entries_by_mail("compartit@example.org")).unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    let first = mailtoticket::domain::identity::ldap_username(&entries[0]).unwrap();
    assert!(
        first == "anna.vidal@etseib" || first == "pere.mas@eetac",
        "{first}"
    );
    assert_eq!(
        chain_lookup(&ldap, &s, "compartit@example.org")
            .unwrap()
            .unwrap()
            .0,
        first
    );

    // filter injection: the value is escaped (RFC 4515), so these match nobody
    for evil in [
        "*)(mail=*",
        "*",
        "joan.puig@gmail.com)(|(mail=*",
        "*)(cn=*)(|(mail=*",
    ] {
        let found = block_on(ldap.entries_by_mail(evil)).unwrap();
        assert!(found.is_empty(), "{evil} matched {found:?}");
    }

    // bind failure: a temporary failure, never "not found"
    let bad = LdapDirectory::new(settings(&server.url(), "wrong", false));
    let e = block_on(bad.entries_by_mail("joan.puig@gmail.com")).unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(e.to_string().contains("credencials refusades"), "{e}");
    assert!(!e.to_string().contains("wrong"), "password leaked: {e}");
    let e = chain_lookup(&bad, &s, "joan.puig@gmail.com").unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(block_on(ldap.probe()).is_ok());
    assert!(block_on(bad.probe()).is_err());

    // StartTLS asked of a server without TLS: refused, not silently in clear
    let tls = LdapDirectory::new(settings(&server.url(), ADMIN_PW, true));
    assert!(
        block_on(tls.entries_by_mail("joan.puig@gmail.com"))
            .unwrap_err()
            .is_transient()
    );

    // server stopped: TEMPFAIL, quickly
    server.stop();
    let started = Instant::now();
    let e = chain_lookup(&ldap, &s, "joan.puig@gmail.com").unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // ... unless LDAP is configured as optional: then the chain goes on
    let optional = mailtoticket::config::Settings::build(&chain_config(
        &server.url(),
        "directoris_opcionals = [\"ldap\"]",
    ))
    .unwrap()
    .app;
    assert_eq!(
        chain_lookup(&ldap, &optional, "x@example.net")
            .unwrap()
            .unwrap()
            .1,
        Found::Pattern
    );
}
