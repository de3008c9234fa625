//! `import-settings` (driving side, migration): reads an old `settings_default.py`
//! — a Python dict literal — with a small tokenizer/parser for the subset those files
//! use, and writes the equivalent TOML. No Python needed.

use toml::{Table, Value};

use crate::config::Config;

/// The result of a conversion: the TOML text and what could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub toml: String,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Int(i64),
    Float(f64),
    Ident(String),
    Punct(char),
}

fn tokenize(src: &str) -> Result<Vec<(Tok, usize)>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() || c == '\\' {
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' || c == '\'' || (is_prefix(&chars, i) && starts_string(&chars, i)) {
            let mut raw = false;
            while chars[i] != '"' && chars[i] != '\'' {
                raw |= chars[i] == 'r' || chars[i] == 'R';
                i += 1;
            }
            let q = chars[i];
            let triple = chars.get(i + 1) == Some(&q) && chars.get(i + 2) == Some(&q);
            i += if triple { 3 } else { 1 };
            let start_line = line;
            let mut s = String::new();
            loop {
                let Some(&ch) = chars.get(i) else {
                    return Err(format!("line {start_line}: unterminated string"));
                };
                if ch == q
                    && (!triple || (chars.get(i + 1) == Some(&q) && chars.get(i + 2) == Some(&q)))
                {
                    i += if triple { 3 } else { 1 };
                    break;
                }
                if ch == '\n' {
                    if !triple {
                        return Err(format!("line {start_line}: unterminated string"));
                    }
                    line += 1;
                }
                if ch == '\\' && i + 1 < chars.len() {
                    let n = chars[i + 1];
                    if raw {
                        s.push('\\');
                        s.push(n);
                        i += 2;
                        continue;
                    }
                    i += 2;
                    match n {
                        'n' => s.push('\n'),
                        't' => s.push('\t'),
                        'r' => s.push('\r'),
                        '0' => s.push('\0'),
                        '\\' => s.push('\\'),
                        '\'' => s.push('\''),
                        '"' => s.push('"'),
                        '\n' => line += 1,
                        'x' | 'u' | 'U' => {
                            let len = match n {
                                'x' => 2,
                                'u' => 4,
                                _ => 8,
                            };
                            let hex: String = chars.iter().skip(i).take(len).collect();
                            match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                                Some(c) => {
                                    s.push(c);
                                    i += len;
                                }
                                None => {
                                    s.push('\\');
                                    s.push(n);
                                }
                            }
                        }
                        // Python keeps unknown escapes (e.g. "\d") as they are.
                        other => {
                            s.push('\\');
                            s.push(other);
                        }
                    }
                    continue;
                }
                s.push(ch);
                i += 1;
            }
            out.push((Tok::Str(s), start_line));
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_')
            {
                i += 1;
            }
            let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            let tok = if let Ok(n) = text.parse::<i64>() {
                Tok::Int(n)
            } else if let Ok(f) = text.parse::<f64>() {
                Tok::Float(f)
            } else {
                Tok::Ident(text)
            };
            out.push((tok, line));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), line));
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    Ok(out)
}

fn is_prefix(chars: &[char], i: usize) -> bool {
    matches!(chars[i], 'r' | 'R' | 'u' | 'U' | 'b' | 'B' | 'f' | 'F')
        && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'))
}

fn starts_string(chars: &[char], i: usize) -> bool {
    let mut j = i;
    while j < chars.len()
        && j < i + 2
        && matches!(chars[j], 'r' | 'R' | 'u' | 'U' | 'b' | 'B' | 'f' | 'F')
    {
        j += 1;
    }
    matches!(chars.get(j), Some('"') | Some('\''))
}

/// A parsed Python value; `Opaque` is what has no TOML equivalent.
#[derive(Debug, Clone, PartialEq)]
enum Py {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    None,
    List(Vec<Py>),
    Dict(Vec<(Py, Py)>),
    Level(String),
    Opaque(String),
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(0, |t| t.1)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.0.clone());
        self.pos += 1;
        t
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Punct(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("line {}: expected `{c}`", self.line()))
        }
    }

    /// expression := term ('+' term)*  (string concatenation)
    fn expr(&mut self) -> Result<Py, String> {
        let mut v = self.term()?;
        while self.eat('+') {
            let rhs = self.term()?;
            v = match (v, rhs) {
                (Py::Str(a), Py::Str(b)) => Py::Str(a + &b),
                (Py::Int(a), Py::Int(b)) => Py::Int(a + b),
                (a, b) => Py::Opaque(format!("{} + {}", show(&a), show(&b))),
            };
        }
        Ok(v)
    }

    fn term(&mut self) -> Result<Py, String> {
        let line = self.line();
        match self.next() {
            Some(Tok::Str(mut s)) => {
                // adjacent literals concatenate
                while let Some(Tok::Str(more)) = self.peek().cloned() {
                    s.push_str(&more);
                    self.pos += 1;
                }
                Ok(Py::Str(s))
            }
            Some(Tok::Int(n)) => Ok(Py::Int(n)),
            Some(Tok::Float(f)) => Ok(Py::Float(f)),
            Some(Tok::Punct('-')) => match self.term()? {
                Py::Int(n) => Ok(Py::Int(-n)),
                Py::Float(f) => Ok(Py::Float(-f)),
                other => Ok(Py::Opaque(format!("-{}", show(&other)))),
            },
            Some(Tok::Punct('{')) => {
                let mut items = Vec::new();
                while !self.eat('}') {
                    let k = self.expr()?;
                    self.expect(':')?;
                    let v = self.expr()?;
                    items.push((k, v));
                    if !self.eat(',') {
                        self.expect('}')?;
                        break;
                    }
                }
                Ok(Py::Dict(items))
            }
            Some(Tok::Punct(open @ ('[' | '('))) => {
                let close = if open == '[' { ']' } else { ')' };
                let mut items = Vec::new();
                while !self.eat(close) {
                    items.push(self.expr()?);
                    if !self.eat(',') {
                        self.expect(close)?;
                        break;
                    }
                }
                Ok(Py::List(items))
            }
            Some(Tok::Ident(id)) => self.ident(id),
            Some(t) => Err(format!("line {line}: unexpected {t:?}")),
            None => Err(format!("line {line}: unexpected end of file")),
        }
    }

    fn ident(&mut self, id: String) -> Result<Py, String> {
        match id.as_str() {
            "True" => return Ok(Py::Bool(true)),
            "False" => return Ok(Py::Bool(false)),
            "None" => return Ok(Py::None),
            "lambda" => {
                // skip to the end of the value: the next `,` or closer at depth 0
                let mut depth = 0i32;
                let mut text = String::from("lambda");
                while let Some(t) = self.peek().cloned() {
                    match t {
                        Tok::Punct('(' | '[' | '{') => depth += 1,
                        Tok::Punct(')' | ']' | '}') if depth == 0 => break,
                        Tok::Punct(')' | ']' | '}') => depth -= 1,
                        Tok::Punct(',') if depth == 0 => break,
                        _ => {}
                    }
                    text.push(' ');
                    text.push_str(&tok_text(&t));
                    self.pos += 1;
                }
                return Ok(Py::Opaque(text));
            }
            _ => {}
        }
        if let Some(level) = id.strip_prefix("logging.") {
            return Ok(Py::Level(level.to_string()));
        }
        if self.eat('(') {
            let mut args = Vec::new();
            while !self.eat(')') {
                args.push(self.expr()?);
                if !self.eat(',') {
                    self.expect(')')?;
                    break;
                }
            }
            return Ok(match (id.as_str(), args.as_slice()) {
                ("tempfile.gettempdir", []) => Py::Str("/tmp".into()),
                ("os.path.expanduser", [Py::Str(p)]) => Py::Str(p.clone()),
                ("os.path.join", parts) if parts.iter().all(|p| matches!(p, Py::Str(_))) => {
                    let v: Vec<String> = parts.iter().map(show_plain).collect();
                    Py::Str(v.join("/"))
                }
                _ => Py::Opaque(format!(
                    "{id}({})",
                    args.iter().map(show).collect::<Vec<_>>().join(", ")
                )),
            });
        }
        Ok(Py::Opaque(id))
    }
}

fn tok_text(t: &Tok) -> String {
    match t {
        Tok::Str(s) => format!("{s:?}"),
        Tok::Int(n) => n.to_string(),
        Tok::Float(f) => f.to_string(),
        Tok::Ident(s) => s.clone(),
        Tok::Punct(c) => c.to_string(),
    }
}

fn show_plain(v: &Py) -> String {
    match v {
        Py::Str(s) => s.clone(),
        other => show(other),
    }
}

fn show(v: &Py) -> String {
    match v {
        Py::Str(s) => format!("{s:?}"),
        Py::Int(n) => n.to_string(),
        Py::Float(f) => f.to_string(),
        Py::Bool(b) => if *b { "True" } else { "False" }.into(),
        Py::None => "None".into(),
        Py::List(_) => "[...]".into(),
        Py::Dict(_) => "{...}".into(),
        Py::Level(l) => format!("logging.{l}"),
        Py::Opaque(s) => s.clone(),
    }
}

/// Converts one value; what has no TOML equivalent goes to `notes` under `path`.
fn to_toml(v: &Py, path: &str, notes: &mut Vec<String>) -> Option<Value> {
    Some(match v {
        Py::Str(s) => Value::String(s.clone()),
        Py::Int(n) => Value::Integer(*n),
        Py::Float(f) => Value::Float(*f),
        Py::Bool(b) => Value::Boolean(*b),
        Py::Level(l) => Value::String(l.clone()),
        Py::None => {
            notes.push(format!(
                "{path}: None has no TOML form; left out (default applies)"
            ));
            return None;
        }
        Py::Opaque(s) => {
            notes.push(format!("{path}: `{s}` can't be converted; left out"));
            return None;
        }
        Py::List(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, x)| to_toml(x, &format!("{path}[{i}]"), notes))
                .collect(),
        ),
        Py::Dict(items) => {
            let mut t = Table::new();
            for (k, x) in items {
                let key = match k {
                    Py::Str(s) => s.clone(),
                    Py::Int(n) => n.to_string(),
                    other => {
                        notes.push(format!(
                            "{path}: key {} is not a string; left out",
                            show(other)
                        ));
                        continue;
                    }
                };
                if let Some(val) = to_toml(x, &format!("{path}.{key}"), notes) {
                    t.insert(key, val);
                }
            }
            Value::Table(t)
        }
    })
}

/// The filter name of an old filter entry: a name (`reply`), a module path
/// (`filtres.reply`) or a class path (`filtres.reply.FiltreReply`, `FiltreNouExtern`).
fn filter_name(old: &str) -> Option<&'static str> {
    const NAMES: [(&str, &str, &str); 4] = [
        ("reply", "filtrereply", "reply"),
        ("reply_reobrint", "filtrereplyreobrint", "reply_reobrint"),
        ("nou", "filtrenou", "nou"),
        ("nou_extern", "filtrenouextern", "nou_extern"),
    ];
    let parts: Vec<String> = old
        .trim()
        .split('.')
        .map(|p| p.trim().to_ascii_lowercase())
        .collect();
    let last = parts.last()?;
    // A class name decides; else the module (`filtres.reply`) or the bare name.
    if let Some((_, _, n)) = NAMES.iter().find(|(_, class, _)| class == last) {
        return Some(n);
    }
    let module = match parts.as_slice() {
        [name] => name,
        [pkg, name] if pkg == "filtres" => name,
        [pkg, name, class] if pkg == "filtres" && class.starts_with("filtre") => name,
        _ => return None,
    };
    NAMES
        .iter()
        .find(|(name, _, _)| name == module)
        .map(|(_, _, n)| *n)
}

/// `filtres`: each old entry mapped to a filter name; what cannot be mapped is
/// reported and left out (the order of the rest is kept).
fn map_filters(value: Value, notes: &mut Vec<String>) -> Value {
    let Value::Array(items) = value else {
        return value;
    };
    let mut out = Vec::new();
    for item in items {
        let Value::String(old) = &item else {
            notes.push(format!("filtres: {item} is not a filter name; left out"));
            continue;
        };
        match filter_name(old) {
            Some(name) => {
                if !out.contains(&Value::String(name.to_string())) {
                    out.push(Value::String(name.to_string()));
                }
            }
            None => notes.push(format!(
                "filtres: `{old}` is not a known filter (reply, reply_reobrint, nou, nou_extern); left out"
            )),
        }
    }
    Value::Array(out)
}

/// Converts the text of an old `settings_default.py` (`settings = {...}`).
pub fn import(src: &str) -> Result<Imported, String> {
    let toks = tokenize(src)?;
    let start = toks
        .windows(3)
        .position(|w| {
            w[0].0 == Tok::Ident("settings".into())
                && w[1].0 == Tok::Punct('=')
                && w[2].0 == Tok::Punct('{')
        })
        .ok_or("no `settings = {` dict found")?;
    let mut p = Parser {
        toks,
        pos: start + 2,
    };
    let Py::Dict(items) = p.expr()? else {
        return Err("`settings` is not a dict".into());
    };
    let mut notes = Vec::new();
    let mut table = Table::new();
    for (k, v) in &items {
        let Py::Str(key) = k else {
            notes.push(format!("key {} is not a string; left out", show(k)));
            continue;
        };
        // The old cleaning functions become on/off switches (BEHAVIOUR §7).
        if key.starts_with("netejar_mail_") && !matches!(v, Py::Bool(_)) {
            notes.push(format!(
                "{key}: the Python function `{}` became the switch `{key} = true`; check it",
                show(v)
            ));
            table.insert(key.clone(), Value::Boolean(true));
            continue;
        }
        let Some(mut value) = to_toml(v, key, &mut notes) else {
            continue;
        };
        if key == "filtres" {
            value = map_filters(value, &mut notes);
        }
        let mut probe = Table::new();
        probe.insert(key.clone(), value.clone());
        let text = toml::to_string(&probe).map_err(|e| e.to_string())?;
        if let Err(e) = toml::from_str::<Config>(&text) {
            let msg = e.message().to_string();
            let msg = msg.split(", expected one of").next().unwrap_or(&msg).trim();
            notes.push(format!("{key}: {msg}; left out"));
            continue;
        }
        table.insert(key.clone(), value);
    }
    let mut body = toml::to_string(&table).map_err(|e| e.to_string())?;
    if !body.ends_with('\n') {
        body.push('\n');
    }
    Ok(Imported {
        toml: format!(
            "# Converted by `mailtoticket import-settings` from an old settings_default.py.\n\
             # Check every value; see the README's configuration reference.\n\n{body}"
        ),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_the_python_subset() {
        let src = r#"
import logging, tempfile
def neteja(text):
    return text.replace("a", 'b')  # not part of settings

settings = {
    # credentials
    "username_soa": "usu.soa", 'password_soa': u'se"cret',
    "domini": "12" "34",
    "regex_reply": r".*?R[eEvV]:.*?\[Suport ([\d]+)\]",
    "log_level": logging.DEBUG,
    "log_file": tempfile.gettempdir() + "/mailtoticket.log",
    "notificar_errors": False,
    "filtres": ["reply", "nou",],
    "mails_addicionals": {"a@b.c": "abc", },
    "valors_defecte": [{"order": ["To"], "match": "x@y", "defaults": {"urgencia": "GRAVETAT_ALTA"}}],
    "netejar_mail_nou": neteja,
    "netejar_mail_reply": lambda t: t,
    "LDAP_SERVER_URL": None,
    "cosa_rara": 1,
    "connect_timeout_secs": 5,
}
"#;
        let out = import(src).unwrap();
        let c = Config::from_toml(&out.toml, std::path::Path::new("x")).unwrap();
        assert_eq!(c.password_soa, "se\"cret");
        assert_eq!(c.domini, "1234");
        assert_eq!(c.regex_reply, r".*?R[eEvV]:.*?\[Suport ([\d]+)\]");
        assert_eq!(c.log_level, "DEBUG");
        assert_eq!(c.log_file, "/tmp/mailtoticket.log");
        assert_eq!(c.filtres, ["reply", "nou"]);
        assert_eq!(c.mails_addicionals["a@b.c"], "abc");
        assert_eq!(c.valors_defecte[0].defaults["urgencia"], "GRAVETAT_ALTA");
        assert!(c.netejar_mail_nou && c.netejar_mail_reply);
        assert_eq!(c.connect_timeout_secs, 5);
        let notes = out.notes.join("\n");
        assert!(notes.contains("netejar_mail_nou"), "{notes}");
        assert!(notes.contains("LDAP_SERVER_URL: None"), "{notes}");
        assert!(notes.contains("cosa_rara: unknown field"), "{notes}");
    }

    #[test]
    fn reports_syntax_errors_with_line() {
        let e = import("settings = {\n\"a\": \"x\n}").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(import("x = 1").is_err());
    }
}
