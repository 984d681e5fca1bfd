//! How a window of tokens is cut into segments for the memory.

/// How a window is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// One token per segment (the step loop).
    Tokens,
    /// Whole chunks of the inner mini-batch (the chunked dual form), or, under sequential
    /// semantics (`chunk` 1), blocks of this many tokens for the exact delta rule.
    Chunks(usize),
}

/// A run of tokens inside one inner chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First token, relative to the window.
    pub start: usize,
    /// Tokens.
    pub len: usize,
    /// Whether it starts a chunk (its gradients are taken at the weights it starts from,
    /// not at a held snapshot).
    pub opens: bool,
    /// Whether it ends a chunk (the weights after it become the next snapshot).
    pub closes: bool,
}

/// The segments of a `len`-token window that starts at `position` inside an inner chunk of
/// `chunk` tokens, and the position after it.
pub fn segments(len: usize, chunk: usize, position: usize, cut: Cut) -> (Vec<Segment>, usize) {
    let mut out = Vec::new();
    let (mut t, mut p) = (0, position);
    while t < len {
        let n = match cut {
            Cut::Tokens => 1,
            Cut::Chunks(c) if chunk == 1 => c.max(1).min(len - t),
            Cut::Chunks(_) => (chunk - p).min(len - t),
        };
        let next = (p + n) % chunk;
        out.push(Segment {
            start: t,
            len: n,
            opens: p == 0,
            closes: next == 0,
        });
        p = next;
        t += n;
    }
    (out, p)
}
