//! `mkimage profiles [NAME]`: lists the built-in runtime profiles, or
//! prints one (a starting point for a profile file of your own).

use crate::profile::{BUILTIN, load};

#[derive(Debug, clap::Args)]
pub struct ProfilesArgs {
    /// Print this profile's TOML
    name: Option<String>,
}

pub fn run(args: ProfilesArgs) -> anyhow::Result<super::Outcome> {
    match args.name {
        Some(name) => {
            load(&name)?;
            let text = BUILTIN
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| *t)
                .unwrap_or_default();
            print!("{text}");
        }
        None => {
            for (name, _) in BUILTIN {
                println!("{name:8} {}", load(name)?.description);
            }
            println!(
                "\nUse with --profile NAME, or --profile FILE.toml for your own (see `mkimage profiles NAME`)."
            );
        }
    }
    Ok(super::Outcome::success())
}
