//! CT and NOTRACK targets (xt_CT.c): raw-table templates, reported as effects
//! for conntrack to apply ("notrack", "helper", "zone", "ct-timeout", ...).

use crate::rules::context::Effects;
use crate::rules::targets::Step;

pub fn ct(effects: &[(String, serde_json::Value)], fx: &mut Effects) -> Step {
    for (kind, value) in effects {
        fx.effects.push((kind.clone().into(), value.clone()));
    }
    Step::Continue
}
