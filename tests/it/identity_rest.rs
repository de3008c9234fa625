//! The identity REST API adapter against wiremock with recorded-style answers
//! (`fixtures/identity-rest/`): the token flow, the §4 rules through the chain,
//! "not found" vs "failed", escaping, and the per-run cache.

use std::path::Path;
use std::time::Duration;

use wiremock::matchers::{body_string, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use mailtoticket::adapters::http::{HyperTransport, TransportConfig};
use mailtoticket::adapters::identity_rest::{RestIdentityDirectory, RestSettings};
use mailtoticket::app::Settings;
use mailtoticket::app::identity::{Directories, Found, NoDirectory, UserLookup};
use mailtoticket::config::Config;
use mailtoticket::domain::identity::Person;
use mailtoticket::ports::{IdentityDirectory, PortError};

const KEY: &str = "clau+api&secreta";
const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.cHJvY2Vz.c2lnbmF0dXJh";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/identity-rest")
            .join(name),
    )
    .unwrap()
}

fn json(name: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/json")
        .set_body_string(fixture(name))
}

fn directory(server: &MockServer) -> RestIdentityDirectory {
    let transport = HyperTransport::new(&TransportConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        ca_file: None,
    })
    .unwrap();
    RestIdentityDirectory::new(
        transport,
        RestSettings {
            base_url: format!("{}/gcontrol/rest/", server.uri()),
            api_key: KEY.into(),
            not_found_statuses: vec![404],
        },
    )
}

/// The token request: the key form-encoded, answered once.
async fn mount_token(server: &MockServer, times: u64) {
    Mock::given(method("POST"))
        .and(path("/gcontrol/rest/acls/processos"))
        .and(body_string("idProces=clau%2Bapi%26secreta"))
        .respond_with(json("token.json"))
        .expect(times)
        .mount(server)
        .await;
}

fn settings() -> Settings {
    let config = Config::from_toml(
        "bus = \"sandbox\"\nequip_resolutor_nous = \"1\"\n\
         directoris = [\"identitat_digital\", \"patrons\"]\n\
         identitat_digital_apikey = \"k\"\n\
         [patrons_mail_addicionals]\n\"^.*@example\\\\.net$\" = \"patro\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    mailtoticket::config::Settings::build(&config).unwrap().app
}

struct Unused;

impl IdentityDirectory for Unused {
    async fn person(&self, _cn: &str) -> Result<Option<Person>, PortError> {
        panic!("persones is not in the chain")
    }
    async fn persons_by_email(&self, _email: &str) -> Result<Vec<String>, PortError> {
        panic!("persones is not in the chain")
    }
}

#[tokio::test]
async fn rest_directory_follows_section_4_with_one_token_per_run() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    // @upc.edu local part that is a cn
    Mock::given(method("GET"))
        .and(path("/gcontrol/rest/externs/persones/maria.soler/cn"))
        .and(header("TOKEN", TOKEN))
        .respond_with(json("persona_maria.json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/gcontrol/rest/externs/persones/pere.mas/cn"))
        .and(header("TOKEN", TOKEN))
        .respond_with(json("persona_pere.json"))
        .mount(&server)
        .await;
    // the only cn of an address: the address is escaped in the query
    Mock::given(method("GET"))
        .and(path("/gcontrol/rest/externs/identitats/cn"))
        .and(query_param("email", "maria+tickets@gmail.com"))
        .and(header("TOKEN", TOKEN))
        .respond_with(json("cn_una.json"))
        .expect(1)
        .mount(&server)
        .await;
    // two cns: the one whose preferred address it is
    Mock::given(method("GET"))
        .and(path("/gcontrol/rest/externs/identitats/cn"))
        .and(query_param("email", "pere.mas@gmail.com"))
        .respond_with(json("cn_dues.json"))
        .mount(&server)
        .await;
    // nobody: 404 with a body
    Mock::given(method("GET"))
        .and(path("/gcontrol/rest/externs/identitats/cn"))
        .and(query_param("email", "ningu@example.org"))
        .respond_with(ResponseTemplate::new(404).set_body_string(fixture("no_trobat.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/gcontrol/rest/externs/persones/ningu/cn"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    // nobody: an empty list
    Mock::given(method("GET"))
        .and(path("/gcontrol/rest/externs/identitats/cn"))
        .and(query_param("email", "buit@example.org"))
        .respond_with(ResponseTemplate::new(200).set_body_string("[]"))
        .mount(&server)
        .await;

    let rest = directory(&server);
    let s = settings();
    let chain: Directories<'_, Unused, RestIdentityDirectory, NoDirectory> =
        Directories::new(&Unused, Some(&rest), None);
    assert_eq!(
        chain.lookup("maria.soler@upc.edu", &s).await.unwrap(),
        Some(("maria.soler".into(), Found::RestCommonName))
    );
    assert_eq!(
        chain.lookup("maria+tickets@gmail.com", &s).await.unwrap(),
        Some(("maria.soler".into(), Found::RestUniqueEmail))
    );
    // cached: asked once (the mock expects exactly one call)
    assert_eq!(
        chain.lookup("maria+tickets@gmail.com", &s).await.unwrap(),
        Some(("maria.soler".into(), Found::RestUniqueEmail))
    );
    assert_eq!(
        chain.lookup("pere.mas@gmail.com", &s).await.unwrap(),
        Some(("pere.mas".into(), Found::RestPreferredEmail))
    );
    // not found: the chain goes on (patterns), then nobody
    assert_eq!(chain.lookup("ningu@example.org", &s).await.unwrap(), None);
    assert_eq!(chain.lookup("buit@example.org", &s).await.unwrap(), None);
    assert_eq!(
        chain.lookup("x@example.net", &s).await.unwrap().unwrap().1,
        Found::Pattern
    );
    // the @upc.edu step falls through to the e-mail search when the cn is unknown
    Mock::given(method("GET"))
        .and(path("/gcontrol/rest/externs/identitats/cn"))
        .and(query_param("email", "ningu@upc.edu"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    assert_eq!(chain.lookup("ningu@upc.edu", &s).await.unwrap(), None);
    // dropping the server verifies the `expect`s: one token for the whole run
}

#[tokio::test]
async fn rest_failures_are_never_not_found() {
    let server = MockServer::start().await;
    mount_token(&server, 1).await;
    Mock::given(method("GET"))
        .and(query_param("email", "caigut@example.org"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(query_param("email", "brossa@example.org"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>proxy</html>"))
        .mount(&server)
        .await;
    let rest = directory(&server);
    for address in ["caigut@example.org", "brossa@example.org"] {
        let e = rest.persons_by_email(address).await.unwrap_err();
        assert!(e.is_transient(), "{address}: {e}");
        assert!(!e.to_string().contains(KEY), "key leaked: {e}");
    }
    // the chain fails too (TEMPFAIL), it does not go on to the patterns
    let s = settings();
    let chain: Directories<'_, Unused, RestIdentityDirectory, NoDirectory> =
        Directories::new(&Unused, Some(&rest), None);
    assert!(
        chain
            .lookup("caigut@example.org", &s)
            .await
            .unwrap_err()
            .is_transient()
    );
}

#[tokio::test]
async fn rest_token_refused_or_expired() {
    // refused key: a failure
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/gcontrol/rest/acls/processos"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    let e = directory(&server)
        .persons_by_email("a@b.org")
        .await
        .unwrap_err();
    assert!(e.is_transient() && e.to_string().contains("token"), "{e}");

    // a token rejected with 401 is asked for again, once
    let server = MockServer::start().await;
    mount_token(&server, 2).await;
    Mock::given(method("GET"))
        .and(query_param("email", "a@b.org"))
        .respond_with(ResponseTemplate::new(401))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(query_param("email", "a@b.org"))
        .respond_with(json("cn_una.json"))
        .mount(&server)
        .await;
    assert_eq!(
        directory(&server)
            .persons_by_email("a@b.org")
            .await
            .unwrap(),
        vec!["maria.soler".to_string()]
    );
}
