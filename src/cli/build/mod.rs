//! The main command, `mkimage --from-binary ...`, in steps of one file
//! each, as ripgrep turns its `LowArgs` into `HiArgs`:
//!
//! 1. [`args`]: the flags as clap parses them, and [`check`]: what of
//!    them needs no file system, environment or platform, checked alone
//!    (with [`flags`]' parsers of single values); no side effects;
//! 2. [`resolve`]: flags, files and environment into a [`resolve::Job`],
//!    the [`BuildPlan`](crate::plan::BuildPlan)s the library takes and
//!    where the result goes; every input error stops the run here;
//! 3. [`run`]: the build, with a spinner;
//! 4. [`summary`] says what was written (warnings into the [`Outcome`]),
//!    then the digest file, [`publish`]'s push and `--json`.

mod args;
mod check;
mod flags;
mod publish;
mod resolve;
mod summary;

pub use self::args::BuildArgs;

use crate::cli::{NotFound, Outcome, human, output, spinner};
use crate::digest::Digest;
use crate::pipeline::{Built, Event, build, multi};

use self::resolve::Job;

/// Resolves, builds, then reports and publishes. What fails after the
/// build ends the outcome without taking its warnings away.
pub fn run(args: BuildArgs) -> anyhow::Result<Outcome> {
    let job = resolve::job(&args)?;
    let wrote = write(&job)?;
    let mut outcome = Outcome::success();
    if !job.quiet {
        summary::warnings(&wrote, &mut outcome);
    }
    Ok(outcome.ended_by(report(&job, &wrote)))
}

/// What `build` wrote: one image, or an index of one per platform.
pub(super) enum Wrote {
    One(Box<Built>),
    Index(multi::BuiltIndex),
}

impl Wrote {
    /// What `--digest-file` holds: the manifest's or the index's digest.
    fn digest(&self) -> Digest {
        match self {
            Wrote::One(built) => built.manifest_digest,
            Wrote::Index(b) => b.index_digest,
        }
    }
}

/// Builds the job's plans (an index when there are several), its
/// progress on a spinner.
fn write(job: &Job) -> anyhow::Result<Wrote> {
    let bar = spinner(job.quiet, "", "resolving");
    let on_event = |e: Event| match e {
        Event::Resolved { files, bytes } => {
            bar.set_message(format!("{files} files, {} to pack", human(bytes)))
        }
        Event::LayerStart { layer, bytes } => {
            bar.set_message(format!("writing layer {layer} ({})", human(bytes)))
        }
        Event::LayerDone => {}
        Event::Archive { format } => bar.set_message(format!("writing the {}", format.name())),
    };
    let result = match job.plans.as_slice() {
        [plan] => build(plan, &on_event).map(|b| Wrote::One(Box::new(b))),
        many => multi::build_index(many, &on_event).map(Wrote::Index),
    };
    bar.finish_and_clear();
    result.map_err(|e| {
        if e.is_not_found() {
            NotFound::wrap(e)
        } else {
            e.into()
        }
    })
}

/// `-v`'s reasoning, the digest file, the summary, the push, `--json`,
/// in that order.
fn report(job: &Job, wrote: &Wrote) -> anyhow::Result<()> {
    if job.verbose
        && let Wrote::One(built) = wrote
    {
        summary::print_reasoning(built);
    }
    if let Some(f) = &job.digest_file {
        output::write_digest_file(f, &wrote.digest().to_string())?;
    }
    if !job.quiet {
        match wrote {
            Wrote::One(built) => summary::print_summary(built, job.json),
            Wrote::Index(b) => summary::print_index_summary(b),
        }
    }
    let pushed = publish::push(job, wrote)?;
    if job.json
        && let Wrote::One(built) = wrote
    {
        let mut s = output::Summary::of_build(built);
        if let Some(report) = &pushed {
            s.set_pushed(report);
        }
        s.print()?;
    }
    Ok(())
}
