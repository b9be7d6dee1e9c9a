//! After the build: the image pushed where `--push` says (with the debug
//! image beside it), each push said in one line.

use crate::cli::push::{print_summary_to_stderr, push_quietly, summary};
use crate::registry::PushReport;

use super::Wrote;
use super::resolve::Job;

/// Pushes what was written, when `--push` asks; the report of the image
/// itself (not of its debug image), for `--json`.
pub(super) fn push(job: &Job, wrote: &Wrote) -> anyhow::Result<Option<PushReport>> {
    let Some((reference, opts)) = &job.push else {
        return Ok(None);
    };
    let (output, references) = match wrote {
        Wrote::One(built) => (&built.output, &built.references),
        Wrote::Index(b) => (&b.output, &b.references),
    };
    let ref_name = references.first().map(String::as_str);
    let report = push_quietly(output, ref_name, reference, opts, job.quiet)?;
    say(job, &report);
    // The debug image goes beside it, as REF's tag + "-debug"; its
    // production layers are already there, so only busybox's is uploaded.
    if let Wrote::One(built) = wrote
        && let Some((references, _)) = &built.debug
    {
        let tag = reference.tag().unwrap_or(crate::reference::DEFAULT_TAG);
        let debug_ref = reference.with_tag(&format!("{tag}{}", crate::pipeline::debug::TAG_SUFFIX));
        let debug_ref_name = references.first().map(String::as_str);
        let debug = push_quietly(output, debug_ref_name, &debug_ref, opts, job.quiet)?;
        say(job, &debug);
    }
    Ok(Some(report))
}

/// `Pushed …`: on stdout, or on stderr when stdout is for `--json`;
/// nothing with `--quiet`.
fn say(job: &Job, report: &PushReport) {
    if job.quiet {
        return;
    }
    if job.json {
        print_summary_to_stderr(report);
    } else {
        println!("{}", summary(report));
    }
}
