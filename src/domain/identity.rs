//! Identity data as the domain sees it (a UPC person) and the pure parts of the
//! identity chain (canonicalisation, static maps, patterns).

/// A person of the UPC identity directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    /// Username (common name, cn).
    pub cn: String,
    /// Preferred e-mail, when the directory gives one.
    pub email_preferent: Option<String>,
}

use std::collections::BTreeMap;

use regex::Regex;

use super::filters::match_at_start;

/// Lower-cases an address, trims it and applies the configured rewrites in order
/// (each a plain substring replacement, e.g. `.upc.es` → `.upc.edu`), so that old
/// and new spellings of one mailbox reach the same person.
pub fn canonicalise(address: &str, rewrites: &[(String, String)]) -> String {
    let mut out = address.trim().to_lowercase();
    for (from, to) in rewrites {
        if !from.is_empty() && out.contains(from.as_str()) {
            out = out.replace(from.as_str(), to);
        }
    }
    out
}

/// The username a `@upc.edu` address names: its local part (the UPC convention
/// `cn@upc.edu`). `None` for any other domain.
pub fn upc_username(canonical: &str) -> Option<&str> {
    let (local, domain) = canonical.rsplit_once('@')?;
    (domain == "upc.edu" && !local.is_empty()).then_some(local)
}

/// One entry of an LDAP-style directory answer: its DN and its `cn` values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub dn: String,
    pub cn: Vec<String>,
}

/// The username §4 gives for an LDAP entry: its first non-empty `cn`, `@`, and the
/// value of the first `ou` of its DN (`cn=joan,ou=eetac,dc=upc,dc=edu` →
/// `joan@eetac`). `None` when the entry has no cn or its DN no ou.
pub fn ldap_username(entry: &DirectoryEntry) -> Option<String> {
    let cn = entry.cn.iter().map(|c| c.trim()).find(|c| !c.is_empty())?;
    let ou = dn_attribute(&entry.dn, "ou")?;
    Some(format!("{cn}@{ou}"))
}

/// The first value of `attr` among the RDNs of a DN (RFC 4514: `,` separates RDNs,
/// `+` the parts of one RDN, `\` escapes a character or two hex digits).
pub fn dn_attribute(dn: &str, attr: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let bytes = dn.as_bytes();
    let mut i = 0;
    // Each part keeps its escapes resolved except the `=`, found on the raw text.
    let mut raw = String::new();
    let mut raws: Vec<String> = Vec::new();
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && i + 1 < bytes.len() {
            let hex = dn
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(v) => {
                    current.push(v);
                    raw.push_str(&dn[i..i + 3]);
                    i += 3;
                }
                None => {
                    current.push(bytes[i + 1]);
                    raw.push_str(&dn[i..i + 2]);
                    i += 2;
                }
            }
            continue;
        }
        if b == b',' || b == b'+' || b == b';' {
            parts.push(String::from_utf8_lossy(&current).into_owned());
            raws.push(std::mem::take(&mut raw));
            current.clear();
        } else {
            current.push(b);
            raw.push(b as char);
        }
        i += 1;
    }
    parts.push(String::from_utf8_lossy(&current).into_owned());
    raws.push(raw);
    for (part, raw) in parts.iter().zip(&raws) {
        // The attribute type never holds escapes; split the raw text at its first
        // unescaped `=` and take the same number of characters off the decoded part.
        let Some((name, _)) = raw.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case(attr) {
            let value = part.get(name.len() + 1..).unwrap_or("").trim();
            if !value.is_empty() {
                return Some(value.to_string());
            }
        }
    }
    None
}

/// The static parts of the identity chain (§4): rewrites, `mails_addicionals` and
/// `patrons_mail_addicionals`, compiled once.
#[derive(Debug, Clone, Default)]
pub struct IdentityRules {
    rewrites: Vec<(String, String)>,
    /// Canonical address → username.
    aliases: BTreeMap<String, String>,
    /// (regex, value with `%s`) in configuration order.
    patterns: Vec<(Regex, String)>,
}

impl IdentityRules {
    /// Compiles the rules. The error names the offending pattern.
    pub fn new(
        rewrites: &[(String, String)],
        aliases: &BTreeMap<String, String>,
        patterns: &[(String, String)],
    ) -> Result<IdentityRules, String> {
        let rewrites = rewrites.to_vec();
        let aliases = aliases
            .iter()
            .map(|(k, v)| (canonicalise(k, &rewrites), v.trim().to_string()))
            .collect();
        let patterns = patterns
            .iter()
            .map(|(re, value)| {
                Regex::new(re)
                    .map(|r| (r, value.clone()))
                    .map_err(|e| format!("{re}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(IdentityRules {
            rewrites,
            aliases,
            patterns,
        })
    }

    /// The canonical form of an address.
    pub fn canonical(&self, address: &str) -> String {
        canonicalise(address, &self.rewrites)
    }

    /// Step 1: `mails_addicionals`, by canonical address.
    pub fn alias(&self, canonical: &str) -> Option<&str> {
        self.aliases.get(canonical).map(String::as_str)
    }

    /// Step 3: the first `patrons_mail_addicionals` regex matching at the start of the
    /// address gives its value, with `%s` replaced by the first capture group.
    pub fn pattern(&self, canonical: &str) -> Option<String> {
        self.patterns.iter().find_map(|(re, value)| {
            let caps = match_at_start(re, canonical)?;
            Some(match caps.get(1) {
                Some(g) => value.replace("%s", g.as_str()),
                None => value.clone(),
            })
        })
    }

    /// Among several persons sharing an address, the one whose canonical preferred
    /// e-mail is the address.
    pub fn pick<'a>(&self, canonical: &str, persons: &'a [Person]) -> Option<&'a Person> {
        persons.iter().find(|p| {
            p.email_preferent
                .as_deref()
                .is_some_and(|e| self.canonical(e) == canonical)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> IdentityRules {
        let rewrites = vec![
            (".upc.es".to_string(), ".upc.edu".to_string()),
            ("@lsi".to_string(), "@cs".to_string()),
        ];
        let mut aliases = BTreeMap::new();
        aliases.insert("Suport@LSI.upc.es".to_string(), "suport.cs".to_string());
        let patterns = vec![
            (r"(.*)@ext\.example\.org".to_string(), "ext.%s".to_string()),
            (r".*@fixed\.org".to_string(), "fixed.user".to_string()),
        ];
        IdentityRules::new(&rewrites, &aliases, &patterns).unwrap()
    }

    #[test]
    fn canonicalise_lowercases_and_rewrites() {
        let r = rules();
        assert_eq!(
            r.canonical(" Nom.Cognom@AC.UPC.ES "),
            "nom.cognom@ac.upc.edu"
        );
        assert_eq!(r.canonical("jo@lsi.upc.edu"), "jo@cs.upc.edu");
        assert_eq!(r.canonical("jo@lsi.upc.es"), "jo@cs.upc.edu");
    }

    #[test]
    fn aliases_are_canonicalised() {
        let r = rules();
        assert_eq!(r.alias("suport@cs.upc.edu"), Some("suport.cs"));
        assert_eq!(r.alias("altre@cs.upc.edu"), None);
    }

    #[test]
    fn patterns_match_at_start_with_group() {
        let r = rules();
        assert_eq!(r.pattern("pep@ext.example.org").as_deref(), Some("ext.pep"));
        assert_eq!(r.pattern("x@fixed.org").as_deref(), Some("fixed.user"));
        assert_eq!(r.pattern("x@other.org"), None);
    }

    #[test]
    fn pattern_must_match_at_start() {
        let r = IdentityRules::new(&[], &BTreeMap::new(), &[("b@c".into(), "v".into())]).unwrap();
        assert_eq!(r.pattern("ab@c"), None);
        assert_eq!(r.pattern("b@c.org").as_deref(), Some("v"));
    }

    #[test]
    fn bad_pattern_is_named() {
        let e = IdentityRules::new(&[], &BTreeMap::new(), &[("(".into(), "v".into())]);
        assert!(e.unwrap_err().starts_with("(:"));
    }

    #[test]
    fn upc_username_only_for_upc_edu() {
        assert_eq!(upc_username("nom.cognom@upc.edu"), Some("nom.cognom"));
        assert_eq!(upc_username("nom@ac.upc.edu"), None);
        assert_eq!(upc_username("@upc.edu"), None);
    }

    #[test]
    fn pick_by_preferred_email() {
        let r = rules();
        let persons = vec![
            Person {
                cn: "a".into(),
                email_preferent: Some("other@upc.edu".into()),
            },
            Person {
                cn: "b".into(),
                email_preferent: Some("Jo@LSI.upc.edu".into()),
            },
        ];
        assert_eq!(
            r.pick("jo@cs.upc.edu", &persons).map(|p| p.cn.as_str()),
            Some("b")
        );
        assert!(r.pick("nobody@cs.upc.edu", &persons).is_none());
    }

    #[test]
    fn ldap_username_is_cn_at_first_ou() {
        let e = |dn: &str, cn: &[&str]| DirectoryEntry {
            dn: dn.into(),
            cn: cn.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            ldap_username(&e("cn=joan,ou=eetac,dc=upc,dc=edu", &["joan"])).as_deref(),
            Some("joan@eetac")
        );
        assert_eq!(
            ldap_username(&e("uid=x, OU=Recerca , ou=b,dc=x", &["", " anna "])).as_deref(),
            Some("anna@Recerca")
        );
        // escaped separators belong to the value
        assert_eq!(
            ldap_username(&e("cn=a\\,b,ou=r\\2Cd,dc=x", &["a"])).as_deref(),
            Some("a@r,d")
        );
        assert_eq!(ldap_username(&e("cn=a,dc=upc,dc=edu", &["a"])), None);
        assert_eq!(ldap_username(&e("cn=a,ou=x", &[])), None);
    }
}
