//! Plain aligned tables.

/// Renders rows under a header, columns padded to their widest cell.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                // Padded by hand: `format!`'s width takes at most u16::MAX, and cells hold
                // whatever the configuration says.
                s.push_str(c);
                let pad = widths[i].saturating_sub(c.chars().count()) + 2;
                s.extend(std::iter::repeat_n(' ', pad));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_columns_and_takes_any_width() {
        let rows = vec![vec!["950".to_string(), "api".to_string()]];
        assert_eq!(
            super::render(&["ID", "NAME"], &rows),
            "ID   NAME\n950  api\n"
        );
        let long = "x".repeat(70_000);
        let rows = vec![vec![long.clone(), "y".to_string()]];
        assert!(super::render(&["A", "B"], &rows).contains(&long));
    }
}
