//! Canonical JSON: the one serialiser for every blob mkimage writes (config,
//! manifest, index.json), so that the same image always has the same digests.

use serde::Serialize;

use super::OciError;

/// Serialises `value` with object keys sorted (bytewise) at every level and
/// no insignificant whitespace.
///
/// oci-spec keeps annotations, labels and exposed ports in `HashMap`s, whose
/// iteration order changes from run to run. Going through
/// `serde_json::Value` re-sorts them: without serde_json's `preserve_order`
/// feature its `Map` is a `BTreeMap`. (The `map_is_sorted` test fails if some
/// dependency ever switches that feature on.)
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, OciError> {
    let value = serde_json::to_value(value).map_err(|source| OciError::Serialize { source })?;
    serde_json::to_vec(&value).map_err(|source| OciError::Serialize { source })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn map_is_sorted() {
        // Enough keys that a HashMap's random order is, in practice, never
        // already sorted (the chance is 1 in 200!).
        let map: HashMap<String, u32> = (0..200).map(|i| (format!("k{i:03}"), i)).collect();
        let json = canonical_json(&map).expect("serialise");
        let expected: String = (0..200)
            .map(|i| format!("\"k{i:03}\":{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            String::from_utf8(json).expect("utf-8"),
            format!("{{{expected}}}")
        );
    }

    #[test]
    fn nested_keys_sorted_and_no_whitespace() {
        #[derive(Serialize)]
        struct Outer {
            zeta: HashMap<&'static str, Vec<HashMap<&'static str, &'static str>>>,
            alpha: Option<u8>,
            #[serde(rename = "Mid")]
            mid: &'static str,
        }
        let inner: HashMap<_, _> = [("y", "1"), ("b", "2"), ("B", "3"), ("é", "4")].into();
        let value = Outer {
            zeta: [("q", vec![inner.clone()]), ("a", vec![])].into(),
            alpha: None,
            mid: "a b\n\"c\"",
        };
        let json = canonical_json(&value).expect("serialise");
        // Bytewise order: uppercase before lowercase, multi-byte UTF-8 last.
        assert_eq!(
            std::str::from_utf8(&json).expect("utf-8"),
            r#"{"Mid":"a b\n\"c\"","alpha":null,"zeta":{"a":[],"q":[{"B":"3","b":"2","y":"1","é":"4"}]}}"#
        );
    }

    #[test]
    fn bytes_are_stable() {
        let a: HashMap<String, String> = (0..50).map(|i| (format!("{i}"), "v".repeat(i))).collect();
        let first = canonical_json(&a).expect("serialise");
        for _ in 0..5 {
            // A fresh HashMap gets a fresh random hasher, so a new order.
            let b: HashMap<String, String> = a.clone().into_iter().collect();
            assert_eq!(canonical_json(&b).expect("serialise"), first);
        }
    }
}
