//! Pure core: a process-wide cache of compiled configuration regexes, so the one
//! pattern validated at start-up (config) and compiled again for the use case
//! (settings, identity rules, attachment filters) is compiled only once per run.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use regex::Regex;

/// Configured patterns are few (tens at most), so the cache is never trimmed.
static CACHE: LazyLock<Mutex<HashMap<String, Result<Regex, regex::Error>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// `Regex::new(pattern)`, compiled once per process. A `Regex` clone shares the
/// compiled program, so callers get exactly what `Regex::new` would have given.
pub fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    let Ok(mut cache) = CACHE.lock() else {
        return Regex::new(pattern);
    };
    if let Some(hit) = cache.get(pattern) {
        return hit.clone();
    }
    let compiled = Regex::new(pattern);
    cache.insert(pattern.to_string(), compiled.clone());
    compiled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_answers_as_regex_new() {
        for p in [
            r"(?i)\(comentari privat\)",
            r"^<[-a-f0-9]+>$",
            "([",
            "a{99999999}",
        ] {
            let a = compile(p);
            let b = compile(p);
            let c = Regex::new(p);
            assert_eq!(a.is_ok(), c.is_ok(), "{p}");
            assert_eq!(
                a.as_ref().err().map(|e| e.to_string()),
                c.as_ref().err().map(|e| e.to_string())
            );
            if let (Ok(a), Ok(b)) = (a, b) {
                assert_eq!(a.as_str(), p);
                assert!(a.is_match("x (Comentari Privat)") == b.is_match("x (Comentari Privat)"));
            }
        }
    }
}
