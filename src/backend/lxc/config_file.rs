//! Editing an LXC container config file. Each [`Setting`](super::Setting) owns a section
//! delimited by `# phoenix:begin NAME` / `# phoenix:end NAME` comments; a section is replaced as a
//! whole, so what the configuration no longer asks for disappears with it. (`lxc-copy` keeps
//! comments and lines in place.) Keys that `lxc-copy` rewrites and moves (`lxc.uts.name`,
//! `lxc.rootfs.path`) are owned by key instead, wherever they stand.

/// The lines of one section, `None` when the file has no such section.
pub fn section(text: &str, name: &str) -> Option<Vec<String>> {
    let begin = format!("# phoenix:begin {name}");
    let end = format!("# phoenix:end {name}");
    let mut lines = text.lines();
    lines.by_ref().find(|l| l.trim() == begin)?;
    Some(
        lines
            .take_while(|l| l.trim() != end)
            .map(|l| l.trim().to_string())
            .collect(),
    )
}

/// `text` with section `name` holding exactly `body` (removed when `body` is empty).
pub fn with_section(text: &str, name: &str, body: &[String]) -> String {
    let begin = format!("# phoenix:begin {name}");
    let end = format!("# phoenix:end {name}");
    let mut out = String::with_capacity(text.len() + 256);
    let mut inside = false;
    let mut placed = false;
    let block = |out: &mut String| {
        if !body.is_empty() {
            out.push_str(&begin);
            out.push('\n');
            for l in body {
                out.push_str(l);
                out.push('\n');
            }
            out.push_str(&end);
            out.push('\n');
        }
    };
    for line in text.lines() {
        if line.trim() == begin {
            inside = true;
            if !placed {
                block(&mut out);
                placed = true;
            }
            continue;
        }
        if inside {
            if line.trim() == end {
                inside = false;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !placed {
        block(&mut out);
    }
    out
}

/// Values of `key` anywhere in the file (`key = value`).
pub fn values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
        .collect()
}

/// `text` with every `key = ...` line replaced by one `key = value` line (at the end).
pub fn with_key(text: &str, key: &str, value: &str) -> String {
    let mut out: String = text
        .lines()
        .filter(|l| l.split_once('=').is_none_or(|(k, _)| k.trim() != key))
        .flat_map(|l| [l, "\n"])
        .collect();
    out.push_str(&format!("{key} = {value}\n"));
    out
}

/// Normalises a raw option (`key=value`, `key: value`, `key = value`) to `key = value`.
pub fn normalise_option(raw: &str) -> String {
    let split = raw.find(['=', ':']);
    match split {
        Some(i) => format!("{} = {}", raw[..i].trim(), raw[i + 1..].trim()),
        None => raw.trim().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_replaced_and_removed() {
        let text = "lxc.arch = linux64\n# phoenix:begin gpu\nlxc.mount.entry = /dev/nvidia1 dev/nvidia1 none bind,optional,create=file\n# phoenix:end gpu\nlxc.uts.name = 950\n";
        assert_eq!(section(text, "gpu").unwrap().len(), 1);
        assert_eq!(section(text, "network"), None);
        let t2 = with_section(text, "gpu", &["a = 1".to_string()]);
        assert_eq!(section(&t2, "gpu").unwrap(), ["a = 1"]);
        assert!(t2.starts_with("lxc.arch = linux64\n# phoenix:begin gpu\na = 1\n"));
        let t3 = with_section(&t2, "gpu", &[]);
        assert_eq!(t3, "lxc.arch = linux64\nlxc.uts.name = 950\n");
        let t4 = with_section(&t3, "net", &["b = 2".to_string()]);
        assert!(t4.ends_with("# phoenix:begin net\nb = 2\n# phoenix:end net\n"));
    }

    #[test]
    fn keys_anywhere() {
        let text = "lxc.uts.name = 901\nx = 1\n";
        assert_eq!(values(text, "lxc.uts.name"), ["901"]);
        let t = with_key(text, "lxc.uts.name", "phoenix-api");
        assert_eq!(t, "x = 1\nlxc.uts.name = phoenix-api\n");
    }

    #[test]
    fn option_syntaxes() {
        assert_eq!(
            normalise_option("lxc.apparmor.profile=unconfined"),
            "lxc.apparmor.profile = unconfined"
        );
        assert_eq!(
            normalise_option("lxc.cap.drop: sys_time"),
            "lxc.cap.drop = sys_time"
        );
        assert_eq!(
            normalise_option("lxc.mount.auto = proc:rw sys:rw"),
            "lxc.mount.auto = proc:rw sys:rw"
        );
    }
}
