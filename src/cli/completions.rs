//! `mkimage completions SHELL`: the shell's completion script, generated
//! from the same clap definitions that parse the arguments, so it never
//! falls behind a flag.

use std::io::{self, Write};

use clap::CommandFactory;
use clap_complete::Shell;

const EXAMPLES: &str = "Examples:
  mkimage completions bash > /etc/bash_completion.d/mkimage
  mkimage completions bash > ~/.local/share/bash-completion/completions/mkimage
  mkimage completions zsh > ~/.zfunc/_mkimage      # with fpath+=(~/.zfunc) before compinit
  mkimage completions fish > ~/.config/fish/completions/mkimage.fish";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<super::Outcome> {
    let mut cmd = super::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "mkimage", &mut script);
    let mut out = io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(super::Outcome::success())
}
