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

#[cfg(test)]
mod tests {
    #[test]
    fn effects_in_option_order() {
        let mut fx = Default::default();
        let effects = vec![
            ("helper".to_owned(), serde_json::json!("ftp")),
            ("zone".to_owned(), serde_json::json!(3)),
        ];
        assert_eq!(super::ct(&effects, &mut fx), super::Step::Continue);
        assert_eq!(fx.effects.len(), 2);
        assert_eq!(fx.effects[1].1, serde_json::json!(3));
    }
}
