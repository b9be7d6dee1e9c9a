//! The files every image gets, following distroless conventions: the
//! users and groups, nsswitch.conf, and the home and temp directories.

use super::{Entry, ImagePath, RootfsError, Tree, TreeError};

/// The non-root user images run as by default; numeric so Kubernetes'
/// runAsNonRoot can verify it without reading /etc/passwd.
pub const NONROOT_UID: u32 = 65532;
pub const DEFAULT_USER: &str = "65532:65532";

/// The largest uid or gid accepted: Linux's are 32-bit, but Kubernetes,
/// Docker and the OCI runtimes treat them as signed 32-bit numbers.
pub const MAX_ID: u32 = i32::MAX as u32;

/// Which user an image runs as (`--user`), as given: each part a number
/// or a name, the names looked up in the image's `/etc/passwd` and
/// `/etc/group` once the image's files are known ([`resolve_user`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserSpec {
    pub user: Id,
    pub group: Option<Id>,
    /// As the user typed it, for messages.
    pub given: String,
}

/// A uid or gid, or a name for one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Id {
    Num(u32),
    Name(String),
}

impl UserSpec {
    /// `USER[:GROUP]`, each a number (0 to [`MAX_ID`]) or a name as
    /// useradd(8) allows (`[a-z_][a-z0-9_-]*`, at most 32 characters).
    pub fn parse(s: &str) -> Result<UserSpec, String> {
        let (user, group) = match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s, None),
        };
        let id = |part: &str, what: &str| -> Result<Id, String> {
            if part.is_empty() {
                return Err(format!(
                    "the {what} is empty; expected UID[:GID] or NAME[:GROUP]"
                ));
            }
            if part.bytes().all(|b| b.is_ascii_digit()) {
                return match part.parse::<u32>() {
                    Ok(n) if n <= MAX_ID => Ok(Id::Num(n)),
                    _ => Err(format!("{what} {part} is out of range (0 to {MAX_ID})")),
                };
            }
            let mut bytes = part.bytes();
            let first_ok = bytes
                .next()
                .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
            let rest_ok = bytes
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
            if first_ok && rest_ok && part.len() <= 32 {
                Ok(Id::Name(part.to_owned()))
            } else {
                Err(format!(
                    "{what} {part:?} is neither a number nor a user or group name"
                ))
            }
        };
        let user = id(user, "user")?;
        let group = match group {
            None => None,
            Some(g) if g.contains(':') => {
                return Err("expected UID[:GID] or NAME[:GROUP], with one ':'".into());
            }
            Some(g) => Some(id(g, "group")?),
        };
        Ok(UserSpec {
            user,
            group,
            given: s.to_owned(),
        })
    }
}

/// A user as the config names it: numbers only, so that Kubernetes'
/// runAsNonRoot can check it without reading the image's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: Option<u32>,
}

impl std::fmt::Display for RunAs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.gid {
            Some(g) => write!(f, "{}:{g}", self.uid),
            None => write!(f, "{}", self.uid),
        }
    }
}

/// Resolves the names of `spec` in `passwd` and `group` (the texts of
/// the image's files). A user name brings its primary group unless a
/// group is given.
pub fn resolve_user(spec: &UserSpec, passwd: &str, group: &str) -> Result<RunAs, RootfsError> {
    // name:password:id:... lines, as passwd(5) and group(5) lay them out.
    let table = |text: &str| -> Vec<(String, u32, Option<u32>)> {
        text.lines()
            .filter_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?.to_owned();
                let id = f.nth(1)?.parse().ok()?;
                let gid = f.next().and_then(|g| g.parse().ok());
                Some((name, id, gid))
            })
            .collect()
    };
    let unknown =
        |what, name: &str, file, rows: &[(String, u32, Option<u32>)]| RootfsError::UnknownUser {
            spec: spec.given.clone(),
            what,
            name: name.to_owned(),
            file,
            known: rows
                .iter()
                .map(|r| r.0.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        };
    let users = table(passwd);
    let (uid, primary) = match &spec.user {
        Id::Num(n) => (*n, None),
        Id::Name(name) => match users.iter().find(|r| &r.0 == name) {
            Some((_, uid, gid)) => (*uid, *gid),
            None => return Err(unknown("user", name, "/etc/passwd", &users)),
        },
    };
    let gid = match &spec.group {
        None => primary,
        Some(Id::Num(n)) => Some(*n),
        Some(Id::Name(name)) => {
            let groups = table(group);
            match groups.iter().find(|r| &r.0 == name) {
                Some((_, gid, _)) => Some(*gid),
                None => return Err(unknown("group", name, "/etc/group", &groups)),
            }
        }
    };
    Ok(RunAs { uid, gid })
}

pub const PASSWD_PATH: &str = "/etc/passwd";
pub const GROUP_PATH: &str = "/etc/group";

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
    tree.insert(p(PASSWD_PATH), Entry::bytes(PASSWD.as_bytes(), 0o644))?;
    tree.insert(p(GROUP_PATH), Entry::bytes(GROUP.as_bytes(), 0o644))?;
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

    #[test]
    fn users_are_checked_then_resolved_in_the_image_files() {
        let resolved = |s: &str| {
            UserSpec::parse(s)
                .map_err(|e| e.to_string())
                .and_then(|spec| resolve_user(&spec, PASSWD, GROUP).map_err(|e| e.to_string()))
                .map(|r| r.to_string())
        };
        let ok = [
            ("65532:65532", "65532:65532"),
            ("1000", "1000"),
            ("0:0", "0:0"),
            ("2147483647", "2147483647"),
            ("nonroot", "65532:65532"),
            ("nobody", "65534:65534"),
            ("root", "0:0"),
            ("nonroot:tty", "65532:5"),
            ("1000:staff", "1000:50"),
            ("nobody:7", "65534:7"),
        ];
        for (given, want) in ok {
            assert_eq!(resolved(given).as_deref(), Ok(want), "{given}");
        }
        let bad = [
            (":", "user is empty"),
            ("", "user is empty"),
            ("1:", "group is empty"),
            (":1", "user is empty"),
            ("1:2:3", "one ':'"),
            ("99999999999", "out of range"),
            ("2147483648", "out of range"),
            ("abc", "\"abc\" is not in the image's /etc/passwd"),
            (
                "nonroot:wheel",
                "group \"wheel\" is not in the image's /etc/group",
            ),
            ("Root", "neither a number"),
            ("a b", "neither a number"),
            ("-1", "neither a number"),
        ];
        for (given, want) in bad {
            let err = resolved(given).expect_err(given);
            assert!(err.contains(want), "{given}: {err}");
        }
    }
}
