//! The breadth-first walk over DT_NEEDED (`_dl_map_object_deps`): load
//! order, de-duplication by name, soname and file, and the libraries glibc
//! opens on its own.

use std::collections::{HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use super::search::{Found, Origin, Outcome, Request};
use super::{
    Closure, FoundBy, Input, LoaderAbi, Missing, Object, Reason, ResolveError, Resolver, Searched,
    Suggested,
};
use crate::elf::notes::Priority;

/// Libraries glibc opens without a DT_NEEDED, when libc.so.6 is loaded.
/// (name, why, required)
const GLIBC_COMPANIONS: &[(&str, &str, bool)] = &[
    (
        "libgcc_s.so.1",
        "glibc dlopens it for pthread_cancel, pthread_exit and backtrace",
        true,
    ),
    (
        "libnss_files.so.2",
        "NSS module for 'files' in nsswitch.conf",
        false,
    ),
    (
        "libnss_dns.so.2",
        "NSS module for 'dns' in nsswitch.conf",
        false,
    ),
];

struct Walk {
    objects: Vec<Object>,
    origins: Vec<Origin>,
    missing: Vec<Missing>,
    /// Names (requested names and sonames) of loaded objects.
    names: HashMap<OsString, usize>,
    /// Loaded files by host path: the loader re-uses an object when it
    /// opens the same file under another name.
    files: HashMap<PathBuf, usize>,
    queue: VecDeque<usize>,
}

pub(super) fn resolve(r: &mut Resolver, input: &Input) -> Result<Closure, ResolveError> {
    let host_real = std::fs::canonicalize(&input.host).unwrap_or_else(|_| input.host.clone());
    // Read under the canonical path, which is how a dependency on the same
    // file is cached, so a library that is both is parsed once. An error
    // is read again under the path the user gave, which it then names.
    let info = match r.elf(&host_real) {
        Ok(info) => info,
        Err(_) => r.elf(&input.host).map_err(ResolveError::Input)?,
    };
    let image_dir = input.image.parent().unwrap_or(Path::new("/")).to_path_buf();
    let origin = Origin {
        image: image_dir,
        host: (!input.in_root).then(|| host_real.parent().unwrap_or(Path::new("/")).to_path_buf()),
    };
    let mut w = Walk {
        objects: vec![Object {
            name: input.image.clone().into_os_string(),
            path: input.image.clone(),
            real: input.image.clone(),
            host: host_real.clone(),
            links: Vec::new(),
            in_root: input.in_root,
            reason: Reason::Input,
            needed_by: None,
            info: info.clone(),
            found_by: None,
        }],
        origins: vec![origin],
        missing: Vec::new(),
        names: HashMap::new(),
        files: HashMap::new(),
        queue: VecDeque::from([0]),
    };
    w.files.insert(host_real, 0);
    if let Some(soname) = &info.soname {
        w.names.insert(soname.clone(), 0);
    }
    if info.is_static() {
        return Ok(Closure {
            objects: w.objects,
            missing: w.missing,
            suggested: Vec::new(),
            bad_notes: Vec::new(),
        });
    }
    let mut abi = LoaderAbi::detect(&info.ident, &mut r.root);
    if let Some(interp) = &info.interp {
        abi.add_store_loader_dir(interp);
    }

    // The interpreter is mapped before any DT_NEEDED and answers to its
    // PT_INTERP path and its soname.
    if let Some(interp) = &info.interp {
        let found = match r.root.lookup(interp)? {
            None => Err("the program interpreter (PT_INTERP) does not exist in the root".into()),
            Some(found) => {
                let host = r.root.host(&found.real);
                r.elf(&host)
                    .map(|info| Found {
                        found_by: Some(FoundBy {
                            step: Searched {
                                dir: found.path.parent().unwrap_or(Path::new("/")).to_path_buf(),
                                why: "PT_INTERP".into(),
                            },
                            hwcaps: None,
                            passed: Vec::new(),
                        }),
                        path: found.path,
                        real: found.real,
                        host,
                        links: found.links,
                        info,
                        host_origin: None,
                    })
                    .map_err(|e| e.to_string())
            }
        };
        let name = interp.clone().into_os_string();
        match found {
            Ok(found) => {
                let idx = w.push(name.clone(), found, Reason::Interpreter, 0);
                w.names.insert(name, idx);
            }
            Err(why) => w.missing.push(Missing {
                name,
                needed_by: input.image.clone(),
                searched: Vec::new(),
                rejected: vec![(interp.clone(), why)],
                required: true,
            }),
        }
    }

    w.drain(r, &abi);

    // glibc's own dlopens, as if libc asked (its loader chain applies).
    if r.opts.companions
        && let Some(libc) = w.names.get(OsStr::new("libc.so.6")).copied()
    {
        for (name, why, required) in GLIBC_COMPANIONS {
            let reason = Reason::Companion(why);
            w.request(r, &abi, OsStr::new(name), libc, reason, *required);
        }
        w.drain(r, &abi);
    }
    for name in &input.dlopen {
        w.request(r, &abi, name, 0, Reason::Dlopen, true);
    }
    w.drain(r, &abi);
    let (suggested, bad_notes) = if r.opts.companions {
        w.dlopen_notes(r, &abi)
    } else {
        (Vec::new(), Vec::new())
    };

    Ok(Closure {
        objects: w.objects,
        missing: w.missing,
        suggested,
        bad_notes,
    })
}

impl Walk {
    /// The libraries every object's FDO dlopen notes name (systemd's
    /// `.note.dlopen`), in load order, each with its own closure:
    /// `required` and `recommended` ones are resolved as the object's
    /// DT_NEEDED would be, the first of a feature's alternatives that is
    /// found winning; a required feature none of whose sonames is found is
    /// missing like a DT_NEEDED, a recommended one is a note. `suggested`
    /// ones are only listed.
    fn dlopen_notes(
        &mut self,
        r: &mut Resolver,
        abi: &LoaderAbi,
    ) -> (Vec<Suggested>, Vec<(PathBuf, String)>) {
        let (mut suggested, mut bad) = (Vec::new(), Vec::new());
        let mut i = 0;
        while i < self.objects.len() {
            let info = self.objects[i].info.clone();
            if matches!(self.objects[i].reason, Reason::HwcapsVariant { .. }) {
                i += 1;
                continue;
            }
            if let Some(e) = &info.notes.dlopen_error {
                bad.push((self.objects[i].path.clone(), e.clone()));
            }
            for f in &info.notes.dlopen {
                let feature = f.feature.clone().unwrap_or_else(|| f.soname.join("|"));
                if f.priority == Priority::Suggested {
                    suggested.push(Suggested {
                        feature,
                        sonames: f.soname.clone(),
                        by: self.objects[i].path.clone(),
                    });
                    continue;
                }
                let required = f.priority == Priority::Required;
                // The first alternative found wins; when none is, the
                // first one's report stands for the feature.
                let before = self.missing.len();
                let mut found = false;
                for name in &f.soname {
                    let reason = Reason::DlopenNote {
                        feature: feature.clone(),
                        priority: f.priority.name(),
                    };
                    let n = self.missing.len();
                    self.request(r, abi, OsStr::new(name), i, reason, required);
                    if self.missing.len() == n {
                        found = true;
                        break;
                    }
                }
                self.missing
                    .truncate(if found { before } else { before + 1 });
            }
            self.drain(r, abi);
            i += 1;
        }
        (suggested, bad)
    }

    fn drain(&mut self, r: &mut Resolver, abi: &LoaderAbi) {
        while let Some(i) = self.queue.pop_front() {
            let needed = self.objects[i].info.needed.clone();
            for name in needed {
                self.request(r, abi, &name, i, Reason::Needed, true);
            }
        }
    }

    fn request(
        &mut self,
        r: &mut Resolver,
        abi: &LoaderAbi,
        name: &OsStr,
        by: usize,
        reason: Reason,
        required: bool,
    ) {
        if self.names.contains_key(name) {
            return;
        }
        let outcome = {
            let mut chain = Vec::new();
            let mut at = Some(by);
            while let Some(i) = at {
                chain.push((
                    &*self.objects[i].info,
                    &self.origins[i],
                    self.objects[i].path.as_path(),
                ));
                at = self.objects[i].needed_by;
            }
            let req = Request {
                name,
                chain,
                main_origin: &self.origins[0],
                main: &self.objects[0].info,
            };
            r.find(&req, abi)
        };
        match outcome {
            Outcome::Found(found, variants) => {
                if let Some(&j) = self.files.get(&found.host) {
                    self.names.insert(name.to_os_string(), j);
                    return;
                }
                let idx = self.push(name.to_os_string(), found, reason, by);
                self.names.insert(name.to_os_string(), idx);
                for v in variants {
                    if !self.files.contains_key(&v.host) {
                        self.push(
                            name.to_os_string(),
                            v,
                            Reason::HwcapsVariant { of: idx },
                            by,
                        );
                    }
                }
            }
            Outcome::Missing { searched, rejected } => self.missing.push(Missing {
                name: name.to_os_string(),
                needed_by: self.objects[by].path.clone(),
                searched,
                rejected,
                required,
            }),
        }
    }

    fn push(&mut self, name: OsString, f: Found, reason: Reason, by: usize) -> usize {
        let idx = self.objects.len();
        if !matches!(reason, Reason::HwcapsVariant { .. })
            && let Some(soname) = &f.info.soname
        {
            self.names.entry(soname.clone()).or_insert(idx);
        }
        self.files.insert(f.host.clone(), idx);
        self.origins.push(Origin {
            image: f.path.parent().unwrap_or(Path::new("/")).to_path_buf(),
            host: f.host_origin.clone(),
        });
        self.objects.push(Object {
            name,
            path: f.path,
            real: f.real,
            host: f.host,
            links: f.links,
            in_root: f.host_origin.is_none(),
            reason,
            needed_by: Some(by),
            info: f.info,
            found_by: f.found_by,
        });
        self.queue.push_back(idx);
        idx
    }
}
