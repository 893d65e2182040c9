//! Upstream verbs whose meaning Phoenix does not share: each says what to do instead.

use phoenix::exit::Status;
use phoenix::{Error, Result};

/// `phoenix sync ...` of the bash tool.
pub fn sync() -> Result<Status> {
    Err(Error::usage(
        "`sync` (upstream's Portainer stack deployment) is not part of Phoenix: deploy stacks with \
         Portainer or `docker compose` inside the Docker guest (a feature can do it); Phoenix reads \
         phoenix_stacks_config.json and the VMs' docker_stacks only to validate them and to open \
         their firewall rules",
    ))
}

/// `phoenix swarm ...` of upstream's rootesting branch.
pub fn swarm() -> Result<Status> {
    Err(Error::usage(
        "`swarm` (Docker Swarm on the VMs, upstream's rootesting branch) is not part of Phoenix: \
         run `docker swarm init`/`join` from a feature or an application script of the Docker \
         guests; Phoenix orders them with `dependencies`",
    ))
}
