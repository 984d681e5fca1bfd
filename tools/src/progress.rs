//! Progress bars on stderr for training (hidden when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};
use mnnn_core::Progress;

/// A bar over parameter updates showing the speed, the latest losses and the validation
/// score.
pub struct UpdateBar {
    bar: ProgressBar,
}

impl UpdateBar {
    /// A bar for a budget of `max_updates` (a spinner when 0: no update budget).
    pub fn new(max_updates: usize) -> Self {
        let bar = ProgressBar::new(max_updates as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} update {pos}/{len} [{bar:30}] {msg} ({elapsed})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        UpdateBar { bar }
    }

    /// Records one validation point.
    pub fn update(&self, p: &Progress) {
        if p.max_updates > 0 {
            self.bar.set_length(p.max_updates as u64);
        }
        self.bar.set_position(p.update as u64);
        let val = p.val_loss.map_or(String::new(), |v| format!(" val {v:.4}"));
        let score = p
            .val_score
            .map_or(String::new(), |v| format!(" score {v:.3}"));
        let phase = if p.refit { "refit " } else { "" };
        self.bar.set_message(format!(
            "{phase}{:.0} upd/s train {:.4}{val}{score} best@{}",
            p.updates_per_second, p.train_loss, p.best_update
        ));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
