use crate::cli::ManpagesArgs;
use phoenix::exit::Status;
use phoenix::ui::out;
use phoenix::{Error, Result};
use std::path::Path;

/// Writes `phoenix.1` and one `phoenix-VERB.1` per verb (`phoenix-state-show.1` for nested ones),
/// generated from the command-line definitions, so they never disagree with `--help`.
pub fn run(a: &ManpagesArgs) -> Result<Status> {
    std::fs::create_dir_all(&a.dir).map_err(|e| io_error(&a.dir, e))?;
    let cmd = crate::cli::command();
    write_page(&cmd, "phoenix".to_string(), &a.dir)?;
    Ok(Status::Success)
}

fn write_page(cmd: &clap::Command, name: String, dir: &Path) -> Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(
        cmd.clone()
            .display_name(name.clone())
            .bin_name(name.replace('-', " ")),
    )
    .render(&mut page)
    .map_err(|e| io_error(&path, e))?;
    std::fs::write(&path, page).map_err(|e| io_error(&path, e))?;
    out::stdout(&format!("wrote {}\n", path.display()));
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_page(sub, format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::usage(format!("{}: {e}", path.display()))
}
