//! The files every image gets, following distroless conventions: the
//! users and groups, nsswitch.conf, and the home and temp directories.

use super::{Entry, ImagePath, Tree, TreeError};

/// The non-root user images run as by default; numeric so Kubernetes'
/// runAsNonRoot can verify it without reading /etc/passwd.
pub const NONROOT_UID: u32 = 65532;
pub const DEFAULT_USER: &str = "65532:65532";

pub const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
";

pub const GROUP: &str = "root:x:0:
tty:x:5:
staff:x:50:
nonroot:x:65532:
nobody:x:65534:
";

/// glibc reads this to find users, groups and hosts; `files dns` needs no
/// NSS module beyond what glibc 2.34+ builds in.
pub const NSSWITCH: &str = "passwd: files
group: files
shadow: files
hosts: files dns
networks: files
protocols: files
services: files
ethers: files
rpc: files
";

pub const PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn p(s: &str) -> ImagePath {
    // Constant paths below are absolute and clean.
    ImagePath::new(s).unwrap_or_else(|_| ImagePath::root())
}

/// Adds the standard users, groups and directories to `tree`.
pub fn add_base_files(tree: &mut Tree) -> Result<(), TreeError> {
    tree.insert(p("/etc"), Entry::dir(0o755))?;
    tree.insert(p("/etc/passwd"), Entry::bytes(PASSWD.as_bytes(), 0o644))?;
    tree.insert(p("/etc/group"), Entry::bytes(GROUP.as_bytes(), 0o644))?;
    tree.insert(
        p("/etc/nsswitch.conf"),
        Entry::bytes(NSSWITCH.as_bytes(), 0o644),
    )?;
    tree.insert(p("/root"), Entry::dir(0o700))?;
    tree.insert(p("/home"), Entry::dir(0o755))?;
    tree.insert(
        p("/home/nonroot"),
        Entry::dir(0o700).owned(NONROOT_UID, NONROOT_UID),
    )?;
    tree.insert(p("/tmp"), Entry::dir(0o1777))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::Kind;

    #[test]
    fn base_files_follow_distroless() {
        let mut t = Tree::new();
        add_base_files(&mut t).unwrap();
        let home = t.get(&p("/home/nonroot")).unwrap();
        assert_eq!((home.mode, home.uid, home.gid), (0o700, 65532, 65532));
        assert_eq!(t.get(&p("/tmp")).unwrap().mode, 0o1777);
        assert_eq!(t.get(&p("/root")).unwrap().mode, 0o700);
        match &t.get(&p("/etc/passwd")).unwrap().kind {
            Kind::File { size, .. } => assert_eq!(*size as usize, PASSWD.len()),
            other => panic!("{other:?}"),
        }
        assert_eq!(PASSWD.lines().count(), 3);
    }
}
