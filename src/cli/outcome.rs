//! How a subcommand ends, and the one place that says so: every
//! subcommand returns `anyhow::Result<Outcome>`, and [`finish`] (called by
//! `main` alone) prints the warnings and the error, each as
//! `mkimage: warning: …` / `mkimage: error: …`, and picks the exit status.
//!
//! | status | when                                                       |
//! |--------|------------------------------------------------------------|
//! | 0      | done                                                       |
//! | 1      | a file, image, tag or library asked for is not there ([`NotFound`]) |
//! | 2      | bad input or usage, an I/O or registry failure             |

use std::process::ExitCode;

use super::style;

/// Exit code when a needed file is not found.
pub const EXIT_NOT_FOUND: u8 = 1;
/// Exit code for bad input, bad usage or an I/O failure.
pub const EXIT_ERROR: u8 = 2;

/// What a subcommand has to say: its status, the problems that did not
/// stop it and, when a later step failed after them (a push after a build
/// that warned), that error.
#[derive(Debug, Default)]
#[must_use]
pub struct Outcome {
    pub status: Status,
    /// Printed on stderr after the run's own output, in order.
    pub diagnostics: Vec<Diagnostic>,
    /// Printed last; its exit status wins over `status`.
    error: Option<anyhow::Error>,
}

/// The exit status of a run that was not cut short by an error: `ldd`
/// goes on past a file it cannot read, or a library it cannot find.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    #[default]
    Success,
    NotFound,
    Failed,
}

/// One message for stderr: `mkimage: LEVEL TEXT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub level: Level,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Note,
}

impl Outcome {
    /// Done, nothing to add.
    pub fn success() -> Outcome {
        Outcome::default()
    }

    /// Adds a warning (a problem the run went on past).
    pub fn warn(&mut self, text: impl Into<String>) {
        self.say(Level::Warning, text);
    }

    /// Adds a message at `level` (ldd's per-file errors and notes).
    pub fn say(&mut self, level: Level, text: impl Into<String>) {
        self.diagnostics.push(Diagnostic {
            level,
            text: text.into(),
        });
    }

    /// Raises the status to `status`, never lowers it: the worst one wins.
    pub fn fail(&mut self, status: Status) {
        self.status = self.status.max(status);
    }

    /// This outcome, ended by `result`'s error if it has one: what was
    /// said before the failure is still said.
    pub fn ended_by(mut self, result: anyhow::Result<()>) -> Outcome {
        if let Err(e) = result {
            self.error = Some(e);
        }
        self
    }
}

/// An error whose exit status is 1, "not there", rather than 2: wrap one
/// in it where the subcommand knows (`e.is_not_found()`); its message is
/// the inner error's.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct NotFound(#[from] pub anyhow::Error);

impl NotFound {
    /// `e` as an `anyhow::Error` that exits 1.
    pub fn wrap(e: impl Into<anyhow::Error>) -> anyhow::Error {
        anyhow::Error::new(NotFound(e.into()))
    }
}

/// Prints what `result` carries on stderr and returns its exit status.
/// `main` alone calls it, so every message has one format.
pub fn finish(result: anyhow::Result<Outcome>) -> ExitCode {
    let outcome = result.unwrap_or_else(|e| Outcome::success().ended_by(Err(e)));
    for d in &outcome.diagnostics {
        let label = match d.level {
            Level::Error => style::error(),
            Level::Warning => style::warning(),
            Level::Note => style::note(),
        };
        anstream::eprintln!("mkimage: {label} {}", d.text);
    }
    match &outcome.error {
        // A closed pipe (`mkimage ldd ... | head`) is not an error.
        Some(e) if is_broken_pipe(e) => ExitCode::SUCCESS,
        Some(e) => {
            anstream::eprintln!("mkimage: {} {}", style::error(), message(e));
            ExitCode::from(exit_code(e))
        }
        None => ExitCode::from(match outcome.status {
            Status::Success => 0,
            Status::NotFound => EXIT_NOT_FOUND,
            Status::Failed => EXIT_ERROR,
        }),
    }
}

/// 1 when a [`NotFound`] is in `e`'s chain (under any context), else 2.
fn exit_code(e: &anyhow::Error) -> u8 {
    if e.chain().any(|c| c.is::<NotFound>()) {
        EXIT_NOT_FOUND
    } else {
        EXIT_ERROR
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// An error and its causes on one line, each said once. Many errors
/// quote their cause in their own message ("cannot read X: {source}")
/// and also return it as their `source()`, so printing the chain as is
/// would say the OS error two or three times.
pub fn message(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn each_cause_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read x: {source}")]
        struct Quoting {
            #[source]
            source: std::io::Error,
        }
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let e = anyhow::Error::new(Quoting { source: io }).context("--from-binary x");
        assert_eq!(message(&e), "--from-binary x: cannot read x: No such file");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(message(&plain), "outer: inner");
    }

    #[test]
    fn not_found_exits_1_under_context_and_says_only_its_message() {
        let e = NotFound::wrap(anyhow::anyhow!("app.oci: no such file or directory"));
        assert_eq!(exit_code(&e), EXIT_NOT_FOUND);
        assert_eq!(message(&e), "app.oci: no such file or directory");
        let e = Err::<(), _>(e).context("--diff app.oci").unwrap_err();
        assert_eq!(exit_code(&e), EXIT_NOT_FOUND);
        assert_eq!(
            message(&e),
            "--diff app.oci: app.oci: no such file or directory"
        );
        assert_eq!(exit_code(&anyhow::anyhow!("bad")), EXIT_ERROR);
        let pipe = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&pipe.context("stdout")));
    }

    #[test]
    fn the_worst_status_wins() {
        let mut o = Outcome::success();
        o.fail(Status::Failed);
        o.fail(Status::NotFound);
        assert_eq!(o.status, Status::Failed);
    }
}
