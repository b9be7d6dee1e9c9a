//! glibc's iconv modules for programs that call iconv_open(3): the
//! root's gconv configuration and the modules `--gconv` asks for, with
//! their own libraries (libJIS.so and friends, by `$ORIGIN`), in the
//! libraries layer. glibc opens them from the directory compiled into
//! libc (GCONV_DIR, `/usr/lib/<triplet>/gconv` on Debian) with dlopen, so
//! no DT_NEEDED names them.

use std::path::{Path, PathBuf};

use crate::plan::Gconv;
use crate::resolve::Input;
use crate::rootfs::gconv::{self, CACHE, CONFIG_DIR, Config, MAIN_CONFIG};
use crate::rootfs::{ImagePath, LayerKind};

use super::{ArtifactError, Assembly, MissingPolicy, add_closure};

/// The symbol whose import says a program converts charsets.
const ICONV_OPEN: &str = "iconv_open";

/// Records `image` (whose bytes are at `host`) as an iconv user when it
/// imports `iconv_open`. A file whose symbols cannot be read imports
/// nothing we can know of: the build does not fail for it.
pub fn note_iconv_user(asm: &mut Assembly, host: &Path, image: &Path) {
    if let Ok(names) = crate::elf::read_imports(host)
        && names.iter().any(|n| n == ICONV_OPEN)
    {
        asm.add_iconv_user(image.display().to_string());
    }
}

/// Adds the modules `want` names. `Auto` adds all of them when a program
/// imports iconv_open: which charsets it converts is decided at run time
/// (a file's encoding, a user's argument), and a module that is not there
/// makes iconv_open fail with EINVAL; `--gconv CHARSET,...` narrows it.
/// Libraries that import it (libunistring, for the locale's charset) do
/// not count: in the image's C.UTF-8 locale they convert from UTF-8,
/// which libc does itself.
pub fn add_gconv(asm: &mut Assembly, want: &Gconv) -> Result<(), ArtifactError> {
    let (charsets, why) = match want {
        Gconv::None => return Ok(()),
        Gconv::Auto if asm.iconv_users().is_empty() => return Ok(()),
        Gconv::Auto => (
            None,
            format!(
                "iconv module: {} imports iconv_open (--gconv auto; narrow it with --gconv CHARSET,...)",
                asm.iconv_users().join(", ")
            ),
        ),
        Gconv::All => (None, "iconv module (--gconv all)".to_string()),
        Gconv::Charsets(c) => (Some(c), format!("iconv module (--gconv {})", c.join(","))),
    };
    let Some(arch) = asm.arch() else {
        return Err(ArtifactError::invalid(
            "--gconv",
            "the image holds no glibc program to convert charsets",
        ));
    };
    let dir = PathBuf::from(format!("/usr/lib/{}/gconv", arch.triplet()));
    let root = asm.resolver.root();
    let Some(found) = root
        .lookup_dir(&dir)
        .map_err(crate::resolve::ResolveError::from)?
    else {
        let msg = format!(
            "the root {} has no {} (glibc's iconv modules): iconv_open will fail for every charset but UTF-8, UCS-2/4 and ASCII",
            root.dir().display(),
            dir.display()
        );
        if *want == Gconv::Auto {
            asm.warn(format!("{msg} [{why}]"));
            return Ok(());
        }
        return Err(ArtifactError::invalid("--gconv", msg));
    };
    let image_dir = found.real.clone();
    let host_dir = root.host(&image_dir);

    // The configuration, as gconv_conf.c reads it: the main file, then
    // gconv-modules.d/*.conf in name order; and iconvconfig's cache.
    let mut config_files = vec![MAIN_CONFIG.to_string()];
    let mut confs = list(&host_dir.join(CONFIG_DIR))?;
    confs.retain(|n| n.ends_with(".conf"));
    config_files.extend(confs.into_iter().map(|n| format!("{CONFIG_DIR}/{n}")));
    if host_dir.join(CACHE).is_file() {
        config_files.push(CACHE.to_string());
    }
    let mut config = Config::default();
    for name in &config_files {
        let host = host_dir.join(name);
        if !host.is_file() {
            continue;
        }
        if name != CACHE {
            let text = std::fs::read(&host).map_err(|e| ArtifactError::io(&host, e))?;
            config.add(&String::from_utf8_lossy(&text));
        }
        let image = ImagePath::new(image_dir.join(name))?;
        asm.add_host(
            LayerKind::Libs,
            &host,
            image,
            format!("iconv configuration [{why}]"),
        )?;
    }

    let modules: Vec<String> = match charsets {
        Some(c) => config
            .modules_for(c)
            .map_err(|e| ArtifactError::invalid("--gconv", e.to_string()))?
            .iter()
            .map(|m| gconv::module_file(m))
            .collect(),
        None => list(&host_dir)?
            .into_iter()
            .filter(|n| n.ends_with(".so"))
            .collect(),
    };
    for file in modules {
        let image = if file.starts_with('/') {
            PathBuf::from(&file)
        } else {
            image_dir.join(&file)
        };
        add_module(asm, &image, &why)?;
    }
    Ok(())
}

/// One module (or library of the gconv directory) with its closure.
fn add_module(asm: &mut Assembly, image: &Path, why: &str) -> Result<(), ArtifactError> {
    let root = asm.resolver.root();
    let Some(found) = root
        .lookup(image)
        .map_err(crate::resolve::ResolveError::from)?
    else {
        return Err(ArtifactError::invalid(
            image.display(),
            format!(
                "gconv-modules names this iconv module, but the root {} has no such file",
                root.dir().display()
            ),
        ));
    };
    let host = root.host(&found.real);
    let input = Input::in_root(&found.real, asm.resolver.root());
    let closure = asm.resolver.resolve(&input)?;
    asm.add_links(
        LayerKind::Libs,
        &found.links,
        &format!("symlink to {why}"),
        None,
    )?;
    asm.add_host(LayerKind::Libs, &host, ImagePath::new(&found.real)?, why)?;
    add_closure(asm, &closure, LayerKind::Libs, why, MissingPolicy::Error)
}

/// The names in a host directory, sorted; none when it does not exist.
fn list(dir: &Path) -> Result<Vec<String>, ArtifactError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ArtifactError::io(dir, e)),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| ArtifactError::io(dir, e))?;
        out.push(e.file_name().to_string_lossy().into_owned());
    }
    out.sort();
    Ok(out)
}
