//! Hyperbolic tangent over a slice, in place.

/// `x ← tanh(x)` for every element.
pub fn tanh_f32(xs: &mut [f32]) {
    for x in xs {
        *x = x.tanh();
    }
}

/// `x ← tanh(x)` for every element (the platform's correctly rounded-ish libm tanh: f64 is the
/// precision the gradient checks run in, so it keeps the exact function).
pub fn tanh_f64(xs: &mut [f64]) {
    for x in xs {
        *x = x.tanh();
    }
}
