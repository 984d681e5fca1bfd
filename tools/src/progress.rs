//! Progress bars on stderr for training (hidden when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};
use mnnn_core::Progress;

/// A bar over epochs showing the latest losses.
pub struct EpochBar {
    bar: ProgressBar,
}

impl EpochBar {
    /// A bar for `epochs` epochs.
    pub fn new(epochs: usize) -> Self {
        let bar = ProgressBar::new(epochs as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} epoch {pos}/{len} [{bar:30}] {msg} ({elapsed})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        EpochBar { bar }
    }

    /// Records one finished epoch.
    pub fn update(&self, p: &Progress) {
        self.bar.set_position(p.epoch as u64);
        let val = p.val_loss.map_or(String::new(), |v| format!(" val {v:.4}"));
        self.bar.set_message(format!(
            "train {:.4}{val} best@{}",
            p.train_loss, p.best_epoch
        ));
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
