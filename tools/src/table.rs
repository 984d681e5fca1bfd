//! Tables on stdout through one style: Markdown pipes, so a table reads the same in a
//! terminal and pasted into the README, and its widths follow the longest cell.

use comfy_table::{CellAlignment, ContentArrangement, Table, presets};

/// A table with `header`; columns whose header is in `right` are right-aligned (numbers).
pub fn new(header: &[&str], right: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::ASCII_MARKDOWN)
        // A pipe into a file has no width: never wrap, whatever the terminal.
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for (i, h) in header.iter().enumerate() {
        if right.contains(h)
            && let Some(c) = t.column_mut(i)
        {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}
