use crate::cli::InitArgs;
use phoenix::exit::Status;
use phoenix::ui::out;
use phoenix::Result;

pub fn run(a: &InitArgs) -> Result<Status> {
    for p in phoenix::ops::init::scaffold(&a.dir, a.force)? {
        out::stdout(&format!("wrote {}\n", p.display()));
    }
    let dir = a.dir.display();
    out::stdout(&format!("next: edit {dir}/phoenix_lxc_configs.json, then `phoenix validate --config-dir {dir}` and `phoenix plan --all --config-dir {dir}`\n"));
    Ok(Status::Success)
}
