//! The one rule for what a referrer is (OCI 1.1, image-spec manifest.md
//! "Guidelines for Artifact Usage", distribution-spec "Listing
//! Referrers"): an artifact manifest, listed under an image, whose
//! `subject` is that image when the list is not the image's own, whose
//! artifact type says what it holds, and whose first layer is the
//! artifact. Every list of referrers is read through [`referrer`]: a
//! layout's referrers index (`oci::referrers`), its other `index.json`
//! entries, a registry's referrers API or tag schema.

use oci_spec::image::{Descriptor, ImageManifest};

use crate::digest::Digest;

/// An artifact attached to an image, as a list of referrers names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referrer {
    /// What it holds: the manifest's `artifactType`, else the listing's.
    pub artifact_type: String,
    /// The artifact manifest, as the list describes it.
    pub manifest: Descriptor,
    /// Its one blob.
    pub blob: Descriptor,
}

/// What the artifact manifest `manifest`, listed as `listed`, attaches;
/// `None` when it is no referrer. `subject` is the image it must be
/// about, for a list that is not the image's own (`index.json`, whose
/// other entries are other images; a registry's answer, which a registry
/// may get wrong); a list the image names is taken as it is.
pub fn referrer(
    listed: &Descriptor,
    manifest: &ImageManifest,
    subject: Option<&Digest>,
) -> Option<Referrer> {
    if let Some(subject) = subject
        && manifest.subject().as_ref().map(|s| s.digest().to_string()) != Some(subject.to_string())
    {
        return None;
    }
    let artifact_type = manifest
        .artifact_type()
        .as_ref()
        .or(listed.artifact_type().as_ref())
        .map(ToString::to_string)?;
    let blob = manifest.layers().first()?;
    Some(Referrer {
        artifact_type,
        manifest: listed.clone(),
        blob: blob.clone(),
    })
}

#[cfg(test)]
mod tests {
    use oci_spec::image::MediaType;

    use super::*;
    use crate::oci::{oci_digest, referrers::artifact_manifest};

    fn descriptor(media_type: MediaType, byte: u8) -> Descriptor {
        Descriptor::new(
            media_type,
            10,
            oci_digest(&Digest::from_bytes([byte; 32])).unwrap(),
        )
    }

    #[test]
    fn a_referrer_is_typed_has_a_blob_and_is_about_its_subject() {
        let image = descriptor(MediaType::ImageManifest, 1);
        let other = Digest::from_bytes([9; 32]);
        let blob = descriptor(MediaType::Other("a/x".into()), 2);
        let listed = descriptor(MediaType::ImageManifest, 3);
        let m = artifact_manifest(&image, "a/x", &blob).unwrap();
        let subject = Digest::from_bytes([1; 32]);

        let found = referrer(&listed, &m, Some(&subject)).unwrap();
        assert_eq!((found.artifact_type.as_str(), &found.blob), ("a/x", &blob));
        assert_eq!(found.manifest, listed);
        // Of another image: not in a list that is not its subject's own.
        assert_eq!(referrer(&listed, &m, Some(&other)), None);
        assert!(referrer(&listed, &m, None).is_some());

        // The listing's artifact type stands in for the manifest's.
        let mut untyped = m.clone();
        untyped.set_artifact_type(None);
        assert_eq!(referrer(&listed, &untyped, None), None);
        let mut typed = listed.clone();
        typed.set_artifact_type(Some(MediaType::Other("b/x".into())));
        assert_eq!(
            referrer(&typed, &untyped, None).map(|r| r.artifact_type),
            Some("b/x".to_owned())
        );

        let mut empty = m;
        empty.set_layers(Vec::new());
        assert_eq!(referrer(&listed, &empty, None), None);
    }
}
