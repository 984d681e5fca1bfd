//! AMRC's hand-written backward equals the one core derives from its equations written in
//! tape operations ([`AmrcTape`]), in both compat modes (the suite draws `compat`).

use mnnn_amrc::{Amrc, AmrcCell, AmrcTape};
use mnnn_core::autodiff::Derived;

#[test]
fn hand_written_backward_is_the_derived_one() {
    mnnn_conformance::assert_derived_backward::<Amrc, _>(|p, dims| {
        Derived(AmrcTape(AmrcCell::<f64>::new(p, dims)))
    });
}
