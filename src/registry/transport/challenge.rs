//! `WWW-Authenticate` (RFC 7235 section 4.1), for the schemes registries
//! use: Basic, and the Bearer of docker's token spec.
//!
//! Not the `www-authenticate` crate: it is built on hyper 0.10's header
//! types (a second HTTP stack beside ureq) and unmaintained since 2021;
//! this parser is a hundred lines, and fuzzed (fuzz/ www_authenticate).

use std::collections::HashMap;

use super::http::Response;

/// A parsed `WWW-Authenticate` challenge (RFC 7235), for the schemes
/// registries use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    /// docker's token spec: get a token from `realm` for `service` and
    /// `scope`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value, which may hold several challenges
/// (`Basic realm="x", Bearer realm="y",service="z"`); unknown schemes are
/// skipped.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut p = Cursor { s: header, i: 0 };
    let mut out = Vec::new();
    loop {
        p.skip(|c| c == ',' || c.is_whitespace());
        let scheme = p.token();
        if scheme.is_empty() {
            // Garbage: skip a character so we always move on.
            if p.next().is_none() {
                break;
            }
            continue;
        }
        let mut params: HashMap<String, String> = HashMap::new();
        loop {
            p.skip(|c| c == ',' || c.is_whitespace());
            let save = p.i;
            let key = p.token();
            p.skip(char::is_whitespace);
            if key.is_empty() || !p.eat('=') {
                // A token not followed by '=' starts the next challenge.
                p.i = save;
                break;
            }
            p.skip(char::is_whitespace);
            let value = p.value();
            params.insert(key.to_ascii_lowercase(), value);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            out.push(Challenge::Basic);
        } else if scheme.eq_ignore_ascii_case("bearer")
            && let Some(realm) = params.remove("realm")
        {
            out.push(Challenge::Bearer {
                realm,
                service: params.remove("service"),
                scope: params.remove("scope"),
            });
        }
    }
    out
}

struct Cursor<'a> {
    s: &'a str,
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.i..].chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, want: char) -> bool {
        if self.peek() == Some(want) {
            self.i += want.len_utf8();
            true
        } else {
            false
        }
    }

    fn skip(&mut self, f: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&f) {
            self.next();
        }
    }

    fn token(&mut self) -> String {
        let start = self.i;
        self.skip(|c| !(c.is_whitespace() || matches!(c, ',' | '=' | '"')));
        self.s[start..self.i].to_owned()
    }

    /// A token or a quoted-string with backslash escapes.
    fn value(&mut self) -> String {
        if !self.eat('"') {
            return self.token();
        }
        let mut out = String::new();
        while let Some(c) = self.next() {
            match c {
                '"' => break,
                '\\' => out.extend(self.next()),
                c => out.push(c),
            }
        }
        out
    }
}

/// The challenge we can answer best among a response's: Bearer over Basic.
pub(super) fn challenge_of(resp: &Response) -> Option<Challenge> {
    let all: Vec<Challenge> = resp
        .headers_all("www-authenticate")
        .flat_map(parse_challenges)
        .collect();
    all.iter()
        .find(|c| matches!(c, Challenge::Bearer { .. }))
        .or(all.first())
        .cloned()
}
