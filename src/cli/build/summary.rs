//! What a build says when it is done: the human summary (on stdout, or
//! stderr when stdout is for `--json`), the loader's reasoning with `-v`,
//! and the warnings, which go into the [`Outcome`] for `main` to print.

use crate::cli::{Outcome, human};
use crate::pipeline::{Built, multi};
use crate::plan::OutputFormat;

use super::Wrote;

/// The build's warnings into `outcome` (unless `--quiet`, which says
/// nothing but errors); an index's name their platform.
pub(super) fn warnings(wrote: &Wrote, outcome: &mut Outcome) {
    match wrote {
        Wrote::One(built) => {
            for w in &built.warnings {
                outcome.warn(w.clone());
            }
        }
        Wrote::Index(b) => {
            for image in &b.images {
                for w in &image.warnings {
                    outcome.warn(format!("{}: {w}", image.platform));
                }
            }
        }
    }
}

/// `-v`: how each library was found, on stderr.
pub(super) fn print_reasoning(built: &Built) {
    for line in &built.reasoning {
        eprintln!("mkimage: {line}");
    }
}

/// The human summary: on stdout, or on stderr when stdout is for
/// `--json`. (Warnings travel in the outcome.)
pub(super) fn print_summary(b: &Built, to_stderr: bool) {
    let mut lines: Vec<String> = b.notes.clone();
    let out = b.output.display();
    lines.push(match b.format {
        OutputFormat::Oci => format!("Wrote {} to {out}", b.references.join(", ")),
        f => format!("Wrote {} to {out} ({})", b.references.join(", "), f.name()),
    });
    lines.push(format!("  digest  {}", b.manifest_digest));
    if let Some((references, digest)) = &b.debug {
        lines.push(format!("  debug   {} {digest}", references.join(", ")));
    }
    lines.push(format!(
        "  size    {} compressed, {} ({})",
        human(b.compressed_size()),
        b.architecture,
        b.layers
            .iter()
            .map(|l| format!("{} {}", l.kind.name(), human(l.size)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    if let Some(reused) = b.cache_reused() {
        lines.push(format!(
            "  cache   {} of {} layers reused{}",
            reused.len(),
            b.layers.len(),
            if reused.is_empty() {
                String::new()
            } else {
                format!(" ({})", reused.join(", "))
            }
        ));
    }
    let reference = &b.references[0];
    let name = reference.rsplit('/').next().unwrap_or(reference);
    lines.push("Run it:".into());
    match b.format {
        OutputFormat::Oci => {
            lines.push(format!("  podman run --rm oci:{out}:{reference}"));
            lines.push(format!(
                "  skopeo copy oci:{out}:{reference} docker-daemon:{name}"
            ));
        }
        OutputFormat::OciArchive => {
            lines.push(format!("  podman run --rm oci-archive:{out}:{reference}"));
            lines.push(format!(
                "  skopeo copy oci-archive:{out}:{reference} docker-daemon:{name}"
            ));
        }
        OutputFormat::DockerArchive => {
            lines.push(format!(
                "  docker load -i {out} && docker run --rm {reference}"
            ));
            lines.push(format!(
                "  podman load -i {out} && podman run --rm {reference}"
            ));
        }
    }
    for line in lines {
        if to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

pub(super) fn print_index_summary(b: &multi::BuiltIndex) {
    let out = b.output.display();
    println!(
        "Wrote {} to {out}: an index of {} platforms",
        b.references.join(", "),
        b.images.len()
    );
    println!("  digest  {}", b.index_digest);
    for image in &b.images {
        println!(
            "  {:<16} {} ({} compressed)",
            image.platform.to_string(),
            image.manifest_digest,
            human(image.compressed_size())
        );
    }
    println!(
        "Copy it: skopeo copy --all oci:{out}:{} docker://REGISTRY/NAME",
        b.references[0]
    );
}
